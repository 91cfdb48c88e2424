//! After an update, the rollout wait must know that the operator has acted on it: until then
//! the Deployments and the status it reads describe the previous spec, and a change the pod
//! images do not show (a new `modelUri`) looks complete at once. The v1 operator writes no
//! `observedGeneration`, so this module says what counts as proof, from data every cluster
//! gives (never from Events: they may be unreadable, and a cluster may keep them in an etcd of
//! their own, whose resourceVersions say nothing about other objects').
//!
//! The operator's work on an update is proven by either sign:
//!
//! 1. **a status written after the update**: the SeldonDeployment's resourceVersion is newer
//!    than the update's. The operator writes its status with the resourceVersion it read as
//!    a precondition, so such a write means it read the updated object;
//! 2. **new pod templates**: for each predictor whose Deployments the change alters (see
//!    [`Renders`]), one of its Deployments has, compared with the Deployments as they were at
//!    the update's resourceVersion ([`Baseline`], listed exactly at that revision), a newer
//!    `metadata.generation` and a new `deployment.kubernetes.io/revision` (the Deployment
//!    controller moved to a new pod template), or was created after the update (a new name,
//!    or a new UID: the operator recreates a Deployment whose selector changed). Readiness
//!    then requires each Deployment's `observedGeneration` to have caught up.
//!
//! A change that alters no Deployment (a traffic split, replica counts, which readiness checks
//! against the spec itself) needs neither: the operator has nothing to roll out that the wait
//! could see, so the rollout is complete once readiness holds.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;

use crate::judge::readiness::{owned_and_assigned, owned_by};
use crate::model::components::Component;

/// The Deployment controller's annotation naming the revision of the newest ReplicaSet,
/// which moves on whenever the pod template changes (not on a replica change).
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Which Deployments' pod templates the operator changes for a spec change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renders {
    /// None: the change touches only fields the operator does not put into a pod template
    /// (`traffic`, predictor and spec `replicas`, the deprecated `spec.name`) or nothing.
    Nothing,
    /// Changes that alter pod templates.
    Templates {
        /// Predictors whose own spec changed: one Deployment of each gets a new template.
        predictors: BTreeSet<String>,
        /// The spec outside `predictors` changed: some Deployment gets a new template (not
        /// necessarily one of each predictor: a predictor's own annotation overrides a
        /// `spec.annotations` one of the same key).
        spec: bool,
    },
}

impl Renders {
    /// A change not known (a library caller's update): some Deployment must get a new
    /// pod template, unless a status written after the update proves the operator's work.
    pub const UNKNOWN: Renders = Renders::Templates {
        predictors: BTreeSet::new(),
        spec: true,
    };
}

impl Renders {
    /// What the operator renders of the change from `before` to `after` (whole objects).
    ///
    /// The operator copies each predictor, with `traffic` and `replicas` zeroed, into its
    /// executor's `ENGINE_PREDICTOR` variable, so any other change to a predictor changes the
    /// pod template of one of its Deployments. A change to the spec outside `predictors`
    /// (other than `replicas` and `name`) alters pod templates too: `protocol`, `transport`
    /// and `serverType` are executor arguments, `annotations` pod template annotations.
    /// The object's own labels and annotations are rendered into no pod template.
    #[must_use]
    pub fn between(before: &Value, after: &Value) -> Renders {
        let spec_rest = |o: &Value| -> Value {
            let mut s = o.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = s.as_object_mut() {
                // `replicas` is the lowest-precedence count, checked by readiness itself;
                // `name` is deprecated and ignored by the operator.
                for k in ["predictors", "replicas", "name"] {
                    m.remove(k);
                }
            }
            s
        };
        let spec = spec_rest(before) != spec_rest(after);
        let after_preds = predictors(after);
        let before_preds = predictors(before);
        let changed: BTreeSet<String> = after_preds
            .into_iter()
            .filter(|(name, p)| before_preds.get(name) != Some(p))
            .map(|(name, _)| name)
            .collect();
        if changed.is_empty() && !spec {
            Renders::Nothing
        } else {
            Renders::Templates {
                predictors: changed,
                spec,
            }
        }
    }
}

/// Each predictor by name, as the operator renders it: without `traffic` and `replicas`.
fn predictors(o: &Value) -> BTreeMap<String, Value> {
    o.pointer("/spec/predictors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let mut p = p.clone();
            if let Some(m) = p.as_object_mut() {
                m.remove("traffic");
                m.remove("replicas");
            }
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (name, p)
        })
        .collect()
}

/// An update a rollout wait follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecUpdate {
    /// The update's resourceVersion, as a number.
    pub revision: u64,
    /// What the operator has to change in the Deployments.
    pub renders: Renders,
    /// The object's `status` as the update left it, when known. A newer resourceVersion
    /// proves the operator's work only with a status that differs from it: any writer's
    /// change (a label, an annotation) moves the resourceVersion, only the operator's status
    /// write changes the status (a write that changes nothing keeps the resourceVersion).
    pub status: Option<Value>,
}

/// A Deployment as it was at the update.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark {
    uid: Option<String>,
    generation: i64,
    revision: Option<String>,
}

/// The owned Deployments as they were at the update's resourceVersion, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Baseline(BTreeMap<String, Mark>);

impl Baseline {
    /// From a list of the namespace's Deployments at the update's resourceVersion; those not
    /// owned by `uid` are left out.
    #[must_use]
    pub(crate) fn new(deployments: &[Deployment], uid: &str) -> Self {
        Baseline(
            deployments
                .iter()
                .filter(|d| owned_by(d, uid))
                .filter_map(|d| Some((d.metadata.name.clone()?, mark(d))))
                .collect(),
        )
    }

    /// How many Deployments it holds.
    #[must_use]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

fn mark(d: &Deployment) -> Mark {
    Mark {
        uid: d.metadata.uid.clone(),
        generation: d.metadata.generation.unwrap_or(0),
        revision: d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .cloned(),
    }
}

/// Whether the operator has acted on `update` (see the module docs): `Ok` if so, else why
/// not yet. `baseline` is `None` when the Deployments at the update could not be listed; then
/// only a status written after the update proves it.
///
/// # Errors
///
/// The reason the wait goes on, for the progress line and a timeout's message.
pub(crate) fn operator_acted(
    update: &SpecUpdate,
    baseline: Option<&Baseline>,
    sdep: &Value,
    uid: &str,
    deployments: &[impl std::borrow::Borrow<Deployment>],
    components: &[Component],
) -> Result<(), String> {
    let status_after = crate::names::revision_of(sdep).is_some_and(|rv| rv > update.revision)
        && update
            .status
            .as_ref()
            .is_none_or(|before| sdep.get("status") != Some(before));
    if status_after {
        return Ok(());
    }
    let (wanted, spec) = match &update.renders {
        Renders::Nothing => return Ok(()),
        Renders::Templates { predictors, spec } => (predictors, *spec),
    };
    let Some(baseline) = baseline else {
        return Err(
            "the operator has not written a status since the update yet (the Deployments at \
             the update could not be listed, so their changes cannot tell)"
                .to_owned(),
        );
    };
    let (owned, assignment) = owned_and_assigned(sdep, uid, deployments, components);
    let sdep_name = sdep
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let renewed = |d: &Deployment| {
        let now = mark(d);
        match d.metadata.name.as_ref().and_then(|n| baseline.0.get(n)) {
            // Created since the update (the operator recreates a Deployment whose selector
            // changed).
            None => true,
            Some(before) if before.uid != now.uid => true,
            Some(before) => {
                now.generation > before.generation
                    && now.revision.is_some()
                    && now.revision != before.revision
            }
        }
    };
    if spec && !owned.iter().any(|d| renewed(d)) {
        return Err(
            "waiting for the operator to act on the update: no Deployment has a new \
                    pod template since the update, and no status was written since"
                .to_owned(),
        );
    }
    for p in wanted {
        // Its components' Deployments, and its separate orchestrator's and explainer's.
        let aux = [
            format!("{sdep_name}-{p}-svc-orch"),
            format!("{sdep_name}-{p}-explainer"),
        ];
        let mut of_p = components
            .iter()
            .zip(&assignment)
            .filter(|(c, _)| &c.predictor == p)
            .filter_map(|(_, a)| a.map(|i| owned[i]))
            .chain(
                owned
                    .iter()
                    .copied()
                    .filter(|d| d.metadata.name.as_ref().is_some_and(|n| aux.contains(n))),
            );
        if !of_p.any(renewed) {
            return Err(format!(
                "waiting for the operator to act on the update: no Deployment of predictor \
                 {p} has a new pod template since the update, and no status was written since"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::components::components;
    use serde_json::json;

    const UID: &str = "u";

    fn sdep(rv: &str, model_uri: &str, traffic: i64) -> Value {
        json!({
            "metadata": {"name": "s", "uid": UID, "resourceVersion": rv},
            "spec": {"predictors": [
                {"name": "a", "traffic": traffic, "replicas": 1, "componentSpecs": [
                    {"spec": {"containers": [{"name": "m", "image": "i:1"}]}}],
                 "graph": {"name": "m", "modelUri": model_uri}},
                {"name": "b", "traffic": 100 - traffic, "componentSpecs": [
                    {"spec": {"containers": [{"name": "m", "image": "i:1"}]}}],
                 "graph": {"name": "m"}}
            ]},
            "status": {"state": "Available"}
        })
    }

    fn dep(name: &str, generation: i64, revision: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "generation": generation,
                "annotations": {REVISION_ANNOTATION: revision},
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1",
                    "kind": "SeldonDeployment", "name": "s", "uid": UID}]},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "m"}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn traffic_and_replicas_render_nothing_other_predictor_fields_their_predictor() {
        let before = sdep("1", "gs://m/1", 50);
        assert_eq!(
            Renders::between(&before, &sdep("2", "gs://m/1", 90)),
            Renders::Nothing
        );
        let mut more = before.clone();
        more["spec"]["predictors"][0]["replicas"] = json!(3);
        more["spec"]["replicas"] = json!(3);
        assert_eq!(Renders::between(&before, &more), Renders::Nothing);
        assert_eq!(
            Renders::between(&before, &sdep("2", "gs://m/2", 50)),
            Renders::Templates {
                predictors: ["a".to_owned()].into(),
                spec: false
            }
        );
        let mut protocol = before.clone();
        protocol["spec"]["protocol"] = json!("v2");
        protocol["spec"]["name"] = json!("ignored");
        protocol["metadata"]["labels"] = json!({"team": "x"});
        assert_eq!(
            Renders::between(&before, &protocol),
            Renders::Templates {
                predictors: BTreeSet::new(),
                spec: true
            }
        );
        let mut named = before.clone();
        named["spec"]["name"] = json!("ignored");
        named["metadata"]["annotations"] = json!({"team": "x"});
        assert_eq!(Renders::between(&before, &named), Renders::Nothing);
    }

    /// An update at resourceVersion 10 that changed `predictors`' own specs.
    fn predictors_changed(predictors: &[&str], status: Option<Value>) -> SpecUpdate {
        SpecUpdate {
            revision: 10,
            renders: Renders::Templates {
                predictors: predictors.iter().map(|p| (*p).to_owned()).collect(),
                spec: false,
            },
            status,
        }
    }

    #[test]
    fn a_changed_predictor_needs_a_new_pod_template_or_a_status_written_after_the_update() {
        let s = sdep("10", "gs://m/2", 50);
        let comps = components(&s);
        let update = predictors_changed(&["a"], None);
        let at_update = [dep("s-a-0-m", 3, "2"), dep("s-b-0-m", 1, "1")];
        let base = Baseline::new(&at_update, UID);
        let acted = |deps: &[Deployment], s: &Value| {
            operator_acted(&update, Some(&base), s, UID, deps, &comps)
        };
        // As at the update; or only predictor b's Deployment changed.
        let why = acted(&at_update, &s).unwrap_err();
        assert!(why.contains("predictor a"), "{why}");
        assert!(acted(&[dep("s-a-0-m", 3, "2"), dep("s-b-0-m", 2, "2")], &s).is_err());
        // A replica change bumps the generation, not the pod template's revision.
        assert!(acted(&[dep("s-a-0-m", 4, "2"), dep("s-b-0-m", 1, "1")], &s).is_err());
        // The operator wrote predictor a's Deployment and the controller moved to its template.
        assert!(acted(&[dep("s-a-0-m", 4, "3"), dep("s-b-0-m", 1, "1")], &s).is_ok());
        // Or it wrote a status after the update.
        assert!(acted(&at_update, &sdep("11", "gs://m/2", 50)).is_ok());
        // Without a baseline, only the status tells.
        assert!(operator_acted(&update, None, &s, UID, &at_update, &comps).is_err());
    }

    #[test]
    fn a_deployment_created_after_the_update_is_the_operators_work_on_it() {
        let s = sdep("10", "gs://m/2", 50);
        let comps = components(&s);
        let update = predictors_changed(&["a", "b"], None);
        let base = Baseline::new(&[dep("s-a-0-m", 3, "2")], UID);
        let deps = [dep("s-a-0-m", 4, "3"), dep("s-b-0-m", 1, "1")];
        assert!(operator_acted(&update, Some(&base), &s, UID, &deps, &comps).is_ok());
    }

    #[test]
    fn a_spec_level_change_needs_a_new_pod_template_of_some_deployment() {
        let s = sdep("10", "gs://m/1", 50);
        let comps = components(&s);
        let update = SpecUpdate {
            revision: 10,
            renders: Renders::UNKNOWN,
            status: None,
        };
        let at_update = [dep("s-a-0-m", 3, "2"), dep("s-b-0-m", 1, "1")];
        let base = Baseline::new(&at_update, UID);
        let acted =
            |deps: &[Deployment]| operator_acted(&update, Some(&base), &s, UID, deps, &comps);
        assert!(acted(&at_update).is_err());
        assert!(acted(&[dep("s-a-0-m", 3, "2"), dep("s-b-0-m", 2, "2")]).is_ok());
    }

    #[test]
    fn a_change_that_renders_nothing_needs_no_sign() {
        let s = sdep("10", "gs://m/1", 90);
        let update = SpecUpdate {
            revision: 10,
            renders: Renders::Nothing,
            status: None,
        };
        let deps = [dep("s-a-0-m", 3, "2")];
        assert!(operator_acted(&update, None, &s, UID, &deps, &components(&s)).is_ok());
    }

    /// Another writer's label or annotation moves the resourceVersion on but leaves the
    /// status as the update left it: that is not the operator's work.
    #[test]
    fn a_newer_resource_version_with_the_status_unchanged_is_not_the_operators_work() {
        let s = sdep("10", "gs://m/2", 50);
        let comps = components(&s);
        let update = predictors_changed(&["a"], Some(json!({"state": "Available"})));
        let at_update = [dep("s-a-0-m", 3, "2"), dep("s-b-0-m", 1, "1")];
        let base = Baseline::new(&at_update, UID);
        let labelled = sdep("11", "gs://m/2", 50);
        assert!(operator_acted(&update, Some(&base), &labelled, UID, &at_update, &comps).is_err());
        let mut written = sdep("12", "gs://m/2", 50);
        written["status"] = json!({"state": "Creating"});
        assert!(operator_acted(&update, Some(&base), &written, UID, &at_update, &comps).is_ok());
    }
}
