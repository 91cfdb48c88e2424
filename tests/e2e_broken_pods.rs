//! End to end: pods that cannot come up end the wait with exit 1, naming the cause, long
//! before `--timeout`; an unschedulable pod is shown as the blocker, not a failure.
//!
//! A timeout would be exit 4, so each exit code 1 here also shows the wait did not run to its
//! deadline. `--failed-grace 2s` keeps them short.

mod support;

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{Api, ListParams, PostParams};
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

/// Runs `seldon-deploy <step>` (see [`sdep_json`]) on SeldonDeployment `name`, whose pods carry
/// testenv's hook label `test.seldon-deploy/<hook>: "true"`, in a namespace of its own; checks
/// that nothing is left behind, and returns the failure's message and pods.
async fn fail_with_hook(step: &str, name: &str, hook: &str) -> (String, Vec<Value>) {
    let cluster = Cluster::get();
    let ns = cluster.namespace(name).await;
    let labels = json!({ format!("test.seldon-deploy/{hook}"): "true" });
    let m = support::sdep_manifest(name, json!({ "labels": labels }), json!({}));
    let (_tmp, file) = support::manifest_file(&m);
    let out = sdep_json(&cluster, &[step], &ns.name, &file);
    let failed = failure(&out);
    ns.assert_nothing_left(name).await;
    ns.cleanup().await;
    failed
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
    let (error, pods) = fail_with_hook("create", "crash", "crash-loop").await;
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    assert!(error.contains("pod crash-default-0-classifier-"), "{error}");
    assert!(error.contains("container classifier"), "{error}");
    assert_eq!(pods[0]["reason"], "CrashLoopBackOff");
    assert_eq!(pods[0]["exit_code"], 1);
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_of_an_unpullable_image_fails_naming_pod_container_reason_and_image() {
    let (error, pods) = fail_with_hook("run", "pull", "image-pull-error").await;
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
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_of_a_crash_looping_model_fails_and_cleans_up() {
    let (error, _) = fail_with_hook("run", "crashrun", "crash-loop").await;
    assert!(error.contains("CrashLoopBackOff"), "{error}");
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

/// Waits (test-side polling, at most 60 s) until a pod of the namespace is crash-looping.
async fn crash_looping_pod(ns: &support::TestNamespace) {
    let pods = Api::<Pod>::namespaced(ns.client.clone(), &ns.name);
    for _ in 0..600 {
        let list = pods.list(&ListParams::default()).await.unwrap();
        let looping = list.items.iter().flat_map(|p| p.status.iter()).any(|st| {
            st.container_statuses.iter().flatten().any(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff")
            })
        });
        if looping {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no crash-looping pod within 60 s");
}

/// Waits (test-side polling, at most 60 s) until the Deployment controller has observed the
/// operator's update of the Deployment (generation 2): the rollout has begun, so a wait that
/// starts now cannot see the finished rollout of the old template.
async fn rollout_begun(ns: &support::TestNamespace, deployment: &str) {
    for _ in 0..600 {
        if let Ok(d) = ns.deployments().get(deployment).await {
            let observed = d.status.and_then(|s| s.observed_generation).unwrap_or(0);
            if d.metadata.generation >= Some(2) && observed >= 2 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{deployment} was not updated within 60 s");
}

async fn pod_names(ns: &support::TestNamespace) -> Vec<String> {
    Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn wait_on_an_update_whose_new_pods_crash_loop_fails_naming_a_new_pod() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("roll").await;
    let m = support::sdep_manifest("roll", json!({}), json!({}));
    let (_tmp, file) = support::manifest_file(&m);
    let out = cluster
        .sdep(&["create", "-n", &ns.name, "-f", &file, "--timeout", "2m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let old = pod_names(&ns).await;
    ns.update_pod_meta(
        m,
        json!({"labels": {"test.seldon-deploy/crash-loop": "true"}}),
    )
    .await;
    rollout_begun(&ns, "roll-default-0-classifier").await;
    // The old pod keeps serving (the operator stays Available); the new one crash-loops.
    let out = cluster
        .sdep(&[
            "wait",
            "roll",
            "-n",
            &ns.name,
            "--timeout",
            "3m",
            "--failed-grace",
            "2s",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let (error, pods) = failure(&out);
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    let pod = pods[0]["pod"].as_str().unwrap();
    assert!(
        !old.iter().any(|o| o == pod),
        "{pod} is a new pod, not one of {old:?}"
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_old_replica_sets_crash_looping_pod_does_not_fail_the_rollout_that_replaces_it() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("fix").await;
    // A crash-looping model, then a fix that changes only the pod template's metadata (the
    // image stays): the new pod turns Ready after 5 s, and until then the old pod crash-loops
    // (one replica, so the Deployment keeps it until the new one is available).
    let m = support::sdep_manifest(
        "fix",
        json!({"labels": {"test.seldon-deploy/crash-loop": "true"}}),
        json!({}),
    );
    ns.create_sdep(&m).await;
    crash_looping_pod(&ns).await;
    ns.update_pod_meta(
        m,
        json!({"annotations": {"test.seldon-deploy/ready-delay": "5s"}}),
    )
    .await;
    rollout_begun(&ns, "fix-default-0-classifier").await;
    let out = cluster
        .sdep(&[
            "wait",
            "fix",
            "-n",
            &ns.name,
            "--timeout",
            "2m",
            "--failed-grace",
            "1s",
        ])
        .output()
        .unwrap();
    // Counting the old pod would have failed after 1 s.
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    ns.cleanup().await;
}

/// Creates `name` (ready), then `apply`s it again with a new image and `pod_meta` as its
/// component's pod metadata, after `before_apply`; returns the apply's output.
///
/// The image changes too: with a metadata-only change, `apply`'s rollout wait was seen to
/// return 0 before the operator had updated the Deployment (1 run in 8), since its "new pod
/// template" check compares images only.
const NEW_IMAGE: &str = "seldonio/mock_classifier_rest:1.4";

async fn apply_update<F, Fut>(
    cluster: &Cluster,
    ns: &support::TestNamespace,
    name: &str,
    pod_meta: Value,
    before_apply: F,
) -> std::process::Output
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut m = support::sdep_manifest(name, json!({}), json!({}));
    let (_tmp, file) = support::manifest_file(&m);
    let out = cluster
        .sdep(&["create", "-n", &ns.name, "-f", &file, "--timeout", "2m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    before_apply().await;
    m["spec"]["predictors"][0]["componentSpecs"][0]["metadata"] = pod_meta;
    m["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["image"] =
        json!(NEW_IMAGE);
    let (_tmp2, file) = support::manifest_file(&m);
    sdep_json(cluster, &["apply"], &ns.name, &file)
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_of_an_update_whose_new_pods_crash_loop_fails_naming_pod_container_and_reason() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("applycrash").await;
    let pod_meta = json!({"labels": {"test.seldon-deploy/crash-loop": "true"}});
    let out = apply_update(&cluster, &ns, "applycrash", pod_meta, || async {}).await;
    let (error, pods) = failure(&out);
    for part in [
        "pod applycrash-default-0-classifier-",
        "container classifier",
        "CrashLoopBackOff",
    ] {
        assert!(error.contains(part), "{part:?} in {error}");
    }
    assert_eq!(pods[0]["exit_code"], 1);
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_of_an_update_whose_new_image_cannot_be_pulled_fails_naming_the_image() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("applypull").await;
    let pod_meta = json!({"labels": {"test.seldon-deploy/image-pull-error": "true"}});
    let out = apply_update(&cluster, &ns, "applypull", pod_meta, || async {}).await;
    let (error, _) = failure(&out);
    assert!(error.contains("container classifier"), "{error}");
    assert!(error.contains(NEW_IMAGE), "{error}");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_of_an_update_a_quota_forbids_fails_naming_failed_create_and_the_quota() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("applyquota").await;
    // Room for the serving pod only: the rollout's new pod (a surge) is refused.
    let quotas = Api::<ResourceQuota>::namespaced(ns.client.clone(), &ns.name);
    let pod_meta = json!({"annotations": {"test.seldon-deploy/ready-delay": "1s"}});
    let out = apply_update(&cluster, &ns, "applyquota", pod_meta, || async {
        let quota: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}
        }))
        .unwrap();
        quotas.create(&PostParams::default(), &quota).await.unwrap();
    })
    .await;
    let (error, pods) = failure(&out);
    assert!(error.contains("FailedCreate"), "{error}");
    assert!(error.contains("exceeded quota: one-pod"), "{error}");
    assert_eq!(pods[0]["reason"], "FailedCreate");
    ns.cleanup().await;
}

/// `seldon-deploy create` of `m` with `--failed-grace GRACE`, expecting exit 0; returns its
/// output, whose progress lines name what held the wait up.
async fn create_succeeds(
    cluster: &Cluster,
    ns: &support::TestNamespace,
    m: &Value,
    grace: &str,
) -> String {
    let (_tmp, file) = support::manifest_file(m);
    let out = cluster
        .sdep(&[
            "create",
            "-n",
            &ns.name,
            "-f",
            &file,
            "--timeout",
            "3m",
            "--failed-grace",
            grace,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    describe(&out)
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_model_killed_once_that_turns_ready_after_the_grace_is_not_a_failure() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("oomonce").await;
    // OOM-killed once, then its model loads for 45 s: longer than the 30 s grace, but not a
    // crash loop (its restart count stays at 1).
    let m = support::sdep_manifest(
        "oomonce",
        json!({"labels": {"test.seldon-deploy/restart-once": "true"},
               "annotations": {"test.seldon-deploy/ready-delay": "45s"}}),
        json!({}),
    );
    let out = create_succeeds(&cluster, &ns, &m, "30s").await;
    assert!(out.contains("container classifier: OOMKilled"), "{out}");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn short_image_pull_errors_on_two_pods_at_different_times_do_not_add_up_to_a_failure() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("twopulls").await;
    // Two components, one pod each: the first pod's pull fails from 0 s to 7 s, the second's
    // from 5 s to 12 s. Some pod fails for 12 s on end, each for 7 s: under the 10 s grace.
    let component = |name: &str, after: &str| {
        json!({
            "metadata": {"annotations": {"test.seldon-deploy/image-pull-error-for": "7s",
                                         "test.seldon-deploy/image-pull-error-after": after}},
            "spec": {"containers": [{"name": name, "image": "seldonio/mock_classifier_rest:1.3"}]}
        })
    };
    let mut m = support::sdep_manifest("twopulls", json!({}), json!({}));
    m["spec"]["predictors"][0]["componentSpecs"] =
        json!([component("first", "0s"), component("second", "5s")]);
    m["spec"]["predictors"][0]["graph"] = json!({
        "name": "first", "type": "TRANSFORMER", "endpoint": {"type": "REST"},
        "children": [{"name": "second", "type": "MODEL", "endpoint": {"type": "REST"}, "children": []}]
    });
    let out = create_succeeds(&cluster, &ns, &m, "10s").await;
    for pod in ["first", "second"] {
        assert!(
            out.contains(&format!("container {pod}: ErrImagePull")),
            "{out}"
        );
    }
    ns.cleanup().await;
}
