//! Robust watches: list, then watch from that resourceVersion, forever.
//!
//! Built on [`kube::runtime::watcher()`] with its default backoff (800 ms → 30 s, as client-go):
//! a dropped connection re-watches from the last resourceVersion, a `410 Gone` relists, and a
//! watch whose stream goes silent is abandoned after the server timeout plus 5 s and re-watched
//! from the last resourceVersion (with bookmarks on, the API server sends something at least
//! that often on a healthy watch). kube does not bound a request whose response never starts;
//! [`bounded_client`] does, for the watches' client, so such a watch is re-watched too. A quiet
//! namespace therefore costs one list per watch for as long as a wait lasts. Errors are logged
//! and counted, never returned, except those that retrying cannot fix (401, 403, 404 on the
//! list/watch itself), which [`fatal`] turns into an [`Error`]: at once if that kind of request
//! (list, or watch) never worked on the feed, else after [`FATAL_GRACE`] of them in a row (an
//! API server restart answers these for a moment).
//!
//! [`crate::cluster::cache`] keeps what these watches see, for every reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::stream::{BoxStream, StreamExt};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::Serialize;

use crate::error::{Error, Op};

/// Server-side watch timeout in seconds. kube abandons a watch that sends nothing for this
/// long plus 5 s, so a silently dead connection is noticed within about two minutes.
pub(crate) const WATCH_TIMEOUT_SECS: u32 = 120;

/// How long a list or watch request may go without the response starting (its status line
/// and headers). The API server answers a watch at once and ends any other request after its
/// `--request-timeout` (60 s by default), so a request unanswered for twice that is on a dead
/// connection.
pub(crate) const RESPONSE_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a feed that has listed successfully retries errors that are otherwise final
/// (401, 403, 404) before reporting them: an API server restarting answers these for a moment.
pub(crate) const FATAL_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Counters shared by all watches of one [`crate::Deployer`]; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<StatsInner>);

#[derive(Debug, Default)]
struct StatsInner {
    relists: AtomicU64,
    watch_errors: AtomicU64,
    retries: AtomicU64,
    wakeups: AtomicU64,
}

/// A point-in-time copy of [`Stats`], for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WatchStats {
    /// Full lists after the first one (after `410 Gone` or a failed re-watch).
    pub relists: u64,
    /// Watch errors that were retried.
    pub watch_errors: u64,
    /// Requests retried after a transient error or conflict.
    pub retries: u64,
    /// Readers woken by the cache (one per watch item per interested wait or event follower,
    /// and every reader after a list): it grows with the number of deployments, not with
    /// its square.
    pub wakeups: u64,
}

impl Stats {
    /// Reads the counters.
    #[must_use]
    pub fn snapshot(&self) -> WatchStats {
        WatchStats {
            relists: self.0.relists.load(Ordering::Relaxed),
            watch_errors: self.0.watch_errors.load(Ordering::Relaxed),
            retries: self.0.retries.load(Ordering::Relaxed),
            wakeups: self.0.wakeups.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn relist(&self) {
        self.0.relists.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn watch_error(&self) {
        self.0.watch_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.0.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wakeup(&self) {
        self.0.wakeups.fetch_add(1, Ordering::Relaxed);
    }
}

/// The watcher configuration used everywhere: bookmarks on, bounded server timeout.
#[must_use]
pub(crate) fn config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

/// A never-ending watch stream with backoff on errors. Give it an `api` on a
/// [`bounded_client`], so that a request whose response never starts is retried too.
pub(crate) fn stream<K>(
    api: Api<K>,
    config: watcher::Config,
) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watcher(api, config).default_backoff().boxed()
}

/// `client`, with every request failed once its response has not started within
/// [`RESPONSE_START_TIMEOUT`]. Only the start is bounded: a watch's body streams for as long
/// as the watch lasts, and kube bounds its silences itself. The client is wrapped here rather
/// than configured with a read timeout, so a library caller's own client gets the bound too.
pub(crate) fn bounded_client(client: &Client) -> Client {
    let inner = client.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            match tokio::time::timeout(RESPONSE_START_TIMEOUT, inner.send(request)).await {
                Ok(answer) => answer,
                Err(_) => Err(kube::Error::Service(
                    format!(
                        "no response from the API server within {}s",
                        RESPONSE_START_TIMEOUT.as_secs()
                    )
                    .into(),
                )),
            }
        }
    });
    Client::new(service, client.default_namespace())
}

/// Turns a watch error that retrying cannot fix into an [`Error`]; `None` means "retry".
///
/// `op` describes the watched resource; its verb is replaced by `list` or `watch`.
#[must_use]
pub(crate) fn fatal(err: &watcher::Error, op: &Op) -> Option<Error> {
    let (verb, status) = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s)) => ("list", s),
        watcher::Error::WatchStartFailed(kube::Error::Api(s)) => ("watch", s),
        _ => return None,
    };
    if !matches!(status.code, 401 | 403 | 404) {
        return None;
    }
    let op = Op {
        verb,
        name: None,
        ..op.clone()
    };
    Some(Error::from_kube(kube::Error::Api(status.clone()), &op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_only_for_unfixable_list_or_watch_errors() {
        let op = Op::sdep("get", "ns", Some("x"));
        let st = |code| Box::new(kube::core::Status::failure("m", "r").with_code(code));
        let forbidden = watcher::Error::InitialListFailed(kube::Error::Api(st(403)));
        let e = fatal(&forbidden, &op).unwrap();
        assert!(e.to_string().contains("cannot list"), "{e}");
        let gone = watcher::Error::WatchError(st(410));
        assert!(fatal(&gone, &op).is_none());
        let busy = watcher::Error::WatchStartFailed(kube::Error::Api(st(429)));
        assert!(fatal(&busy, &op).is_none());
    }
}
