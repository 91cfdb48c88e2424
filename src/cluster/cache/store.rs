//! One resource's objects in one namespace: an `Arc` store fed by a watch, indexed by keys,
//! that wakes the readers registered on a key when an object under that key changes.
//!
//! kube-runtime's `reflector` keeps such a store, but its subscriptions (`store_shared`) are
//! behind an unstable feature, drop Delete events and make the writer wait for the slowest
//! reader; and it has no index. Here the writer never waits: a change sets a permit on each
//! interested reader's [`Wakeup`] and moves on, and each reader reads the current objects
//! through the index when it runs (level-triggered, like a controller's work queue). An item
//! therefore costs O(its keys × the readers registered on them), however many readers the
//! store has.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cluster::watch::{self, FATAL_GRACE, Stats};
use crate::error::{Error, Op};

/// The index keys of one object (most have one or two).
pub(crate) type Keys = Vec<String>;

/// How a store keeps the objects `W` its watch sees: as what (`K`: the object trimmed of
/// fields no reader uses, or a summary of it), and indexed by which keys.
pub(crate) struct Stored<W, K> {
    pub keep: fn(W) -> K,
    pub keys: fn(&K) -> Keys,
    /// Forget an object that no reader's keys cover once it has been this long since it
    /// last arrived (`None`: keep every object while it exists). For Events, which the API
    /// server keeps for an hour: a long run would otherwise hold every Event of the namespace
    /// it has seen, however many of its lifecycles have ended.
    pub forget_unread_after: Option<Duration>,
}

/// A reader's wake-up signal. A change stores a permit, so a change that comes while the
/// reader is busy is not lost: its next [`Wakeup::wait`] returns at once.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    notify: Notify,
    /// How many times it was woken (for the fan-out tests and `--v` diagnostics).
    count: AtomicU64,
}

impl Wakeup {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Waits for the next change (or returns at once if one came since the last wait).
    pub(crate) async fn wait(&self) {
        self.notify.notified().await;
    }

    fn wake(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// How many times it was woken.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Keeps a reader registered on a key; dropping it unregisters.
#[must_use = "the registration ends when this is dropped"]
pub(crate) struct Registration(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// A stored object and the resourceVersion it was kept at.
struct Kept<K> {
    revision: u64,
    obj: Arc<K>,
    /// When it last arrived (listed or watched).
    arrived: Instant,
}

impl<K> Clone for Kept<K> {
    fn clone(&self) -> Self {
        Kept {
            revision: self.revision,
            obj: self.obj.clone(),
            arrived: self.arrived,
        }
    }
}

struct State<K> {
    /// The listed and watched objects, by name.
    objects: HashMap<String, Kept<K>>,
    /// Index key → names of the objects under it.
    index: HashMap<String, BTreeSet<String>>,
    /// A list in progress; the old view stays visible until it completes, so a reader never
    /// sees a half-listed state.
    listing: Option<HashMap<String, Kept<K>>>,
    /// The highest resourceVersion of the list in progress.
    listing_revision: u64,
    /// Completed lists (1 after the initial sync).
    lists: u64,
    /// The highest resourceVersion seen (listed or watched).
    revision: u64,
    /// The last error retrying cannot fix, until the next successful list.
    fatal: Option<Arc<watcher::Error>>,
    /// Index key → readers to wake when an object under it changes.
    readers: HashMap<String, Vec<Arc<Wakeup>>>,
    /// With [`Stored::forget_unread_after`]: names in the order they arrived, to look at
    /// once that time has passed (an object that arrived again since is looked at later).
    arrivals: VecDeque<(Instant, String)>,
}

/// A store of one resource (`W`, kept as `K`) in one namespace; its watch runs while the
/// `Arc<Store>` lives.
pub(crate) struct Store<W, K = W> {
    state: Mutex<State<K>>,
    stored: Stored<W, K>,
    /// Describes the watch in fatal errors.
    op: Op,
    /// Counts relists and wake-ups.
    stats: Stats,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl<W, K> Drop for Store<W, K> {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap_or_else(PoisonError::into_inner) {
            task.abort();
        }
    }
}

fn revision<K: Resource>(obj: &K) -> u64 {
    crate::names::revision(obj.meta().resource_version.as_deref()).unwrap_or(0)
}

impl<W, K> Store<W, K>
where
    W: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    /// An empty store with no watch: [`Store::apply`] feeds it (the tests do).
    pub(crate) fn new(stored: Stored<W, K>, op: Op, stats: Stats) -> Arc<Self> {
        Arc::new(Store {
            state: Mutex::new(State {
                objects: HashMap::new(),
                index: HashMap::new(),
                listing: None,
                listing_revision: 0,
                lists: 0,
                revision: 0,
                fatal: None,
                readers: HashMap::new(),
                arrivals: VecDeque::new(),
            }),
            stored,
            op,
            stats,
            task: Mutex::new(None),
        })
    }

    /// A store fed by a watch of `api` with `config`, in a background task that stops when
    /// the last `Arc` is dropped. Retried errors and relists are counted in `stats`; `op`
    /// names the resource in fatal errors.
    pub(crate) fn watch(
        api: Api<W>,
        config: watcher::Config,
        stored: Stored<W, K>,
        op: Op,
        stats: Stats,
    ) -> Arc<Self> {
        let store = Self::new(stored, op.clone(), stats.clone());
        let weak = Arc::downgrade(&store);
        let mut items = watch::stream(api, config);
        let task = tokio::spawn(async move {
            // Whether a list, and a watch, have succeeded; and since when fatal-looking
            // errors have come in a row.
            let (mut listed, mut watched) = (false, false);
            let mut failing_since: Option<tokio::time::Instant> = None;
            while let Some(item) = items.next().await {
                let Some(store) = weak.upgrade() else { return };
                match item {
                    Ok(ev) => {
                        match &ev {
                            watcher::Event::InitDone => listed = true,
                            watcher::Event::Apply(_) | watcher::Event::Delete(_) => watched = true,
                            _ => {}
                        }
                        if !matches!(ev, watcher::Event::Init) {
                            failing_since = None;
                        }
                        if store.apply(ev) {
                            stats.relist();
                        }
                    }
                    Err(e) if watch::fatal(&e, &op).is_some() => {
                        let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                        let worked_before = match &e {
                            watcher::Error::InitialListFailed(_) => listed,
                            watcher::Error::WatchStartFailed(_) => watched,
                            _ => false,
                        };
                        if worked_before && since.elapsed() < FATAL_GRACE {
                            // A 401/403/404 on a request that has worked is most likely an API
                            // server coming back (authorizers and CRD handlers sync after it
                            // listens): retry for a while, and keep it from readers, who
                            // would give up.
                            stats.watch_error();
                            tracing::debug!("watch error on a request that worked, retrying: {e}");
                            continue;
                        }
                        store.set_fatal(e);
                    }
                    Err(e) => {
                        stats.watch_error();
                        tracing::debug!("watch error (will retry): {e}");
                    }
                }
            }
        })
        .abort_handle();
        *store.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        store
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one watch event and wakes the readers of the keys it touched (all readers
    /// after a list). Returns whether it completed a relist (a list after the first).
    pub(crate) fn apply(&self, event: watcher::Event<W>) -> bool {
        let mut woken: Vec<Arc<Wakeup>> = Vec::new();
        let relisted = {
            let mut st = self.lock();
            let relisted = match event {
                watcher::Event::Init => {
                    st.listing = Some(HashMap::new());
                    st.listing_revision = 0;
                    false
                }
                watcher::Event::InitApply(obj) => {
                    let rv = revision(&obj);
                    st.listing_revision = st.listing_revision.max(rv);
                    let name = obj.meta().name.clone().unwrap_or_default();
                    // A relist brings back mostly unchanged objects: share what is stored
                    // rather than holding every object twice until the list completes.
                    let kept = match st.objects.get(&name) {
                        Some(old) if rv != 0 && old.revision == rv => old.clone(),
                        _ => Kept {
                            revision: rv,
                            obj: Arc::new((self.stored.keep)(obj)),
                            arrived: Instant::now(),
                        },
                    };
                    st.listing
                        .get_or_insert_with(HashMap::new)
                        .insert(name, kept);
                    false
                }
                watcher::Event::InitDone => {
                    let objects = st.listing.take().unwrap_or_default();
                    st.revision = st.revision.max(st.listing_revision);
                    let mut index: HashMap<String, BTreeSet<String>> = HashMap::new();
                    for (name, kept) in &objects {
                        for key in (self.stored.keys)(&kept.obj) {
                            index.entry(key).or_default().insert(name.clone());
                        }
                    }
                    if self.stored.forget_unread_after.is_some() {
                        let now = Instant::now();
                        st.arrivals = objects.keys().map(|n| (now, n.clone())).collect();
                    }
                    st.objects = objects;
                    st.index = index;
                    st.lists += 1;
                    st.fatal = None;
                    // Rare (the first list, a 410, a restarted watch): everyone re-reads.
                    woken.extend(st.readers.values().flatten().cloned());
                    st.lists > 1
                }
                watcher::Event::Apply(obj) => {
                    let rv = revision(&obj);
                    st.revision = st.revision.max(rv);
                    let name = obj.meta().name.clone().unwrap_or_default();
                    let kept = (self.stored.keep)(obj);
                    let keys = (self.stored.keys)(&kept);
                    let now = Instant::now();
                    let kept = Kept {
                        revision: rv,
                        obj: Arc::new(kept),
                        arrived: now,
                    };
                    if self.stored.forget_unread_after.is_some() {
                        st.arrivals.push_back((now, name.clone()));
                    }
                    let old = st.objects.insert(name.clone(), kept);
                    let old_keys = old.map(|o| (self.stored.keys)(&o.obj)).unwrap_or_default();
                    self.reindex(&mut st, &name, &old_keys, &keys, &mut woken);
                    false
                }
                watcher::Event::Delete(obj) => {
                    let name = obj.meta().name.clone().unwrap_or_default();
                    let old = st.objects.remove(&name);
                    let old_keys = match old {
                        Some(o) => (self.stored.keys)(&o.obj),
                        None => (self.stored.keys)(&(self.stored.keep)(obj)),
                    };
                    self.reindex(&mut st, &name, &old_keys, &[], &mut woken);
                    false
                }
            };
            self.forget_unread(&mut st);
            relisted
        };
        self.wake(&woken);
        relisted
    }

    /// With [`Stored::forget_unread_after`], removes the objects that arrived at least that
    /// long ago and that no registered reader's keys cover; those a reader covers are looked
    /// at again after another period. O(1) amortized per arrival; nobody is woken (nobody
    /// reads them).
    fn forget_unread(&self, st: &mut State<K>) {
        let Some(after) = self.stored.forget_unread_after else {
            return;
        };
        let now = Instant::now();
        let mut still_read = Vec::new();
        while let Some((at, _)) = st.arrivals.front() {
            if now.saturating_duration_since(*at) < after {
                break;
            }
            let Some((at, name)) = st.arrivals.pop_front() else {
                break;
            };
            let Some(kept) = st.objects.get(&name) else {
                continue;
            };
            if kept.arrived > at {
                continue; // it arrived again: its later entry decides
            }
            let keys = (self.stored.keys)(&kept.obj);
            if keys.iter().any(|k| st.readers.contains_key(k)) {
                still_read.push(name);
                continue;
            }
            st.objects.remove(&name);
            self.reindex(st, &name, &keys, &[], &mut Vec::new());
        }
        for name in still_read {
            if let Some(kept) = st.objects.get_mut(&name) {
                kept.arrived = now;
            }
            st.arrivals.push_back((now, name));
        }
    }

    /// Moves `name` from `old` keys to `new` ones and collects the readers of both.
    fn reindex(
        &self,
        st: &mut State<K>,
        name: &str,
        old: &[String],
        new: &[String],
        woken: &mut Vec<Arc<Wakeup>>,
    ) {
        for key in old.iter().filter(|k| !new.contains(k)) {
            if let Some(names) = st.index.get_mut(key) {
                names.remove(name);
                if names.is_empty() {
                    st.index.remove(key);
                }
            }
        }
        for key in new {
            st.index
                .entry(key.clone())
                .or_default()
                .insert(name.to_owned());
        }
        for key in old.iter().chain(new.iter().filter(|k| !old.contains(k))) {
            if let Some(readers) = st.readers.get(key) {
                woken.extend(readers.iter().cloned());
            }
        }
    }

    fn wake(&self, woken: &[Arc<Wakeup>]) {
        // A reader registered on two keys of one object is woken once.
        let mut done: Vec<*const Wakeup> = Vec::with_capacity(woken.len());
        for w in woken {
            let ptr = Arc::as_ptr(w);
            if !done.contains(&ptr) {
                done.push(ptr);
                w.wake();
                self.stats.wakeup();
            }
        }
    }

    fn set_fatal(&self, e: watcher::Error) {
        let woken: Vec<Arc<Wakeup>> = {
            let mut st = self.lock();
            st.fatal = Some(Arc::new(e));
            st.readers.values().flatten().cloned().collect()
        };
        self.wake(&woken);
    }

    /// Wakes `reader` whenever an object under `key` changes, after every list, and on a
    /// fatal error, until the returned registration is dropped. It is also woken once now,
    /// so its first wait returns and it reads what is already stored.
    pub(crate) fn register(self: &Arc<Self>, key: &str, reader: &Arc<Wakeup>) -> Registration {
        self.lock()
            .readers
            .entry(key.to_owned())
            .or_default()
            .push(reader.clone());
        reader.wake();
        let store: Weak<Self> = Arc::downgrade(self);
        let (key, reader) = (key.to_owned(), reader.clone());
        Registration(Some(Box::new(move || {
            let Some(store) = store.upgrade() else { return };
            let mut st = store.lock();
            if let Some(readers) = st.readers.get_mut(&key) {
                if let Some(i) = readers.iter().position(|r| Arc::ptr_eq(r, &reader)) {
                    readers.swap_remove(i);
                }
                if readers.is_empty() {
                    st.readers.remove(&key);
                }
            }
        })))
    }

    /// The objects under `key`, ordered by name.
    pub(crate) fn indexed(&self, key: &str) -> Vec<Arc<K>> {
        let st = self.lock();
        st.index
            .get(key)
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| st.objects.get(n).map(|k| k.obj.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The object named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<K>> {
        self.lock().objects.get(name).map(|k| k.obj.clone())
    }

    /// Whether a list has completed.
    pub(crate) fn is_synced(&self) -> bool {
        self.lock().lists > 0
    }

    /// The highest resourceVersion seen, listed or watched (0 before the first list).
    pub(crate) fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The error retrying cannot fix, if the watch has one now; named as `op` says (its verb is
    /// replaced by `list` or `watch`).
    pub(crate) fn fatal(&self, op: Option<&Op>) -> Option<Error> {
        let e = self.lock().fatal.clone()?;
        watch::fatal(&e, op.unwrap_or(&self.op))
    }

    /// How many objects are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// Fails the store as its watch task does on an error retrying cannot fix.
    #[cfg(test)]
    pub(crate) fn fail(&self, e: watcher::Error) {
        self.set_fatal(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    /// Indexes a ConfigMap by its `key` label.
    fn by_label(c: &ConfigMap) -> Keys {
        c.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("key"))
            .map(|k| vec![k.clone()])
            .unwrap_or_default()
    }

    fn cm(name: &str, key: &str, rv: u32) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.resource_version = Some(rv.to_string());
        c.metadata.labels = Some([("key".to_owned(), key.to_owned())].into());
        c
    }

    fn store_counting(stats: &Stats) -> Arc<Store<ConfigMap>> {
        let op = Op::other("watch", "configmaps", "ns");
        let stored = Stored {
            keep: |c| c,
            keys: by_label,
            forget_unread_after: None,
        };
        let s = Store::new(stored, op, stats.clone());
        s.apply(watcher::Event::Init);
        s.apply(watcher::Event::InitDone);
        s
    }

    fn store() -> Arc<Store<ConfigMap>> {
        store_counting(&Stats::default())
    }

    const UNREAD: Duration = Duration::from_secs(60);

    /// A listed store that forgets what no reader covers [`UNREAD`] after it arrived.
    fn forgetting_store() -> Arc<Store<ConfigMap>> {
        let stored = Stored {
            keep: |c| c,
            keys: by_label,
            forget_unread_after: Some(UNREAD),
        };
        let s = Store::new(
            stored,
            Op::other("watch", "configmaps", "ns"),
            Stats::default(),
        );
        s.apply(watcher::Event::Init);
        s.apply(watcher::Event::InitDone);
        s
    }

    async fn later(secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_no_reader_covers_is_forgotten_once_its_time_has_passed() {
        let s = forgetting_store();
        s.apply(watcher::Event::Apply(cm("a", "k1", 2)));
        later(59).await;
        s.apply(watcher::Event::Apply(cm("b", "k2", 3)));
        assert!(s.get("a").is_some(), "not yet");
        later(2).await;
        s.apply(watcher::Event::Apply(cm("c", "k3", 4)));
        assert!(s.get("a").is_none());
        assert!(s.indexed("k1").is_empty(), "and out of the index");
        assert_eq!(s.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_a_reader_covers_stays_until_its_reader_is_gone() {
        let s = forgetting_store();
        let reader = Wakeup::new();
        let reg = s.register("k1", &reader);
        s.apply(watcher::Event::Apply(cm("a", "k1", 2)));
        later(61).await;
        s.apply(watcher::Event::Apply(cm("b", "k2", 3)));
        assert!(s.get("a").is_some(), "its reader still reads it");
        drop(reg);
        later(61).await;
        s.apply(watcher::Event::Apply(cm("c", "k3", 4)));
        assert!(s.get("a").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_that_arrived_again_counts_from_its_latest_arrival() {
        let s = forgetting_store();
        s.apply(watcher::Event::Apply(cm("a", "k1", 2)));
        later(40).await;
        s.apply(watcher::Event::Apply(cm("a", "k1", 3))); // an Event's count went up
        later(30).await;
        s.apply(watcher::Event::Apply(cm("b", "k2", 4)));
        assert!(
            s.get("a").is_some(),
            "70 s after its first arrival, 30 after its last"
        );
        later(31).await;
        s.apply(watcher::Event::Apply(cm("c", "k3", 5)));
        assert!(s.get("a").is_none());
    }

    #[test]
    fn a_store_that_keeps_everything_forgets_nothing() {
        let s = store();
        s.apply(watcher::Event::Apply(cm("a", "k1", 2)));
        assert!(
            s.lock().arrivals.is_empty(),
            "no bookkeeping when not asked"
        );
    }

    #[test]
    fn an_item_about_one_key_wakes_only_the_reader_of_that_key_among_200() {
        let stats = Stats::default();
        let s = store_counting(&stats);
        let readers: Vec<Arc<Wakeup>> = (0..200).map(|_| Wakeup::new()).collect();
        let _regs: Vec<Registration> = readers
            .iter()
            .enumerate()
            .map(|(i, r)| s.register(&format!("k{i}"), r))
            .collect();
        let before: Vec<u64> = readers.iter().map(|r| r.count()).collect();
        let sent = stats.snapshot().wakeups;

        s.apply(watcher::Event::Apply(cm("a", "k7", 2)));
        s.apply(watcher::Event::Apply(cm("a", "k7", 3)));
        s.apply(watcher::Event::Delete(cm("a", "k7", 4)));

        let woken: Vec<usize> = (0..200)
            .filter(|&i| readers[i].count() != before[i])
            .collect();
        assert_eq!(woken, vec![7]);
        assert_eq!(readers[7].count() - before[7], 3);
        assert_eq!(
            stats.snapshot().wakeups - sent,
            3,
            "one wake-up per item, not one per reader"
        );
    }

    #[test]
    fn a_relist_shares_the_objects_it_brings_back_unchanged() {
        let s = store();
        let relist = |items: Vec<ConfigMap>| {
            s.apply(watcher::Event::Init);
            for c in items {
                s.apply(watcher::Event::InitApply(c));
            }
            s.apply(watcher::Event::InitDone);
        };
        relist(vec![cm("a", "k", 2), cm("b", "k", 3)]);
        let (a, b) = (s.get("a").unwrap(), s.get("b").unwrap());
        relist(vec![cm("a", "k", 2), cm("b", "k", 5)]);
        assert!(
            Arc::ptr_eq(&a, &s.get("a").unwrap()),
            "unchanged: the same Arc"
        );
        let b2 = s.get("b").unwrap();
        assert!(!Arc::ptr_eq(&b, &b2), "changed: the new version");
        assert_eq!(b2.metadata.resource_version.as_deref(), Some("5"));
    }

    #[test]
    fn moving_an_object_to_another_key_wakes_the_readers_of_both() {
        let s = store();
        let (a, b) = (Wakeup::new(), Wakeup::new());
        let _ra = s.register("ka", &a);
        let _rb = s.register("kb", &b);
        let (a0, b0) = (a.count(), b.count());
        s.apply(watcher::Event::Apply(cm("x", "ka", 2)));
        assert_eq!((a.count() - a0, b.count() - b0), (1, 0));
        s.apply(watcher::Event::Apply(cm("x", "kb", 3)));
        assert_eq!((a.count() - a0, b.count() - b0), (2, 1));
        assert!(s.indexed("ka").is_empty());
        assert_eq!(s.indexed("kb").len(), 1);
    }

    #[test]
    fn a_dropped_registration_is_woken_no_more() {
        let s = store();
        let r = Wakeup::new();
        let reg = s.register("k", &r);
        let n = r.count();
        drop(reg);
        s.apply(watcher::Event::Apply(cm("x", "k", 2)));
        assert_eq!(r.count(), n);
        assert!(
            s.lock().readers.is_empty(),
            "nothing is left of the registration"
        );
    }

    #[test]
    fn a_relist_replaces_the_view_atomically_and_wakes_everyone() {
        let s = store();
        s.apply(watcher::Event::Apply(cm("a", "k", 5)));
        let r = Wakeup::new();
        let _reg = s.register("other", &r);
        let n = r.count();

        assert!(!s.apply(watcher::Event::Init));
        s.apply(watcher::Event::InitApply(cm("b", "k", 9)));
        assert!(
            s.get("a").is_some(),
            "the old view holds until the list completes"
        );
        assert!(s.apply(watcher::Event::InitDone), "a relist");
        assert!(s.get("a").is_none());
        assert_eq!(s.indexed("k").len(), 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.revision(), 9);
        assert_eq!(r.count(), n + 1);
    }
}
