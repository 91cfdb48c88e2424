//! What one pod's status says is wrong with it, read on its own: a container that cannot
//! start (image pull, config), a crash loop, a restart, or a pod the scheduler cannot place.
//! These are facts, judged once per watch item (so the cache can keep them instead of the
//! pod); whether they end a wait is [`crate::judge::pods`]' and `judge`'s business.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Waiting reasons that no amount of waiting fixes by itself.
pub(crate) const FATAL_WAITING: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The label the Deployment controller puts on a ReplicaSet and its pods.
const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

pub(crate) use crate::error::Broken;

/// What one pod has wrong with it, before knowing whether its ReplicaSet is the newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodIssue {
    /// The owning ReplicaSet's name.
    pub(crate) owner: String,
    /// The `pod-template-hash` label.
    pub(crate) hash: Option<String>,
    /// Container name → image, for the fallback comparison with the Deployment's template.
    pub(crate) images: BTreeMap<String, String>,
    /// How bad it is.
    pub(crate) kind: Kind,
    /// The cause; `deployment` is filled in by [`crate::judge::pods::assess`].
    pub(crate) cause: Broken,
}

/// How bad a pod's issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// It cannot come up while this lasts.
    Broken,
    /// A container restarted and is not ready: broken only if it keeps restarting.
    Restarted,
    /// It is held up (`Unschedulable`), which may resolve.
    Blocker,
}

/// Classifies one pod on its own; `None` when nothing is wrong with it (or it is being
/// deleted, or no ReplicaSet owns it).
#[must_use]
pub(crate) fn pod_issue(pod: &Pod) -> Option<PodIssue> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.kind == "ReplicaSet" && r.controller == Some(true))?
        .name
        .clone();
    let status = pod.status.as_ref()?;
    let name = pod.metadata.name.clone();
    let init = status.init_container_statuses.iter().flatten();
    let main = status.container_statuses.iter().flatten();
    let mut container_cause: Option<(Kind, Cause)> = None;
    for (c, is_init) in init.map(|c| (c, true)).chain(main.map(|c| (c, false))) {
        // A container that cannot come up outweighs one that merely restarted.
        match container_cause_of(c, is_init) {
            Some(found) if found.0 == Kind::Broken => {
                container_cause = Some(found);
                break;
            }
            Some(found) if container_cause.is_none() => container_cause = Some(found),
            _ => {}
        }
    }
    let (kind, cause) = match container_cause {
        Some(found) => found,
        None => {
            let c = status.conditions.iter().flatten().find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })?;
            let cause = Cause {
                reason: "Unschedulable".to_owned(),
                message: c.message.clone().unwrap_or_default(),
                container: None,
                exit_code: None,
                restarts: None,
            };
            (Kind::Blocker, cause)
        }
    };
    let images = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| Some((c.name.clone(), c.image.clone()?)))
        .collect();
    Some(PodIssue {
        owner,
        hash: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(TEMPLATE_HASH_LABEL).cloned()),
        images,
        kind,
        cause: Broken {
            deployment: String::new(),
            pod: name,
            container: cause.container,
            reason: cause.reason,
            message: cause.message,
            exit_code: cause.exit_code,
            restarts: cause.restarts,
        },
    })
}

/// What one container has wrong with it.
struct Cause {
    reason: String,
    message: String,
    container: Option<String>,
    exit_code: Option<i32>,
    restarts: Option<i32>,
}

fn container_cause_of(c: &ContainerStatus, is_init: bool) -> Option<(Kind, Cause)> {
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let waiting_reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or("");
    let waiting_message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
    let cause = |kind, reason: &str, message: String| {
        let cause = Cause {
            reason: reason.to_owned(),
            message,
            container: Some(c.name.clone()),
            exit_code: last.map(|t| t.exit_code),
            restarts: (c.restart_count > 0).then_some(c.restart_count),
        };
        Some((kind, cause))
    };
    if FATAL_WAITING.contains(&waiting_reason) {
        return cause(Kind::Broken, waiting_reason, waiting_message);
    }
    if waiting_reason == "CrashLoopBackOff" {
        let mut message = waiting_message;
        if let Some(why) = last.and_then(|t| t.reason.as_deref()) {
            message = join(&format!("last terminated: {why}"), &message);
        }
        return cause(Kind::Broken, "CrashLoopBackOff", message);
    }
    // Between two crashes a crash-looping container is briefly running (or terminated), but so
    // is a model that was killed once and is still loading: only a growing restart count
    // tells them apart, which the wait judges over time. Init containers are judged by their
    // waiting reasons only (a finished one is not ready).
    if !is_init && c.restart_count > 0 && !c.ready {
        let t = last?;
        let reason = t.reason.clone().unwrap_or_else(|| "Error".to_owned());
        let message = format!(
            "restarted {} time{}{}",
            c.restart_count,
            if c.restart_count == 1 { "" } else { "s" },
            t.message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!("; {m}"))
                .unwrap_or_default()
        );
        return cause(Kind::Restarted, &reason, message);
    }
    None
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_owned(),
        (true, false) => b.to_owned(),
        (false, false) => format!("{b} ({a})"),
    }
}
