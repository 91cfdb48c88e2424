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
pub fn revision(rv: Option<&str>) -> Option<u64> {
    rv.and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_compare_only_when_numeric() {
        assert_eq!(revision(Some("123")), Some(123));
        assert_eq!(revision(Some("abc")), None);
        assert_eq!(revision(None), None);
    }
}
