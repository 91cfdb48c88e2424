//! Talking to the API server: requests built so no input changes their path, the one retry
//! policy for transient errors (within each operation's deadline; kube's own retry layer is
//! off, see [`crate::cluster::connect`]), and the one backoff.

use super::*;

/// Growing delays between the attempts of one operation: `first`, then each `factor` times
/// the last, at most `max`. One type for the two policies: transient errors (a server that
/// is restarting or throttling) and conflicts (another writer, usually gone in milliseconds).
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    next: Duration,
    factor: u32,
    max: Duration,
}

impl Backoff {
    /// After a transient error or a lost answer: 200 ms, 400 ms, … up to 10 s.
    pub(super) fn transient() -> Self {
        Backoff {
            next: Duration::from_millis(200),
            factor: 2,
            max: Duration::from_secs(10),
        }
    }

    /// After a conflict with another writer: 10 ms, 50 ms, … up to 2 s.
    pub(super) fn conflict() -> Self {
        Backoff {
            next: Duration::from_millis(10),
            factor: 5,
            max: Duration::from_secs(2),
        }
    }

    /// The next delay, without taking it.
    pub(super) fn peek(&self) -> Duration {
        self.next
    }

    /// Whether the next delay still ends before `deadline`.
    pub(super) fn fits(&self, deadline: Instant) -> bool {
        Instant::now() + self.next < deadline
    }

    /// Takes the next delay (the one after grows).
    pub(super) fn take(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * self.factor).min(self.max);
        now
    }
}

/// A JSON request. Names in `url` were checked ([`Deployer::check_path`]), so building it
/// does not fail; if it ever did, that is an error, not a panic.
pub(super) fn json_request(
    method: http::Method,
    url: &str,
    body: &Value,
) -> Result<http::Request<Vec<u8>>, kube::Error> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .map_err(kube::Error::HttpError)
}

impl Deployer {
    /// Runs `f` again after transient errors (429, 503, transport errors when `idempotent`),
    /// sleeping the server's `retryAfterSeconds` if given, else an exponential backoff, while
    /// the deadline allows.
    pub(super) async fn retrying<T, F, Fut>(
        &self,
        deadline: Instant,
        idempotent: bool,
        mut f: F,
    ) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut backoff = Backoff::transient();
        loop {
            // The client has no read timeout (watches need none), so a hung request is
            // bounded here by the phase deadline.
            let attempt = match tokio::time::timeout_at(deadline, f()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(kube::Error::Service(
                        "no answer from the API server before the phase deadline".into(),
                    ));
                }
            };
            let transport = matches!(
                attempt,
                Err(kube::Error::HyperError(_) | kube::Error::Service(_))
            );
            if !transport {
                self.contacted.store(true, Ordering::Relaxed);
            }
            if attempt.is_ok() {
                self.served.store(true, Ordering::Relaxed);
            }
            // Once this resource type has been served, a router 404 is an API server restart
            // in progress (CRDs are served only after its informer syncs), not a missing CRD.
            let restarting = self.served.load(Ordering::Relaxed)
                && attempt.as_ref().is_err_and(is_unserved_resource);
            match attempt {
                Err(e) if transport && !self.contacted.load(Ordering::Relaxed) => return Err(e),
                Err(e) if is_transient(&e, idempotent) || restarting => {
                    let wait = retry_after(&e).unwrap_or(backoff.peek());
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "transient API error, retrying: {e}"
                    );
                    self.stats.retry();
                    tokio::time::sleep(wait).await;
                    backoff.take();
                }
                other => return other,
            }
        }
    }

    /// Reads the SeldonDeployment as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it does not exist, or an access error.
    ///
    /// # Examples
    ///
    /// A name Kubernetes would never accept is refused before any request is sent:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = kube::Client::try_from(kube::Config::new("https://127.0.0.1:6443".parse()?))?;
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(client, "seldon");
    /// let err = deployer.get("../secrets", Instant::now() + Duration::from_secs(10)).await.unwrap_err();
    /// assert_eq!(err.exit_code(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, name: &str, deadline: Instant) -> Result<Value> {
        self.check_path(name)?;
        let obj = self
            .retrying(deadline, true, || self.sdeps.get(name))
            .await
            .map_err(|e| Error::from_kube(e, &self.op("get", name)))?;
        serde_json::to_value(obj).map_err(|e| Error::UnexpectedResponse {
            what: format!("SeldonDeployment {name:?} cannot be re-encoded as JSON"),
            source: Some(Box::new(e)),
        })
    }

    /// Reads the SeldonDeployment and returns its [`Handle`].
    ///
    /// # Errors
    ///
    /// As [`Deployer::get`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// let h = deployer.handle("iris", deadline).await?;
    /// deployer.delete(&h, deadline, &mut |_| {}).await?; // only this UID is ever deleted
    /// # Ok(()) }
    /// ```
    pub async fn handle(&self, name: &str, deadline: Instant) -> Result<Handle> {
        let obj = self.get(name, deadline).await?;
        Handle::from_object(&obj, &self.namespace)
    }

    /// As [`Deployer::handle`], with the API server's clock when it answered (its `Date`
    /// header, if it sent one). Events carry the server's times, so "from now on" must be
    /// measured on that clock, not on this machine's.
    ///
    /// # Errors
    ///
    /// As [`Deployer::get`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::events::{EventFilter, follow};
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// // Follow the Events from now on, "now" as the API server's clock says.
    /// let (h, now) = deployer.handle_and_server_time("iris", deadline).await?;
    /// let filter = EventFilter { name: h.name, uid: h.uid, since: now, ..EventFilter::default() };
    /// let events = follow(deployer.client().clone(), deployer.namespace(), filter, Default::default());
    /// # Ok(()) }
    /// ```
    pub async fn handle_and_server_time(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<(Handle, Option<Timestamp>)> {
        self.check_path(name)?;
        let url = format!(
            "/apis/{GROUP}/v1/namespaces/{}/seldondeployments/{name}",
            self.namespace
        );
        let (obj, date) = self
            .retrying(deadline, true, || get_with_date(&self.client, &url))
            .await
            .map_err(|e| Error::from_kube(e, &self.op("get", name)))?;
        Ok((Handle::from_object(&obj, &self.namespace)?, date))
    }

    /// Maps a write's error, naming the manifest's version when the CRD does not serve it.
    pub(super) fn classify_write(&self, e: kube::Error, op: &Op, manifest: &Manifest) -> Error {
        match Error::from_kube(e, op) {
            Error::MissingCrd { message, .. } => Error::MissingCrd {
                version: manifest.version.clone(),
                message,
            },
            other => other,
        }
    }

    pub(super) fn collection_url(&self, version: &str, extra: &str) -> String {
        format!(
            "/apis/{GROUP}/{version}/namespaces/{}/seldondeployments?fieldValidation=Strict&fieldManager={FIELD_MANAGER}{extra}",
            self.namespace
        )
    }
}

/// Whether a create's answer leaves open whether it was stored: a server error other than
/// 503 (which proves it was not), a transport failure, or a response that could not be read.
pub(super) fn answer_lost(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 && s.code != 503 && s.code != 501,
        kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::ReadEvents(_)
        | kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_) => true,
        _ => false,
    }
}

/// Whether a JSON Patch was refused because it does not apply to the live object: a `test`
/// operation failed, or a path it names is gone (both mean the object changed since it was
/// read). The API server answers every such failure alike (`NewGenericServerResponse(422)`
/// in apiserver's `patch.go`): 422, reason `Invalid`, its generic message and empty details,
/// whereas a patched object failing validation gets details naming its kind and the causes.
pub(super) fn patch_did_not_apply(s: &kube::core::Status) -> bool {
    s.code == 422
        && s.reason == "Invalid"
        && s.details
            .as_ref()
            .is_none_or(|d| d.kind.is_empty() && d.name.is_empty() && d.causes.is_empty())
}

/// GETs `url` as JSON, with the answer's `Date` header. kube's typed calls drop the headers, so
/// this sends the request itself and turns error answers into [`kube::Error::Api`] as kube does.
async fn get_with_date(
    client: &Client,
    url: &str,
) -> Result<(Value, Option<Timestamp>), kube::Error> {
    let req = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(kube::client::Body::from(Vec::new()))
        .map_err(kube::Error::HttpError)?;
    let res = client.send(req).await?;
    let code = res.status();
    let date = res
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new()
                .parse_timestamp(v)
                .ok()
        });
    let body = res.into_body().collect_bytes().await?;
    if code.is_client_error() || code.is_server_error() {
        let status = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&body);
            kube::core::Status::failure(text.trim(), "Failed to parse error data")
                .with_code(code.as_u16())
        });
        return Err(kube::Error::Api(status.boxed()));
    }
    let obj = serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
    Ok((obj, date))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused: the clock stands still, so `fits` compares exact times.
    #[tokio::test(start_paused = true)]
    async fn backoffs_grow_by_their_factor_up_to_their_cap() {
        let taken = |mut b: Backoff, n| (0..n).map(|_| b.take()).collect::<Vec<_>>();
        let ms = Duration::from_millis;
        assert_eq!(
            taken(Backoff::transient(), 8),
            [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000].map(ms)
        );
        assert_eq!(
            taken(Backoff::conflict(), 5),
            [10, 50, 250, 1250, 2000].map(ms)
        );
        let b = Backoff::conflict();
        assert!(b.fits(Instant::now() + ms(11)));
        assert!(!b.fits(Instant::now() + ms(9)));
        assert_eq!(b.peek(), ms(10), "peek takes nothing");
    }
}
