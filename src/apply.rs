//! What `apply` sends and what it changed, as pure functions on JSON.
//!
//! An update replaces the live object's `spec` with the manifest's, so fields the manifest no
//! longer has are removed. `metadata.labels` and `metadata.annotations` are merged: the
//! manifest's entries are set, entries other tools wrote survive. Everything else in the live
//! metadata (finalizers, owner references, the resourceVersion used as a precondition) is kept.
//!
//! Why a replace with a resourceVersion precondition and not server-side apply: an object made
//! by `kubectl create` (or by our own `create`) has its spec owned by another field manager, so
//! every changed field would conflict under server-side apply, and forcing the conflicts would
//! take ownership from tools the user may still run. A replace says exactly "the spec is the
//! manifest's", and the precondition makes a concurrent writer a retry (re-read, merge again),
//! never a lost write.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::manifest::Manifest;
use crate::replicas;

/// What an apply did to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It did not exist; it was created.
    Created,
    /// Its spec, labels or annotations were changed.
    Updated,
    /// The manifest matched the live object; nothing was written.
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        })
    }
}

/// The object to send for an update of `live` to `manifest`: the live object with the
/// manifest's spec and its labels and annotations merged in, addressed to the manifest's API
/// version (all served versions share one schema, so only `apiVersion` differs). `status`
/// and `managedFields` are dropped: the server keeps both.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// let spec = json!({"predictors": [{"name": "p", "graph": {"name": "g"}}]});
/// let live = json!({"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
///     "metadata": {"name": "m", "resourceVersion": "7", "labels": {"team": "a", "v": "1"}},
///     "spec": {"replicas": 2, "predictors": []}, "status": {"state": "Available"}});
/// let file = json!({"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
///     "metadata": {"name": "m", "labels": {"v": "2"}}, "spec": spec});
/// let m = &seldon_deploy::manifest::parse("m.json", file.to_string().as_bytes()).unwrap()[0];
/// let sent = seldon_deploy::apply::desired_object(&live, m);
/// assert_eq!(sent["spec"], spec);
/// assert_eq!(sent["metadata"]["labels"], json!({"team": "a", "v": "2"}));
/// assert_eq!(sent["metadata"]["resourceVersion"], "7");
/// assert!(sent.get("status").is_none());
/// ```
#[must_use]
pub fn desired_object(live: &Value, manifest: &Manifest) -> Value {
    let mut out = live.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("status");
        if let Some(api_version) = manifest.object.get("apiVersion") {
            o.insert("apiVersion".into(), api_version.clone());
        }
        let spec = manifest.object.get("spec").cloned().unwrap_or(Value::Null);
        o.insert("spec".into(), spec);
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        for key in ["labels", "annotations"] {
            let wanted = manifest
                .object
                .pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_object);
            if let Some(wanted) = wanted.filter(|w| !w.is_empty()) {
                let slot = meta.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Some(map) = slot.as_object_mut() {
                    for (k, v) in wanted {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    out
}

/// The object to send to roll `live` back to `previous` (the object as it was before an
/// update): its spec, labels and annotations exactly as they were; the rest of the live
/// metadata (and its resourceVersion, the precondition) kept. `status` and `managedFields` are
/// dropped, as in [`desired_object`].
#[must_use]
pub fn restored_object(live: &Value, previous: &Value) -> Value {
    let mut out = live.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("status");
        o.insert(
            "spec".into(),
            previous.get("spec").cloned().unwrap_or(Value::Null),
        );
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        for key in ["labels", "annotations"] {
            match previous.pointer(&format!("/metadata/{key}")) {
                Some(v) => meta.insert(key.to_owned(), v.clone()),
                None => meta.remove(key),
            };
        }
    }
    out
}

/// Whether sending `desired` would change `live`: its spec, or a label or annotation.
#[must_use]
pub fn differs(live: &Value, desired: &Value) -> bool {
    live.get("spec") != desired.get("spec")
        || ["labels", "annotations"].iter().any(|k| {
            let p = format!("/metadata/{k}");
            let empty = Value::Object(Map::new());
            live.pointer(&p).unwrap_or(&empty) != desired.pointer(&p).unwrap_or(&empty)
        })
}

/// A unified diff of the spec, labels and annotations (YAML), `before` → `after`, as
/// `kubectl diff` shows it; empty when they are equal. `before` may be `None` (creation).
#[must_use]
pub fn diff(name: &str, before: Option<&Value>, after: &Value) -> String {
    let render = |v: Option<&Value>| {
        let Some(v) = v else {
            return String::new();
        };
        let mut shown = Map::new();
        for key in ["labels", "annotations"] {
            if let Some(m) = v
                .pointer(&format!("/metadata/{key}"))
                .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
            {
                shown.insert(key.to_owned(), m.clone());
            }
        }
        let mut doc = Map::new();
        if !shown.is_empty() {
            doc.insert("metadata".into(), Value::Object(shown));
        }
        doc.insert("spec".into(), v.get("spec").cloned().unwrap_or(Value::Null));
        serde_saphyr::to_string(&Value::Object(doc))
            .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
    };
    let (old, new) = (render(before), render(Some(after)));
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("live/seldondeployment/{name}"),
            &format!("applied/seldondeployment/{name}"),
        )
        .to_string()
}

/// One container's image before and after an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    /// The component, as in progress output (its Deployment name when predictable).
    pub component: String,
    /// Container name.
    pub container: String,
    /// Image before (`None`: the container is new).
    pub old: Option<String>,
    /// Image after (`None`: the container was removed).
    pub new: Option<String>,
}

/// The images per component and container that differ between `before` and `after`
/// (SeldonDeployment JSON; `before` is `None` for a creation, which lists every image).
#[must_use]
pub fn image_changes(before: Option<&Value>, after: &Value) -> Vec<ImageChange> {
    let images = |v: &Value| -> Vec<(String, String, String)> {
        let comps = replicas::components(v);
        comps
            .iter()
            .flat_map(|c| {
                c.images
                    .iter()
                    .map(|(container, image)| (c.label(), container.clone(), image.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let old = before.map(images).unwrap_or_default();
    let new = images(after);
    let find = |list: &[(String, String, String)], comp: &str, cont: &str| {
        list.iter()
            .find(|(c, k, _)| c == comp && k == cont)
            .map(|(_, _, i)| i.clone())
    };
    let mut out: Vec<ImageChange> = new
        .iter()
        .filter_map(|(comp, cont, image)| {
            let was = find(&old, comp, cont);
            (was.as_deref() != Some(image.as_str())).then(|| ImageChange {
                component: comp.clone(),
                container: cont.clone(),
                old: was,
                new: Some(image.clone()),
            })
        })
        .collect();
    out.extend(
        old.iter()
            .filter(|(comp, cont, _)| find(&new, comp, cont).is_none())
            .map(|(comp, cont, image)| ImageChange {
                component: comp.clone(),
                container: cont.clone(),
                old: Some(image.clone()),
                new: None,
            }),
    );
    out
}

pub use crate::model::names::revision;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(v: &Value) -> Manifest {
        crate::manifest::parse("m.json", v.to_string().as_bytes())
            .unwrap()
            .remove(0)
    }

    fn sdep(image: &str, extra_pred: bool) -> Value {
        let mut preds = vec![
            json!({"name": "main", "traffic": 100, "componentSpecs": [{"spec": {"containers": [
            {"name": "model", "image": image}]}}], "graph": {"name": "model"}}),
        ];
        if extra_pred {
            preds.push(
                json!({"name": "canary", "traffic": 10, "componentSpecs": [{"spec": {"containers": [
                {"name": "model", "image": "m:9"}]}}], "graph": {"name": "model"}}),
            );
        }
        json!({"apiVersion": "machinelearning.seldon.io/v1alpha2", "kind": "SeldonDeployment",
            "metadata": {"name": "s"}, "spec": {"predictors": preds}})
    }

    #[test]
    fn spec_is_replaced_whole_and_foreign_metadata_survives() {
        let live = json!({"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
            "metadata": {"name": "s", "resourceVersion": "42", "uid": "u",
                "labels": {"owner": "other-tool"}, "annotations": {"a": "1"},
                "finalizers": ["x"], "managedFields": [{"manager": "kubectl"}]},
            "spec": {"replicas": 3, "oldField": true, "predictors": []},
            "status": {"state": "Available"}});
        let mut file = sdep("m:2", false);
        file["metadata"]["labels"] = json!({"version": "2"});
        let sent = desired_object(&live, &manifest(&file));
        assert_eq!(sent["spec"], file["spec"]);
        assert_eq!(sent["apiVersion"], "machinelearning.seldon.io/v1alpha2");
        assert_eq!(
            sent["metadata"]["labels"],
            json!({"owner": "other-tool", "version": "2"})
        );
        assert_eq!(sent["metadata"]["annotations"], json!({"a": "1"}));
        assert_eq!(sent["metadata"]["finalizers"], json!(["x"]));
        assert_eq!(sent["metadata"]["resourceVersion"], "42");
        assert!(sent.pointer("/metadata/managedFields").is_none());
        assert!(sent.get("status").is_none());
        assert!(differs(&live, &sent));
    }

    #[test]
    fn equal_manifest_does_not_differ() {
        let file = sdep("m:1", false);
        let mut live = file.clone();
        live["metadata"]["resourceVersion"] = json!("5");
        live["metadata"]["labels"] = json!({"other": "x"});
        live["status"] = json!({"state": "Available"});
        let sent = desired_object(&live, &manifest(&file));
        assert!(!differs(&live, &sent));
        assert_eq!(diff("s", Some(&live), &sent), "");
    }

    #[test]
    fn diff_shows_removed_and_added_lines() {
        let before = sdep("m:1", true);
        let after = sdep("m:2", false);
        let d = diff("s", Some(&before), &after);
        assert!(d.starts_with("--- live/seldondeployment/s"), "{d}");
        assert!(
            d.contains("-        - image: m:1\n+        - image: m:2\n"),
            "{d}"
        );
        assert!(d.contains("-    name: canary\n"), "{d}");
        let created = diff("s", None, &after);
        assert!(created.contains("+spec:"), "{created}");
    }

    #[test]
    fn image_changes_per_component() {
        let before = sdep("m:1", true);
        let after = sdep("m:2", false);
        let ch = image_changes(Some(&before), &after);
        assert_eq!(ch.len(), 2, "{ch:?}");
        assert_eq!(ch[0].container, "model");
        assert_eq!(
            (ch[0].old.as_deref(), ch[0].new.as_deref()),
            (Some("m:1"), Some("m:2"))
        );
        assert_eq!(ch[1].component, "s-canary-0-model");
        assert_eq!(ch[1].new, None);
        assert!(image_changes(Some(&after), &after).is_empty());
        assert_eq!(image_changes(None, &after).len(), 1);
    }

    #[test]
    fn revisions_compare_only_when_numeric() {
        assert_eq!(revision(Some("123")), Some(123));
        assert_eq!(revision(Some("abc")), None);
        assert_eq!(revision(None), None);
    }
}
