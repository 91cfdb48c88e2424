//! Broken pods: telling "still coming up" from "cannot come up", so a wait stops early.
//!
//! A crash-looping model, an image that cannot be pulled, or a quota that forbids the pods
//! leaves the SeldonDeployment `Available` (old pods still serve) or `Creating` until the
//! Deployment's progress deadline (600 s by default), long after the cause is plain to see.
//! This module reads the cause from the pods and Deployments, as pure functions:
//!
//! - [`pod_issue`] classifies one pod on its own (done once per watch item, so a wait's
//!   work per item stays O(1));
//! - [`assess`] keeps the issues of pods that belong to the newest ReplicaSet of one of the
//!   Deployments, and adds the Deployments' own failures (`ReplicaFailure`, such as
//!   `FailedCreate` from a quota or an admission webhook, and `ProgressDeadlineExceeded`).
//!
//! Broken: a container waiting with `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`,
//! `CreateContainerConfigError` or `CreateContainerError`; `CrashLoopBackOff`, with its last
//! exit code. A container that has restarted and is not ready is only *restarted*: a model
//! killed once (an `OOMKilled`, a liveness probe during a slow first load) that then loads for
//! minutes is not a crash loop; the wait counts it as broken only while its restart count keeps
//! growing (see `judge::wait`). Not broken but shown as the blocker: `Unschedulable` (an
//! autoscaler may add a node). The caller applies a grace period, per pod and cause: a broken
//! state must persist before a wait gives up on it.

use std::borrow::Borrow;

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

pub(crate) use crate::error::Broken;
use crate::judge::readiness::Readiness;
use crate::model::pod_issue::Kind;
use crate::model::pod_issue::PodIssue;
#[cfg(test)]
use crate::model::pod_issue::pod_issue;

/// The broken and the blocked pods of one SeldonDeployment's newest ReplicaSets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Assessment {
    /// Causes that end a wait once they outlast the grace period, in a stable order.
    pub broken: Vec<Broken>,
    /// Causes that hold pods up but may resolve (`Unschedulable`).
    pub blocked: Vec<Broken>,
    /// Containers that restarted and are not ready (not in `CrashLoopBackOff`), with their
    /// restart counts: broken only while the count keeps growing, which takes more than one
    /// look to tell.
    pub restarted: Vec<Broken>,
}

impl Assessment {
    /// Nothing wrong.
    #[cfg(test)]
    fn is_clear(&self) -> bool {
        self.broken.is_empty() && self.blocked.is_empty() && self.restarted.is_empty()
    }

    /// The cause to show first: a broken one, else a blocker, else a restarted container.
    #[must_use]
    pub(crate) fn first(&self) -> Option<&Broken> {
        self.broken
            .first()
            .or(self.blocked.first())
            .or(self.restarted.first())
    }
}

/// The issues of pods in the newest ReplicaSet of one of `deployments` (which must be the
/// SeldonDeployment's own), plus the Deployments' own failures.
///
/// "Newest ReplicaSet": a pod belongs to Deployment `D` when its owning ReplicaSet is named
/// `D-<pod-template-hash>`. The Deployment controller names its new ReplicaSet in the
/// `Progressing` condition's message (`ReplicaSet "D-5f7c…" is progressing.`, `… has timed
/// out progressing.`, `Created new replica set "…"`); once the Deployment's status has
/// observed its generation, that name is authoritative, and it is read from data the wait
/// already watches (no ReplicaSet watch, and no need to recompute Kubernetes' template hash,
/// which hashes Go's in-memory form of the template). When it cannot be read (status not
/// yet observed, no progress deadline), a pod counts as new when every container of the
/// Deployment's template runs in it with the template's image: a rollout that changes only
/// labels or env then also counts old pods, which the grace period and the controller's
/// next status write soon settle.
#[must_use]
pub(crate) fn assess<'a>(
    issues: impl IntoIterator<Item = &'a PodIssue>,
    deployments: &[impl Borrow<Deployment>],
) -> Assessment {
    let deployments: Vec<&Deployment> = deployments.iter().map(Borrow::borrow).collect();
    let mut out = Assessment::default();
    for &d in &deployments {
        if let Some(b) = deployment_failure(d) {
            out.broken.push(b);
        }
    }
    for issue in issues {
        let Some(d) = deployments.iter().find(|d| owns(d, issue)) else {
            continue;
        };
        if !is_newest(d, issue) {
            continue;
        }
        let mut cause = issue.cause.clone();
        cause.deployment = d.metadata.name.clone().unwrap_or_default();
        match issue.kind {
            Kind::Broken => out.broken.push(cause),
            Kind::Restarted => out.restarted.push(cause),
            Kind::Blocker => out.blocked.push(cause),
        }
    }
    out
}

fn owns(d: &Deployment, issue: &PodIssue) -> bool {
    let (Some(name), Some(hash)) = (d.metadata.name.as_deref(), issue.hash.as_deref()) else {
        return false;
    };
    issue
        .owner
        .strip_suffix(hash)
        .and_then(|p| p.strip_suffix('-'))
        == Some(name)
}

fn is_newest(d: &Deployment, issue: &PodIssue) -> bool {
    if let Some(rs) = new_replica_set(d) {
        return rs == issue.owner;
    }
    let Some(template) = d.spec.template.spec.as_ref() else {
        return true;
    };
    template.containers.iter().all(|c| {
        c.image
            .as_ref()
            .is_none_or(|image| issue.images.get(&c.name) == Some(image))
    })
}

/// The Deployment's new ReplicaSet as its `Progressing` condition names it, when the status
/// describes the current generation.
pub(crate) fn new_replica_set(d: &Deployment) -> Option<&str> {
    let status = d.status.as_ref()?;
    if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return None;
    }
    let c = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some("Progressing"))?;
    let message = c.message.as_deref()?;
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(&message[start..start + len])
}

/// `ReplicaFailure` (pods cannot be created: quota, admission webhook) or
/// `ProgressDeadlineExceeded` on a Deployment.
fn deployment_failure(d: &Deployment) -> Option<Broken> {
    let conditions = d.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| {
        let is = |t: &str, s: &str| c.type_.as_deref() == Some(t) && c.status.as_deref() == Some(s);
        is("ReplicaFailure", "True")
            || (is("Progressing", "False")
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    })?;
    Some(Broken {
        deployment: d.metadata.name.clone().unwrap_or_default(),
        pod: None,
        container: None,
        reason: c.reason.clone().unwrap_or_else(|| "ReplicaFailure".into()),
        message: c.message.clone().unwrap_or_default(),
        exit_code: None,
        restarts: None,
    })
}

/// Shows the first cause in a readiness that is not ready: on the row of its Deployment and
/// in the overall reason (so the live progress and a timeout message name it). A broken
/// cause comes before a blocker, and a blocker before a restarted container
/// ([`Assessment::first`]).
pub(crate) fn annotate(r: &mut Readiness, a: &Assessment) {
    let Some(cause) = a.first() else {
        return;
    };
    let text = cause.to_string();
    if let Some(row) = r.components.iter_mut().find(|c| c.name == cause.deployment) {
        row.ready = false;
        row.reason = Some(match row.reason.take() {
            Some(why) => format!("{why}; {text}"),
            None => text.clone(),
        });
    }
    r.reason = Some(match r.reason.take() {
        Some(why) if !why.contains(&text) => format!("{why}; {text}"),
        Some(why) => why,
        None => text,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pod_issue::FATAL_WAITING;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::{Value, json};

    /// Deployment `d` at generation 1, its template running `image`, its new ReplicaSet
    /// `d-<new_hash>` per its Progressing condition (none if `new_hash` is empty).
    fn dep(new_hash: &str, image: &str, extra_conditions: Value) -> Deployment {
        let mut conditions = extra_conditions.as_array().cloned().unwrap_or_default();
        if !new_hash.is_empty() {
            conditions.push(json!({"type": "Progressing", "status": "True",
                "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"d-{new_hash}\" is progressing.")}));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 1},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "model", "image": image}]}}},
            "status": {"observedGeneration": 1, "conditions": conditions}
        }))
        .unwrap()
    }

    /// Pod `name` of ReplicaSet `d-<hash>` running `image`, with these container statuses
    /// and conditions.
    fn pod(name: &str, hash: &str, image: &str, statuses: Value, conditions: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"pod-template-hash": hash},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("d-{hash}"), "uid": "rs", "controller": true}]},
            "spec": {"containers": [{"name": "model", "image": image}]},
            "status": {"containerStatuses": statuses, "conditions": conditions}
        }))
        .unwrap()
    }

    fn waiting(reason: &str, message: &str) -> Value {
        json!([{"name": "model", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}}}])
    }

    fn crash_looping(restarts: i32, last_reason: &str, code: i32) -> Value {
        json!([{"name": "model", "image": "i", "imageID": "", "ready": false, "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 10s restarting failed container=model pod=p"}},
                "lastState": {"terminated": {"exitCode": code, "reason": last_reason}}}])
    }

    fn running(ready: bool, restarts: i32, last: Value) -> Value {
        json!([{"name": "model", "image": "i", "imageID": "", "ready": ready, "restartCount": restarts,
                "state": {"running": {}}, "lastState": last}])
    }

    fn assess_pods(pods: &[Pod], deps: &[Deployment]) -> Assessment {
        let issues: Vec<PodIssue> = pods.iter().filter_map(pod_issue).collect();
        assess(&issues, deps)
    }

    #[test]
    fn each_fatal_waiting_reason_is_broken_naming_pod_container_and_message() {
        for reason in FATAL_WAITING {
            let p = pod("p", "new", "i:1", waiting(reason, "the why"), json!([]));
            let a = assess_pods(&[p], &[dep("new", "i:1", json!([]))]);
            assert_eq!(a.broken.len(), 1, "{reason}");
            let b = &a.broken[0];
            assert_eq!(
                (b.pod.as_deref(), b.container.as_deref()),
                (Some("p"), Some("model"))
            );
            assert_eq!((b.reason.as_str(), b.message.as_str()), (reason, "the why"));
            assert_eq!(b.deployment, "d");
            assert_eq!(
                b.to_string(),
                format!("pod p container model: {reason}: the why")
            );
        }
    }

    #[test]
    fn crash_loop_back_off_carries_the_last_exit_code() {
        let p = pod("p", "new", "i:1", crash_looping(3, "Error", 1), json!([]));
        let a = assess_pods(&[p], &[dep("new", "i:1", json!([]))]);
        let b = &a.broken[0];
        assert_eq!(b.reason, "CrashLoopBackOff");
        assert_eq!((b.exit_code, b.restarts), (Some(1), Some(3)));
        let text = b.to_string();
        assert!(
            text.contains("back-off 10s") && text.contains("last exit code 1"),
            "{text}"
        );
    }

    #[test]
    fn a_restarted_container_that_is_not_ready_is_restarted_not_broken_with_its_count() {
        // Killed once, now loading its model: not a crash loop by itself (the wait judges
        // whether its restart count keeps growing).
        let last = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
        let p = pod(
            "p",
            "new",
            "i:1",
            running(false, 2, last.clone()),
            json!([]),
        );
        let a = assess_pods(&[p], &[dep("new", "i:1", json!([]))]);
        assert!(a.broken.is_empty(), "{a:?}");
        let b = &a.restarted[0];
        assert_eq!((b.reason.as_str(), b.exit_code), ("OOMKilled", Some(137)));
        assert_eq!(b.restarts, Some(2));
        assert!(b.message.contains("restarted 2 times"), "{}", b.message);
        assert_eq!(a.first(), Some(b));

        // Restarted once, then ready: it serves, nothing is wrong.
        let p = pod("p", "new", "i:1", running(true, 1, last), json!([]));
        assert!(pod_issue(&p).is_none());
    }

    #[test]
    fn a_container_that_cannot_come_up_outweighs_a_restarted_one_in_the_same_pod() {
        let last = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
        let mut statuses = running(false, 1, last);
        statuses.as_array_mut().unwrap().extend(
            waiting("ImagePullBackOff", "no")
                .as_array()
                .cloned()
                .unwrap(),
        );
        statuses[1]["name"] = json!("sidecar");
        let p = pod("p", "new", "i:1", statuses, json!([]));
        let a = assess_pods(&[p], &[dep("new", "i:1", json!([]))]);
        assert!(a.restarted.is_empty(), "{a:?}");
        assert_eq!(a.broken[0].container.as_deref(), Some("sidecar"));
    }

    #[test]
    fn failed_create_on_the_deployment_is_broken_with_the_servers_message() {
        let quota = "pods \"d-new-x\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=0, limited: pods=0";
        let d = dep(
            "new",
            "i:1",
            json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": quota}]),
        );
        let a = assess_pods(&[], &[d]);
        let b = &a.broken[0];
        assert_eq!(
            (b.reason.as_str(), b.message.as_str()),
            ("FailedCreate", quota)
        );
        assert_eq!(b.pod, None);
        assert!(
            b.to_string().starts_with(
                "Deployment d: FailedCreate: pods \"d-new-x\" is forbidden: exceeded quota: q"
            ),
            "{b}"
        );
    }

    #[test]
    fn progress_deadline_exceeded_is_broken() {
        let mut d = dep("", "i:1", json!([]));
        d.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(json!({"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"d-new\" has timed out progressing."}))
            .unwrap(),
        ]);
        let a = assess_pods(&[], &[d]);
        assert_eq!(a.broken[0].reason, "ProgressDeadlineExceeded");
        assert!(a.broken[0].message.contains("timed out progressing"));
    }

    /// Pod `p-old` of ReplicaSet hash `old`, image `i:1`, crash-looping.
    fn old_pod_crash_looping() -> Pod {
        pod(
            "p-old",
            "old",
            "i:1",
            crash_looping(5, "Error", 1),
            json!([]),
        )
    }

    #[test]
    fn an_old_replica_sets_pod_crash_looping_while_new_pods_are_fine_is_not_broken() {
        // Same image in both ReplicaSets (a rollout that changed only env or labels): the
        // Progressing condition alone says which one is new.
        let old = old_pod_crash_looping();
        let new = pod(
            "p-new",
            "new",
            "i:1",
            running(true, 0, json!({})),
            json!([]),
        );
        let a = assess_pods(&[old.clone(), new], &[dep("new", "i:1", json!([]))]);
        assert!(a.is_clear(), "{a:?}");

        // Once the crashing ReplicaSet is the new one, it counts.
        let a = assess_pods(&[old], &[dep("old", "i:1", json!([]))]);
        assert_eq!(a.broken[0].pod.as_deref(), Some("p-old"));
    }

    #[test]
    fn without_a_progressing_condition_the_template_image_decides() {
        let old = old_pod_crash_looping();
        let new = pod(
            "p-new",
            "new",
            "i:2",
            waiting("ErrImagePull", "no i:2"),
            json!([]),
        );
        let a = assess_pods(&[old, new], &[dep("", "i:2", json!([]))]);
        assert_eq!(a.broken.len(), 1, "{a:?}");
        assert_eq!(a.broken[0].pod.as_deref(), Some("p-new"));
    }

    #[test]
    fn a_stale_deployment_status_does_not_name_the_new_replica_set() {
        let mut d = dep("old", "i:2", json!([]));
        d.metadata.generation = Some(2);
        // The condition still names the old ReplicaSet, but describes generation 1: the
        // image decides, and the old pod runs the old image.
        let old = old_pod_crash_looping();
        assert!(assess_pods(&[old], &[d]).is_clear());
    }

    #[test]
    fn unschedulable_is_a_blocker_not_a_failure() {
        let cond = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu."}]);
        let p = pod("p", "new", "i:1", json!([]), cond);
        let a = assess_pods(&[p], &[dep("new", "i:1", json!([]))]);
        assert!(a.broken.is_empty());
        assert_eq!(a.blocked.len(), 1);
        assert_eq!(
            a.blocked[0].to_string(),
            "pod p: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."
        );
    }

    #[test]
    fn pods_of_other_deployments_or_being_deleted_are_ignored() {
        let mut p = pod("p", "new", "i:1", crash_looping(3, "Error", 1), json!([]));
        let mut other = dep("new", "i:1", json!([]));
        other.metadata.name = Some("e".into());
        assert!(assess_pods(std::slice::from_ref(&p), &[other]).is_clear());
        // A name that merely starts like the Deployment's does not belong to it.
        let mut longer = dep("new", "i:1", json!([]));
        longer.metadata.name = Some("d-n".into());
        assert!(assess_pods(std::slice::from_ref(&p), &[longer]).is_clear());
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert!(pod_issue(&p).is_none());
    }

    #[test]
    fn a_pod_that_is_coming_up_normally_has_no_issue() {
        let pending = pod(
            "p",
            "new",
            "i:1",
            waiting("ContainerCreating", ""),
            json!([]),
        );
        assert!(pod_issue(&pending).is_none());
        let ready = pod("p", "new", "i:1", running(true, 0, json!({})), json!([]));
        assert!(pod_issue(&ready).is_none());
    }

    #[test]
    fn annotate_names_the_cause_on_its_deployments_row_and_in_the_reason() {
        use crate::judge::readiness::{Verdict, one_component};
        let mut r = one_component(Verdict::NotReady, "Creating");
        r.components[0].reason = Some("0/1 available (1 updated, 1 current)".into());
        let cond = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available"}]);
        let p = pod("p", "new", "i:1", json!([]), cond);
        let a = assess_pods(&[p], &[dep("new", "i:1", json!([]))]);
        annotate(&mut r, &a);
        let want = "pod p: Unschedulable: 0/1 nodes are available";
        assert!(r.summary().contains(want), "{}", r.summary());
        assert!(
            r.components[0].reason.as_deref().unwrap().ends_with(want),
            "{r:?}"
        );
    }
}
