//! One HTTP/1 request to a pod's port through the API server's port-forward subresource
//! (`pods/portforward`, a WebSocket upgrade, as `kubectl port-forward` makes it): the
//! request travels client → API server → kubelet → the pod's port, so no network path to
//! the pod is needed.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::Client;
use tokio::time::Instant;

/// The largest answer body read (the report keeps only an excerpt; an expected answer is
/// compared with the whole of it).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long to wait for the kubelet's reason after the stream ended early.
const ERROR_GRACE: Duration = Duration::from_secs(2);

/// A pod's answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
    /// From sending the request to the end of the body.
    pub latency: Duration,
}

/// Why there is no answer.
#[derive(Debug)]
pub(crate) enum NoAnswer {
    /// The API server refused the port-forward (401/403).
    Denied(kube::Error),
    /// The port-forward or the request failed: what is known of why.
    Failed(String),
}

/// Sends `method path` with `body` (JSON) to `port` of `pod` through a port-forward.
/// Unbounded: the caller bounds it by the phase deadline.
pub(crate) async fn request(
    client: &Client,
    namespace: &str,
    pod: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<Answer, NoAnswer> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let forward =
        pods.portforward(pod, &[port]).await.map_err(|e| match &e {
            kube::Error::Api(s) if matches!(s.code, 401 | 403) => NoAnswer::Denied(e),
            kube::Error::UpgradeConnection(
                kube::client::UpgradeConnectionError::ProtocolSwitch(s),
            ) if matches!(s.as_u16(), 401 | 403) => NoAnswer::Denied(e),
            _ => NoAnswer::Failed(format!("port-forward to pod {pod} port {port}: {e}")),
        })?;
    // Ended however this future ends: done, failed, or dropped by a deadline or an interrupt.
    let mut forward = AbortOnDrop(forward);
    let forward = &mut forward.0;
    async {
        let stream = forward.take_stream(port).ok_or_else(|| {
            NoAnswer::Failed(format!("port-forward gave no stream for port {port}"))
        })?;
        let kubelet_error = forward.take_error(port);
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let _connection = AbortOnDrop(tokio::spawn(connection));
            let mut req = http::Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, "localhost")
                .header(http::header::ACCEPT, "application/json");
            if body.is_some() {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
            }
            let req = req
                .body(Full::new(body.unwrap_or_default()))
                .map_err(|e| Failure::Other(format!("cannot build the request: {e}")))?;
            let sent = Instant::now();
            async {
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let body = Limited::new(resp.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map_err(|e| Failure::Other(format!("reading the answer: {e}")))?
                    .to_bytes();
                Ok::<_, Failure>(Answer {
                    status,
                    body,
                    latency: sent.elapsed(),
                })
            }
            .await
        }
        .await;
        match exchange {
            Ok(a) => Ok(a),
            Err(e) => {
                // The kubelet says why a stream ended (nothing listening, …) on its error
                // channel, which may come a moment after the stream closed.
                let reason = match kubelet_error {
                    Some(f) => tokio::time::timeout(ERROR_GRACE, f).await.ok().flatten(),
                    None => None,
                };
                Err(NoAnswer::Failed(match reason {
                    Some(r) => format!("port-forward to pod {pod} port {port}: {r}"),
                    None => format!("no answer from pod {pod} port {port}: {e}"),
                }))
            }
        }
    }
    .await
}

/// Aborts a port-forward's background task, or a spawned task, when dropped.
struct AbortOnDrop<T: Abort>(T);

trait Abort {
    fn abort(&self);
}

impl Abort for kube::api::Portforwarder {
    fn abort(&self) {
        kube::api::Portforwarder::abort(self);
    }
}

impl<T> Abort for tokio::task::JoinHandle<T> {
    fn abort(&self) {
        tokio::task::JoinHandle::abort(self);
    }
}

impl<T: Abort> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A failed exchange.
#[derive(Debug)]
enum Failure {
    Http(hyper::Error),
    Other(String),
}

impl From<hyper::Error> for Failure {
    fn from(e: hyper::Error) -> Self {
        Failure::Http(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Http(e) => write!(f, "{e}"),
            Failure::Other(s) => f.write_str(s),
        }
    }
}
