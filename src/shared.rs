//! Watches shared by every lifecycle of one [`crate::Deployer`] (one client, one namespace).
//!
//! Unshared (the default of [`crate::Deployer::new`]), every wait and every event follower
//! opens its own watches, the SeldonDeployment one narrowed to its name: a fresh list per wait.
//! Shared ([`crate::Deployer::with_shared_watches`]), the namespace has ONE watch of
//! SeldonDeployments, ONE of Seldon's Deployments, ONE of their Pods and ONE of Events,
//! started on first use and stopped when the last user drops them, so N lifecycles cost four
//! lists and four watches instead of about 4N of each. [`Lease`] keeps them running between
//! phases, and [`Hold`] between lifecycles (a driver of several takes one for its whole run).
//! A process that handles one SeldonDeployment narrows the shared SeldonDeployment watch to its
//! name ([`Hub::shared_for`]), and the Pod watch to its label, so a busy namespace's other
//! objects are neither listed nor streamed.
//!
//! A shared store may lag an answer this process just got (a create's object may not be in it
//! yet), so the waits confirm with a GET before trusting an absence; see
//! [`crate::lifecycle`].

use std::sync::{Arc, Mutex, PoisonError, Weak};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, DynamicObject};

use crate::error::Op;
use crate::lifecycle::sdep_resource;
use crate::watch::{self, Feed, SELDON_ID_LABEL, Stats};

/// How many items a slow subscriber may fall behind before it is resynchronised.
const CAPACITY: usize = 4096;

/// Starts (or joins) the watches of one namespace. Cheap to clone; clones share the feeds.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

struct HubInner {
    client: Client,
    namespace: String,
    shared: bool,
    /// With `shared`, the one SeldonDeployment the shared watch is narrowed to.
    only: Option<String>,
    stats: Stats,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    sdeps: Weak<Feed<DynamicObject>>,
    deployments: Weak<Feed<Deployment>>,
    events: Weak<Feed<Event>>,
    pods: Weak<Feed<Pod>>,
    /// Live [`Hold`]s; while there is one, the first [`Lease`]'s feeds are kept in `held`.
    holds: usize,
    held: Option<Feeds>,
}

/// Keeps a namespace's shared watches running from the first [`Lease`] taken while it lives
/// until it is dropped, so lifecycles run one after another (`--concurrency 1`) share one list
/// per resource instead of listing again each time the previous one ended. It opens nothing
/// by itself: the watches still start when the first lifecycle needs them.
pub struct Hold(Hub);

impl Drop for Hold {
    fn drop(&mut self) {
        let released = {
            let mut slots = self.0.slots();
            slots.holds = slots.holds.saturating_sub(1);
            if slots.holds == 0 {
                slots.held.take()
            } else {
                None
            }
        };
        // Dropped outside the lock: stopping a feed aborts its task.
        drop(released);
    }
}

/// Keeps a namespace's shared watches running (e.g. between the phases of a lifecycle).
/// Empty for an unshared [`Hub`].
pub struct Lease {
    _feeds: Option<Feeds>,
}

type Feeds = (
    Arc<Feed<DynamicObject>>,
    Arc<Feed<Deployment>>,
    Arc<Feed<Event>>,
    Arc<Feed<Pod>>,
);

/// Returns the live feed in `slot`, or starts one and remembers it (weakly: the feed stops
/// when its last user goes).
fn join<K>(slot: &mut Weak<Feed<K>>, start: impl FnOnce() -> Arc<Feed<K>>) -> Arc<Feed<K>> {
    if let Some(f) = slot.upgrade() {
        return f;
    }
    let f = start();
    *slot = Arc::downgrade(&f);
    f
}

impl Hub {
    /// A hub for `namespace`; `shared` selects namespace-wide shared watches (see the module
    /// documentation). Relists and retried watch errors are counted in `stats`.
    #[must_use]
    pub fn new(client: Client, namespace: &str, shared: bool, stats: Stats) -> Self {
        Self::build(client, namespace, shared, None, stats)
    }

    /// A shared hub whose SeldonDeployment watch sees only `name` (the Deployment and Event
    /// watches stay namespace-wide: their objects' names are the operator's choice). Waits on
    /// any other name still work, on watches of their own.
    #[must_use]
    pub fn shared_for(client: Client, namespace: &str, name: &str, stats: Stats) -> Self {
        Self::build(client, namespace, true, Some(name.to_owned()), stats)
    }

    fn build(
        client: Client,
        namespace: &str,
        shared: bool,
        only: Option<String>,
        stats: Stats,
    ) -> Self {
        Hub(Arc::new(HubInner {
            client,
            namespace: namespace.to_owned(),
            shared,
            only,
            stats,
            slots: Mutex::default(),
        }))
    }

    /// With [`Hub::shared_for`], the one SeldonDeployment name the shared watch sees.
    #[must_use]
    pub fn only(&self) -> Option<&str> {
        self.0.only.as_deref()
    }

    /// Whether the watches are shared (the SeldonDeployment one possibly narrowed to
    /// [`Hub::only`]).
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.0.shared
    }

    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.0.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SeldonDeployments (storage version `v1`): the namespace's (or [`Hub::only`]'s) when
    /// shared, else only `name`. An empty `name` means the shared feed.
    #[must_use]
    pub fn sdeps(&self, name: &str) -> Arc<Feed<DynamicObject>> {
        let h = &self.0;
        let start = |name: Option<&str>| {
            let config = match name {
                Some(n) => watch::config().fields(&format!("metadata.name={n}")),
                None => watch::config(),
            };
            Feed::start(
                Api::namespaced_with(h.client.clone(), &h.namespace, &sdep_resource("v1")),
                config,
                Op::sdep("watch", &h.namespace, name),
                h.stats.clone(),
                CAPACITY,
            )
        };
        match (h.shared, h.only.as_deref()) {
            (true, None) => join(&mut self.slots().sdeps, || start(None)),
            (true, Some(only)) if name.is_empty() || name == only => {
                join(&mut self.slots().sdeps, || start(Some(only)))
            }
            _ => start(Some(name)),
        }
    }

    /// The namespace's Deployments labelled `seldon-deployment-id` (ownership is checked by
    /// UID by the readers).
    #[must_use]
    pub fn deployments(&self) -> Arc<Feed<Deployment>> {
        let h = &self.0;
        let start = || {
            Feed::start(
                Api::namespaced(h.client.clone(), &h.namespace),
                watch::config().labels(SELDON_ID_LABEL),
                Op::other("watch", "deployments.apps", &h.namespace),
                h.stats.clone(),
                CAPACITY,
            )
        };
        if h.shared {
            join(&mut self.slots().deployments, start)
        } else {
            start()
        }
    }

    /// Pods labelled `seldon-deployment-id`: the namespace's when shared, else (and with
    /// [`Hub::only`]) only those of `name`. An empty `name` means the shared feed. Which
    /// Deployment and ReplicaSet a pod belongs to is checked by the readers (see
    /// [`crate::pods`]).
    #[must_use]
    pub fn pods(&self, name: &str) -> Arc<Feed<Pod>> {
        let h = &self.0;
        let start = |name: Option<&str>| {
            let selector = match name.and_then(seldon_id) {
                Some(id) => format!("{SELDON_ID_LABEL}={id}"),
                None => SELDON_ID_LABEL.to_owned(),
            };
            Feed::start(
                Api::namespaced(h.client.clone(), &h.namespace),
                watch::config().labels(&selector),
                Op::other("watch", "pods", &h.namespace),
                h.stats.clone(),
                CAPACITY,
            )
        };
        match (h.shared, h.only.as_deref()) {
            (true, None) => join(&mut self.slots().pods, || start(None)),
            (true, Some(only)) if name.is_empty() || name == only => {
                join(&mut self.slots().pods, || start(Some(only)))
            }
            _ => start(Some(name)),
        }
    }

    /// The namespace's Events.
    #[must_use]
    pub fn events(&self) -> Arc<Feed<Event>> {
        let h = &self.0;
        let start = || {
            Feed::start(
                Api::namespaced(h.client.clone(), &h.namespace),
                watch::config().any_semantic(),
                Op::other("watch", "events", &h.namespace),
                h.stats.clone(),
                CAPACITY,
            )
        };
        if h.shared {
            join(&mut self.slots().events, start)
        } else {
            start()
        }
    }

    /// Starts (or joins) the four shared watches and keeps them running while the lease
    /// lives (and, under a [`Hold`], until the hold ends); does nothing when unshared (each
    /// wait then opens its own).
    #[must_use]
    pub fn lease(&self) -> Lease {
        let feeds = self.0.shared.then(|| {
            (
                self.sdeps(""),
                self.deployments(),
                self.events(),
                self.pods(""),
            )
        });
        if let Some(f) = &feeds {
            let mut slots = self.slots();
            if slots.holds > 0 && slots.held.is_none() {
                slots.held = Some(f.clone());
            }
        }
        Lease { _feeds: feeds }
    }

    /// Keeps the shared watches, once a [`Lease`] has started them, running until the
    /// returned [`Hold`] is dropped; does nothing when unshared.
    #[must_use]
    pub fn hold(&self) -> Hold {
        if self.0.shared {
            self.slots().holds += 1;
        }
        Hold(self.clone())
    }
}

/// The `seldon-deployment-id` label value the operator gives the children of SeldonDeployment
/// `name`: the name itself, or, over 63 characters (too long for a label), `seldon-` and
/// the name's MD5 in hex, which is not worth a hash crate here: `None` then, and callers
/// select on the label's presence and check ownership themselves.
#[must_use]
pub fn seldon_id(name: &str) -> Option<&str> {
    (!name.is_empty() && name.len() <= 63).then_some(name)
}
