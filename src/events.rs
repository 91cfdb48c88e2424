//! Following the Events about a SeldonDeployment and its children.
//!
//! Events about child Deployments, ReplicaSets and Pods point at those objects, not at the
//! SeldonDeployment, and carry no labels. The namespace cache (crate-private) files each Event under
//! the SeldonDeployment it is about (by UID; by name when the Event has none) or under the
//! Deployment its object belongs to (a ReplicaSet is `<deployment>-<hash>`, its pods
//! `<replicaset>-<suffix>`). A follower reads the Events filed under its SeldonDeployment, the
//! Deployment names predicted from the manifest, and the Deployments the SeldonDeployment owns
//! (learnt from the cache's owner index, so hashed names are found too), and is woken only
//! when one of those changes.
//!
//! Events older than `since` (server clock: the object's creation time, or the API server's
//! `Date` when following "from now on") are dropped, so a namesake's history is not replayed.
//! Relists re-deliver everything; an Event is emitted again only when its resourceVersion
//! changed (its count went up).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::jiff::Timestamp;

use serde::Serialize;

use crate::cluster::cache::{EventSummary, NamespaceCache, ObjectWatch, ReaderNeeds};
use crate::error::Result;
use crate::ops::Deployer;

/// One Event, flattened for printing and reports.
///
/// # Examples
///
/// ```
/// use seldon_deploy::events::EventRecord;
///
/// let e = EventRecord {
///     time: None,
///     type_: "Warning".into(),
///     reason: "FailedScheduling".into(),
///     source: "default-scheduler".into(),
///     object: "Pod/iris-default-0-classifier-x2f4q".into(),
///     message: "0/1 nodes are available".into(),
///     count: 3,
///     after_delete: false,
/// };
/// assert_eq!(
///     e.to_string(),
///     "Warning FailedScheduling default-scheduler Pod/iris-default-0-classifier-x2f4q: \
///      0/1 nodes are available (x3)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    /// Last time it happened (RFC 3339), if the Event says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Reason, e.g. `CreateDeployment`, `ScalingReplicaSet`, `FailedScheduling`.
    pub reason: String,
    /// Reporting component, e.g. `seldon-controller-manager`, `deployment-controller`.
    pub source: String,
    /// Involved object as `Kind/name`.
    pub object: String,
    /// Message.
    pub message: String,
    /// How many times it happened (aggregated by the recorder).
    pub count: i32,
    /// It arrived after the run had seen its SeldonDeployment gone: it is about a child the
    /// operator recreated after the delete (see `run`), not a step of the lifecycle.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub after_delete: bool,
}

impl EventRecord {
    fn from_summary(e: &EventSummary) -> Self {
        EventRecord {
            time: e.last_seen.map(|t| t.to_string()),
            type_: e.type_.clone(),
            reason: e.reason.clone(),
            source: e.source.clone(),
            object: format!(
                "{}/{}",
                e.involved_kind.as_deref().unwrap_or("?"),
                e.involved_name.as_deref().unwrap_or("?")
            ),
            message: e.message.clone(),
            count: e.count,
            after_delete: false,
        }
    }
}

impl std::fmt::Display for EventRecord {
    /// `Warning FailedScheduling default-scheduler Pod/x-1: 0/1 nodes are available (x3)`,
    /// preceded by `after the delete: ` when [`EventRecord::after_delete`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.after_delete {
            f.write_str("after the delete: ")?;
        }
        write!(
            f,
            "{} {} {} {}: {}",
            self.type_, self.reason, self.source, self.object, self.message
        )?;
        if self.count > 1 {
            write!(f, " (x{})", self.count)?;
        }
        Ok(())
    }
}

/// Which Events to follow.
///
/// # Examples
///
/// The filter for an object this run just created, from its manifest and [`Handle`](crate::Handle):
///
/// ```
/// use seldon_deploy::{Handle, events::EventFilter, model::manifest};
///
/// let m = &manifest::load("examples/iris-v1alpha2.yaml")?[0];
/// let h = Handle { namespace: "seldon".into(), name: m.name.clone(), uid: "0b5e".into(),
///                  created_at: Some("2026-01-01T00:00:00Z".into()) };
/// let filter = EventFilter {
///     name: h.name.clone(),
///     uid: h.uid.clone(),
///     since: h.created_at.as_deref().and_then(|t| t.parse().ok()),
///     replay_existing: true,
///     deployment_names: m.components.iter().filter_map(|c| c.deployment_name.clone()).collect(),
/// };
/// assert_eq!(filter.deployment_names, ["sklearn-default-0-classifier"]);
/// assert!(filter.since.is_some());
/// # Ok::<(), seldon_deploy::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// SeldonDeployment name.
    pub name: String,
    /// Its UID.
    pub uid: String,
    /// Drop Events last seen before this instant (use the object's creation time).
    pub since: Option<Timestamp>,
    /// Emit matching Events that already exist when the watch starts (true right after a
    /// create, so nothing between the create and the watch is lost; false to show only new ones).
    pub replay_existing: bool,
    /// Child Deployment names predicted from the manifest, known before the operator acts.
    pub deployment_names: Vec<String>,
}

/// Finds the Events about one SeldonDeployment and its children in the cache, in order,
/// each version once.
struct Follower {
    watch: ObjectWatch,
    filter: EventFilter,
    /// Events up to this resourceVersion were there when the follow began: hidden unless
    /// [`EventFilter::replay_existing`]. Set once the Event store has listed.
    hidden_up_to: Option<u64>,
    /// uid → resourceVersion of the Events emitted, to emit each version once (a relist
    /// delivers them all again). Only this SeldonDeployment's Events go in, so a follower's
    /// memory does not grow with the namespace.
    seen: HashMap<String, String>,
    out: VecDeque<EventRecord>,
    failed: bool,
    /// Told `true` once the Event store has listed (see [`follow_in_telling_listed`]).
    listed: Option<tokio::sync::watch::Sender<bool>>,
}

impl Follower {
    fn new(mut watch: ObjectWatch, filter: EventFilter) -> Self {
        for name in &filter.deployment_names {
            watch.follow_deployment_events(name);
        }
        Follower {
            watch,
            filter,
            hidden_up_to: None,
            seen: HashMap::new(),
            out: VecDeque::new(),
            failed: false,
            listed: None,
        }
    }

    /// Queues the Events not emitted yet, oldest version first. Reads only the Events filed
    /// under this SeldonDeployment and its Deployments (learnt from the owner index, so
    /// hashed names the manifest could not predict are found too).
    fn collect(&mut self) {
        if !self.watch.events_synced() {
            return;
        }
        if let Some(listed) = &self.listed {
            listed.send_if_modified(|l| !std::mem::replace(l, true));
        }
        let hidden = *self.hidden_up_to.get_or_insert_with(|| {
            if self.filter.replay_existing {
                0
            } else {
                self.watch.events_revision()
            }
        });
        for d in self.watch.deployments() {
            if let Some(name) = &d.metadata.name {
                self.watch.follow_deployment_events(name);
            }
        }
        let mut fresh: Vec<(u64, Arc<EventSummary>)> = self
            .watch
            .events()
            .into_iter()
            .filter_map(|e| {
                let rv = e.revision();
                let new = rv > hidden
                    && !self.is_before_since(&e)
                    && self.seen.get(&e.uid) != Some(&e.resource_version);
                new.then_some((rv, e))
            })
            .collect();
        fresh.sort_by_key(|(rv, _)| *rv);
        for (_, e) in fresh {
            self.seen.insert(e.uid.clone(), e.resource_version.clone());
            self.out.push_back(EventRecord::from_summary(&e));
        }
    }

    fn is_before_since(&self, e: &EventSummary) -> bool {
        matches!((self.filter.since, e.last_seen), (Some(since), Some(at)) if at < since)
    }
}

/// Follows the Events selected by `filter` in the deployer's namespace, forever (drop the
/// stream to stop). It reads through the deployer's watches: shared with its waits when the
/// deployer shares them ([`Deployer::with_shared_watches`]), its own otherwise; their
/// counters are in [`Deployer::watch_stats`].
///
/// Yields an `Err` (and then ends) only for errors retrying cannot fix, such as a 403 on
/// listing or watching Events; the message names the verb, resource and namespace.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(client: kube::Client) {
/// use futures::StreamExt;
/// use seldon_deploy::Deployer;
/// use seldon_deploy::events::{follow, EventFilter};
///
/// let deployer = Deployer::new(client, "seldon");
/// let filter = EventFilter { name: "iris".into(), uid: "…".into(), ..Default::default() };
/// let mut events = follow(&deployer, filter);
/// while let Some(Ok(e)) = events.next().await {
///     println!("{e}");
/// }
/// # }
/// ```
pub fn follow(deployer: &Deployer, filter: EventFilter) -> BoxStream<'static, Result<EventRecord>> {
    follow_in(deployer.cache(), filter)
}

/// As [`follow`], reading `cache` (shared with other followers and waits when the cache is
/// shared; see [`crate::cluster::cache`]).
pub(crate) fn follow_in(
    cache: &NamespaceCache,
    filter: EventFilter,
) -> BoxStream<'static, Result<EventRecord>> {
    follow_in_telling_listed(cache, filter).0
}

/// As [`follow_in`], with a receiver told `true` once the Event store has listed (so "no
/// Event yet" means none), or closed when the stream has ended (e.g. on a 403): a run's
/// listening after its last phase waits for one of the two.
pub(crate) fn follow_in_telling_listed(
    cache: &NamespaceCache,
    filter: EventFilter,
) -> (
    BoxStream<'static, Result<EventRecord>>,
    tokio::sync::watch::Receiver<bool>,
) {
    let parts = ReaderNeeds {
        events: true,
        ..ReaderNeeds::default()
    };
    let watch = cache.watch_object(&filter.name, &filter.uid, parts);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut follower = Follower::new(watch, filter);
    follower.listed = Some(tx);
    (follow_watch(follower), rx)
}

fn follow_watch(follower: Follower) -> BoxStream<'static, Result<EventRecord>> {
    stream::unfold(follower, |mut f| async move {
        loop {
            if let Some(r) = f.out.pop_front() {
                return Some((Ok(r), f));
            }
            if f.failed {
                return None;
            }
            let changed = f.watch.changed().await;
            if let Err(e) = changed.and_then(|()| f.watch.events_fatal().map_or(Ok(()), Err)) {
                f.failed = true;
                return Some((Err(e), f));
            }
            f.collect();
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::cache::WatchedEvent;
    use serde_json::json;

    fn event(kind: &str, name: &str, uid: &str) -> EventSummary {
        EventSummary::from(
            serde_json::from_value::<WatchedEvent>(json!({
                "metadata": {"name": "e", "uid": "e1", "resourceVersion": "1"},
                "involvedObject": {"kind": kind, "name": name, "uid": uid},
                "reason": "R", "message": "m", "type": "Normal", "count": 3,
                "source": {"component": "deployment-controller"},
                "lastTimestamp": "2026-01-01T00:00:10Z"
            }))
            .unwrap(),
        )
    }

    #[test]
    fn record_formatting() {
        let r = EventRecord::from_summary(&event("Pod", "p-1", ""));
        assert_eq!(
            r.to_string(),
            "Normal R deployment-controller Pod/p-1: m (x3)"
        );
        assert_eq!(r.time.as_deref(), Some("2026-01-01T00:00:10Z"));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["type"], "Normal");
    }

    // --- The follower: relists, history, hashed names, memory ----------------------------

    use crate::cluster::cache::{HandFedStores, WatchedDeployment};
    use kube::runtime::watcher;

    const SINCE: &str = "2026-01-01T00:00:00Z";
    const T: &str = "2026-01-01T00:00:10Z";

    /// An Event `id` (its uid) at resourceVersion `rv`, last seen at `at`.
    fn ev(kind: &str, name: &str, id: &str, rv: u32, at: &str) -> WatchedEvent {
        serde_json::from_value(json!({
            "metadata": {"name": id, "uid": id, "resourceVersion": rv.to_string()},
            "involvedObject": {"kind": kind, "name": name},
            "reason": "R", "message": id, "type": "Normal",
            "source": {"component": "c"}, "lastTimestamp": at
        }))
        .unwrap()
    }

    /// A Deployment `name` owned by the SeldonDeployment with `owner_uid`.
    fn dep(name: &str, owner_uid: &str) -> WatchedDeployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("{name}-uid"), "resourceVersion": "1",
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1",
                    "kind": "SeldonDeployment", "name": "x", "uid": owner_uid}]},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap()
    }

    fn follower(stores: &HandFedStores, since: Option<&str>, replay_existing: bool) -> Follower {
        Follower::new(
            stores.watch_object("iris", "sdep-uid"),
            EventFilter {
                name: "iris".into(),
                uid: "sdep-uid".into(),
                since: since.map(|t| t.parse().unwrap()),
                replay_existing,
                deployment_names: vec!["iris-default-0-classifier".into()],
            },
        )
    }

    /// Delivers `events` as one (re)list.
    fn list<'a>(stores: &HandFedStores, events: impl IntoIterator<Item = &'a WatchedEvent>) {
        stores.events.apply(watcher::Event::Init);
        for e in events {
            stores.events.apply(watcher::Event::InitApply(e.clone()));
        }
        stores.events.apply(watcher::Event::InitDone);
    }

    fn shown(f: &mut Follower) -> Vec<String> {
        f.collect();
        f.out.drain(..).map(|r| r.message).collect()
    }

    #[test]
    fn a_relist_repeats_nothing_but_a_recurring_event_shows_again() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, Some(SINCE), true);
        let created = ev("SeldonDeployment", "iris", "created", 1, T);
        let scheduled = ev("Pod", "iris-default-0-classifier-5d8f-x", "scheduled", 2, T);
        list(&stores, [&created, &scheduled]);
        assert_eq!(shown(&mut f), ["created", "scheduled"]);
        // The watch dropped and was relisted: the same versions come back.
        list(&stores, [&created, &scheduled]);
        assert!(shown(&mut f).is_empty());
        // The same Event, counted again by its controller: a new version.
        let again = ev("SeldonDeployment", "iris", "created", 7, T);
        stores.events.apply(watcher::Event::Apply(again));
        assert_eq!(shown(&mut f), ["created"]);
    }

    #[test]
    fn history_from_before_the_run_is_not_shown() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, Some(SINCE), true);
        // A namesake's Events (no UID on the involved object), older than the object.
        let old = ev("SeldonDeployment", "iris", "old", 1, "2025-12-31T23:59:59Z");
        list(&stores, [&old]);
        assert!(shown(&mut f).is_empty());
        list(&stores, [&old]);
        assert!(shown(&mut f).is_empty());
    }

    #[test]
    fn without_replay_existing_events_stay_hidden_after_a_relist() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, None, false);
        let before = ev("SeldonDeployment", "iris", "before", 1, T);
        list(&stores, [&before]);
        assert!(shown(&mut f).is_empty());
        list(&stores, [&before]);
        assert!(shown(&mut f).is_empty());
        let new = ev("SeldonDeployment", "iris", "new", 3, T);
        stores.events.apply(watcher::Event::Apply(new));
        assert_eq!(shown(&mut f), ["new"]);
    }

    #[test]
    fn events_of_pods_whose_names_kubernetes_cut_show_once() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, Some(SINCE), true);
        // Deployments of 57 and 70 characters: their pods' generated names (58 + 5) are cut
        // right after `<deployment>-`, and inside the name.
        let exact = format!("{}-default-0-classifier", "e".repeat(36));
        let long = format!("{}-default-0-classifier", "l".repeat(49));
        assert_eq!((exact.len(), long.len()), (57, 70));
        for d in [&exact, &long] {
            stores
                .deployments
                .apply(watcher::Event::Apply(dep(d, "sdep-uid")));
        }
        let p1 = ev("Pod", &format!("{exact}-abcde"), "exact", 5, T);
        let p2 = ev("Pod", &format!("{}abcde", &long[..58]), "long", 6, T);
        list(&stores, [&p1, &p2]);
        assert_eq!(shown(&mut f), ["exact", "long"]);
    }

    #[test]
    fn a_pod_event_of_an_unpredicted_hashed_deployment_shows_once_that_deployment_is_ours() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, Some(SINCE), true);
        // The operator named the Deployment itself (a long name is hashed): not predicted.
        let pod = ev("Pod", "seldon-0f9a-6c7d-x", "pod", 4, T);
        list(&stores, [&pod]);
        assert!(shown(&mut f).is_empty());
        stores
            .deployments
            .apply(watcher::Event::Apply(dep("seldon-0f9a", "sdep-uid")));
        assert_eq!(shown(&mut f), ["pod"]);
        list(&stores, [&pod]);
        assert!(shown(&mut f).is_empty());
    }

    #[test]
    fn a_busy_namespace_neither_wakes_nor_grows_a_follower() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, Some(SINCE), true);
        list(&stores, []);
        assert!(shown(&mut f).is_empty());
        let woken = f.watch.wakeups();
        // Thousands of other SeldonDeployments' Deployments and Events, plain and hashed.
        for i in 0..5000_u32 {
            let plain = format!("other-{i}-default-0-c");
            let hashed = format!("seldon-{i:032x}");
            stores
                .deployments
                .apply(watcher::Event::Apply(dep(&plain, "other")));
            stores
                .deployments
                .apply(watcher::Event::Apply(dep(&hashed, "other")));
            for (name, id) in [(&plain, "o"), (&hashed, "h")] {
                let e = ev(
                    "Pod",
                    &format!("{name}-5d-x"),
                    &format!("{id}{i}"),
                    10 + i,
                    T,
                );
                stores.events.apply(watcher::Event::Apply(e));
            }
        }
        assert_eq!(f.watch.wakeups(), woken, "woken by others' objects");
        assert!(shown(&mut f).is_empty());
        assert!(f.seen.is_empty(), "{} remembered", f.seen.len());
        // Ours still shows, among them.
        stores.events.apply(watcher::Event::Apply(ev(
            "Pod",
            "iris-default-0-classifier-5d-x",
            "ours",
            20_000,
            T,
        )));
        assert_eq!(f.watch.wakeups(), woken + 1);
        assert_eq!(shown(&mut f), ["ours"]);
    }

    #[test]
    fn an_event_of_a_deployment_already_stored_as_ours_shows_at_once() {
        let stores = HandFedStores::new();
        stores
            .deployments
            .apply(watcher::Event::Apply(dep("seldon-0f9a", "sdep-uid")));
        let mut f = follower(&stores, Some(SINCE), true);
        list(&stores, []);
        assert!(shown(&mut f).is_empty());
        let rs = ev("ReplicaSet", "seldon-0f9a-6c7d", "rs", 4, T);
        stores.events.apply(watcher::Event::Apply(rs));
        assert_eq!(shown(&mut f), ["rs"]);
    }

    #[test]
    fn events_show_in_resource_version_order_across_objects() {
        let stores = HandFedStores::new();
        let mut f = follower(&stores, Some(SINCE), true);
        let a = ev("Pod", "iris-default-0-classifier-5d-x", "pod", 3, T);
        let b = ev("SeldonDeployment", "iris", "sdep", 2, T);
        let c = ev("Deployment", "iris-default-0-classifier", "dep", 4, T);
        list(&stores, [&a, &b, &c]);
        assert_eq!(shown(&mut f), ["sdep", "pod", "dep"]);
    }
}
