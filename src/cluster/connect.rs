//! Building a [`kube::Client`] the way kubectl does.
//!
//! Order: `--kubeconfig FILE`; else `KUBECONFIG` (several files merged, first value wins);
//! else `~/.kube/config`; else the in-cluster service account. `--context` picks a context;
//! the namespace is `-n`, else the context's namespace, else `default` (in-cluster: the
//! service account's namespace). Exec credential plugins are run by kube as configured.
//!
//! Nothing here logs or returns credential material: errors name files and contexts only.
//!
//! kube's built-in retry layer is switched off: it would re-send a create whose answer was
//! lost, and wait up to 1000 s regardless of any deadline. [`crate::ops`] retries what
//! is safe to repeat, within each phase's deadline.

use std::path::PathBuf;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};

/// How to reach the cluster. The default is kubectl's: `KUBECONFIG` or `~/.kube/config`
/// (else the in-cluster service account), its current context and that context's namespace.
///
/// # Examples
///
/// An explicit namespace is checked before any file is read:
///
/// ```
/// use seldon_deploy::cluster::connect::{ConnectOptions, connect};
///
/// let opts = ConnectOptions { namespace: Some("Team_A".into()), ..ConnectOptions::default() };
/// let err = futures::executor::block_on(connect(&opts)).unwrap_err();
/// assert_eq!(err.exit_code(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Explicit kubeconfig file (`--kubeconfig`).
    pub kubeconfig: Option<PathBuf>,
    /// Context to use instead of `current-context` (`--context`).
    pub context: Option<String>,
    /// Namespace override (`-n`).
    pub namespace: Option<String>,
}

/// A ready client plus the resolved namespace. Its `Debug` shows no credentials.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// use seldon_deploy::{Deployer, cluster::connect};
///
/// let conn = connect::connect(&connect::ConnectOptions::default()).await?;
/// if conn.insecure {
///     eprintln!("warning: TLS verification is off for {}", conn.server);
/// }
/// let deployer = Deployer::new(conn.client, &conn.namespace);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// The namespace to work in.
    pub namespace: String,
    /// The API server URL (no credentials).
    pub server: String,
    /// Whether TLS verification is disabled by the kubeconfig.
    pub insecure: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// Resolves the configuration and builds a client. Must be called inside a Tokio runtime.
///
/// # Errors
///
/// [`Error::Config`] (exit 3) when no configuration can be loaded, the context does not
/// exist, or the client cannot be built; [`Error::InvalidName`] (exit 2) when the namespace
/// (from `opts`, the kubeconfig context or the service account) is not a valid namespace.
///
/// # Examples
///
/// Building a client contacts no server, so this runs anywhere:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use seldon_deploy::cluster::connect::{ConnectOptions, connect};
///
/// let dir = tempfile::tempdir()?;
/// let kubeconfig = dir.path().join("config");
/// std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\ncurrent-context: dev\n\
///     clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n\
///     users: [{name: u, user: {token: t0ken}}]\n\
///     contexts: [{name: dev, context: {cluster: c, user: u, namespace: team-a}}]\n")?;
/// let opts = ConnectOptions { kubeconfig: Some(kubeconfig), ..ConnectOptions::default() };
/// let conn = connect(&opts).await?;
/// assert_eq!((conn.namespace.as_str(), conn.insecure), ("team-a", false));
/// assert!(!format!("{conn:?}").contains("t0ken"));
/// # Ok(()) }
/// ```
pub async fn connect(opts: &ConnectOptions) -> Result<Connection> {
    // An explicit namespace is checked before anything is read, the configuration's after.
    let explicit = opts.namespace.clone().filter(|n| !n.is_empty());
    if let Some(ns) = &explicit {
        crate::model::manifest::check_namespace_name("-n/--namespace", ns)?;
    }
    let mut config = load_config(opts).await?;
    let namespace = match explicit {
        Some(ns) => ns,
        None => {
            let ns = config.default_namespace.clone();
            crate::model::manifest::check_namespace_name(
                "namespace of the kubeconfig context (or the service account)",
                &ns,
            )?;
            ns
        }
    };
    let server = config.cluster_url.to_string();
    let insecure = config.accept_invalid_certs;
    // kube's own retry layer re-sends every request, POST included, on 429/503/504, up to 15
    // times with delays up to 1000 s: a create whose answer was lost would be sent again, and
    // no phase deadline would bound the wait. `lifecycle` retries instead, knowing which
    // requests are safe to repeat, within the deadline.
    config.default_retry = false;
    // Named in the API server's audit log and metrics, as kubectl names itself there.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let client = client_without_nagle(config)
        .map_err(|e| config_error(format!("cannot build a client for {server}"), e))?;
    Ok(Connection {
        client,
        namespace,
        server,
        insecure,
    })
}

/// kube's client as `Client::try_from(config)` builds it (TLS, auth, extra headers, connect
/// and write timeouts, the `-vv` trace of each request), but with `TCP_NODELAY` on its
/// sockets: kube leaves Nagle's algorithm on, so the first request on a fresh connection (the
/// write after a wait, when the watches hold every pooled connection) was held ~40 ms behind
/// the TLS handshake's last flight until the server's delayed ACK (bench: lag ready@1 45 ms).
/// kube offers no setting for it, hence this stack. A proxy URL keeps kube's own client (and
/// its answer for the proxy kinds this build does not support).
fn client_without_nagle(config: Config) -> kube::Result<Client> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;

    if config.proxy_url.is_some() {
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut timed = hyper_timeout::TimeoutConnector::new(https);
    timed.set_connect_timeout(config.connect_timeout);
    timed.set_read_timeout(config.read_timeout);
    timed.set_write_timeout(config.write_timeout);
    let hyper_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, kube::client::Body>(timed);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &http::Request<kube::client::Body>| {
                    tracing::debug_span!("HTTP", http.method = %req.method(), http.url = %req.uri())
                }),
        )
        .map_err(tower::BoxError::from)
        .service(hyper_client);
    Ok(Client::new(service, config.default_namespace))
}

/// What every request says it comes from (`User-Agent`).
const USER_AGENT: &str = concat!("seldon-deploy/", env!("CARGO_PKG_VERSION"));

async fn load_config(opts: &ConnectOptions) -> Result<Config> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..KubeConfigOptions::default()
    };
    let from_file = |kc: Kubeconfig, origin: String| async move {
        Config::from_custom_kubeconfig(kc, &kc_opts)
            .await
            .map_err(|e| config_error(format!("kubeconfig {origin}"), e))
    };
    if let Some(path) = &opts.kubeconfig {
        let kc = Kubeconfig::read_from(path)
            .map_err(|e| config_error(format!("cannot read kubeconfig {}", path.display()), e))?;
        return from_file(kc, path.display().to_string()).await;
    }
    match Kubeconfig::from_env() {
        Ok(Some(kc)) => return from_file(kc, "from $KUBECONFIG".into()).await,
        Ok(None) => {}
        Err(e) => {
            return Err(config_error(
                "cannot read the files in $KUBECONFIG".into(),
                e,
            ));
        }
    }
    if let Some(home) = home_kubeconfig().filter(|p| p.exists()) {
        let kc = Kubeconfig::read_from(&home)
            .map_err(|e| config_error(format!("cannot read kubeconfig {}", home.display()), e))?;
        return from_file(kc, home.display().to_string()).await;
    }
    if opts.context.is_some() {
        return Err(Error::Config {
            message: "--context given but no kubeconfig found ($KUBECONFIG, ~/.kube/config)".into(),
            source: None,
        });
    }
    Config::incluster().map_err(|e| {
        config_error(
            "no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running in a cluster".into(),
            e,
        )
    })
}

fn config_error(message: String, source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Config {
        message,
        source: Some(Box::new(source)),
    }
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".kube").join("config"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = "apiVersion: v1
kind: Config
current-context: a
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: secret-token-value}
contexts:
- name: a
  context: {cluster: c, user: u, namespace: team-a}
- name: b
  context: {cluster: c, user: u}
";

    #[tokio::test]
    async fn namespace_and_context_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kc");
        std::fs::write(&path, KC).unwrap();
        let base = ConnectOptions {
            kubeconfig: Some(path.clone()),
            ..Default::default()
        };
        let c = connect(&base).await.unwrap();
        assert_eq!(c.namespace, "team-a");
        assert!(c.insecure);
        assert!(!format!("{c:?}").contains("secret-token-value"));

        let b = connect(&ConnectOptions {
            context: Some("b".into()),
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(b.namespace, "default");

        let n = connect(&ConnectOptions {
            namespace: Some("explicit".into()),
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(n.namespace, "explicit");

        let missing = connect(&ConnectOptions {
            context: Some("nope".into()),
            ..base
        })
        .await
        .unwrap_err();
        assert_eq!(missing.exit_code(), 3);
        assert!(!missing.to_string().contains("secret-token-value"));
        assert!(
            std::error::Error::source(&missing).is_some(),
            "kube's error is kept as the source: {missing:?}"
        );
    }
}
