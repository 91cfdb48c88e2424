//! Following the Events about a SeldonDeployment and its children.
//!
//! Events about child Deployments, ReplicaSets and Pods point at those objects, not at the
//! SeldonDeployment, and carry no labels. So one namespace-wide Event watch runs next to a
//! watch of the namespace's Seldon Deployments, and an Event is kept when its involved object
//! is:
//! - the SeldonDeployment (by UID; by name when the event has no UID);
//! - a Deployment owned by it (by UID or name), or one of the Deployment names predicted from
//!   the manifest;
//! - a ReplicaSet or Pod whose name starts with `<one of those Deployment names>-`.
//!
//! Events older than `since` (server clock: the object's creation time, or the API server's
//! `Date` when following "from now on") are dropped, so a namesake's history is not replayed.
//! Relists re-deliver everything; an Event is emitted again only when its resourceVersion
//! changed (its count went up).
//!
//! Candidates, Events about a ReplicaSet or Pod of a Deployment not known yet, are held until it
//! appears. Only names the operator could have given one of ours are held (`<sdep>-…`, or the
//! hashed `seldon-…`); a candidate whose Deployment is already in the shared store as someone
//! else's is dropped at once. The two name shapes are held in separate bounded queues, so a busy
//! namespace's hashed names cannot push out our own `<sdep>-…` candidates, and a follower's
//! memory does not grow with the namespace.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::watcher;
use serde::Serialize;

use crate::error::{Error, Op, Result};
use crate::readiness::owned_by;
use crate::shared::Hub;
use crate::watch::{self, Item, Stats};

/// Candidates kept per name shape (`<sdep>-…` and `seldon-…`) while waiting to learn about
/// their Deployment: at most twice this many per follower.
const MAX_PENDING: usize = 256;

/// The prefix of the operator's hashed Deployment names (`seldon-<md5 hex>`).
const HASHED_PREFIX: &str = "seldon-";

/// One Event, flattened for printing and reports.
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
}

impl EventRecord {
    fn from_event(e: &Event) -> Self {
        let time = last_seen(e);
        let source = e
            .reporting_component
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
            .unwrap_or_default();
        let count = e
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(e.count)
            .unwrap_or(1);
        EventRecord {
            time: time.map(|t| t.to_string()),
            type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
            reason: e.reason.clone().unwrap_or_default(),
            source,
            object: format!(
                "{}/{}",
                e.involved_object.kind.as_deref().unwrap_or("?"),
                e.involved_object.name.as_deref().unwrap_or("?")
            ),
            message: e.message.clone().unwrap_or_default().trim_end().to_owned(),
            count,
        }
    }
}

impl std::fmt::Display for EventRecord {
    /// `Warning FailedScheduling default-scheduler Pod/x-1: 0/1 nodes are available (x3)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// The relevance rule, separate from the watching so it can be tested.
#[derive(Debug, Clone, Default)]
pub struct Relevance {
    name: String,
    uid: String,
    deployment_names: BTreeSet<String>,
    deployment_uids: BTreeSet<String>,
}

impl Relevance {
    /// A rule for the SeldonDeployment `name`/`uid` and predicted child names.
    #[must_use]
    pub fn new(filter: &EventFilter) -> Self {
        Relevance {
            name: filter.name.clone(),
            uid: filter.uid.clone(),
            deployment_names: filter.deployment_names.iter().cloned().collect(),
            deployment_uids: BTreeSet::new(),
        }
    }

    /// Records a Deployment if it is owned by the SeldonDeployment; returns whether it was new.
    pub fn learn(&mut self, d: &Deployment) -> bool {
        if !owned_by(d, &self.uid) {
            return false;
        }
        let mut new = false;
        if let Some(n) = &d.metadata.name {
            new |= self.deployment_names.insert(n.clone());
        }
        if let Some(u) = &d.metadata.uid {
            new |= self.deployment_uids.insert(u.clone());
        }
        new
    }

    /// Whether the Event is about the SeldonDeployment or one of its children.
    #[must_use]
    pub fn matches(&self, e: &Event) -> bool {
        let io = &e.involved_object;
        let name = io.name.as_deref().unwrap_or_default();
        let uid = io.uid.as_deref().unwrap_or_default();
        match io.kind.as_deref().unwrap_or_default() {
            "SeldonDeployment" => uid == self.uid || (uid.is_empty() && name == self.name),
            "Deployment" => {
                self.deployment_uids.contains(uid) || self.deployment_names.contains(name)
            }
            "ReplicaSet" | "Pod" => self.deployment_names.iter().any(|d| {
                name.len() > d.len()
                    && name.starts_with(d.as_str())
                    && name.as_bytes()[d.len()] == b'-'
            }),
            _ => false,
        }
    }

    /// Whether the Event could match once more Deployments are known: which queue it waits
    /// in, or `None` when no Deployment of ours can have that name (the operator names them
    /// `<sdep>-…` or `seldon-<hash>`, so others' Events are never held).
    fn candidate_tier(&self, e: &Event) -> Option<Tier> {
        if !matches!(
            e.involved_object.kind.as_deref(),
            Some("Deployment" | "ReplicaSet" | "Pod")
        ) {
            return None;
        }
        let name = e.involved_object.name.as_deref().unwrap_or_default();
        if name.len() > self.name.len()
            && name.starts_with(self.name.as_str())
            && name.as_bytes()[self.name.len()] == b'-'
        {
            Some(Tier::Named)
        } else if name.starts_with(HASHED_PREFIX) {
            Some(Tier::Hashed)
        } else {
            None
        }
    }
}

/// The two shapes of a Deployment name the operator gives, each with its own pending queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// `<sdep>-<predictor>-…`: only objects sharing our name's prefix compete.
    Named,
    /// `seldon-<hash>` (names over 63 characters): every hashed object of the namespace
    /// competes.
    Hashed,
}

/// Looks a Deployment up by name in the shared store (the follower keeps no copy of it): is it
/// owned by the SeldonDeployment with the given UID? Only ours are copied out.
pub(crate) type Lookup = Arc<dyn Fn(&str, &str) -> Option<Known> + Send + Sync>;

/// A Deployment found by a [`Lookup`].
pub(crate) enum Known {
    /// Ours: learn it.
    Ours(Box<Deployment>),
    /// Someone else's.
    Theirs,
}

/// What a [`Lookup`] answers for `d`, the store's Deployment of that name (if any).
fn known(d: Option<&Deployment>, uid: &str) -> Option<Known> {
    d.map(|d| {
        if owned_by(d, uid) {
            Known::Ours(Box::new(d.clone()))
        } else {
            Known::Theirs
        }
    })
}

/// The Deployment names `name` (an involved object's) could belong to, longest first:
/// `a-b-c` gives `a-b-c`, `a-b`, `a`.
fn name_prefixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::once(name).chain(name.rmatch_indices('-').map(move |(i, _)| &name[..i]))
}

fn last_seen(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| {
            e.series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

enum Input {
    Event(Item<Event>),
    Deployment(Item<Deployment>),
}

struct Follower {
    input: BoxStream<'static, Input>,
    filter: EventFilter,
    relevance: Relevance,
    /// uid → resourceVersion of the Events emitted (or deliberately skipped), to drop repeats
    /// after a relist. Only this lifecycle's Events go in, so a follower stays small in a busy
    /// namespace; others are dropped again by relevance or by `since`.
    seen: HashMap<String, String>,
    /// Candidates (the shared watch items themselves, not copies), oldest first, per tier:
    /// [`Tier::Named`], then [`Tier::Hashed`].
    pending: [VecDeque<Item<Event>>; 2],
    /// The shared Deployment store, to tell at once whether a candidate's Deployment is ours.
    lookup: Option<Lookup>,
    out: VecDeque<EventRecord>,
    first_list_done: bool,
    events_op: Op,
    deps_op: Op,
    failed: bool,
}

/// The Event an item carries, if any.
fn event_of(item: &Item<Event>) -> Option<&Event> {
    match &**item {
        Ok(watcher::Event::InitApply(e) | watcher::Event::Apply(e)) => Some(e),
        _ => None,
    }
}

impl Follower {
    fn new(
        input: BoxStream<'static, Input>,
        filter: EventFilter,
        lookup: Option<Lookup>,
        events_op: Op,
        deps_op: Op,
    ) -> Self {
        Follower {
            input,
            relevance: Relevance::new(&filter),
            filter,
            seen: HashMap::new(),
            pending: [VecDeque::new(), VecDeque::new()],
            lookup,
            out: VecDeque::new(),
            first_list_done: false,
            events_op,
            deps_op,
            failed: false,
        }
    }

    fn on_event(&mut self, item: &Item<Event>) {
        match &**item {
            Ok(watcher::Event::InitApply(_)) => {
                let replay = self.first_list_done || self.filter.replay_existing;
                self.consider(item, replay);
            }
            Ok(watcher::Event::Apply(_)) => self.consider(item, true),
            Ok(watcher::Event::InitDone) => self.first_list_done = true,
            _ => {}
        }
    }

    fn consider(&mut self, item: &Item<Event>, emit: bool) {
        let Some(e) = event_of(item) else { return };
        if let (Some(since), Some(at)) = (self.filter.since, last_seen(e))
            && at < since
        {
            return;
        }
        let tier = self.relevance.candidate_tier(e);
        if !emit {
            // Existing when the follow began and not to be replayed: remember it (if it is or
            // could be ours), so a relist does not show it as new.
            if tier.is_some() || self.relevance.matches(e) {
                self.mark_seen(e);
            }
            return;
        }
        if self.relevance.matches(e) {
            self.emit(e);
            return;
        }
        let Some(tier) = tier else { return };
        let name = e.involved_object.name.as_deref().unwrap_or_default();
        match self.known_deployment(name) {
            // Its Deployment is already known: ours (learn it and show the Event, with any
            // candidates waiting for it) or someone else's (drop it).
            Some(Known::Ours(d)) => {
                if self.relevance.learn(&d) {
                    self.recheck_pending();
                }
                if self.relevance.matches(e) {
                    self.emit(e);
                }
                return;
            }
            Some(Known::Theirs) => return,
            None => {}
        }
        let queue = &mut self.pending[tier as usize];
        if queue.len() >= MAX_PENDING {
            queue.pop_front();
        }
        queue.push_back(item.clone());
    }

    /// The Deployment in the shared store that `name` (an involved object's) belongs to.
    fn known_deployment(&self, name: &str) -> Option<Known> {
        let lookup = self.lookup.as_ref()?;
        name_prefixes(name).find_map(|p| lookup(p, &self.relevance.uid))
    }

    /// Emits the candidates that match now.
    fn recheck_pending(&mut self) {
        for tier in 0..self.pending.len() {
            for item in std::mem::take(&mut self.pending[tier]) {
                match event_of(&item) {
                    Some(e) if self.relevance.matches(e) => self.emit(e),
                    _ => self.pending[tier].push_back(item),
                }
            }
        }
    }

    /// Drops the candidates about `d`, someone else's Deployment.
    fn forget_pending(&mut self, d: &Deployment) {
        let Some(dep) = d.metadata.name.as_deref() else {
            return;
        };
        let belongs = |item: &Item<Event>| {
            event_of(item).is_some_and(|e| {
                let n = e.involved_object.name.as_deref().unwrap_or_default();
                n == dep
                    || (n.len() > dep.len()
                        && n.starts_with(dep)
                        && n.as_bytes()[dep.len()] == b'-')
            })
        };
        for queue in &mut self.pending {
            if !queue.is_empty() {
                queue.retain(|item| !belongs(item));
            }
        }
    }

    /// Records `e`; false if this version of it was already recorded.
    fn mark_seen(&mut self, e: &Event) -> bool {
        let uid = e.metadata.uid.clone().unwrap_or_default();
        let rv = e.metadata.resource_version.clone().unwrap_or_default();
        if self.seen.get(&uid) == Some(&rv) {
            return false;
        }
        self.seen.insert(uid, rv);
        true
    }

    fn emit(&mut self, e: &Event) {
        if self.mark_seen(e) {
            self.out.push_back(EventRecord::from_event(e));
        }
    }

    fn on_deployment(&mut self, ev: &watcher::Event<Deployment>) {
        let (watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = ev else {
            return;
        };
        if self.relevance.learn(d) {
            self.recheck_pending();
        } else if !owned_by(d, &self.relevance.uid) {
            self.forget_pending(d);
        }
    }

    /// Handles a watch error: `Some` when it is fatal (the feed counted and logged the others).
    fn on_error(&self, err: &watcher::Error, events: bool) -> Option<Error> {
        let op = if events {
            &self.events_op
        } else {
            &self.deps_op
        };
        watch::fatal(err, op)
    }
}

/// Follows the Events selected by `filter` in `namespace`, forever (drop the stream to stop).
///
/// Yields an `Err` (and then ends) only for errors retrying cannot fix, such as a 403 on
/// listing or watching Events; the message names the verb, resource and namespace.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(client: kube::Client) {
/// use futures::StreamExt;
/// use seldon_deploy::events::{follow, EventFilter};
///
/// let filter = EventFilter { name: "iris".into(), uid: "…".into(), ..Default::default() };
/// let mut events = follow(client, "seldon", filter, Default::default());
/// while let Some(Ok(e)) = events.next().await {
///     println!("{e}");
/// }
/// # }
/// ```
pub fn follow(
    client: Client,
    namespace: &str,
    filter: EventFilter,
    stats: Stats,
) -> BoxStream<'static, Result<EventRecord>> {
    follow_in(&Hub::new(client, namespace, false, stats), filter)
}

/// As [`follow`], on the watches of `hub` (shared with other followers and waits when the hub
/// is shared; see [`crate::shared`]).
pub fn follow_in(hub: &Hub, filter: EventFilter) -> BoxStream<'static, Result<EventRecord>> {
    let namespace = hub.namespace();
    let events = hub
        .events()
        .subscribe(|_| true)
        .into_stream()
        .map(Input::Event);
    let feed = hub.deployments();
    let store = feed.clone();
    let lookup: Lookup = Arc::new(move |name, uid| store.read(|s| known(s.get(name), uid)));
    let deps = feed
        .subscribe(|_| true)
        .into_stream()
        .map(Input::Deployment);
    follow_items(
        stream::select(events, deps).boxed(),
        filter,
        Some(lookup),
        Op::other("watch", "events", namespace),
        Op::other("watch", "deployments.apps", namespace),
    )
}

/// The follower proper, on any source of watch items (tests feed it synthetic ones).
fn follow_items(
    input: BoxStream<'static, Input>,
    filter: EventFilter,
    lookup: Option<Lookup>,
    events_op: Op,
    deps_op: Op,
) -> BoxStream<'static, Result<EventRecord>> {
    let follower = Follower::new(input, filter, lookup, events_op, deps_op);
    stream::unfold(follower, |mut f| async move {
        loop {
            if let Some(r) = f.out.pop_front() {
                return Some((Ok(r), f));
            }
            if f.failed {
                return None;
            }
            let fatal = match f.input.next().await? {
                Input::Event(item) => match &*item {
                    Ok(_) => {
                        f.on_event(&item);
                        None
                    }
                    Err(e) => f.on_error(e, true),
                },
                Input::Deployment(item) => match &*item {
                    Ok(ev) => {
                        f.on_deployment(ev);
                        None
                    }
                    Err(e) => f.on_error(e, false),
                },
            };
            if let Some(e) = fatal {
                f.failed = true;
                return Some((Err(e), f));
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn event(kind: &str, name: &str, uid: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": "e", "uid": "e1", "resourceVersion": "1"},
            "involvedObject": {"kind": kind, "name": name, "uid": uid},
            "reason": "R", "message": "m", "type": "Normal", "count": 3,
            "source": {"component": "deployment-controller"},
            "lastTimestamp": "2026-01-01T00:00:10Z"
        }))
        .unwrap()
    }

    fn rel() -> Relevance {
        Relevance::new(&EventFilter {
            name: "iris".into(),
            uid: "sdep-uid".into(),
            deployment_names: vec!["iris-default-0-classifier".into()],
            ..Default::default()
        })
    }

    #[test]
    fn relevance_rule() {
        let mut r = rel();
        assert!(r.matches(&event("SeldonDeployment", "iris", "sdep-uid")));
        assert!(!r.matches(&event("SeldonDeployment", "iris", "old-uid")));
        assert!(r.matches(&event("SeldonDeployment", "iris", "")));
        assert!(r.matches(&event("Deployment", "iris-default-0-classifier", "d")));
        assert!(r.matches(&event("ReplicaSet", "iris-default-0-classifier-5d8f", "")));
        assert!(r.matches(&event("Pod", "iris-default-0-classifier-5d8f-abcde", "")));
        assert!(!r.matches(&event("Pod", "iris-default-0-classifierx-1", "")));
        assert!(!r.matches(&event("Pod", "other-1", "")));

        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "seldon-abc", "uid": "dep-uid",
                "ownerReferences": [{"apiVersion": "v1", "kind": "SeldonDeployment", "name": "iris", "uid": "sdep-uid"}]},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        assert!(r.learn(&d));
        assert!(!r.learn(&d));
        assert!(r.matches(&event("Pod", "seldon-abc-77-x", "")));
    }

    #[test]
    fn record_formatting() {
        let r = EventRecord::from_event(&event("Pod", "p-1", ""));
        assert_eq!(
            r.to_string(),
            "Normal R deployment-controller Pod/p-1: m (x3)"
        );
        assert_eq!(r.time.as_deref(), Some("2026-01-01T00:00:10Z"));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["type"], "Normal");
    }

    // --- The follower: relists, history, candidates, memory -------------------------------

    const SINCE: &str = "2026-01-01T00:00:00Z";

    /// An Event `id` (its uid) at resourceVersion `rv`, last seen at `at`.
    fn ev(kind: &str, name: &str, id: &str, rv: u32, at: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": id, "uid": id, "resourceVersion": rv.to_string()},
            "involvedObject": {"kind": kind, "name": name},
            "reason": "R", "message": id, "type": "Normal",
            "source": {"component": "c"}, "lastTimestamp": at
        }))
        .unwrap()
    }

    fn item(e: watcher::Event<Event>) -> Item<Event> {
        Arc::new(Ok(e))
    }

    fn follower(since: Option<&str>, replay_existing: bool) -> Follower {
        follower_with(since, replay_existing, None)
    }

    fn follower_with(
        since: Option<&str>,
        replay_existing: bool,
        lookup: Option<Lookup>,
    ) -> Follower {
        Follower::new(
            stream::empty().boxed(),
            EventFilter {
                name: "iris".into(),
                uid: "sdep-uid".into(),
                since: since.map(|t| t.parse().unwrap()),
                replay_existing,
                deployment_names: vec!["iris-default-0-classifier".into()],
            },
            lookup,
            Op::other("watch", "events", "ns"),
            Op::other("watch", "deployments.apps", "ns"),
        )
    }

    /// A Deployment `name` owned by the SeldonDeployment with `owner_uid`.
    fn dep(name: &str, owner_uid: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("{name}-uid"),
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1",
                    "kind": "SeldonDeployment", "name": "x", "uid": owner_uid}]},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap()
    }

    fn pending_len(f: &Follower) -> usize {
        f.pending.iter().map(VecDeque::len).sum()
    }

    /// Delivers `events` as one (re)list.
    fn list<'a>(f: &mut Follower, events: impl IntoIterator<Item = &'a Event>) {
        f.on_event(&item(watcher::Event::Init));
        for e in events {
            f.on_event(&item(watcher::Event::InitApply(e.clone())));
        }
        f.on_event(&item(watcher::Event::InitDone));
    }

    fn shown(f: &mut Follower) -> Vec<String> {
        f.out.drain(..).map(|r| r.message).collect()
    }

    const T: &str = "2026-01-01T00:00:10Z";

    #[test]
    fn a_relist_repeats_nothing_but_a_recurring_event_shows_again() {
        let mut f = follower(Some(SINCE), true);
        let created = ev("SeldonDeployment", "iris", "created", 1, T);
        let scheduled = ev("Pod", "iris-default-0-classifier-5d8f-x", "scheduled", 2, T);
        list(&mut f, [&created, &scheduled]);
        assert_eq!(shown(&mut f), ["created", "scheduled"]);
        // The watch dropped and was relisted: the same versions come back.
        list(&mut f, [&created, &scheduled]);
        assert!(shown(&mut f).is_empty());
        // The same Event, counted again by its controller: a new version.
        let again = ev("SeldonDeployment", "iris", "created", 7, T);
        f.on_event(&item(watcher::Event::Apply(again)));
        assert_eq!(shown(&mut f), ["created"]);
    }

    #[test]
    fn history_from_before_the_run_is_not_shown() {
        let mut f = follower(Some(SINCE), true);
        // A namesake's Events (no UID on the involved object), older than the object.
        let old = ev("SeldonDeployment", "iris", "old", 1, "2025-12-31T23:59:59Z");
        list(&mut f, [&old]);
        list(&mut f, [&old]);
        assert!(shown(&mut f).is_empty());
    }

    #[test]
    fn without_replay_existing_events_stay_hidden_after_a_relist() {
        let mut f = follower(None, false);
        let before = ev("SeldonDeployment", "iris", "before", 1, T);
        list(&mut f, [&before]);
        list(&mut f, [&before]);
        assert!(shown(&mut f).is_empty());
        f.on_event(&item(watcher::Event::Apply(ev(
            "SeldonDeployment",
            "iris",
            "new",
            3,
            T,
        ))));
        assert_eq!(shown(&mut f), ["new"]);
    }

    #[test]
    fn a_pod_event_waits_for_its_deployment_then_shows_once() {
        let mut f = follower(Some(SINCE), true);
        // The operator named the Deployment itself (a long name is hashed): not predicted.
        let pod = ev("Pod", "seldon-0f9a-6c7d-x", "pod", 4, T);
        list(&mut f, [&pod]);
        assert!(shown(&mut f).is_empty());
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "seldon-0f9a", "uid": "dep-uid",
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1",
                    "kind": "SeldonDeployment", "name": "iris", "uid": "sdep-uid"}]},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        f.on_deployment(&watcher::Event::Apply(d));
        assert_eq!(shown(&mut f), ["pod"]);
        list(&mut f, [&pod]);
        assert!(shown(&mut f).is_empty());
    }

    #[test]
    fn a_busy_namespace_does_not_grow_a_follower() {
        // Thousands of other deployments' Events: none shown, none remembered, none held
        // (their names cannot be one of ours), and the hashed-name candidates held for a
        // Deployment not seen yet stay bounded (and are not copies).
        let mut f = follower(Some(SINCE), true);
        let others: Vec<Event> = (0..5000)
            .map(|i| {
                ev(
                    "Pod",
                    &format!("other-{i}-default-0-c-5d-x"),
                    &format!("o{i}"),
                    i,
                    T,
                )
            })
            .collect();
        list(&mut f, &others);
        list(&mut f, &others);
        assert!(shown(&mut f).is_empty());
        assert!(f.seen.is_empty(), "{} remembered", f.seen.len());
        assert_eq!(pending_len(&f), 0);
        let hashed: Vec<Event> = (0..5000)
            .map(|i| {
                ev(
                    "Pod",
                    &format!("seldon-{i:032x}-5d-x"),
                    &format!("h{i}"),
                    i,
                    T,
                )
            })
            .collect();
        list(&mut f, &hashed);
        assert!(shown(&mut f).is_empty());
        assert!(pending_len(&f) <= 2 * MAX_PENDING, "{}", pending_len(&f));
    }

    #[test]
    fn our_late_matching_events_survive_thousands_of_foreign_candidates() {
        // Other SeldonDeployments' hashed Deployments are in the shared store; ours are not
        // yet (the operator is creating them).
        let foreign: HashMap<String, Deployment> = (0..5000)
            .map(|i| {
                let name = format!("seldon-{i:032x}");
                (name.clone(), dep(&name, "other-sdep"))
            })
            .collect();
        let lookup: Lookup = Arc::new(move |n, uid| known(foreign.get(n), uid));
        let mut f = follower_with(Some(SINCE), true, Some(lookup));
        // Ours first: an unpredicted explainer and a hashed component, both not yet known.
        let ours_hashed = "seldon-0123456789abcdef0123456789abcdef";
        let explainer = ev("Pod", "iris-default-explainer-7c-x", "explainer", 1, T);
        let hashed = ev("Pod", &format!("{ours_hashed}-6c-x"), "hashed", 2, T);
        f.on_event(&item(watcher::Event::Apply(explainer)));
        f.on_event(&item(watcher::Event::Apply(hashed)));
        // Then thousands of others: plain names, and hashed ones whose Deployments are known.
        // None is held.
        for i in 0..5000_u32 {
            let plain = ev(
                "Pod",
                &format!("other-{i}-p-0-c-5d-x"),
                &format!("o{i}"),
                10 + i,
                T,
            );
            let hashed = ev(
                "ReplicaSet",
                &format!("seldon-{i:032x}-5d"),
                &format!("h{i}"),
                10 + i,
                T,
            );
            f.on_event(&item(watcher::Event::Apply(plain)));
            f.on_event(&item(watcher::Event::Apply(hashed)));
        }
        assert!(shown(&mut f).is_empty());
        assert_eq!(pending_len(&f), 2);
        f.on_deployment(&watcher::Event::Apply(dep(ours_hashed, "sdep-uid")));
        assert_eq!(shown(&mut f), ["hashed"]);
        // Hashed names whose Deployments nobody has seen yet compete only among themselves,
        // not with our `iris-…` candidates.
        for i in 0..5000_u32 {
            let unknown = ev(
                "Pod",
                &format!("seldon-f{i:031x}-5d-x"),
                &format!("u{i}"),
                10 + i,
                T,
            );
            f.on_event(&item(watcher::Event::Apply(unknown)));
        }
        assert!(pending_len(&f) <= 2 * MAX_PENDING);
        f.on_deployment(&watcher::Event::Apply(dep(
            "iris-default-explainer",
            "sdep-uid",
        )));
        assert_eq!(shown(&mut f), ["explainer"]);
        // Someone else's Deployment appears: its held candidates go.
        let before = pending_len(&f);
        f.on_deployment(&watcher::Event::Apply(dep(
            &format!("seldon-f{:031x}", 4999),
            "x",
        )));
        assert_eq!(pending_len(&f), before - 1);
    }

    #[test]
    fn a_candidate_whose_deployment_is_already_stored_as_ours_shows_at_once() {
        let ours = dep("seldon-0f9a", "sdep-uid");
        let lookup: Lookup =
            Arc::new(move |n, uid| known((n == "seldon-0f9a").then_some(&ours), uid));
        let mut f = follower_with(Some(SINCE), true, Some(lookup));
        let pod = ev("Pod", "seldon-0f9a-6c7d-x", "pod", 4, T);
        f.on_event(&item(watcher::Event::Apply(pod)));
        assert_eq!(shown(&mut f), ["pod"]);
        assert_eq!(pending_len(&f), 0);
    }
}
