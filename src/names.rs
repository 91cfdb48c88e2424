//! The names this tool and the Seldon operator agree on: the API group, labels, annotations,
//! the field manager, and how a resourceVersion is compared.

/// The API group of SeldonDeployment.
pub const GROUP: &str = "machinelearning.seldon.io";

/// Field manager recorded on every write.
pub const FIELD_MANAGER: &str = "seldon-deploy";

/// Annotation added to every object this tool creates; its value is random per create, so
/// after a lost answer a read tells this run's object from a namesake someone else made.
pub const RUN_ID_ANNOTATION: &str = "seldon-deploy.io/run-id";

/// Annotation set by every update `apply` sends; its value is random per apply, so after a
/// lost answer a read tells whether the object carries this apply's write.
pub const APPLY_ID_ANNOTATION: &str = "seldon-deploy.io/apply-id";

/// The label the operator puts on every child Deployment and Service.
pub const SELDON_ID_LABEL: &str = "seldon-deployment-id";

/// Parses a resourceVersion as the number etcd makes it, for "written after" comparisons.
/// Kubernetes calls resourceVersions opaque; every apiserver backed by etcd issues them as
/// increasing revisions, and a value that does not parse makes the comparison fail safe
/// (never "newer").
#[must_use]
pub(crate) fn revision(rv: Option<&str>) -> Option<u64> {
    rv.and_then(|s| s.parse().ok())
}

/// [`revision`] of a JSON object's `metadata.resourceVersion`.
#[must_use]
pub(crate) fn revision_of(object: &serde_json::Value) -> Option<u64> {
    revision(
        object
            .pointer("/metadata/resourceVersion")
            .and_then(serde_json::Value::as_str),
    )
}

/// The value of a JSON object's [`APPLY_ID_ANNOTATION`], if it has one.
#[must_use]
pub(crate) fn apply_id_of(object: &serde_json::Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(APPLY_ID_ANNOTATION))
        .and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_compare_only_when_numeric() {
        assert_eq!(revision(Some("123")), Some(123));
        assert_eq!(revision(Some("abc")), None);
        assert_eq!(revision(None), None);
        let o = serde_json::json!({"metadata": {"resourceVersion": "7",
            "annotations": {APPLY_ID_ANNOTATION: "a1"}}});
        assert_eq!(revision_of(&o), Some(7));
        assert_eq!(apply_id_of(&o), Some("a1"));
        assert_eq!(apply_id_of(&serde_json::json!({})), None);
    }
}
