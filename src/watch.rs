//! Robust watches: list, then watch from that resourceVersion, forever.
//!
//! Built on [`kube::runtime::watcher()`] with its default backoff (800 ms → 30 s, as client-go):
//! a dropped connection re-watches from the last resourceVersion, a `410 Gone` relists, and a
//! watch that goes silent is abandoned after the server timeout plus 5 s. Errors are logged and
//! counted, never returned, except those that retrying cannot fix (401, 403, 404 on the
//! list/watch itself), which [`fatal`] turns into an [`Error`].
//!
//! [`Snapshot`] folds the event stream into the current set of objects, so callers evaluate a
//! level-triggered predicate on a consistent view instead of reacting to single events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::stream::{BoxStream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;

use crate::error::{Error, Op};

/// Server-side watch timeout in seconds. kube abandons a watch that sends nothing for this
/// long plus 5 s, so a silently dead connection is noticed within about two minutes.
pub const WATCH_TIMEOUT_SECS: u32 = 120;

/// The label the operator puts on every child Deployment and Service.
pub const SELDON_ID_LABEL: &str = "seldon-deployment-id";

/// Counters shared by all watches of one [`crate::Deployer`]; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<StatsInner>);

#[derive(Debug, Default)]
struct StatsInner {
    relists: AtomicU64,
    watch_errors: AtomicU64,
    retries: AtomicU64,
}

/// A point-in-time copy of [`Stats`], for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Full lists after the first one (after `410 Gone` or a failed re-watch).
    pub relists: u64,
    /// Watch errors that were retried.
    pub watch_errors: u64,
    /// Requests retried after a transient error or conflict.
    pub retries: u64,
}

impl Stats {
    /// Reads the counters.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            relists: self.0.relists.load(Ordering::Relaxed),
            watch_errors: self.0.watch_errors.load(Ordering::Relaxed),
            retries: self.0.retries.load(Ordering::Relaxed),
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
}

/// The watcher configuration used everywhere: bookmarks on, bounded server timeout.
#[must_use]
pub fn config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

/// A never-ending watch stream with backoff on errors.
pub fn stream<K>(
    api: Api<K>,
    config: watcher::Config,
) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, config).default_backoff().boxed()
}

/// Turns a watch error that retrying cannot fix into an [`Error`]; `None` means "retry".
///
/// `op` describes the watched resource; its verb is replaced by `list` or `watch`.
#[must_use]
pub fn fatal(err: &watcher::Error, op: &Op) -> Option<Error> {
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

/// The current objects of one watch, keyed by name, rebuilt atomically on each relist.
#[derive(Debug, Clone)]
pub struct Snapshot<K> {
    objects: BTreeMap<String, K>,
    buffer: Option<BTreeMap<String, K>>,
    synced: bool,
    lists: u64,
}

impl<K> Default for Snapshot<K> {
    fn default() -> Self {
        Snapshot {
            objects: BTreeMap::new(),
            buffer: None,
            synced: false,
            lists: 0,
        }
    }
}

impl<K: Resource + Clone> Snapshot<K> {
    /// An empty, unsynced snapshot.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one watcher event; returns whether the visible view changed.
    ///
    /// During a relist the old view stays visible until the list completes, so a predicate
    /// never sees a half-listed state. `stats` counts relists after the first list.
    pub fn apply(&mut self, event: watcher::Event<K>, stats: &Stats) -> bool {
        match event {
            watcher::Event::Init => {
                self.buffer = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(obj) => {
                let name = obj.meta().name.clone().unwrap_or_default();
                self.buffer
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name, obj);
                false
            }
            watcher::Event::InitDone => {
                self.objects = self.buffer.take().unwrap_or_default();
                self.lists += 1;
                if self.lists > 1 {
                    stats.relist();
                }
                self.synced = true;
                true
            }
            watcher::Event::Apply(obj) => {
                let name = obj.meta().name.clone().unwrap_or_default();
                self.objects.insert(name, obj);
                self.synced
            }
            watcher::Event::Delete(obj) => {
                let name = obj.meta().name.clone().unwrap_or_default();
                self.objects.remove(&name);
                self.synced
            }
        }
    }

    /// Whether at least one full list has completed.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The object with this name, if present.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&K> {
        self.objects.get(name)
    }

    /// All objects, ordered by name.
    pub fn objects(&self) -> impl Iterator<Item = &K> {
        self.objects.values()
    }

    /// Number of completed lists (1 after the initial sync).
    #[must_use]
    pub fn lists(&self) -> u64 {
        self.lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c
    }

    #[test]
    fn relist_replaces_view_atomically_and_is_counted() {
        let stats = Stats::default();
        let mut s = Snapshot::new();
        assert!(!s.apply(watcher::Event::Init, &stats));
        s.apply(watcher::Event::InitApply(cm("a")), &stats);
        assert!(!s.is_synced());
        assert!(s.apply(watcher::Event::InitDone, &stats));
        assert!(s.get("a").is_some());
        assert!(s.apply(watcher::Event::Apply(cm("b")), &stats));

        // A relist that no longer contains "a": the old view holds until InitDone.
        s.apply(watcher::Event::Init, &stats);
        s.apply(watcher::Event::InitApply(cm("b")), &stats);
        assert!(s.get("a").is_some());
        s.apply(watcher::Event::InitDone, &stats);
        assert!(s.get("a").is_none());
        assert_eq!(s.objects().count(), 1);
        assert_eq!(stats.snapshot().relists, 1);
        assert!(s.apply(watcher::Event::Delete(cm("b")), &stats));
        assert_eq!(s.objects().count(), 0);
    }

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
