//! Bad input on the local control plane. A typo'd field (`replica:`) is valid to the client and
//! only strict server-side validation (`fieldValidation=Strict`) catches it, so it needs the
//! real API server with the Seldon CRD; the client-detectable cases are checked here once more
//! against the real cluster to show nothing is created. `tests/bad_input.rs` covers every case
//! without a cluster.

mod support;

use std::path::{Path, PathBuf};

use kube::api::ListParams;
use support::{Cluster, describe, report};

fn bad(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bad")
        .join(name)
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn unknown_field_is_rejected_by_strict_validation_and_nothing_is_created() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("typo").await;
    let file = bad("unknown-field-replica.yaml");
    let file = file.to_str().unwrap();

    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", file, "--timeout", "1m"])
        .output()
        .unwrap();
    let all = describe(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(!stderr.contains("panicked"), "{all}");
    // The server's message names the field; the CRD did not prune it silently.
    assert!(stderr.contains("spec.predictors[0].replica"), "{all}");
    assert!(stderr.contains("unknown field"), "{all}");
    assert!(stderr.contains(file), "names the file: {all}");
    ns.assert_nothing_left("typo").await;

    // The JSON report names the file the rejected manifest came from.
    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            file,
            "--timeout",
            "1m",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["outcome"], "invalid", "{rep}");
    assert!(
        rep["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("unknown-field-replica.yaml")),
        "{rep}"
    );
    assert!(
        rep["error"]
            .as_str()
            .is_some_and(|e| e.contains("spec.predictors[0].replica")),
        "{rep}"
    );
    ns.assert_nothing_left("typo").await;
    ns.cleanup().await;
}

/// Every client-detectable case exits 2 against the real cluster too, and the namespace stays
/// empty.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn client_detectable_bad_input_creates_nothing_on_the_cluster() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("badin").await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(bad(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        // The two files of bad/ that the client accepts (see tests/data/README.md).
        .filter(|p| {
            !p.ends_with("unknown-field-replica.yaml")
                && !p.ends_with("duplicate-key-same-value.yaml")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 25, "{files:?}");
    for file in &files {
        let out = cluster
            .sdep(&["run", "-n", &ns.name, "-f", file.to_str().unwrap()])
            .output()
            .unwrap();
        let all = describe(&out);
        assert_eq!(out.status.code(), Some(2), "{file:?}: {all}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&*file.to_string_lossy()),
            "{file:?} not named: {all}"
        );
    }
    let left = ns.sdeps().list(&ListParams::default()).await.unwrap();
    assert!(left.items.is_empty(), "created: {:?}", left.items);
    ns.cleanup().await;
}
