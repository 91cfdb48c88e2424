//! One reader's view of the cache: a SeldonDeployment and its children.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;

use super::store::{Registration, Store, Wakeup};
use super::watched::{WatchedDeployment, WatchedEvent, WatchedPod, WatchedSdep};
use super::{EventSummary, PodSummary, deployment_event_keys, sdep_event_key, seldon_id};
use crate::error::{Error, Op, Result};
use crate::model::pod_issue::PodIssue;
use crate::names::SELDON_ID_LABEL;

/// Which of a SeldonDeployment's parts a reader needs (its owned Deployments always).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReaderNeeds {
    /// The SeldonDeployment itself.
    pub sdep: bool,
    /// The pods of its Deployments.
    pub pods: bool,
    /// The Events about it and its children.
    pub events: bool,
}

impl ReaderNeeds {
    pub(crate) const ALL: ReaderNeeds = ReaderNeeds {
        sdep: true,
        pods: true,
        events: true,
    };
}

/// The stores a reader uses; those it does not need are `None`.
#[derive(Clone)]
pub(super) struct Stores {
    pub sdeps: Option<Arc<Store<WatchedSdep, Value>>>,
    pub deployments: Arc<Store<WatchedDeployment, Deployment>>,
    pub pods: Option<Arc<Store<WatchedPod, PodSummary>>>,
    pub events: Option<Arc<Store<WatchedEvent, EventSummary>>>,
}

/// Reads SeldonDeployment `name` (UID `uid`) and its children from the cache, and wakes when
/// one of them changes. Holding it keeps the stores it reads running.
pub(crate) struct ObjectWatch {
    stores: Stores,
    name: String,
    uid: String,
    sdep_op: Op,
    wakeup: Arc<Wakeup>,
    registrations: Vec<Registration>,
    /// `seldon-deployment-id` values registered on the Pod store.
    pod_keys: BTreeSet<String>,
    /// Keys registered on the Event store.
    event_keys: BTreeSet<String>,
}

impl ObjectWatch {
    pub(super) fn new(stores: Stores, namespace: &str, name: &str, uid: &str) -> Self {
        let wakeup = Wakeup::new();
        let mut w = ObjectWatch {
            registrations: vec![stores.deployments.register(uid, &wakeup)],
            stores,
            name: name.to_owned(),
            uid: uid.to_owned(),
            sdep_op: Op::sdep("watch", namespace, Some(name)),
            wakeup,
            pod_keys: BTreeSet::new(),
            event_keys: BTreeSet::new(),
        };
        if let Some(s) = &w.stores.sdeps {
            w.registrations.push(s.register(name, &w.wakeup));
        }
        if let Some(id) = seldon_id(name) {
            w.watch_pods_labelled(id);
        }
        w.follow_events_keyed(&sdep_event_key(name, uid));
        w.follow_events_keyed(&sdep_event_key(name, ""));
        w
    }

    /// Waits until something this reader reads may have changed (at once the first time).
    ///
    /// # Errors
    ///
    /// The error of a watch that retrying cannot fix (403, a missing CRD, …), except the
    /// Event store's: Events are a view, never the job, so they end no wait. A reader that
    /// shows them asks [`ObjectWatch::events_fatal`].
    pub(crate) async fn changed(&self) -> Result<()> {
        self.wakeup.wait().await;
        self.fatal().map_or(Ok(()), Err)
    }

    fn fatal(&self) -> Option<Error> {
        let s = &self.stores;
        s.sdeps
            .as_ref()
            .and_then(|x| x.fatal(Some(&self.sdep_op)))
            .or_else(|| s.deployments.fatal(None))
            .or_else(|| s.pods.as_ref().and_then(|x| x.fatal(None)))
    }

    /// The Event store's error that retrying cannot fix (403 on list or watch), if any.
    pub(crate) fn events_fatal(&self) -> Option<Error> {
        self.stores.events.as_ref().and_then(|x| x.fatal(None))
    }

    /// Whether the SeldonDeployment and Deployment stores have listed.
    pub(crate) fn synced(&self) -> bool {
        self.stores.deployments.is_synced()
            && self.stores.sdeps.as_ref().is_none_or(|s| s.is_synced())
    }

    /// The SeldonDeployment named `name`, whatever its UID, as JSON.
    pub(crate) fn sdep(&self) -> Option<Arc<Value>> {
        self.stores.sdeps.as_ref()?.get(&self.name)
    }

    /// The Deployments owned by `uid`.
    pub(crate) fn deployments(&self) -> Vec<Arc<Deployment>> {
        self.stores.deployments.indexed(&self.uid)
    }

    /// Also wakes on the pods labelled `seldon-deployment-id=<id>`.
    fn watch_pods_labelled(&mut self, id: &str) {
        if let Some(s) = &self.stores.pods
            && self.pod_keys.insert(id.to_owned())
        {
            self.registrations.push(s.register(id, &self.wakeup));
        }
    }

    /// What is wrong with the pods carrying the `seldon-deployment-id` of `deployments` (the
    /// owned ones; a name too long for a label gets a hashed value, learnt from them). Which
    /// Deployment and ReplicaSet a pod belongs to is for the caller to check.
    pub(crate) fn pod_issues(&mut self, deployments: &[Arc<Deployment>]) -> Vec<PodIssue> {
        let Some(store) = self.stores.pods.clone() else {
            return Vec::new();
        };
        for d in deployments {
            // The pods carry the pod template's labels; the Deployment's own say the same.
            let template = d.spec.template.metadata.as_ref();
            let ids: Vec<String> = [
                template.and_then(|m| m.labels.as_ref()),
                d.metadata.labels.as_ref(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|l| l.get(SELDON_ID_LABEL).cloned())
            .collect();
            for id in ids {
                self.watch_pods_labelled(&id);
            }
        }
        self.pod_keys
            .iter()
            .flat_map(|k| store.indexed(k))
            .filter_map(|p| p.issue.clone())
            .collect()
    }

    /// Also wakes on (and [`ObjectWatch::events`] returns) the Events under `key`.
    fn follow_events_keyed(&mut self, key: &str) {
        if let Some(s) = &self.stores.events
            && self.event_keys.insert(key.to_owned())
        {
            self.registrations.push(s.register(key, &self.wakeup));
        }
    }

    /// Also follows the Events about Deployment `name`, its ReplicaSets and their pods.
    pub(crate) fn follow_deployment_events(&mut self, name: &str) {
        for key in deployment_event_keys(name) {
            self.follow_events_keyed(&key);
        }
    }

    /// The Events about the SeldonDeployment and the Deployments followed so far, each once
    /// (a pod's Event can be filed under two keys this reader follows).
    pub(crate) fn events(&self) -> Vec<Arc<EventSummary>> {
        let Some(store) = &self.stores.events else {
            return Vec::new();
        };
        let mut events: Vec<Arc<EventSummary>> = self
            .event_keys
            .iter()
            .flat_map(|k| store.indexed(k))
            .collect();
        events.sort_by_key(Arc::as_ptr);
        events.dedup_by(|a, b| Arc::ptr_eq(a, b));
        events
    }

    /// Whether the Event store has listed.
    pub(crate) fn events_synced(&self) -> bool {
        self.stores.events.as_ref().is_some_and(|s| s.is_synced())
    }

    /// The highest resourceVersion the Event store has seen.
    pub(crate) fn events_revision(&self) -> u64 {
        self.stores.events.as_ref().map_or(0, |s| s.revision())
    }

    /// How many times this reader was woken.
    #[cfg(test)]
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeup.count()
    }
}
