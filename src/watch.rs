//! Robust watches: list, then watch from that resourceVersion, forever.
//!
//! Built on [`kube::runtime::watcher()`] with its default backoff (800 ms → 30 s, as client-go):
//! a dropped connection re-watches from the last resourceVersion, a `410 Gone` relists, and a
//! watch that goes silent is abandoned after the server timeout plus 5 s. kube has no such bound
//! on a watch request whose response never starts, so [`stream`] adds its own: a watch that
//! yields nothing for [`WATCH_IDLE_SECS`] is restarted with a fresh list. Errors are logged and
//! counted, never returned, except those that retrying cannot fix (401, 403, 404 on the
//! list/watch itself), which [`fatal`] turns into an [`Error`]: at once if that kind of request
//! (list, or watch) never worked on the feed, else after [`FATAL_GRACE`] of them in a row (an
//! API server restart answers these for a moment).
//!
//! [`Snapshot`] folds the event stream into the current set of objects, so callers evaluate a
//! level-triggered predicate on a consistent view instead of reacting to single events.
//!
//! [`Feed`] runs one such watch in a background task for any number of [`Subscription`]s: the
//! store is kept once, every item is broadcast to every subscriber, and the watch stops when
//! the last holder drops the feed. [`crate::shared::Hub`] decides which feeds are shared.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use futures::stream::{BoxStream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;

use crate::error::{Error, Op};

/// Server-side watch timeout in seconds. kube abandons a watch that sends nothing for this
/// long plus 5 s, so a silently dead connection is noticed within about two minutes.
pub const WATCH_TIMEOUT_SECS: u32 = 120;

/// A watch stream that yields nothing for this long is restarted from a fresh list. kube's
/// watcher re-watches every [`WATCH_TIMEOUT_SECS`] without yielding anything, so a quiet but
/// healthy watch also restarts: one list per this period of silence, the price of never
/// hanging on a request that was accepted but never answered.
pub const WATCH_IDLE_SECS: u64 = WATCH_TIMEOUT_SECS as u64 + 30;

/// How long a feed that has listed successfully retries errors that are otherwise final
/// (401, 403, 404) before reporting them: an API server restarting answers these for a moment.
pub const FATAL_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

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

/// A never-ending watch stream with backoff on errors, restarted after [`WATCH_IDLE_SECS`] of
/// silence (yielding one retryable error, so the restart is logged and counted).
pub fn stream<K>(
    api: Api<K>,
    config: watcher::Config,
) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let fresh = move || {
        watcher(api.clone(), config.clone())
            .default_backoff()
            .boxed()
    };
    let idle = std::time::Duration::from_secs(WATCH_IDLE_SECS);
    futures::stream::unfold(fresh(), move |mut inner| {
        let fresh = fresh.clone();
        async move {
            match tokio::time::timeout(idle, inner.next()).await {
                Ok(Some(item)) => Some((item, inner)),
                Ok(None) => None,
                Err(_) => {
                    let silent = kube::Error::Service(
                        format!("watch silent for {}s, restarting it", idle.as_secs()).into(),
                    );
                    Some((Err(watcher::Error::WatchStartFailed(silent)), fresh()))
                }
            }
        }
    })
    .boxed()
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

    /// The items of a list in progress (after `Init`, before `InitDone`).
    fn listing(&self) -> Option<impl Iterator<Item = &K>> {
        self.buffer.as_ref().map(BTreeMap::values)
    }
}

/// One watch item as every subscriber of a [`Feed`] sees it.
pub type Item<K> = Arc<Result<watcher::Event<K>, watcher::Error>>;

struct FeedShared<K> {
    state: Mutex<FeedState<K>>,
    tx: broadcast::Sender<Item<K>>,
}

struct FeedState<K> {
    snapshot: Snapshot<K>,
    /// The last error retrying cannot fix, until the next successful list; replayed to late
    /// subscribers so they fail as fast as the first ones.
    fatal: Option<Item<K>>,
}

impl<K> FeedShared<K> {
    fn lock(&self) -> MutexGuard<'_, FeedState<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One running watch with its store, shared by its [`Subscription`]s; the watch stops when
/// the last `Arc<Feed>` is dropped.
pub struct Feed<K> {
    shared: Arc<FeedShared<K>>,
    task: tokio::task::AbortHandle,
}

impl<K> Drop for Feed<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<K> Feed<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    /// Starts watching `api` with `config` in a background task. Retried errors and relists
    /// are counted once in `stats`, however many subscribers there are; `op` names the
    /// resource in fatal errors. `capacity` bounds how far a subscriber may lag before it is
    /// resynchronised from the store.
    #[must_use]
    pub fn start(
        api: Api<K>,
        config: watcher::Config,
        op: Op,
        stats: Stats,
        capacity: usize,
    ) -> Arc<Self> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        let shared = Arc::new(FeedShared {
            state: Mutex::new(FeedState {
                snapshot: Snapshot::new(),
                fatal: None,
            }),
            tx,
        });
        let task_shared = shared.clone();
        let mut items = stream(api, config);
        let task = tokio::spawn(async move {
            // Whether a list, and a watch, of this feed have succeeded; and since when
            // fatal-looking errors have come in a row.
            let (mut listed, mut watched) = (false, false);
            let mut failing_since: Option<tokio::time::Instant> = None;
            while let Some(item) = items.next().await {
                let item = Arc::new(item);
                let mut st = task_shared.lock();
                match &*item {
                    Ok(ev) => {
                        match ev {
                            watcher::Event::InitDone => {
                                st.fatal = None;
                                listed = true;
                            }
                            watcher::Event::Apply(_) | watcher::Event::Delete(_) => watched = true,
                            _ => {}
                        }
                        if !matches!(ev, watcher::Event::Init) {
                            failing_since = None;
                        }
                        st.snapshot.apply(ev.clone(), &stats);
                    }
                    Err(e) if fatal(e, &op).is_some() => {
                        let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                        let worked_before = match e {
                            watcher::Error::InitialListFailed(_) => listed,
                            watcher::Error::WatchStartFailed(_) => watched,
                            _ => false,
                        };
                        if worked_before && since.elapsed() < FATAL_GRACE {
                            // A 401/403/404 on a request that has worked is most likely an API
                            // server coming back (authorizers and CRD handlers sync after it
                            // listens): retry for a while, and keep it from subscribers, who
                            // would give up.
                            stats.watch_error();
                            tracing::debug!("watch error on a request that worked, retrying: {e}");
                            continue;
                        }
                        st.fatal = Some(item.clone());
                    }
                    Err(e) => {
                        stats.watch_error();
                        tracing::debug!("watch error (will retry): {e}");
                    }
                }
                // Sent under the lock, so a subscriber's copy of the store and its place in
                // the broadcast always line up.
                let _ = task_shared.tx.send(item);
            }
        })
        .abort_handle();
        Arc::new(Feed { shared, task })
    }

    /// Subscribes to the items about objects that `keep` selects (`Init`, `InitDone` and
    /// errors always pass). The current store comes first as a synthetic list (`Init`,
    /// `InitApply`…, `InitDone`), then any list in progress, so a late subscriber sees what
    /// an early one saw.
    #[must_use]
    pub fn subscribe(
        self: &Arc<Self>,
        keep: impl Fn(&K) -> bool + Send + Sync + 'static,
    ) -> Subscription<K> {
        let keep: Keep<K> = Arc::new(keep);
        let st = self.shared.lock();
        let rx = self.shared.tx.subscribe();
        let mut backlog = VecDeque::new();
        if let Some(f) = &st.fatal {
            backlog.push_back(f.clone());
        }
        catch_up(&st.snapshot, &*keep, &mut backlog);
        drop(st);
        Subscription {
            feed: self.clone(),
            rx,
            backlog,
            keep,
        }
    }

    /// Reads the store.
    pub fn read<R>(&self, f: impl FnOnce(&Snapshot<K>) -> R) -> R {
        f(&self.shared.lock().snapshot)
    }
}

type Keep<K> = Arc<dyn Fn(&K) -> bool + Send + Sync>;

fn catch_up<K: Resource + Clone>(
    snap: &Snapshot<K>,
    keep: &dyn Fn(&K) -> bool,
    out: &mut VecDeque<Item<K>>,
) {
    let ok = |e| Arc::new(Ok(e));
    let apply = |o: &K| keep(o).then(|| ok(watcher::Event::InitApply(o.clone())));
    if snap.is_synced() {
        out.push_back(ok(watcher::Event::Init));
        out.extend(snap.objects().filter_map(apply));
        out.push_back(ok(watcher::Event::InitDone));
    }
    if let Some(partial) = snap.listing() {
        out.push_back(ok(watcher::Event::Init));
        out.extend(partial.filter_map(apply));
    }
}

/// A subscriber's view of a [`Feed`]; holding it keeps the watch running.
pub struct Subscription<K> {
    feed: Arc<Feed<K>>,
    rx: broadcast::Receiver<Item<K>>,
    backlog: VecDeque<Item<K>>,
    keep: Keep<K>,
}

impl<K> Subscription<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    /// The next item. A subscriber that fell behind is resynchronised from the store, as
    /// after a relist (consumers already cope with relists).
    pub async fn next(&mut self) -> Item<K> {
        loop {
            if let Some(item) = self.backlog.pop_front() {
                return item;
            }
            match self.rx.recv().await {
                Ok(item) => {
                    let wanted = match &*item {
                        Ok(
                            watcher::Event::Apply(o)
                            | watcher::Event::InitApply(o)
                            | watcher::Event::Delete(o),
                        ) => (self.keep)(o),
                        _ => true,
                    };
                    if wanted {
                        return item;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "slow watch subscriber, resynchronising");
                    let st = self.feed.shared.lock();
                    catch_up(&st.snapshot, &*self.keep, &mut self.backlog);
                }
                // The feed's task never ends while a subscription holds the feed.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// The feed this subscription reads.
    #[must_use]
    pub fn feed(&self) -> &Arc<Feed<K>> {
        &self.feed
    }

    /// This subscription as a stream (for `select`).
    pub fn into_stream(self) -> BoxStream<'static, Item<K>> {
        futures::stream::unfold(self, |mut s| async move {
            let item = s.next().await;
            Some((item, s))
        })
        .boxed()
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
