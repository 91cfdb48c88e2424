//! The change that scales a SeldonDeployment to N replicas.
//!
//! The operator takes each component's count from the most specific level that is set
//! (componentSpec, predictor, spec), so setting only `spec.replicas` (what `/scale` does) has
//! no effect when a lower level is set. Like the original program, every level the live object
//! sets is set to N; if some component has no level set at all, `spec.replicas` is added so it
//! scales too.
//!
//! The change is an RFC 6902 JSON Patch, not a read-modify-write PUT: it touches only the
//! replica fields, so a concurrent writer's labels or annotations cannot be lost, and no
//! `resourceVersion` is needed. `test` operations on `/metadata/uid` and on each predictor's
//! name make it fail (rather than land on the wrong element) if the object was replaced or its
//! predictors reordered since it was read; the caller then re-reads and recomputes. A plan
//! computed from the watch's cached copy instead of a fresh read also tests that copy's
//! `resourceVersion` ([`ScalePlan::only_at_version_of`]), so no change made since is missed.

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::components;

/// A computed scale change: what [`Deployer::scale`](crate::Deployer::scale) sent.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// # let h = seldon_deploy::Deployer::new(conn.client.clone(), &conn.namespace).handle("iris", tokio::time::Instant::now()).await?;
/// use seldon_deploy::Deployer;
/// use tokio::time::{Duration, Instant};
///
/// let deployer = Deployer::new(conn.client, &conn.namespace);
/// let plan = deployer.scale(&h, 3, Instant::now() + Duration::from_secs(60)).await?;
/// println!("set {}", plan.paths.join(", "));
/// println!("{}", serde_json::to_string(&plan.patch).unwrap_or_default());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalePlan {
    /// The JSON Patch to send.
    pub patch: json_patch::Patch,
    /// The replica fields it sets, as JSON pointers.
    pub paths: Vec<String>,
}

impl ScalePlan {
    /// The same change, refused (422) unless the object is still at `live`'s
    /// `metadata.resourceVersion`: for a plan computed from a cached copy, which may miss a
    /// writer's change to the replica fields that a fresh read would show.
    #[must_use]
    pub(crate) fn only_at_version_of(mut self, live: &Value) -> Self {
        let rv = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let test = rv.and_then(|rv| {
            serde_json::from_value::<json_patch::PatchOperation>(
                json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
            )
            .ok()
        });
        if let Some(op) = test {
            self.patch.0.insert(0, op);
        }
        self
    }
}

/// Computes the JSON Patch that scales every component of `live` to `n`.
///
/// # Errors
///
/// [`Error::Autoscaled`] when a component has `hpaSpec` or `kedaSpec`; [`Error::Usage`] when
/// `live` has no UID or `n` is negative.
pub(crate) fn scale_patch(live: &Value, n: i32) -> Result<ScalePlan> {
    if n < 0 {
        return Err(Error::Usage(format!(
            "replicas must not be negative (got {n})"
        )));
    }
    let uid = live
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Usage("the live object has no metadata.uid".into()))?;
    let name = live
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let auto: Vec<String> = components::components(live)
        .iter()
        .filter_map(|c| {
            c.autoscaler
                .map(|a| format!("{} ({})", c.label(), a.field()))
        })
        .collect();
    if !auto.is_empty() {
        return Err(Error::Autoscaled(format!(
            "cannot scale {name:?} by hand: autoscaled component(s) {}; their autoscaler owns the replica count",
            auto.join(", ")
        )));
    }

    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": uid})];
    let mut paths = Vec::new();
    let spec_set = live.pointer("/spec/replicas").is_some_and(|v| !v.is_null());
    if spec_set {
        paths.push("/spec/replicas".to_owned());
    }
    let mut uncovered = false;
    let predictors = live
        .pointer("/spec/predictors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, p) in predictors.iter().enumerate() {
        if let Some(pname) = p.get("name") {
            ops.push(
                json!({"op": "test", "path": format!("/spec/predictors/{i}/name"), "value": pname}),
            );
        }
        let p_set = p.get("replicas").is_some_and(|v| !v.is_null());
        if p_set {
            paths.push(format!("/spec/predictors/{i}/replicas"));
        }
        let specs = p
            .get("componentSpecs")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if specs.is_empty() && !p_set {
            uncovered = true;
        }
        for (j, c) in specs.iter().enumerate() {
            if c.get("replicas").is_some_and(|v| !v.is_null()) {
                paths.push(format!("/spec/predictors/{i}/componentSpecs/{j}/replicas"));
            } else if !p_set {
                uncovered = true;
            }
        }
    }
    if uncovered && !spec_set {
        paths.insert(0, "/spec/replicas".to_owned());
    }
    for p in &paths {
        // `add` replaces an existing member and creates a missing one.
        ops.push(json!({"op": "add", "path": p, "value": n}));
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))
        .map_err(|e| Error::Usage(format!("internal error building the scale patch: {e}")))?;
    Ok(ScalePlan { patch, paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(spec: Value) -> Value {
        json!({"metadata": {"name": "s", "uid": "u-1", "annotations": {"keep": "me"}}, "spec": spec})
    }

    fn apply(doc: &Value, plan: &ScalePlan) -> Value {
        let mut d = doc.clone();
        json_patch::patch(&mut d, &plan.patch).unwrap();
        d
    }

    #[test]
    fn sets_every_level_present() {
        let doc = live(json!({"replicas": 1, "predictors": [
            {"name": "a", "replicas": 1, "componentSpecs": [{"replicas": 3, "spec": {}}, {"spec": {}}]},
            {"name": "b", "componentSpecs": [{"spec": {}}]}
        ]}));
        let plan = scale_patch(&doc, 4).unwrap();
        assert_eq!(
            plan.paths,
            vec![
                "/spec/replicas",
                "/spec/predictors/0/replicas",
                "/spec/predictors/0/componentSpecs/0/replicas"
            ]
        );
        let out = apply(&doc, &plan);
        assert_eq!(out["spec"]["replicas"], 4);
        assert_eq!(
            out["spec"]["predictors"][0]["componentSpecs"][0]["replicas"],
            4
        );
        assert!(out["spec"]["predictors"][1].get("replicas").is_none());
        assert_eq!(out["metadata"]["annotations"]["keep"], "me");
        // Every component now resolves to 4.
        assert!(
            components::components(&out)
                .iter()
                .all(|c| c.initial_replicas == 4)
        );
    }

    #[test]
    fn adds_spec_replicas_when_a_component_is_uncovered() {
        let doc = live(json!({"predictors": [
            {"name": "a", "replicas": 2, "graph": {"name": "g"}},
            {"name": "b", "graph": {"name": "h"}}
        ]}));
        let plan = scale_patch(&doc, 3).unwrap();
        assert_eq!(
            plan.paths,
            vec!["/spec/replicas", "/spec/predictors/0/replicas"]
        );
        let out = apply(&doc, &plan);
        assert!(
            components::components(&out)
                .iter()
                .all(|c| c.initial_replicas == 3)
        );
    }

    #[test]
    fn nothing_set_means_spec_replicas() {
        let doc = live(json!({"predictors": [{"name": "a", "graph": {"name": "g"}}]}));
        let plan = scale_patch(&doc, 2).unwrap();
        assert_eq!(plan.paths, vec!["/spec/replicas"]);
        assert_eq!(apply(&doc, &plan)["spec"]["replicas"], 2);
    }

    #[test]
    fn guards_against_replacement_and_reordering() {
        let doc = live(json!({"predictors": [{"name": "a", "replicas": 1}]}));
        let plan = scale_patch(&doc, 2).unwrap();
        let mut replaced = doc.clone();
        replaced["metadata"]["uid"] = json!("u-2");
        assert!(json_patch::patch(&mut replaced, &plan.patch).is_err());
        let mut reordered = doc.clone();
        reordered["spec"]["predictors"][0]["name"] = json!("z");
        assert!(json_patch::patch(&mut reordered, &plan.patch).is_err());
    }

    #[test]
    fn refuses_autoscaled_and_negative() {
        let doc = live(json!({"predictors": [{"name": "a", "componentSpecs": [
            {"kedaSpec": {"triggers": []}, "spec": {"containers": [{"name": "c"}]}}
        ]}]}));
        let e = scale_patch(&doc, 2).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("kedaSpec"));
        assert!(scale_patch(&live(json!({"predictors": []})), -1).is_err());
    }
}
