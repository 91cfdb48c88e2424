//! The namespace's SeldonDeployments, their Deployments, Pods and Events, as the waits and
//! the event followers read them.
//!
//! One [`NamespaceCache`] keeps one store per resource (module `store`), each fed by one
//! kube-runtime `watcher`, holding every object once, as an `Arc`. The watches deserialize
//! only the fields readers use (module `watched`: no `managedFields`, a pod template's
//! container names, images and `PREDICTOR_ID`). A SeldonDeployment is kept as the JSON
//! readiness reads, a Pod and an Event as a summary of what their readers use. Each store is
//! indexed by what its readers ask for:
//!
//! | store | index key | question it answers |
//! | :--- | :--- | :--- |
//! | SeldonDeployments | name | the SeldonDeployment named X |
//! | Deployments (label `seldon-deployment-id`) | owner UID | the Deployments owned by UID U |
//! | Pods (label `seldon-deployment-id`) | that label's value | the pods of X's Deployments |
//! | Events | the SeldonDeployment's UID (name when the Event has none), else the Deployment an object belongs to | the Events about X and its children |
//!
//! A reader (an `ObjectWatch`, one per wait or event follower) registers on its keys and is
//! woken only when an object under one of them changes, so a watch item costs O(1) per
//! interested reader, not O(readers). It then reads the current objects through the index.
//!
//! Shared ([`NamespaceCache::shared`]), N lifecycles cost four lists and four
//! watches. The stores start on first use and stop when the last user drops them; a
//! [`WatchesRunning`] keeps them running between the phases of a lifecycle, a
//! [`WatchesRetained`] between lifecycles. A process that handles one SeldonDeployment
//! narrows the SeldonDeployment and Pod watches to it ([`NamespaceCache::for_one`]).
//! Unshared, each reader gets stores of its own, listed when it starts.
//!
//! A shared store may lag an answer this process just got (a create's object may not be in it
//! yet), so the waits confirm with a GET before trusting an absence; see [`crate::ops`].

mod object;
mod store;
mod watched;

use std::sync::{Arc, Mutex, PoisonError, Weak};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use serde_json::Value;

use crate::cluster::watch::{self, Stats};
use crate::error::Op;
use crate::model::manifest::sdep_resource;
use crate::model::pod_issue::{PodIssue, pod_issue};
use crate::names::SELDON_ID_LABEL;

use object::Stores;
pub(crate) use object::{ObjectWatch, ReaderNeeds};
use store::{Keys, Store, Stored};
pub(crate) use watched::{WatchedDeployment, WatchedEvent, WatchedPod, WatchedSdep};

/// Starts (or joins) the stores of one namespace. Cheap to clone; clones share the stores.
#[derive(Clone)]
pub(crate) struct NamespaceCache(Arc<Inner>);

struct Inner {
    client: Client,
    namespace: String,
    shared: bool,
    /// With `shared`, the one SeldonDeployment the SeldonDeployment and Pod watches see.
    only: Option<String>,
    stats: Stats,
    stores: Mutex<SharedStores>,
}

/// The shared stores while someone uses them (weak: they stop with their last user).
#[derive(Default)]
struct SharedStores {
    sdeps: Weak<Store<WatchedSdep, Value>>,
    deployments: Weak<Store<WatchedDeployment, Deployment>>,
    pods: Weak<Store<WatchedPod, PodSummary>>,
    events: Weak<Store<WatchedEvent, EventSummary>>,
    /// Live [`WatchesRetained`]; while there is one, the first [`WatchesRunning`]'s stores are
    /// kept in `retained`.
    retainers: usize,
    retained: Option<Stores>,
}

/// Keeps a namespace's shared watches running (e.g. between the phases of a lifecycle).
/// Empty for an unshared cache.
///
/// Returned by [`Deployer::keep_watches_running`](crate::Deployer::keep_watches_running).
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// # let h = seldon_deploy::Deployer::new(conn.client.clone(), &conn.namespace).handle("iris", tokio::time::Instant::now()).await?;
/// use seldon_deploy::{Deployer, model::components::Target};
/// use tokio::time::{Duration, Instant};
///
/// let deployer = Deployer::new(conn.client, &conn.namespace).with_shared_watches();
/// let running = deployer.keep_watches_running();
/// let deadline = Instant::now() + Duration::from_secs(300);
/// deployer.wait_ready(&h, Target::Initial, deadline, &mut |_| {}).await?;
/// deployer.wait_ready(&h, Target::Initial, deadline, &mut |_| {}).await?; // the same watches, no new list
/// drop(running); // from here the watches stop when no wait reads them
/// # Ok(()) }
/// ```
pub struct WatchesRunning {
    _stores: Option<Stores>,
}

/// Keeps the shared watches, once a [`WatchesRunning`] has started them, running until it is
/// dropped, so lifecycles run one after another (`--concurrency 1`) share one list per
/// resource instead of listing again each time the previous one ended.
pub(crate) struct WatchesRetained(NamespaceCache);

impl Drop for WatchesRetained {
    fn drop(&mut self) {
        let released = {
            let mut s = self.0.stores();
            s.retainers = s.retainers.saturating_sub(1);
            if s.retainers == 0 {
                s.retained.take()
            } else {
                None
            }
        };
        // Dropped outside the lock: stopping a store aborts its task.
        drop(released);
    }
}

/// Returns the live store in `slot`, or starts one and remembers it weakly.
fn join<W, K>(
    slot: &mut Weak<Store<W, K>>,
    start: impl FnOnce() -> Arc<Store<W, K>>,
) -> Arc<Store<W, K>> {
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let s = start();
    *slot = Arc::downgrade(&s);
    s
}

impl NamespaceCache {
    /// A cache of `namespace` whose readers each get stores of their own, listed when they
    /// start (see the module documentation). Relists and retried watch errors are counted in
    /// `stats`.
    #[must_use]
    pub(crate) fn per_reader(client: Client, namespace: &str, stats: Stats) -> Self {
        Self::build(client, namespace, false, None, stats)
    }

    /// A cache of `namespace` with one store per resource for every reader: N readers cost
    /// one list and one watch per resource (see the module documentation).
    #[must_use]
    pub(crate) fn shared(client: Client, namespace: &str, stats: Stats) -> Self {
        Self::build(client, namespace, true, None, stats)
    }

    /// A shared cache whose SeldonDeployment and Pod watches see only `name`'s objects (the
    /// Deployment and Event watches stay namespace-wide: their objects' names are the
    /// operator's choice). Readers of any other name still work, on stores of their own.
    #[must_use]
    pub(crate) fn for_one(client: Client, namespace: &str, name: &str, stats: Stats) -> Self {
        Self::build(client, namespace, true, Some(name.to_owned()), stats)
    }

    fn build(
        client: Client,
        namespace: &str,
        shared: bool,
        only: Option<String>,
        stats: Stats,
    ) -> Self {
        NamespaceCache(Arc::new(Inner {
            client,
            namespace: namespace.to_owned(),
            shared,
            only,
            stats,
            stores: Mutex::default(),
        }))
    }

    /// With [`NamespaceCache::for_one`], the one SeldonDeployment it sees.
    #[must_use]
    pub(crate) fn only(&self) -> Option<&str> {
        self.0.only.as_deref()
    }

    /// Whether the stores are shared.
    #[must_use]
    pub(crate) fn is_shared(&self) -> bool {
        self.0.shared
    }

    /// The namespace.
    #[must_use]
    pub(crate) fn namespace(&self) -> &str {
        &self.0.namespace
    }

    fn stores(&self) -> std::sync::MutexGuard<'_, SharedStores> {
        self.0.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `name`'s reader may use the shared SeldonDeployment and Pod stores.
    fn shares(&self, name: &str) -> bool {
        self.0.shared && self.0.only.as_deref().is_none_or(|only| only == name)
    }

    /// The stores a reader of `name` needs: the shared ones (started on first use), or, for
    /// a name the shared ones do not see or an unshared cache, fresh ones.
    fn stores_for(&self, name: &str, parts: ReaderNeeds) -> Stores {
        if !self.0.shared {
            return Stores {
                sdeps: parts.sdep.then(|| self.start_sdeps(Some(name))),
                deployments: self.start_deployments(),
                pods: parts.pods.then(|| self.start_pods(Some(name))),
                events: parts.events.then(|| self.start_events()),
            };
        }
        let narrow = self.0.only.as_deref();
        let shares = self.shares(name);
        let mut s = self.stores();
        let deployments = join(&mut s.deployments, || self.start_deployments());
        let events = parts
            .events
            .then(|| join(&mut s.events, || self.start_events()));
        let sdeps = parts.sdep.then(|| {
            if shares {
                join(&mut s.sdeps, || self.start_sdeps(narrow))
            } else {
                self.start_sdeps(Some(name))
            }
        });
        let pods = parts.pods.then(|| {
            if shares {
                join(&mut s.pods, || self.start_pods(narrow))
            } else {
                self.start_pods(Some(name))
            }
        });
        Stores {
            sdeps,
            deployments,
            pods,
            events,
        }
    }

    fn start_sdeps(&self, name: Option<&str>) -> Arc<Store<WatchedSdep, Value>> {
        let h = &self.0;
        let config = match name {
            Some(n) => watch::config().fields(&format!("metadata.name={n}")),
            None => watch::config(),
        };
        Store::watch(
            Api::namespaced_with(
                watch::bounded_client(&h.client),
                &h.namespace,
                &sdep_resource("v1"),
            ),
            config,
            Stored {
                keep: Value::from,
                keys: sdep_keys,
                forget_unread_after: None,
            },
            Op::sdep("watch", &h.namespace, name),
            h.stats.clone(),
        )
    }

    fn start_deployments(&self) -> Arc<Store<WatchedDeployment, Deployment>> {
        let h = &self.0;
        Store::watch(
            Api::namespaced(watch::bounded_client(&h.client), &h.namespace),
            watch::config().labels(SELDON_ID_LABEL),
            Stored {
                keep: Deployment::from,
                keys: deployment_keys,
                forget_unread_after: None,
            },
            Op::other("watch", "deployments.apps", &h.namespace),
            h.stats.clone(),
        )
    }

    fn start_pods(&self, name: Option<&str>) -> Arc<Store<WatchedPod, PodSummary>> {
        let h = &self.0;
        let selector = match name.and_then(seldon_id) {
            Some(id) => format!("{SELDON_ID_LABEL}={id}"),
            None => SELDON_ID_LABEL.to_owned(),
        };
        Store::watch(
            Api::namespaced(watch::bounded_client(&h.client), &h.namespace),
            watch::config().labels(&selector),
            Stored {
                keep: summarize_pod,
                keys: pod_keys,
                forget_unread_after: None,
            },
            Op::other("watch", "pods", &h.namespace),
            h.stats.clone(),
        )
    }

    /// The Event store forgets an Event that no reader's keys cover this long after it last
    /// arrived: long enough for a reader that learns a hashed Deployment name late, short
    /// enough that a long run holds minutes of the namespace's Events, not the hour the API
    /// server keeps them (a 30-minute soak grew ~9 KiB per lifecycle before).
    fn start_events(&self) -> Arc<Store<WatchedEvent, EventSummary>> {
        let h = &self.0;
        Store::watch(
            Api::namespaced(watch::bounded_client(&h.client), &h.namespace),
            watch::config().any_semantic(),
            Stored {
                keep: EventSummary::from,
                keys: event_keys,
                forget_unread_after: Some(EVENTS_UNREAD_FOR),
            },
            Op::other("watch", "events", &h.namespace),
            h.stats.clone(),
        )
    }

    /// Starts (or joins) the four shared watches and keeps them running while the returned
    /// value lives (and, under a [`WatchesRetained`], until that ends); does nothing when
    /// unshared (each reader then opens its own).
    #[must_use]
    pub(crate) fn keep_running(&self) -> WatchesRunning {
        let stores = self
            .0
            .shared
            .then(|| self.stores_for(self.only().unwrap_or(""), ReaderNeeds::ALL));
        if let Some(st) = &stores {
            let mut s = self.stores();
            if s.retainers > 0 && s.retained.is_none() {
                s.retained = Some(st.clone());
            }
        }
        WatchesRunning { _stores: stores }
    }

    /// Keeps the shared watches, once started, running until the returned value is dropped;
    /// does nothing when unshared.
    #[must_use]
    pub(crate) fn retain(&self) -> WatchesRetained {
        if self.0.shared {
            self.stores().retainers += 1;
        }
        WatchesRetained(self.clone())
    }

    /// The copy of SeldonDeployment `name` that the running shared watch last delivered, without
    /// starting one: `None` when no synced shared store sees `name`. A starting point for a
    /// write whose guards refuse a stale copy (no quorum read before it).
    pub(crate) fn last_seen_sdep(&self, name: &str) -> Option<Arc<Value>> {
        if !self.shares(name) {
            return None;
        }
        let store = self.stores().sdeps.upgrade()?;
        store.is_synced().then(|| store.get(name)).flatten()
    }

    /// A reader of SeldonDeployment `name` (UID `uid`) and the `parts` of its children.
    pub(crate) fn watch_object(&self, name: &str, uid: &str, parts: ReaderNeeds) -> ObjectWatch {
        ObjectWatch::new(self.stores_for(name, parts), self.namespace(), name, uid)
    }
}

/// See [`NamespaceCache::start_events`].
const EVENTS_UNREAD_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// The `seldon-deployment-id` label value the operator gives the children of SeldonDeployment
/// `name` when the name fits a label (63 characters); `None` otherwise, and then readers learn
/// the value from the Deployments they own.
#[must_use]
pub(crate) fn seldon_id(name: &str) -> Option<&str> {
    (!name.is_empty() && name.len() <= 63).then_some(name)
}

fn sdep_keys(o: &Value) -> Keys {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect()
}

/// The UIDs of the objects owning a Deployment.
fn deployment_keys(d: &Deployment) -> Keys {
    d.metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.clone())
        .collect()
}

/// What the cache keeps of a pod: its `seldon-deployment-id`, and what is wrong with it if
/// anything ([`pod_issue`], judged once, on arrival). A healthy pod needs nothing more,
/// and a whole pod is most of a lifecycle's share of the client's memory.
pub(crate) struct PodSummary {
    seldon_id: Option<String>,
    pub(crate) issue: Option<PodIssue>,
}

fn summarize_pod(p: WatchedPod) -> PodSummary {
    let p = Pod::from(p);
    PodSummary {
        seldon_id: p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SELDON_ID_LABEL))
            .cloned(),
        issue: pod_issue(&p),
    }
}

fn pod_keys(p: &PodSummary) -> Keys {
    p.seldon_id.iter().cloned().collect()
}

/// What the cache keeps of an Event: what a follower prints and filters on, and the involved
/// object it is filed under. The Event store holds every Event of the namespace (an hour of
/// them, by default), so it keeps no metadata, source host, reporting instance or related
/// object it would never read.
#[derive(Debug)]
pub(crate) struct EventSummary {
    pub(crate) uid: String,
    pub(crate) resource_version: String,
    /// When it last happened: `lastTimestamp`, else the series' last observation, else
    /// `eventTime`, else the Event's creation.
    pub(crate) last_seen: Option<Timestamp>,
    /// `Normal` or `Warning` (`Normal` when the Event has none).
    pub(crate) type_: String,
    pub(crate) reason: String,
    /// The reporting component, else the source component.
    pub(crate) source: String,
    pub(crate) involved_kind: Option<String>,
    pub(crate) involved_name: Option<String>,
    involved_uid: Option<String>,
    /// The message without trailing whitespace.
    pub(crate) message: String,
    /// How many times it happened: the series' count, else `count`, else 1.
    pub(crate) count: i32,
}

impl EventSummary {
    /// Its resourceVersion as a number (0 if it is not one), which orders Events among
    /// themselves. Only among themselves: a cluster may keep Events in an etcd of their own
    /// (`--etcd-servers-overrides=/events#…`), whose revisions are another counter.
    pub(crate) fn revision(&self) -> u64 {
        crate::names::revision(Some(&self.resource_version)).unwrap_or(0)
    }
}

impl From<WatchedEvent> for EventSummary {
    fn from(e: WatchedEvent) -> Self {
        let e = Event::from(e);
        let last_seen = e
            .last_timestamp
            .map(|t| t.0)
            .or_else(|| {
                e.series
                    .as_ref()
                    .and_then(|s| s.last_observed_time.as_ref())
                    .map(|t| t.0)
            })
            .or_else(|| e.event_time.map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.map(|t| t.0));
        let source = e
            .reporting_component
            .filter(|s| !s.is_empty())
            .or_else(|| e.source.and_then(|s| s.component))
            .unwrap_or_default();
        let count = e.series.and_then(|s| s.count).or(e.count).unwrap_or(1);
        let mut message = e.message.unwrap_or_default();
        message.truncate(message.trim_end().len());
        EventSummary {
            uid: e.metadata.uid.unwrap_or_default(),
            resource_version: e.metadata.resource_version.unwrap_or_default(),
            last_seen,
            type_: e.type_.unwrap_or_else(|| "Normal".into()),
            reason: e.reason.unwrap_or_default(),
            source,
            involved_kind: e.involved_object.kind,
            involved_name: e.involved_object.name,
            involved_uid: e.involved_object.uid,
            message,
            count,
        }
    }
}

/// Kubernetes names a pod `<generateName><5 random characters>` within 63 characters, so it cuts
/// a longer `generateName` (a ReplicaSet's `<replicaset>-`) to this length.
const GENERATED_BASE_MAX: usize = 58;

/// Events are indexed by the SeldonDeployment they are about ([`sdep_event_key`]), or by the
/// Deployment the involved object belongs to ([`deployment_event_keys`]): a ReplicaSet is named
/// `<deployment>-<hash>`, its pods `<replicaset>-<suffix>`. A pod name of 63 characters may have
/// a cut base: cut inside the hash, the Deployment is the name minus one segment; cut inside the
/// Deployment's name, only the cut base itself can be matched.
fn event_keys(e: &EventSummary) -> Keys {
    let name = e.involved_name.as_deref().unwrap_or_default();
    let uid = e.involved_uid.as_deref().unwrap_or_default();
    let strip = |n: &str, segments: usize| {
        let mut base = n;
        for _ in 0..segments {
            base = base.rsplit_once('-').map_or("", |(b, _)| b);
        }
        base.to_owned()
    };
    match e.involved_kind.as_deref().unwrap_or_default() {
        "SeldonDeployment" => vec![sdep_event_key(name, uid)],
        "Deployment" => vec![deployment_event_key(name)],
        "ReplicaSet" => vec![deployment_event_key(&strip(name, 1))],
        "Pod" => {
            let mut keys = vec![deployment_event_key(&strip(name, 2))];
            if let Some(base) = name.get(..GENERATED_BASE_MAX)
                && name.len() == GENERATED_BASE_MAX + 5
            {
                keys.push(deployment_event_key(&strip(name, 1)));
                keys.push(cut_pod_base_key(base));
            }
            keys
        }
        _ => Keys::new(),
    }
}

/// The Events key of SeldonDeployment `name` with `uid` (an Event may lack the UID).
pub(crate) fn sdep_event_key(name: &str, uid: &str) -> String {
    if uid.is_empty() {
        format!("sdep-name/{name}")
    } else {
        format!("sdep/{uid}")
    }
}

/// The Events key of Deployment `name`, its ReplicaSets and their pods.
fn deployment_event_key(name: &str) -> String {
    format!("deployment/{name}")
}

fn cut_pod_base_key(base: &str) -> String {
    format!("pod-base/{base}")
}

/// The Events keys of Deployment `name`: its own, and for a name so long that its pods' names
/// are cut inside it, that cut base.
pub(crate) fn deployment_event_keys(name: &str) -> Keys {
    let mut keys = vec![deployment_event_key(name)];
    let base = format!("{name}-");
    if let Some(cut) = base.get(..GENERATED_BASE_MAX) {
        keys.push(cut_pod_base_key(cut));
    }
    keys
}

/// Stores fed by hand (no server), for the unit tests of their readers.
#[cfg(test)]
pub(crate) struct HandFedStores {
    pub deployments: Arc<Store<WatchedDeployment, Deployment>>,
    pub events: Arc<Store<WatchedEvent, EventSummary>>,
}

#[cfg(test)]
impl HandFedStores {
    /// Empty stores; the Deployment one has listed, the Event one not yet.
    pub(crate) fn new() -> Self {
        let stats = Stats::default();
        let op = Op::other("watch", "deployments", "ns");
        let stored = Stored {
            keep: Deployment::from,
            keys: deployment_keys,
            forget_unread_after: None,
        };
        let deployments = Store::new(stored, op, stats.clone());
        deployments.apply(kube::runtime::watcher::Event::Init);
        deployments.apply(kube::runtime::watcher::Event::InitDone);
        HandFedStores {
            deployments,
            events: Store::new(
                Stored {
                    keep: EventSummary::from,
                    keys: event_keys,
                    forget_unread_after: None,
                },
                Op::other("watch", "events", "ns"),
                stats,
            ),
        }
    }

    /// A reader of SeldonDeployment `name`/`uid`'s Deployments and Events.
    pub(crate) fn watch_object(&self, name: &str, uid: &str) -> ObjectWatch {
        let stores = Stores {
            sdeps: None,
            deployments: self.deployments.clone(),
            pods: None,
            events: Some(self.events.clone()),
        };
        ObjectWatch::new(stores, "ns", name, uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, name: &str, uid: &str) -> EventSummary {
        EventSummary::from(
            serde_json::from_value::<WatchedEvent>(json!({
                "metadata": {"name": "e"},
                "involvedObject": {"kind": kind, "name": name, "uid": uid},
            }))
            .unwrap(),
        )
    }

    /// Issue 16: a user without rights on events made `apply` fail with exit 3, because the
    /// rollout wait's reader returned the Event store's 403. Only the Event reader sees it.
    #[tokio::test]
    async fn an_event_store_error_ends_no_wait_and_only_the_event_reader_sees_it() {
        let stores = HandFedStores::new();
        let watch = stores.watch_object("x", "u");
        let st = Box::new(kube::core::Status::failure("forbidden", "Forbidden").with_code(403));
        stores
            .events
            .fail(kube::runtime::watcher::Error::InitialListFailed(
                kube::Error::Api(st),
            ));
        watch
            .changed()
            .await
            .expect("an Event store error ends no wait");
        let e = watch.events_fatal().expect("the Event reader sees it");
        assert!(e.to_string().contains("cannot list events"), "{e}");
    }

    #[test]
    fn an_event_is_kept_as_what_followers_print_filter_and_file_it_by() {
        let summary =
            |v: Value| EventSummary::from(serde_json::from_value::<WatchedEvent>(v).unwrap());
        // A new-style Event (events.k8s.io recorder): a series, a reporting component.
        let s = summary(json!({
            "metadata": {"name": "e", "uid": "eu", "resourceVersion": "42",
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "involvedObject": {"kind": "Pod", "name": "p", "uid": "pu"},
            "eventTime": "2026-01-01T00:00:01.000000Z",
            "series": {"count": 4, "lastObservedTime": "2026-01-01T00:00:03.000000Z"},
            "reportingComponent": "default-scheduler", "source": {"component": "other"},
            "reason": "FailedScheduling", "message": "0/3 nodes are available.\n",
            "type": "Warning", "count": 2
        }));
        assert_eq!((s.uid.as_str(), s.resource_version.as_str()), ("eu", "42"));
        assert_eq!(s.last_seen, Some("2026-01-01T00:00:03Z".parse().unwrap()));
        assert_eq!(s.count, 4);
        assert_eq!(s.source, "default-scheduler");
        assert_eq!(s.message, "0/3 nodes are available.");
        assert_eq!(
            (s.type_.as_str(), s.reason.as_str()),
            ("Warning", "FailedScheduling")
        );
        assert_eq!(event_keys(&s), vec![deployment_event_key("")]);
        // An old-style Event: times and count of its own, the source's component.
        let s = summary(json!({
            "metadata": {"name": "e", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "involvedObject": {"kind": "SeldonDeployment", "name": "iris", "uid": "su"},
            "lastTimestamp": "2026-01-01T00:00:05Z", "eventTime": "2026-01-01T00:00:09.000000Z",
            "reportingComponent": "", "source": {"component": "seldon-controller-manager"},
            "count": 2
        }));
        assert_eq!(s.last_seen, Some("2026-01-01T00:00:05Z".parse().unwrap()));
        assert_eq!(
            (s.count, s.source.as_str(), s.type_.as_str()),
            (2, "seldon-controller-manager", "Normal")
        );
        assert_eq!(event_keys(&s), vec!["sdep/su"]);
        // Nothing but its creation.
        let s = summary(
            json!({"metadata": {"name": "e", "creationTimestamp": "2026-01-01T00:00:07Z"}}),
        );
        assert_eq!(s.last_seen, Some("2026-01-01T00:00:07Z".parse().unwrap()));
        assert_eq!((s.count, s.source.as_str()), (1, ""));
    }

    #[test]
    fn events_are_keyed_by_their_seldon_deployment_or_the_deployment_of_their_object() {
        let d = |n: &str| vec![deployment_event_key(n)];
        assert_eq!(
            event_keys(&event("SeldonDeployment", "iris", "u1")),
            vec!["sdep/u1"]
        );
        assert_eq!(
            event_keys(&event("SeldonDeployment", "iris", "")),
            vec!["sdep-name/iris"]
        );
        let dep = "iris-default-0-classifier";
        assert_eq!(event_keys(&event("Deployment", dep, "")), d(dep));
        assert_eq!(
            event_keys(&event("ReplicaSet", &format!("{dep}-5d8f9c"), "")),
            d(dep)
        );
        assert_eq!(
            event_keys(&event("Pod", &format!("{dep}-5d8f9c-abcde"), "")),
            d(dep)
        );
        assert_eq!(
            event_keys(&event("Pod", "seldon-0a1b-77-x", "")),
            d("seldon-0a1b")
        );
        assert!(event_keys(&event("Service", "iris", "")).is_empty());
    }

    /// The name Kubernetes gives a pod of ReplicaSet `rs` (`generateName` cut to 58, plus 5).
    fn pod_name(rs: &str) -> String {
        let base = format!("{rs}-");
        format!("{}abcde", &base[..base.len().min(GENERATED_BASE_MAX)])
    }

    #[test]
    fn pod_events_reach_their_deployment_however_long_its_name() {
        for n in 1..80 {
            let dep = format!("{}-default-0-classifier", "x".repeat(n));
            let pod = pod_name(&format!("{dep}-5d8f9c7b4"));
            let keys = event_keys(&event("Pod", &pod, ""));
            assert!(
                deployment_event_keys(&dep).iter().any(|k| keys.contains(k)),
                "{dep}: pod {pod} has keys {keys:?}"
            );
            let other = deployment_event_keys("iris-default-0-classifier");
            assert!(!other.iter().any(|k| keys.contains(k)), "{pod}");
        }
    }
}
