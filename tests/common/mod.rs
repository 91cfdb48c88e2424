//! A scripted fake API server on `tower_test::mock::pair`, routing by method, path and query,
//! so concurrent watches can be answered in any order.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::time::Instant;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query as sent, for forwarding.
    pub uri: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub at: Instant,
}

impl Req {
    /// The request as the fake server logs it (both servers, so tests read them alike).
    fn new(parts: &http::request::Parts, body: &[u8]) -> Self {
        Req {
            method: parts.method.to_string(),
            uri: parts
                .uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            path: parts.uri.path().to_owned(),
            query: parse_query(parts.uri.query().unwrap_or_default()),
            headers: parts.headers.clone(),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
            at: Instant::now(),
        }
    }

    pub fn is_watch(&self) -> bool {
        self.query
            .get("watch")
            .is_some_and(|v| v == "true" || v == "1")
    }
    pub fn is_list(&self) -> bool {
        self.method == "GET"
            && !self.is_watch()
            && !self
                .path
                .rsplit('/')
                .next()
                .is_some_and(|l| l == "iris" || l.starts_with("name-"))
    }
    pub fn resource(&self) -> &str {
        if self.path.contains("/seldondeployments") {
            "sdep"
        } else if self.path.contains("/deployments") {
            "deployments"
        } else if self.path.contains("/events") {
            "events"
        } else if self.path.ends_with("/pods") {
            "pods"
        } else {
            "other"
        }
    }
}

/// What the script answers.
pub enum Reply {
    /// Send this response.
    Send(Response<Body>),
    /// Never answer (a watch that stays open and silent).
    Hang,
    /// Close the connection without an answer, as a failing proxy does.
    Drop,
    /// Answer with what this future yields (e.g. a forwarded request), awaited outside the
    /// script so other requests are served meanwhile.
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>),
}

pub type Script = Box<dyn FnMut(&Req) -> Reply + Send>;

/// Every request the fake server received, in order.
pub type Log = Arc<Mutex<Vec<Req>>>;

/// Starts the fake server; returns a client and the log of requests.
///
/// The client skips kube's layers (retry, auth, tracing); [`serve_http`] does not.
/// Pods are answered by the server itself (none, and a silent watch); [`serve_with_pods`]
/// scripts them too.
pub fn serve(script: Script) -> (kube::Client, Log) {
    serve_with_pods(default_pods(script))
}

/// `script`, with pods answered by the server itself: none, and a silent watch.
fn default_pods(mut script: Script) -> Script {
    Box::new(move |r| {
        if r.resource() != "pods" {
            return script(r);
        }
        if r.is_watch() {
            Reply::Hang
        } else {
            respond(200, &list("PodList", "1", vec![]))
        }
    })
}

/// Starts the fake server with `script` answering every request, pods included.
pub fn serve_with_pods(mut script: Script) -> (kube::Client, Log) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut parked = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let r = Req::new(&parts, &body.collect_bytes().await.unwrap_or_default());
            log2.lock().unwrap().push(r.clone());
            match script(&r) {
                Reply::Send(resp) => send.send_response(resp),
                Reply::Hang => parked.push(send),
                Reply::Drop => {
                    send.send_error(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
                }
                Reply::Later(answer) => {
                    tokio::spawn(async move { send.send_response(answer.await) });
                }
            }
        }
    });
    (kube::Client::new(svc, "default"), log)
}

/// The fake server behind a real local socket and a kubeconfig: clients made from it by
/// `connect::connect` go through the same construction, layers included, as production.
pub struct HttpMock {
    /// A kubeconfig whose only context points at the server (namespace `ns`).
    pub kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    accept: tokio::task::JoinHandle<()>,
}

impl HttpMock {
    /// Connection options for `connect::connect`, naming [`HttpMock::kubeconfig`].
    pub fn options(&self) -> seldon_deploy::cluster::connect::ConnectOptions {
        seldon_deploy::cluster::connect::ConnectOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            ..Default::default()
        }
    }

    /// A client from `connect::connect`, as the CLI builds it.
    pub async fn connect(&self) -> seldon_deploy::cluster::connect::Connection {
        seldon_deploy::cluster::connect::connect(&self.options())
            .await
            .expect("connect to the mock")
    }
}

impl Drop for HttpMock {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves `script` over HTTP/1.1 on 127.0.0.1 (plain HTTP: kube accepts an `http://` server)
/// and writes a kubeconfig pointing at it; requests are logged, and pods answered, as by
/// [`serve`].
pub async fn serve_http(script: Script) -> (HttpMock, Log) {
    serve_http_with_pods(default_pods(script)).await
}

/// As [`serve_http`], with `script` answering every request, pods included (a proxy in front
/// of a real API server forwards them).
pub async fn serve_http_with_pods(script: Script) -> (HttpMock, Log) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let script = Arc::new(Mutex::new(script));
    let (log2, script2) = (log.clone(), script.clone());
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, script) = (log2.clone(), script2.clone());
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (log, script) = (log.clone(), script.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let r = Req::new(&parts, &bytes);
                    log.lock().unwrap().push(r.clone());
                    let reply = (script.lock().unwrap())(&r);
                    match reply {
                        Reply::Send(resp) => Ok(resp),
                        Reply::Later(answer) => Ok(answer.await),
                        Reply::Hang => std::future::pending().await,
                        // hyper closes the connection when the service fails.
                        Reply::Drop => {
                            Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
                        }
                    }
                }
            });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    let kc = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "mock",
        "clusters": [{"name": "mock", "cluster": {"server": format!("http://{addr}")}}],
        "users": [{"name": "mock", "user": {"token": "mock-token"}}],
        "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "mock", "namespace": "ns"}}]
    });
    std::fs::write(&kubeconfig, serde_json::to_vec(&kc).unwrap()).unwrap();
    (
        HttpMock {
            kubeconfig,
            _dir: dir,
            accept,
        },
        log,
    )
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn respond(code: u16, body: &Value) -> Reply {
    Reply::Send(
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
}

pub fn respond_with_header(code: u16, body: &Value, name: &str, value: &str) -> Reply {
    Reply::Send(
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .header(name, value)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
}

/// A watch response carrying these events, then closing.
pub fn watch_events(events: &[Value]) -> Reply {
    let mut body = Vec::new();
    for e in events {
        body.extend(serde_json::to_vec(e).unwrap());
        body.push(b'\n');
    }
    Reply::Send(
        Response::builder()
            .status(200)
            .body(Body::from(body))
            .unwrap(),
    )
}

/// A watch response carrying these events `after` a while, then closing.
pub fn later_watch_events(after: std::time::Duration, events: &[Value]) -> Reply {
    match watch_events(events) {
        Reply::Send(resp) => Reply::Later(Box::pin(async move {
            tokio::time::sleep(after).await;
            resp
        })),
        other => other,
    }
}

pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

pub fn list(kind: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})
}

/// A SeldonDeployment list at `rv` holding `obj`.
pub fn sdep_list(rv: &str, obj: Value) -> Reply {
    respond(200, &list("SeldonDeploymentList", rv, vec![obj]))
}

/// A watch that ends at once with `410 Gone`: the client must relist.
pub fn expired_watch() -> Reply {
    watch_events(&[json!({"type": "ERROR", "object":
        status(410, "Expired", "too old resource version: 10 (15)")})])
}

/// The router's 404 for a resource type it does not serve (no details), as a restarting API
/// server answers for custom resources until its CRD informer has synced.
pub fn unserved() -> Reply {
    respond(
        404,
        &status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    )
}

pub const UID: &str = "11111111-2222-3333-4444-555555555555";

/// A SeldonDeployment named iris with one predictor (replicas 1) and the given status state.
pub fn sdep(rv: &str, state: Option<&str>, available: i64) -> Value {
    let mut o = json!({
        "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
        "metadata": {"name": "iris", "namespace": "ns", "uid": UID, "resourceVersion": rv,
                     "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1},
        "spec": {"predictors": [{"name": "default", "replicas": 1,
                 "graph": {"name": "classifier", "implementation": "SKLEARN_SERVER"}}]}
    });
    if let Some(s) = state {
        o["status"] = json!({"state": s, "deploymentStatus": {
            "iris-default-0-classifier": {"replicas": available, "availableReplicas": available}}});
    }
    o
}

/// The child Deployment of `sdep`, owned by UID, at `spec` replicas with `avail` available.
pub fn deployment(rv: &str, spec: i64, avail: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "iris-default-0-classifier", "namespace": "ns", "uid": "dep-uid",
            "resourceVersion": rv, "generation": 1, "labels": {"seldon-deployment-id": "iris"},
            "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
                                 "name": "iris", "uid": UID, "controller": true}]},
        "spec": {"replicas": spec, "selector": {"matchLabels": {"a": "b"}}, "template": {}},
        "status": {"observedGeneration": 1, "replicas": avail, "updatedReplicas": avail, "availableReplicas": avail}
    })
}

pub fn handle() -> seldon_deploy::Handle {
    seldon_deploy::Handle {
        namespace: "ns".into(),
        name: "iris".into(),
        uid: UID.into(),
        created_at: Some("2026-01-01T00:00:00Z".into()),
    }
}

pub fn count(log: &Log, f: impl Fn(&Req) -> bool) -> usize {
    log.lock().unwrap().iter().filter(|r| f(r)).count()
}

/// The bundled iris example (the original program's manifest) as YAML, named `iris` like
/// [`sdep`].
pub fn iris_yaml() -> String {
    include_str!("../../examples/iris-v1alpha2.yaml").replace("name: sklearn", "name: iris")
}

/// [`iris_yaml`], loaded.
pub fn iris_manifest() -> seldon_deploy::model::manifest::Manifest {
    seldon_deploy::model::manifest::parse("iris.yaml", iris_yaml().as_bytes())
        .unwrap()
        .remove(0)
}
