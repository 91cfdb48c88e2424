//! The readiness predicate: "this SeldonDeployment is ready at the desired replica counts".
//!
//! The v1 operator never sets `status.observedGeneration`, so `status.state == Available` can
//! describe the spec before a scale. The predicate therefore also checks the child Deployments
//! (owned by the SeldonDeployment's UID), which do carry `observedGeneration`:
//!
//! 1. the SeldonDeployment exists with the expected UID and is not being deleted;
//! 2. `status.state` is `Available` (`Failed` is reported as [`Verdict::Failed`]);
//! 3. every expected component has an owned Deployment, none of them being deleted;
//! 4. each such Deployment has `spec.replicas == desired`, `observedGeneration >= generation`,
//!    and `replicas == updatedReplicas == availableReplicas == desired` (missing counts are 0);
//! 5. the operator's own `status.deploymentStatus[<deployment>]` agrees (`availableReplicas ==
//!    desired`), so its `Available` was written after the Deployments reached the count.
//!
//! Owned Deployments that match no component (an explainer, a separate orchestrator) must be
//! rolled out at their own `spec.replicas`.
//!
//! A rollout ([`Target::Rollout`], after `apply`) also requires:
//!
//! 6. each Deployment's pod template runs the images the spec names for its containers;
//! 7. no Deployment of a component or predictor the spec no longer has remains;
//! 8. after an update, a status the operator wrote after it (a newer resourceVersion). Before
//!    that, `Available` and even `Failed` describe the previous spec.

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use serde_json::Value;

use crate::replicas::{Component, Target};

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Ready,
    /// Still converging.
    NotReady,
    /// The operator reports `Failed` (may be transient; the caller applies a grace period).
    Failed,
    /// The object is gone, replaced (other UID) or being deleted.
    Gone,
}

/// Readiness of one Deployment/component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentReadiness {
    /// Deployment name (or the component label when no Deployment exists yet).
    pub name: String,
    /// Predictor, when the Deployment maps to a component of the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictor: Option<String>,
    /// Replica count waited for; `None` for an autoscaled component.
    pub desired: Option<i32>,
    /// Available replicas (Deployment status).
    pub available: i32,
    /// Replicas running the Deployment's current pod template.
    pub updated: i32,
    /// Pods of older ReplicaSets still there (`replicas - updatedReplicas`).
    pub old: i32,
    /// Whether this component passes.
    pub ready: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ComponentReadiness {
    /// `available/desired`, e.g. `1/2` (`1/auto` for an autoscaled component).
    #[must_use]
    pub fn ratio(&self) -> String {
        match self.desired {
            Some(d) => format!("{}/{d}", self.available),
            None => format!("{}/auto", self.available),
        }
    }

    /// The ratio, plus `(U updated, O old)` while a rollout is under way.
    #[must_use]
    pub fn progress(&self) -> String {
        let rolling = self.old > 0 || self.desired.is_some_and(|d| self.updated < d);
        if rolling && self.reason.is_some() {
            format!(
                "{} ({} updated, {} old)",
                self.ratio(),
                self.updated,
                self.old
            )
        } else {
            self.ratio()
        }
    }
}

/// The result of evaluating the predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Overall verdict.
    pub verdict: Verdict,
    /// `status.state` as reported by the operator.
    pub state: Option<String>,
    /// `status.description` (set with `Failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The first reason the verdict is not `Ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per component.
    pub components: Vec<ComponentReadiness>,
}

impl Readiness {
    /// Whether the verdict is [`Verdict::Ready`].
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.verdict == Verdict::Ready
    }

    /// One line for progress output and timeout messages:
    /// `state Creating; sklearn-default-0-classifier 1/2 (1/2 available)`.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut s = format!("state {}", self.state.as_deref().unwrap_or("<none>"));
        let comps: Vec<String> = self
            .components
            .iter()
            .map(|c| format!("{} {}", c.name, c.progress()))
            .collect();
        if !comps.is_empty() {
            s.push_str("; ");
            s.push_str(&comps.join(", "));
        }
        if let Some(r) = &self.reason {
            s.push_str(" (");
            s.push_str(r);
            s.push(')');
        }
        s
    }

    fn gone(how: &str) -> Self {
        Readiness {
            verdict: Verdict::Gone,
            state: None,
            description: None,
            reason: Some(how.to_owned()),
            components: Vec::new(),
        }
    }
}

/// Whether `d` has an ownerReference to the object with `uid`.
#[must_use]
pub fn owned_by(d: &Deployment, uid: &str) -> bool {
    d.metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.uid == uid))
}

/// Evaluates the predicate on one consistent view.
///
/// `sdep` is the SeldonDeployment as JSON (`None` if absent); `uid` is the UID this run
/// tracks; `deployments` may include Deployments not owned by it (they are filtered out);
/// `components` come from [`crate::replicas::components`] and `target` says which counts to
/// expect.
///
/// # Examples
///
/// ```
/// use seldon_deploy::readiness::{evaluate, Verdict};
/// use seldon_deploy::replicas::{components, Target};
///
/// let sdep = serde_json::json!({
///     "metadata": {"name": "s", "uid": "u1"},
///     "spec": {"predictors": [{"name": "p", "graph": {"name": "g"}}]},
///     "status": {"state": "Available"}
/// });
/// // No Deployment exists yet, so a stale "Available" is not enough.
/// let r = evaluate(Some(&sdep), "u1", &[], &components(&sdep), Target::Initial);
/// assert_eq!(r.verdict, Verdict::NotReady);
/// ```
#[must_use]
pub fn evaluate(
    sdep: Option<&Value>,
    uid: &str,
    deployments: &[Deployment],
    components: &[Component],
    target: Target,
) -> Readiness {
    let Some(sdep) = sdep else {
        return Readiness::gone("deleted");
    };
    if sdep.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
        return Readiness::gone("replaced");
    }
    if sdep
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Readiness::gone("marked for deletion");
    }
    let state = sdep
        .pointer("/status/state")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let description = sdep
        .pointer("/status/description")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let dep_status = sdep.pointer("/status/deploymentStatus");
    // Rule 8: a status from before the update describes the previous spec.
    let stale_status = match target {
        Target::Rollout {
            status_after: Some(after),
        } => crate::apply::revision(
            sdep.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
        )
        .is_none_or(|rv| rv <= after),
        _ => false,
    };
    let rollout = matches!(target, Target::Rollout { .. });

    let mut owned: Vec<&Deployment> = deployments.iter().filter(|d| owned_by(d, uid)).collect();
    owned.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let assignment = assign(components, &owned);

    let mut rows = Vec::new();
    for (ci, comp) in components.iter().enumerate() {
        let desired = comp.desired(target);
        match assignment[ci] {
            Some(di) => rows.push(check_deployment(
                owned[di],
                Some(comp.predictor.clone()),
                desired,
                dep_status,
                if rollout { &comp.images } else { &[] },
            )),
            None => rows.push(ComponentReadiness {
                name: comp.label(),
                predictor: Some(comp.predictor.clone()),
                desired,
                available: 0,
                updated: 0,
                old: 0,
                ready: false,
                reason: Some("no Deployment yet".into()),
            }),
        }
    }
    for (di, d) in owned.iter().enumerate() {
        if !assignment.contains(&Some(di)) {
            let mut row = check_deployment(d, None, None, dep_status, &[]);
            if rollout && !is_auxiliary(d) {
                // Rule 7: a component the spec no longer has.
                row.ready = false;
                row.reason = Some(
                    "left over from the previous spec; waiting for the operator to delete it"
                        .into(),
                );
            }
            rows.push(row);
        }
    }

    let reason = match state.as_deref() {
        _ if stale_status => rows
            .iter()
            .find_map(|r| r.reason.as_ref().map(|why| format!("{}: {why}", r.name)))
            .or_else(|| {
                Some("the operator has not written a status since the update yet".to_owned())
            }),
        Some("Failed") => {
            return Readiness {
                verdict: Verdict::Failed,
                reason: Some(format!(
                    "operator reports Failed: {}",
                    description.as_deref().unwrap_or("no description")
                )),
                state,
                description,
                components: rows,
            };
        }
        Some("Available") => rows
            .iter()
            .find_map(|r| r.reason.as_ref().map(|why| format!("{}: {why}", r.name))),
        None => Some("the operator has not reported a status yet".to_owned()),
        Some(other) => Some(format!("state is {other}")),
    };
    Readiness {
        verdict: if reason.is_none() {
            Verdict::Ready
        } else {
            Verdict::NotReady
        },
        state,
        description,
        reason,
        components: rows,
    }
}

/// Maps components to owned Deployments: by predicted name first; then, if exactly as many
/// unmatched components as unmatched Deployments remain (hashed names), in order.
fn assign(components: &[Component], owned: &[&Deployment]) -> Vec<Option<usize>> {
    let mut taken = vec![false; owned.len()];
    let mut out: Vec<Option<usize>> = components
        .iter()
        .map(|c| {
            let want = c.deployment_name.as_deref()?;
            let i = owned
                .iter()
                .position(|d| d.metadata.name.as_deref() == Some(want))?;
            taken[i] = true;
            Some(i)
        })
        .collect();
    let free: Vec<usize> = (0..owned.len())
        .filter(|i| !taken[*i] && !is_auxiliary(owned[*i]))
        .collect();
    let unmatched: Vec<usize> = (0..components.len())
        .filter(|i| out[*i].is_none())
        .collect();
    if !unmatched.is_empty() && free.len() == unmatched.len() {
        for (c, d) in unmatched.into_iter().zip(free) {
            out[c] = Some(d);
        }
    }
    out
}

/// Deployments the operator adds besides components: explainers and separate orchestrators.
fn is_auxiliary(d: &Deployment) -> bool {
    d.metadata
        .name
        .as_deref()
        .is_some_and(|n| n.ends_with("-explainer") || n.ends_with("-svc-orch"))
}

fn check_deployment(
    d: &Deployment,
    predictor: Option<String>,
    desired: Option<i32>,
    dep_status: Option<&Value>,
    images: &[(String, String)],
) -> ComponentReadiness {
    let name = d.metadata.name.clone().unwrap_or_default();
    let spec_replicas = d.spec.replicas.unwrap_or(1);
    let want = desired.unwrap_or(spec_replicas);
    let st = d.status.as_ref();
    let replicas = st.and_then(|s| s.replicas).unwrap_or(0);
    let updated = st.and_then(|s| s.updated_replicas).unwrap_or(0);
    let available = st.and_then(|s| s.available_replicas).unwrap_or(0);
    let observed = st.and_then(|s| s.observed_generation).unwrap_or(0);
    let generation = d.metadata.generation.unwrap_or(0);

    let reason = if d.metadata.deletion_timestamp.is_some() {
        Some("Deployment is being deleted".to_owned())
    } else if let Some(why) = template_lags(d, images) {
        Some(why)
    } else if spec_replicas != want {
        Some(format!(
            "Deployment spec.replicas is {spec_replicas}, waiting for the operator to set {want}"
        ))
    } else if observed < generation {
        Some(format!(
            "Deployment status is stale (observedGeneration {observed} < generation {generation})"
        ))
    } else if replicas != want || updated != want || available != want {
        Some(format!(
            "{available}/{want} available ({updated} updated, {replicas} current)"
        ))
    } else {
        operator_disagrees(dep_status, &name, want)
    };
    // Auxiliary Deployments show their own count; autoscaled components show "auto".
    let shown = if desired.is_some() || predictor.is_none() {
        Some(want)
    } else {
        None
    };
    ComponentReadiness {
        name,
        predictor,
        desired: shown,
        available,
        updated,
        old: (replicas - updated).max(0),
        ready: reason.is_none(),
        reason,
    }
}

/// Rule 6: why the Deployment's pod template does not run `images` yet, if it does not.
fn template_lags(d: &Deployment, images: &[(String, String)]) -> Option<String> {
    let containers = d
        .spec
        .template
        .spec
        .as_ref()
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    images.iter().find_map(|(name, image)| {
        let running = containers
            .iter()
            .find(|c| &c.name == name)
            .and_then(|c| c.image.as_deref());
        (running != Some(image.as_str())).then(|| match running {
            Some(old) => format!(
                "pod template runs {name} image {old}, waiting for the operator to roll out {image}"
            ),
            None => format!(
                "pod template has no container {name} yet, waiting for the operator to roll out {image}"
            ),
        })
    })
}

/// Checks the operator's copy of the counts, which it writes when it last judged readiness.
fn operator_disagrees(dep_status: Option<&Value>, name: &str, want: i32) -> Option<String> {
    let entry = dep_status.and_then(|m| m.get(name));
    let Some(entry) = entry else {
        return Some("not yet in the SeldonDeployment's status.deploymentStatus".into());
    };
    let count = |k: &str| entry.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (avail, reps) = (count("availableReplicas"), count("replicas"));
    if avail != i64::from(want) || (entry.get("replicas").is_some() && reps != i64::from(want)) {
        Some(format!(
            "SeldonDeployment status still reports {avail}/{want} available"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicas::components;
    use serde_json::json;

    const UID: &str = "uid-1";

    fn sdep(state: &str, dep_status: Value) -> Value {
        json!({
            "metadata": {"name": "s", "uid": UID},
            "spec": {"predictors": [
                {"name": "p", "replicas": 1, "componentSpecs": [
                    {"spec": {"containers": [{"name": "a"}]}},
                    {"replicas": 2, "spec": {"containers": [{"name": "b"}]}}
                ], "graph": {"name": "a"}}
            ]},
            "status": {"state": state, "deploymentStatus": dep_status}
        })
    }

    fn dep(
        name: &str,
        spec: i32,
        gen_: i64,
        observed: i64,
        reps: i32,
        upd: i32,
        avail: i32,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "generation": gen_,
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment", "name": "s", "uid": UID}]},
            "spec": {"replicas": spec, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "replicas": reps, "updatedReplicas": upd, "availableReplicas": avail}
        }))
        .unwrap()
    }

    fn status(a: i64, b: i64) -> Value {
        json!({"s-p-0-a": {"replicas": a, "availableReplicas": a}, "s-p-1-b": {"replicas": b, "availableReplicas": b}})
    }

    fn eval(s: &Value, deps: &[Deployment], t: Target) -> Readiness {
        evaluate(Some(s), UID, deps, &components(s), t)
    }

    #[test]
    fn ready_at_initial_counts() {
        let s = sdep("Available", status(1, 2));
        let deps = [
            dep("s-p-0-a", 1, 1, 1, 1, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::Ready, "{}", r.summary());
        assert_eq!(r.components[1].ratio(), "2/2");
    }

    #[test]
    fn stale_available_after_scale_is_not_ready() {
        // The scale was written; the operator's status and the Deployments still show the old counts.
        let s = sdep("Available", status(1, 2));
        let old = [
            dep("s-p-0-a", 1, 1, 1, 1, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        let r = eval(&s, &old, Target::Replicas(2));
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(
            r.reason.as_ref().unwrap().contains("spec.replicas is 1"),
            "{}",
            r.summary()
        );

        // Deployment spec updated, but its status has not been observed yet.
        let stale = [
            dep("s-p-0-a", 2, 2, 1, 1, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        let r = eval(&s, &stale, Target::Replicas(2));
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(
            r.reason.as_ref().unwrap().contains("observedGeneration"),
            "{}",
            r.summary()
        );

        // Deployments done, but the operator's Available still carries the old counts.
        let done = [
            dep("s-p-0-a", 2, 2, 2, 2, 2, 2),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        let r = eval(&s, &done, Target::Replicas(2));
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(
            r.reason
                .as_ref()
                .unwrap()
                .contains("status still reports 1/2")
        );

        let fresh = sdep("Available", status(2, 2));
        assert_eq!(
            eval(&fresh, &done, Target::Replicas(2)).verdict,
            Verdict::Ready
        );
    }

    #[test]
    fn surge_or_terminating_pods_block_readiness() {
        let s = sdep("Available", status(1, 2));
        let deps = [
            dep("s-p-0-a", 1, 1, 1, 2, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert_eq!(r.components[0].ratio(), "1/1");
        assert_eq!(r.components[0].progress(), "1/1 (1 updated, 1 old)");
        assert!(!r.components[0].ready);
    }

    #[test]
    fn missing_deployment_and_creating_state() {
        let s = sdep("Available", status(1, 2));
        let r = eval(&s, &[dep("s-p-0-a", 1, 1, 1, 1, 1, 1)], Target::Initial);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert_eq!(r.components[1].reason.as_deref(), Some("no Deployment yet"));
        assert!(r.summary().contains("s-p-1-b 0/2"), "{}", r.summary());

        let creating = sdep("Creating", status(1, 2));
        let deps = [
            dep("s-p-0-a", 1, 1, 1, 1, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        assert_eq!(
            eval(&creating, &deps, Target::Initial).reason.as_deref(),
            Some("state is Creating")
        );

        let mut nostatus = sdep("x", json!({}));
        nostatus.as_object_mut().unwrap().remove("status");
        assert!(
            eval(&nostatus, &deps, Target::Initial)
                .reason
                .unwrap()
                .contains("not reported")
        );
    }

    #[test]
    fn failed_carries_description() {
        let mut s = sdep("Failed", status(0, 0));
        s["status"]["description"] =
            json!("Deployment is no longer progressing and not available.");
        let r = eval(&s, &[], Target::Initial);
        assert_eq!(r.verdict, Verdict::Failed);
        assert_eq!(
            r.description.as_deref(),
            Some("Deployment is no longer progressing and not available.")
        );
    }

    #[test]
    fn gone_replaced_or_deleting() {
        let s = sdep("Available", status(1, 2));
        assert_eq!(
            evaluate(None, UID, &[], &[], Target::Initial).verdict,
            Verdict::Gone
        );
        let r = evaluate(Some(&s), "other", &[], &components(&s), Target::Initial);
        assert_eq!(r.verdict, Verdict::Gone);
        assert_eq!(r.reason.as_deref(), Some("replaced"));
        let mut del = s.clone();
        del["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(eval(&del, &[], Target::Initial).verdict, Verdict::Gone);
    }

    #[test]
    fn ownership_not_names_decides() {
        let s = sdep("Available", status(1, 2));
        let mut foreign = dep("s-p-0-a", 1, 1, 1, 1, 1, 1);
        foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into();
        let deps = [foreign, dep("s-p-1-b", 2, 1, 1, 2, 2, 2)];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert_eq!(r.components[0].reason.as_deref(), Some("no Deployment yet"));
    }

    #[test]
    fn deployment_being_deleted_is_not_ready() {
        let s = sdep("Available", status(1, 2));
        let mut d = dep("s-p-0-a", 1, 1, 1, 1, 1, 1);
        d.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        let r = eval(&s, &[d, dep("s-p-1-b", 2, 1, 1, 2, 2, 2)], Target::Initial);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(r.reason.unwrap().contains("being deleted"));
    }

    fn with_image(mut d: Deployment, container: &str, image: &str) -> Deployment {
        d.spec.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: container.into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        d
    }

    fn rollout_sdep(rv: &str, state: &str) -> Value {
        let mut s = sdep(state, status(1, 2));
        s["metadata"]["resourceVersion"] = json!(rv);
        s["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["image"] =
            json!("a:2");
        s["spec"]["predictors"][0]["componentSpecs"][1]["spec"]["containers"][0]["image"] =
            json!("b:1");
        s
    }

    #[test]
    fn rollout_waits_for_new_images_fresh_status_and_removed_components() {
        let after = Target::Rollout {
            status_after: Some(100),
        };
        let done = || {
            vec![
                with_image(dep("s-p-0-a", 1, 2, 2, 1, 1, 1), "a", "a:2"),
                with_image(dep("s-p-1-b", 2, 1, 1, 2, 2, 2), "b", "b:1"),
            ]
        };
        // Everything looks done, but the status is the one from before the update.
        let stale = rollout_sdep("100", "Available");
        let r = eval(&stale, &done(), after);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(r.reason.unwrap().contains("since the update"));
        // A Failed written before the update describes the old spec: not a failure yet.
        let r = eval(&rollout_sdep("90", "Failed"), &done(), after);
        assert_eq!(r.verdict, Verdict::NotReady);

        let fresh = rollout_sdep("101", "Available");
        assert_eq!(eval(&fresh, &done(), after).verdict, Verdict::Ready);
        // The same Deployments judged at their counts alone pass: images are rollout-only.
        let mut old = done();
        old[0] = with_image(dep("s-p-0-a", 1, 2, 2, 1, 1, 1), "a", "a:1");
        assert_eq!(eval(&fresh, &old, Target::Initial).verdict, Verdict::Ready);
        let r = eval(&fresh, &old, after);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(r.summary().contains("runs a image a:1"), "{}", r.summary());

        // A Deployment of a component the spec no longer has must be gone first.
        let mut extra = done();
        extra.push(dep("s-p-2-c", 1, 1, 1, 1, 1, 1));
        let r = eval(&fresh, &extra, after);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(r.reason.unwrap().contains("left over"));

        // Without an update (unchanged), any status will do.
        let unchanged = Target::Rollout { status_after: None };
        assert_eq!(eval(&stale, &done(), unchanged).verdict, Verdict::Ready);
    }

    #[test]
    fn hashed_names_fall_back_to_order_and_aux_deployments_must_roll_out() {
        let s = sdep(
            "Available",
            json!({"seldon-1": {"replicas": 1, "availableReplicas": 1},
            "seldon-2": {"replicas": 2, "availableReplicas": 2},
            "s-p-explainer": {"replicas": 1, "availableReplicas": 1, "explainerFor": "p"}}),
        );
        let mut comps = components(&s);
        for c in &mut comps {
            c.deployment_name = None;
        }
        let deps = [
            dep("seldon-1", 1, 1, 1, 1, 1, 1),
            dep("seldon-2", 2, 1, 1, 2, 2, 2),
            dep("s-p-explainer", 1, 1, 1, 1, 1, 0),
        ];
        let r = evaluate(Some(&s), UID, &deps, &comps, Target::Initial);
        assert_eq!(r.components.len(), 3);
        assert!(r.components[0].ready && r.components[1].ready);
        assert!(!r.components[2].ready);
        assert_eq!(r.verdict, Verdict::NotReady);
    }
}
