//! End to end: pods that cannot come up end the wait with exit 1, naming the cause, long
//! before `--timeout`; an unschedulable pod is shown as the blocker, not a failure.
//!
//! A timeout would be exit 4, so each exit code 1 here also shows the wait did not run to its
//! deadline. `--failed-grace 2s` keeps them short.

mod support;

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::{Cluster, describe, report};

/// `seldon-deploy ARGS -n NS -f FILE --timeout 3m --failed-grace 2s -o json`.
fn sdep_json(cluster: &Cluster, args: &[&str], ns: &str, file: &str) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "-n",
        ns,
        "-f",
        file,
        "--timeout",
        "3m",
        "--failed-grace",
        "2s",
        "-o",
        "json",
    ]);
    cluster.sdep(&all).output().unwrap()
}

/// The report's error and its failing pods, after checking exit code 1.
fn failure(out: &std::process::Output) -> (String, Vec<Value>) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let r = report(out);
    let error = r["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("cannot come up"), "{}", describe(out));
    let pods = r["failing_pods"].as_array().cloned().unwrap_or_default();
    assert!(!pods.is_empty(), "failing_pods: {}", describe(out));
    (error, pods)
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_quota_that_forbids_the_pods_fails_the_run_naming_failed_create_and_the_quota() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("quota").await;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    let m = support::sdep_manifest("quota", json!({}), json!({}));
    let (_tmp, file) = support::manifest_file(&m);
    let out = sdep_json(&cluster, &["run"], &ns.name, &file);
    let (error, pods) = failure(&out);
    assert!(error.contains("FailedCreate"), "{error}");
    assert!(error.contains("exceeded quota: no-pods"), "{error}");
    assert_eq!(pods[0]["reason"], "FailedCreate");
    assert_eq!(pods[0]["deployment"], "quota-default-0-classifier");
    // `run` cleans up what it created.
    ns.assert_nothing_left("quota").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn create_of_a_crash_looping_model_fails_naming_pod_container_and_crash_loop_back_off() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("crash").await;
    let m = support::sdep_manifest(
        "crash",
        json!({"labels": {"test.seldon-deploy/crash-loop": "true"}}),
        json!({}),
    );
    let (_tmp, file) = support::manifest_file(&m);
    let out = sdep_json(&cluster, &["create"], &ns.name, &file);
    let (error, pods) = failure(&out);
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    assert!(error.contains("pod crash-default-0-classifier-"), "{error}");
    assert!(error.contains("container classifier"), "{error}");
    assert_eq!(pods[0]["reason"], "CrashLoopBackOff");
    assert_eq!(pods[0]["exit_code"], 1);
    // `create` leaves the object for inspection; the test removes it with the namespace.
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_of_an_unpullable_image_fails_naming_pod_container_reason_and_image() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("pull").await;
    let m = support::sdep_manifest(
        "pull",
        json!({"labels": {"test.seldon-deploy/image-pull-error": "true"}}),
        json!({}),
    );
    let (_tmp, file) = support::manifest_file(&m);
    let out = sdep_json(&cluster, &["run"], &ns.name, &file);
    let (error, pods) = failure(&out);
    assert!(
        error.contains("ImagePullBackOff") || error.contains("ErrImagePull"),
        "{error}"
    );
    assert!(error.contains("container classifier"), "{error}");
    assert!(
        error.contains("seldonio/mock_classifier_rest:1.3"),
        "{error}"
    );
    assert_eq!(pods[0]["container"], "classifier");
    ns.assert_nothing_left("pull").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_of_a_crash_looping_model_fails_and_cleans_up() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("crashrun").await;
    let m = support::sdep_manifest(
        "crashrun",
        json!({"labels": {"test.seldon-deploy/crash-loop": "true"}}),
        json!({}),
    );
    let (_tmp, file) = support::manifest_file(&m);
    let out = sdep_json(&cluster, &["run"], &ns.name, &file);
    let (error, _) = failure(&out);
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    ns.assert_nothing_left("crashrun").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_unschedulable_pod_is_not_a_failure_and_the_timeout_names_it_as_the_blocker() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("unsched").await;
    // More CPU than the fake node has: the scheduler can never place it.
    let m = support::sdep_manifest(
        "unsched",
        json!({}),
        json!({"containers": [{"name": "classifier", "image": "seldonio/mock_classifier_rest:1.3",
                               "resources": {"requests": {"cpu": "1000"}}}]}),
    );
    let (_tmp, file) = support::manifest_file(&m);
    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            &file,
            "--timeout",
            "6s",
            "--failed-grace",
            "1s",
        ])
        .output()
        .unwrap();
    // A grace of 1 s inside a 6 s timeout: had Unschedulable counted as broken, exit 1.
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unschedulable: 0/"),
        "the timeout names the blocker: {}",
        describe(&out)
    );
    ns.assert_nothing_left("unsched").await;
    ns.cleanup().await;
}
