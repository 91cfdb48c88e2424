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

use crate::model::components;
use crate::model::manifest::Manifest;

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
#[must_use]
pub(crate) fn desired_object(live: &Value, manifest: &Manifest) -> Value {
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

/// What [`restored_object`] found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Restore {
    /// Send this object to undo the update.
    Send(Value),
    /// Another writer changed the spec since the update: restoring would overwrite their
    /// change. Holds what changed (`spec.path: ours → theirs`, a few lines).
    ChangedByOthers(Vec<String>),
}

/// The object to send to undo an update: `previous` is the object as it was before the
/// update, `wrote` the object the update stored (the server's answer), `live` the object now.
///
/// Only what the update changed is undone, and only while it is still as the update left it:
/// the spec goes back to `previous`'s if the live spec is still the one the update wrote (a
/// live spec already equal to `previous`'s counts too); otherwise another writer changed it
/// and [`Restore::ChangedByOthers`] says what. Each label and annotation the update set or
/// changed goes back to its previous value (or is removed, if it was absent) unless someone
/// changed it since; every other key, and the rest of the live metadata (with its
/// resourceVersion, the precondition), is kept. `status` and `managedFields` are dropped, as
/// in [`desired_object`].
#[must_use]
pub(crate) fn restored_object(live: &Value, previous: &Value, wrote: &Value) -> Restore {
    let live_spec = live.get("spec").unwrap_or(&Value::Null);
    let wrote_spec = wrote.get("spec").unwrap_or(&Value::Null);
    let previous_spec = previous.get("spec").unwrap_or(&Value::Null);
    if live_spec != wrote_spec && live_spec != previous_spec {
        let mut changes = Vec::new();
        changed_paths("spec", wrote_spec, live_spec, &mut changes);
        return Restore::ChangedByOthers(changes);
    }
    let mut out = live.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("status");
        o.insert("spec".into(), previous_spec.clone());
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        for key in ["labels", "annotations"] {
            let map = |v: &Value| {
                v.pointer(&format!("/metadata/{key}"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            let (before, ours) = (map(previous), map(wrote));
            let mut now = map(live);
            let touched = ours
                .keys()
                .chain(before.keys())
                .filter(|k| ours.get(*k) != before.get(*k));
            for k in touched {
                // Someone else's value since the update stays.
                if now.get(k) != ours.get(k) {
                    continue;
                }
                match before.get(k) {
                    Some(v) => now.insert(k.clone(), v.clone()),
                    None => now.remove(k),
                };
            }
            if now.is_empty() {
                meta.remove(key);
            } else {
                meta.insert(key.to_owned(), Value::Object(now));
            }
        }
    }
    Restore::Send(out)
}

/// At most this many changed paths are listed.
const MAX_CHANGES: usize = 8;

/// Appends `path: a → b` for each leaf where `a` and `b` differ (objects by key, arrays by
/// index), at most [`MAX_CHANGES`] (then `…`).
fn changed_paths(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b || out.len() > MAX_CHANGES {
        return;
    }
    let empty = Value::Object(Map::new());
    // A map that appeared or went away is listed by its keys.
    let (a, b) = match (a, b) {
        (Value::Null, Value::Object(_)) => (&empty, b),
        (Value::Object(_), Value::Null) => (a, &empty),
        _ => (a, b),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let null = Value::Null;
                let (va, vb) = (x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null));
                changed_paths(&format!("{path}.{k}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                changed_paths(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if out.len() == MAX_CHANGES => out.push("…".to_owned()),
        _ => {
            let show = |v: &Value| {
                let s = if v.is_null() {
                    "(absent)".to_owned()
                } else {
                    v.to_string()
                };
                if s.chars().count() > 80 {
                    format!("{}…", s.chars().take(80).collect::<String>())
                } else {
                    s
                }
            };
            out.push(format!("{path}: {} → {}", show(a), show(b)));
        }
    }
}

/// Whether sending `desired` would change `live`: its spec, or a label or annotation.
#[must_use]
pub(crate) fn differs(live: &Value, desired: &Value) -> bool {
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
        let comps = components::components(v);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(v: &Value) -> Manifest {
        crate::model::manifest::parse("m.json", v.to_string().as_bytes())
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
    fn a_restore_undoes_only_the_keys_the_update_set_and_keeps_other_writers_changes() {
        let previous = json!({"metadata": {
                "labels": {"v": "1", "team": "a", "gone": "x"},
                "annotations": {"seldon-deploy.io/apply-id": "old"}},
            "spec": {"replicas": 1}});
        let wrote = json!({"metadata": {
                "labels": {"v": "2", "team": "a", "added": "y"},
                "annotations": {"seldon-deploy.io/apply-id": "ours"}},
            "spec": {"replicas": 2}});
        // Since the update: a policy label added, `added` rewritten, status written.
        let live = json!({"metadata": {"resourceVersion": "12",
                "labels": {"v": "2", "team": "a", "added": "theirs", "policy": "ok"},
                "annotations": {"seldon-deploy.io/apply-id": "ours"},
                "managedFields": []},
            "spec": {"replicas": 2}, "status": {"state": "Creating"}});
        let Restore::Send(sent) = restored_object(&live, &previous, &wrote) else {
            panic!("refused")
        };
        assert_eq!(sent["spec"], json!({"replicas": 1}));
        assert_eq!(
            sent["metadata"]["labels"],
            json!({"v": "1", "team": "a", "gone": "x", "added": "theirs", "policy": "ok"})
        );
        assert_eq!(
            sent["metadata"]["annotations"],
            json!({"seldon-deploy.io/apply-id": "old"})
        );
        assert_eq!(sent["metadata"]["resourceVersion"], "12");
        assert!(sent.get("status").is_none());
        assert!(sent.pointer("/metadata/managedFields").is_none());

        // A marker the object had no annotation for is removed with the rest.
        let bare = json!({"metadata": {}, "spec": {"replicas": 1}});
        let Restore::Send(sent) = restored_object(&live, &bare, &wrote) else {
            panic!("refused")
        };
        assert!(sent.pointer("/metadata/annotations").is_none(), "{sent}");
    }

    #[test]
    fn a_spec_another_writer_changed_is_not_restored_and_the_change_is_named() {
        let previous = sdep("m:1", false);
        let wrote = sdep("m:2", false);
        let theirs = sdep("m:3", false);
        match restored_object(&theirs, &previous, &wrote) {
            Restore::ChangedByOthers(changes) => assert_eq!(
                changes,
                [
                    "spec.predictors[0].componentSpecs[0].spec.containers[0].image: \"m:2\" → \"m:3\""
                ]
            ),
            Restore::Send(s) => panic!("their spec would be overwritten: {s}"),
        }
        let mut annotated = wrote.clone();
        annotated["spec"]["annotations"] = json!({"seldon.io/rest-timeout": "5000"});
        match restored_object(&annotated, &previous, &wrote) {
            Restore::ChangedByOthers(changes) => assert_eq!(
                changes,
                ["spec.annotations.seldon.io/rest-timeout: (absent) → \"5000\""]
            ),
            Restore::Send(s) => panic!("their spec would be overwritten: {s}"),
        }
        // Already back at the previous spec (someone rolled back): nothing is refused.
        assert!(matches!(
            restored_object(&previous, &previous, &wrote),
            Restore::Send(_)
        ));
    }
}
