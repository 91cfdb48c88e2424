//! The readiness predicate: "this SeldonDeployment is ready at the desired replica counts".
//!
//! The v1 operator never sets `status.observedGeneration`, so `status.state == Available` can
//! describe the spec before a scale. The predicate therefore also checks the child Deployments
//! (owned by the SeldonDeployment's UID), which do carry `observedGeneration`:
//!
//! 1. the SeldonDeployment exists with the expected UID and is not being deleted;
//! 2. `status.state` is `Available` (`Failed` is reported as [`Verdict::Failed`], unless it is
//!    the operator's own shutdown, a description ending in `context canceled`);
//! 3. every expected component has an owned Deployment, none of them being deleted (paired by
//!    the operator's name for it, else by the containers of its pod template, never by the
//!    order of names);
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
//!    that, `Available` and even `Failed` describe the previous spec. The wait also accepts
//!    the other proofs that the operator has acted on the update ([`crate::judge::freshness`]); it
//!    then evaluates with `status_after: None`.

use std::borrow::Borrow;
use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use serde_json::Value;

use crate::model::components::{Component, Target};

/// The overall answer.
///
/// # Examples
///
/// ```
/// use k8s_openapi::api::apps::v1::Deployment;
/// use seldon_deploy::judge::readiness::{evaluate, Verdict};
/// use seldon_deploy::model::components::Target;
///
/// let none: &[Deployment] = &[];
/// let deleted = evaluate(None, "u1", none, &[], Target::Initial);
/// assert_eq!(deleted.verdict, Verdict::Gone);
/// let replaced = evaluate(Some(&serde_json::json!({"metadata": {"uid": "u2"}})), "u1", none, &[], Target::Initial);
/// assert_eq!((replaced.verdict, replaced.reason.as_deref()), (Verdict::Gone, Some("replaced")));
/// ```
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
///
/// # Examples
///
/// ```
/// use seldon_deploy::judge::readiness::ComponentReadiness;
///
/// let c = ComponentReadiness {
///     name: "iris-default-0-classifier".into(),
///     predictor: Some("default".into()),
///     desired: Some(2),
///     available: 1,
///     updated: 1,
///     old: 1,
///     ready: false,
///     reason: Some("1/2 available".into()),
/// };
/// assert_eq!(c.ratio(), "1/2");
/// assert_eq!(c.progress(), "1/2 (1 updated, 1 old)");
/// ```
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

    /// The ratio, plus `(U updated, O old)` while pods of an older ReplicaSet remain.
    #[must_use]
    pub fn progress(&self) -> String {
        if self.old > 0 && self.reason.is_some() {
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
///
/// # Examples
///
/// ```
/// use k8s_openapi::api::apps::v1::Deployment;
/// use seldon_deploy::judge::readiness::evaluate;
/// use seldon_deploy::model::components::{components, Target};
///
/// let sdep = serde_json::json!({
///     "metadata": {"name": "s", "uid": "u1"},
///     "spec": {"predictors": [{"name": "p", "graph": {"name": "g"}}]},
///     "status": {"state": "Creating"}
/// });
/// let none: &[Deployment] = &[];
/// let r = evaluate(Some(&sdep), "u1", none, &components(&sdep), Target::Initial);
/// assert!(!r.is_ready());
/// assert_eq!(r.summary(), "state Creating; s-p-0-g 0/1 (state is Creating)");
/// ```
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
pub(crate) fn owned_by(d: &Deployment, uid: &str) -> bool {
    d.metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.uid == uid))
}

/// Evaluates the predicate on one consistent view.
///
/// `sdep` is the SeldonDeployment as JSON (`None` if absent); `uid` is the UID this run
/// tracks; `deployments` (owned or in `Arc`s) may include Deployments not owned by it (they are filtered out);
/// `components` come from [`crate::model::components::components`] and `target` says which counts to
/// expect.
///
/// # Examples
///
/// ```
/// use k8s_openapi::api::apps::v1::Deployment;
/// use seldon_deploy::judge::readiness::{evaluate, Verdict};
/// use seldon_deploy::model::components::{components, Target};
///
/// let sdep = serde_json::json!({
///     "metadata": {"name": "s", "uid": "u1"},
///     "spec": {"predictors": [{"name": "p", "graph": {"name": "g"}}]},
///     "status": {"state": "Available"}
/// });
/// // No Deployment exists yet, so a stale "Available" is not enough.
/// let none: &[Deployment] = &[];
/// let r = evaluate(Some(&sdep), "u1", none, &components(&sdep), Target::Initial);
/// assert_eq!(r.verdict, Verdict::NotReady);
/// ```
#[must_use]
pub fn evaluate(
    sdep: Option<&Value>,
    uid: &str,
    deployments: &[impl Borrow<Deployment>],
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
        } => crate::names::revision_of(sdep).is_none_or(|rv| rv <= after),
        _ => false,
    };
    let rollout = matches!(target, Target::Rollout { .. });

    let (owned, assignment) = owned_and_assigned(sdep, uid, deployments, components);

    let mut rows = Vec::new();
    for (ci, comp) in components.iter().enumerate() {
        let desired = comp.desired(target);
        match assignment[ci] {
            Some(di) => rows.push(check_deployment(
                owned[di],
                Some(comp.predictor.clone()),
                desired,
                dep_status,
                rollout.then_some(comp),
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
            let mut row = check_deployment(d, None, None, dep_status, None);
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
        Some("Failed") if operator_interrupted(description.as_deref()) => Some(format!(
            "the operator stopped in the middle of a reconcile and wrote Failed ({}); waiting \
             for it to reconcile again",
            description.as_deref().unwrap_or_default()
        )),
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
        None => Some(no_status_reason(sdep)),
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

/// Whether a `Failed` status is the operator's own shutdown, not a verdict on the deployment.
///
/// The operator writes every error of a reconcile as `Failed` with the error as description,
/// and writes it with a context of its own. A reconcile cut off by the operator's shutdown
/// (a restart, a rollout of the operator) therefore leaves `Failed` with a description ending
/// in Go's `context canceled`, such as "client rate limiter Wait returned an error: context
/// canceled". Nothing is wrong with the deployment: the next operator rewrites the status when
/// it reconciles the object again, which under load can take longer than `--failed-grace`
/// (the chaos benchmark saw 41 such waits with operator restarts every 30 s).
fn operator_interrupted(description: Option<&str>) -> bool {
    description.is_some_and(|d| d.trim_end().ends_with("context canceled"))
}

/// Why there is no status yet. An operator handles an object labelled
/// `seldon.io/controller-id` only when it was started with that `CONTROLLER_ID`, and every
/// other operator skips it without a word, so a status may never come: say so.
fn no_status_reason(sdep: &Value) -> String {
    let label = sdep
        .pointer("/metadata/labels")
        .and_then(|l| l.get(CONTROLLER_ID_LABEL))
        .and_then(Value::as_str);
    match label {
        Some(id) => format!(
            "the operator has not reported a status yet; the object is labelled \
             {CONTROLLER_ID_LABEL}={id:?}, so only a Seldon operator started with \
             CONTROLLER_ID={id:?} handles it, and any other operator ignores it"
        ),
        None => "the operator has not reported a status yet".to_owned(),
    }
}

/// The label that assigns a SeldonDeployment to the operator with that `CONTROLLER_ID`.
const CONTROLLER_ID_LABEL: &str = "seldon.io/controller-id";

/// Maps components to owned Deployments (indices into `owned`).
///
/// First by the name the operator gives them (see [`crate::model::components`]), or its
/// `DEPLOYMENT_NAME_AS_PREFIX` form of a hashed one ([`prefixed`]). The rest (an operator
/// that names them otherwise) by what it puts in the pod template: a Deployment fits a
/// component when its template has every container of the component and, where the operator
/// set `PREDICTOR_ID` on a container, the component's predictor, and its name is not the
/// operator's name for another predictor/index (a Deployment left from an earlier spec). A
/// component is paired only with the one free Deployment it fits; one that fits none or
/// several is left unpaired (shown as not ready), never guessed: names and their order say
/// nothing about which component a hashed name belongs to.
/// The Deployments owned by `uid`, sorted by name, and which of them serves each component
/// (see [`assign`]).
pub(crate) fn owned_and_assigned<'d>(
    sdep: &Value,
    uid: &str,
    deployments: &'d [impl Borrow<Deployment>],
    components: &[Component],
) -> (Vec<&'d Deployment>, Vec<Option<usize>>) {
    let mut owned: Vec<&Deployment> = deployments
        .iter()
        .map(Borrow::borrow)
        .filter(|d| owned_by(d, uid))
        .collect();
    owned.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let sdep_name = sdep
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let assignment = assign(sdep_name, components, &owned);
    (owned, assignment)
}

pub(crate) fn assign(
    sdep_name: &str,
    components: &[Component],
    owned: &[&Deployment],
) -> Vec<Option<usize>> {
    let mut taken = vec![false; owned.len()];
    let mut out: Vec<Option<usize>> = components
        .iter()
        .map(|c| {
            let want = c.deployment_name.as_deref()?;
            let alt = prefixed(sdep_name, want);
            let i = owned.iter().position(|d| {
                let name = d.metadata.name.as_deref();
                name == Some(want) || (alt.is_some() && name == alt.as_deref())
            })?;
            taken[i] = true;
            Some(i)
        })
        .collect();
    for (i, d) in owned.iter().enumerate() {
        taken[i] |= is_auxiliary(d);
    }
    let predictors: BTreeSet<&str> = components.iter().map(|c| c.predictor.as_str()).collect();
    let candidate = |comp: &Component, d: &Deployment| {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        fits(comp, d) && !another_slot(sdep_name, &predictors, comp, name)
    };
    // Pairing one component can leave another with a single fit: repeat until nothing moves.
    loop {
        let mut moved = false;
        for (ci, comp) in components.iter().enumerate() {
            if out[ci].is_some() {
                continue;
            }
            let mut fits = (0..owned.len()).filter(|&di| !taken[di] && candidate(comp, owned[di]));
            if let (Some(di), None) = (fits.next(), fits.next()) {
                out[ci] = Some(di);
                taken[di] = true;
                moved = true;
            }
        }
        if !moved {
            return out;
        }
    }
}

/// With `DEPLOYMENT_NAME_AS_PREFIX=true` the operator names a hashed Deployment
/// `<sdep>-<md5>` instead of `seldon-<md5>`, when that fits in 63 characters.
fn prefixed(sdep_name: &str, predicted: &str) -> Option<String> {
    let hex = predicted.strip_prefix("seldon-")?;
    let name = format!("{sdep_name}-{hex}");
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && name.len() <= 63)
        .then_some(name)
}

/// Whether `name` is the operator's unhashed name for a predictor/index other than `comp`'s
/// (`<sdep>-<predictor>-<index>-…`).
fn another_slot(
    sdep_name: &str,
    predictors: &BTreeSet<&str>,
    comp: &Component,
    name: &str,
) -> bool {
    let mut other = false;
    for p in predictors {
        let Some(rest) = name.strip_prefix(&format!("{sdep_name}-{p}-")) else {
            continue;
        };
        let Some((index, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if *p == comp.predictor && index == comp.index {
            return false;
        }
        other = true;
    }
    other
}

/// Whether `d`'s pod template is the one the operator builds for `comp` (see [`assign`]).
fn fits(comp: &Component, d: &Deployment) -> bool {
    let Some(containers) = d.spec.template.spec.as_ref().map(|p| &p.containers) else {
        return false;
    };
    let has = |name: &String| containers.iter().any(|c| &c.name == name);
    let predictor_ok = containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .filter(|e| e.name == "PREDICTOR_ID")
        .all(|e| e.value.as_deref() == Some(comp.predictor.as_str()));
    !comp.containers.is_empty() && comp.containers.iter().all(has) && predictor_ok
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
    rollout_of: Option<&Component>,
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
    } else if let Some(why) = rollout_of.and_then(|c| template_lags(d, c)) {
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

/// Rule 6: why the Deployment's pod template is not yet the one the operator makes for `c`, as
/// far as it can be told from the spec: the images its containers name, and the labels and
/// annotations its `metadata` sets (so a change of either alone is waited for too).
fn template_lags(d: &Deployment, c: &Component) -> Option<String> {
    let meta = &d.spec.template.metadata;
    let set = |k: &str| {
        meta.as_ref().and_then(|m| {
            m.labels
                .as_ref()
                .and_then(|l| l.get(k))
                .or_else(|| m.annotations.as_ref().and_then(|a| a.get(k)))
        })
    };
    if let Some((k, v)) = c.pod_metadata.iter().find(|(k, v)| set(k) != Some(v)) {
        return Some(format!(
            "pod template lacks {k}={v:?}, waiting for the operator to roll it out"
        ));
    }
    let images = &c.images;
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

/// A verdict on one Deployment `d` (desired 1, 1 updated, none available), in `state`, with
/// the reason and description the verdict implies: the tests' common starting point.
#[cfg(test)]
pub(crate) fn one_component(verdict: Verdict, state: &str) -> Readiness {
    Readiness {
        verdict,
        state: (!state.is_empty()).then(|| state.to_owned()),
        description: (verdict == Verdict::Failed).then(|| "the model is broken".to_owned()),
        reason: (verdict != Verdict::Ready).then(|| format!("state is {state}")),
        components: vec![ComponentReadiness {
            name: "d".into(),
            predictor: None,
            desired: Some(1),
            available: 0,
            updated: 1,
            old: 0,
            ready: verdict == Verdict::Ready,
            reason: None,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::components::components;
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
    fn no_status_names_the_controller_id_label_when_set() {
        let mut s = sdep("x", json!(null));
        s.as_object_mut().unwrap().remove("status");
        let r = eval(&s, &[], Target::Initial);
        assert_eq!(
            r.reason.as_deref(),
            Some("the operator has not reported a status yet")
        );
        s["metadata"]["labels"] = json!({"seldon.io/controller-id": "team-a"});
        let r = eval(&s, &[], Target::Initial);
        let why = r.reason.unwrap();
        assert!(
            why.contains("seldon.io/controller-id=\"team-a\"")
                && why.contains("CONTROLLER_ID=\"team-a\""),
            "{why}"
        );
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
    fn a_failed_written_by_the_operator_shutting_down_is_waited_out() {
        let mut s = sdep("Failed", status(1, 2));
        s["status"]["description"] =
            json!("client rate limiter Wait returned an error: context canceled");
        let deps = [
            dep("s-p-0-a", 1, 1, 1, 1, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(
            r.reason.as_deref().unwrap().contains("reconcile again"),
            "{r:?}"
        );
        // Any other error the operator met is its verdict.
        s["status"]["description"] = json!("Failed to get server config for SKLEARN_SERVER");
        assert_eq!(eval(&s, &deps, Target::Initial).verdict, Verdict::Failed);
    }

    #[test]
    fn gone_replaced_or_deleting() {
        let s = sdep("Available", status(1, 2));
        assert_eq!(
            evaluate(None, UID, &[] as &[Deployment], &[], Target::Initial).verdict,
            Verdict::Gone
        );
        let r = evaluate(
            Some(&s),
            "other",
            &[] as &[Deployment],
            &components(&s),
            Target::Initial,
        );
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
    fn rollout_waits_for_a_pod_label_or_annotation_change_to_reach_the_template() {
        let mut s = rollout_sdep("101", "Available");
        s["spec"]["predictors"][0]["componentSpecs"][0]["metadata"] = json!({
            "labels": {"track": "canary", "seldon-app": "set-by-the-operator"},
            "annotations": {"delay": "10s"}});
        let after = Target::Rollout {
            status_after: Some(100),
        };
        let mut a = with_image(dep("s-p-0-a", 1, 2, 2, 1, 1, 1), "a", "a:2");
        let b = with_image(dep("s-p-1-b", 2, 1, 1, 2, 2, 2), "b", "b:1");
        let r = eval(&s, &[a.clone(), b.clone()], after);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(r.summary().contains("lacks"), "{}", r.summary());
        // The operator's own keys are not expected as written.
        a.spec.template.metadata = Some(
            serde_json::from_value(json!({"labels": {"track": "canary", "seldon-app": "x"},
                "annotations": {"delay": "10s"}}))
            .unwrap(),
        );
        assert_eq!(eval(&s, &[a, b], after).verdict, Verdict::Ready);
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

    /// A Deployment rolled out at `n`, whose pod template has `containers`, each with the
    /// `PREDICTOR_ID` the operator sets when `predictor` is given.
    fn rolled_out(name: &str, n: i32, containers: &[&str], predictor: Option<&str>) -> Deployment {
        let mut d = dep(name, n, 1, 1, n, n, n);
        let cs: Vec<Value> = containers
            .iter()
            .map(|c| match predictor {
                Some(p) => json!({"name": c, "env": [{"name": "PREDICTOR_ID", "value": p}]}),
                None => json!({"name": c}),
            })
            .collect();
        d.spec.template = serde_json::from_value(json!({"spec": {"containers": cs}})).unwrap();
        d
    }

    /// A SeldonDeployment named `name` with one componentSpec per `(predictor, container,
    /// replicas)`, Available, and the operator's status for `deployments` at their counts.
    fn long_sdep(name: &str, comps: &[(&str, &str, i32)], deployments: &[(String, i32)]) -> Value {
        let mut predictors: Vec<Value> = Vec::new();
        for (p, c, n) in comps {
            let spec = json!({"replicas": n, "spec": {"containers": [{"name": c}]}});
            match predictors.iter_mut().find(|x| x["name"] == *p) {
                Some(x) => x["componentSpecs"].as_array_mut().unwrap().push(spec),
                None => predictors
                    .push(json!({"name": p, "componentSpecs": [spec], "graph": {"name": c}})),
            }
        }
        let status: serde_json::Map<String, Value> = deployments
            .iter()
            .map(|(d, n)| (d.clone(), json!({"replicas": n, "availableReplicas": n})))
            .collect();
        json!({"metadata": {"name": name, "uid": UID}, "spec": {"predictors": predictors},
               "status": {"state": "Available", "deploymentStatus": status}})
    }

    #[test]
    fn hashed_names_pair_each_component_with_its_own_deployment_in_either_order() {
        // The reported case: the Deployment at 3 sorts after the one at 1.
        let comps = [
            ("champion-candidate", "classifier", 3),
            ("champion-candidate", "transformer", 1),
        ];
        let named = [
            ("seldon-d19aa4c2bd38a2e6b24214a23faed3fa".to_owned(), 3),
            ("seldon-adf1be1cdf88f287e1fc0b32b7c07cc3".to_owned(), 1),
        ];
        let s = long_sdep("fraud-detection-ensemble-production", &comps, &named);
        for order in [[0, 1], [1, 0]] {
            let deps: Vec<Deployment> = order
                .iter()
                .map(|&i| rolled_out(&named[i].0, named[i].1, &[comps[i].1], None))
                .collect();
            let r = eval(&s, &deps, Target::Initial);
            assert_eq!(r.verdict, Verdict::Ready, "{}", r.summary());
            let got: Vec<(&str, String)> = r
                .components
                .iter()
                .map(|c| (c.name.as_str(), c.ratio()))
                .collect();
            assert_eq!(
                got,
                [
                    (named[0].0.as_str(), "3/3".into()),
                    (named[1].0.as_str(), "1/1".into())
                ]
            );
        }
    }

    #[test]
    fn names_the_operator_chose_otherwise_pair_by_pod_template_not_by_order() {
        // Five components at five counts, on Deployments whose names are not the predicted
        // ones (as with DEPLOYMENT_NAME_AS_PREFIX), and sort in the reverse order of the
        // components; the first also carries the orchestrator's container.
        let sdep_name = "a-seldon-deployment-whose-name-is-long-enough-to-be-hashed";
        let comps: Vec<(&str, String, i32)> =
            (0..5).map(|i| ("p", format!("model-{i}"), i + 1)).collect();
        let names: Vec<(String, i32)> = (0..5)
            .map(|i| (format!("{sdep_name}-{:x}", 15 - i), i + 1))
            .collect();
        let borrowed: Vec<(&str, &str, i32)> =
            comps.iter().map(|(p, c, n)| (*p, c.as_str(), *n)).collect();
        let s = long_sdep(sdep_name, &borrowed, &names);
        let build = |i: usize| {
            let mut cs = vec![comps[i].1.as_str()];
            if i == 0 {
                cs.push("seldon-container-engine");
            }
            rolled_out(&names[i].0, names[i].1, &cs, Some("p"))
        };
        // Every rotation of the list, forwards and backwards.
        for start in 0..5 {
            for reverse in [false, true] {
                let mut order: Vec<usize> = (0..5).map(|k| (start + k) % 5).collect();
                if reverse {
                    order.reverse();
                }
                let deps: Vec<Deployment> = order.iter().map(|&i| build(i)).collect();
                let r = eval(&s, &deps, Target::Initial);
                assert_eq!(r.verdict, Verdict::Ready, "{order:?}: {}", r.summary());
                for (i, row) in r.components.iter().enumerate() {
                    assert_eq!(row.name, names[i].0, "{order:?}");
                    assert_eq!(row.desired, Some(names[i].1), "{order:?}");
                }
                // At one count for all, the component at 1 is ready and the others are not.
                let r = eval(&s, &deps, Target::Replicas(1));
                assert_eq!(r.components[0].reason, None, "{order:?}: {}", r.summary());
                assert!(r.components[1..].iter().all(|c| !c.ready));
            }
        }
    }

    #[test]
    fn deployment_name_as_prefix_names_pair_exactly() {
        // DEPLOYMENT_NAME_AS_PREFIX=true: `<sdep>-<md5>` for a hashed name that then fits.
        let pred = "a-predictor-name-long-enough-for-the-deployment-name-to-be-hashed";
        let probe = long_sdep(
            "fraud",
            &[(pred, "classifier", 3), (pred, "transformer", 1)],
            &[],
        );
        let prefixed: Vec<(String, i32)> = components(&probe)
            .iter()
            .zip([3, 1])
            .map(|(c, n)| {
                let hashed = c.deployment_name.clone().unwrap();
                (hashed.replacen("seldon-", "fraud-", 1), n)
            })
            .collect();
        let s = long_sdep(
            "fraud",
            &[(pred, "classifier", 3), (pred, "transformer", 1)],
            &prefixed,
        );
        // Pod templates without containers: the names alone decide.
        let deps = [
            dep(&prefixed[1].0, 1, 1, 1, 1, 1, 1),
            dep(&prefixed[0].0, 3, 1, 1, 3, 3, 3),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::Ready, "{}", r.summary());
        assert_eq!(r.components[0].name, prefixed[0].0);
    }

    #[test]
    fn a_deployment_named_for_another_index_is_not_paired_by_its_containers() {
        // The spec's only componentSpec runs `b`; `s-p-1-b` is left from a spec where `b`
        // was the second one, and the operator has not made `s-p-0-b` yet.
        let s = long_sdep("s", &[("p", "b", 2)], &[("s-p-1-b".to_owned(), 2)]);
        let r = eval(
            &s,
            &[rolled_out("s-p-1-b", 2, &["b"], Some("p"))],
            Target::Initial,
        );
        assert_eq!(r.verdict, Verdict::NotReady);
        assert_eq!(r.components[0].name, "s-p-0-b");
        assert_eq!(r.components[0].reason.as_deref(), Some("no Deployment yet"));
    }

    #[test]
    fn the_predictor_tells_apart_components_with_the_same_containers() {
        let comps = [("main", "classifier", 1), ("canary", "classifier", 2)];
        let names = [("x-main".to_owned(), 1), ("w-canary".to_owned(), 2)];
        let s = long_sdep("s", &comps, &names);
        let deps = [
            rolled_out("w-canary", 2, &["classifier"], Some("canary")),
            rolled_out("x-main", 1, &["classifier"], Some("main")),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::Ready, "{}", r.summary());
        assert_eq!(r.components[0].name, "x-main");
        assert_eq!(r.components[1].name, "w-canary");

        // Without the predictor on the pod template the fit is ambiguous: no guess.
        let deps = [
            rolled_out("w-canary", 2, &["classifier"], None),
            rolled_out("x-main", 1, &["classifier"], None),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.verdict, Verdict::NotReady);
        assert_eq!(r.components[0].reason.as_deref(), Some("no Deployment yet"));
        assert_eq!(r.components[1].reason.as_deref(), Some("no Deployment yet"));
    }

    #[test]
    fn auxiliary_deployments_are_not_components_and_must_roll_out() {
        let s = sdep(
            "Available",
            json!({"s-p-0-a": {"replicas": 1, "availableReplicas": 1},
            "s-p-1-b": {"replicas": 2, "availableReplicas": 2},
            "s-p-explainer": {"replicas": 1, "availableReplicas": 1, "explainerFor": "p"}}),
        );
        let deps = [
            dep("s-p-0-a", 1, 1, 1, 1, 1, 1),
            dep("s-p-1-b", 2, 1, 1, 2, 2, 2),
            dep("s-p-explainer", 1, 1, 1, 1, 1, 0),
        ];
        let r = eval(&s, &deps, Target::Initial);
        assert_eq!(r.components.len(), 3);
        assert!(r.components[0].ready && r.components[1].ready);
        assert!(!r.components[2].ready);
        assert_eq!(r.verdict, Verdict::NotReady);
    }
}
