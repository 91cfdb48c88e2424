//! End to end on the local control plane with the real Seldon operator: the full `run` on each
//! bundled example, `--keep`, and the standalone subcommands.

mod support;

use serde_json::{Value, json};
use support::{Cluster, describe, example, example_json, missing_fields, report};

/// Runs the whole lifecycle of one example and checks the report and the cluster afterwards.
async fn full_run(example_file: &str, prefix: &str) {
    let cluster = Cluster::get();
    let ns = cluster.namespace(prefix).await;
    let manifest = example_json(example_file);
    let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
    let file = example(example_file);

    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            file.to_str().unwrap(),
            "--timeout",
            "2m",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let report = report(&out);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let phases: Vec<&str> = report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases.len(), 5, "five phases: {phases:?}");
    for phase in report["phases"].as_array().unwrap() {
        assert!(phase["duration_ms"].is_u64(), "duration_ms in {phase}");
    }
    // Events about the children reached the report (the operator's own, which its recorder
    // may write late under load, are pinned by `operator_events_reach_the_report`).
    let reasons = support::event_reasons(&report);
    assert!(
        reasons.iter().any(|r| r == "ScalingReplicaSet"),
        "events: {reasons:?}"
    );

    ns.assert_nothing_left(&name).await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_completes_the_original_iris_v1alpha2_manifest() {
    full_run("iris-v1alpha2.yaml", "iris").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_completes_components_that_start_at_different_replica_counts() {
    full_run("multi-component.yaml", "multi").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_completes_a_manifest_pinning_replicas_only_at_spec() {
    full_run("spec-replicas.yaml", "specrep").await;
}

/// Replica fields are the ones the scale is meant to change; everything else must reach the
/// server exactly as written.
fn with_replicas(mut v: Value, n: i64) -> Value {
    fn walk(v: &mut Value, n: i64) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if k == "replicas" && child.is_number() {
                        *child = json!(n);
                    } else {
                        walk(child, n);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, n)),
            _ => {}
        }
    }
    walk(&mut v, n);
    v
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn keep_leaves_the_deployment_with_every_field_of_the_manifest() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("keep").await;
    let file = example("multi-component.yaml");
    let manifest = example_json("multi-component.yaml");
    let name = manifest["metadata"]["name"].as_str().unwrap().to_string();

    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            file.to_str().unwrap(),
            "--replicas",
            "3",
            "--keep",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("delete"),
        "--keep says how to delete later:\n{stdout}"
    );

    let live = ns
        .get_sdep(&name)
        .await
        .expect("kept SeldonDeployment exists");
    let expected = with_replicas(manifest["spec"].clone(), 3);
    let diff = missing_fields(&expected, &live["spec"], "/spec");
    assert!(
        diff.is_empty(),
        "fields lost or changed on the server: {diff:#?}"
    );
    for (k, v) in manifest["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert_eq!(&live["metadata"]["labels"][k], v, "label {k}");
    }
    assert!(
        !ns.child_deployments(&name).await.is_empty(),
        "children kept too"
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn standalone_steps_create_status_scale_wait_events_delete() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("steps").await;
    let file = example("spec-replicas.yaml");
    let name = example_json("spec-replicas.yaml")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let n = ns.name.as_str();

    let out = cluster
        .sdep(&["create", "-n", n, "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "create: {}", describe(&out));
    assert!(ns.get_sdep(&name).await.is_some());

    let out = cluster
        .sdep(&["status", &name, "-n", n, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "status: {}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Available"),
        "status shows the state: {}",
        describe(&out)
    );

    let out = cluster
        .sdep(&[
            "scale",
            &name,
            "--replicas",
            "2",
            "-n",
            n,
            "--timeout",
            "2m",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "scale: {}", describe(&out));
    let live = ns.get_sdep(&name).await.unwrap();
    assert_eq!(live["spec"]["replicas"], json!(2));
    for d in ns.child_deployments(&name).await {
        let dep = ns.deployments().get(&d).await.unwrap();
        assert_eq!(dep.status.unwrap().available_replicas, Some(2), "{d} at 2");
    }

    let out = cluster
        .sdep(&["wait", &name, "--replicas", "2", "-n", n, "--timeout", "1m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "wait: {}", describe(&out));

    // `events` follows until interrupted; SIGINT ends it. It must show the operator's events
    // from the start of the object's life.
    let out = support::run_then_interrupt(cluster.sdep_std(&["events", &name, "-n", n]), 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CreateDeployment"),
        "events: {}",
        describe(&out)
    );

    let out = cluster
        .sdep(&["delete", &name, "-n", n, "--timeout", "1m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "delete: {}", describe(&out));
    ns.assert_nothing_left(&name).await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn wait_on_a_missing_deployment_is_a_clear_error() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("missing").await;
    let out = cluster
        .sdep(&["status", "no-such-sdep", "-n", &ns.name])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-sdep"),
        "names the object: {}",
        describe(&out)
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn operator_events_reach_the_report() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("opevents").await;
    // Pods that take 3 s per wait give the operator's asynchronous recorder time to write.
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("opevents", "3s"));
    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", &file, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let reasons = support::event_reasons(&report(&out));
    for reason in [
        "CreateDeployment",
        "CreateService",
        "ScalingReplicaSet",
        "Scheduled",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    ns.assert_nothing_left("opevents").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn pod_events_of_a_hashed_deployment_name_reach_the_report() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("hashedev").await;
    // `<name>-default-0-classifier` is over 63 characters, so the operator names the
    // Deployment `seldon-<hash>`: its Pods' Events wait until it is known to be ours.
    let name = "pod-events-of-a-long-named-seldondeployment";
    let (_tmp, file) = support::manifest_file(&support::slow_manifest(name, "3s"));
    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", &file, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = report(&out);
    let pod_events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["object"].as_str())
        .filter(|o| o.starts_with("Pod/seldon-"))
        .collect();
    assert!(!pod_events.is_empty(), "{}", describe(&out));
    ns.assert_nothing_left(name).await;
    ns.cleanup().await;
}
