//! The failing-pod hooks of testenv's KWOK configuration (`testenv/config/kwok.yaml`) produce the
//! container statuses a real kubelet reports, so the tool's failure detection is tested against
//! the same shapes it meets on a real cluster. Everything is observed through a watch on the pods.

mod support;

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::{Cluster, TestNamespace, sdep_manifest};

/// Guards against a hang only; no test asserts how long anything took.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Seldon's executor, which the operator adds to every pod of a graph.
const EXECUTOR: &str = "seldon-container-engine";

/// Feeds every version of every pod in `ns` to `done` until it returns true.
async fn watch_pods_until(ns: &TestNamespace, what: &str, done: impl FnMut(&Pod) -> bool) {
    watch_until(Api::namespaced(ns.client.clone(), &ns.name), what, done).await;
}

/// Feeds every version of every object of `api` to `done` until it returns true.
async fn watch_until<K>(api: Api<K>, what: &str, mut done: impl FnMut(&K) -> bool)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let stream = watcher(api, watcher::Config::default()).applied_objects();
    let found = tokio::time::timeout(HANG_GUARD, async {
        let mut stream = std::pin::pin!(stream);
        while let Some(obj) = stream.try_next().await.expect("watch") {
            if done(&obj) {
                return;
            }
        }
        panic!("the watch ended");
    })
    .await;
    assert!(found.is_ok(), "nothing showed {what}");
}

fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn waiting_reason(cs: &ContainerStatus) -> Option<&str> {
    cs.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
}

fn waiting_message(cs: &ContainerStatus) -> &str {
    cs.state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.message.as_deref())
        .unwrap_or_default()
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The executor runs but is not Ready: on a real cluster its readiness depends on the model.
fn assert_executor_runs_unready(pod: &Pod) {
    let ex = container(pod, EXECUTOR).unwrap_or_else(|| panic!("no {EXECUTOR} status: {pod:?}"));
    assert!(!ex.ready, "{EXECUTOR} must not be Ready: {ex:?}");
    assert!(
        ex.state.as_ref().and_then(|s| s.running.as_ref()).is_some(),
        "{EXECUTOR} must be running: {ex:?}"
    );
}

/// The hook label on the pod template of a one-component SeldonDeployment.
fn hooked(name: &str, hook: &str, image: &str) -> Value {
    sdep_manifest(
        name,
        json!({"labels": {hook: "true"}}),
        json!({"containers": [{"name": "classifier", "image": image}]}),
    )
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn crash_loop_hook_reports_crash_loop_back_off_with_exit_code_1_and_growing_restarts() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("hook-crash").await;
    ns.create_sdep(&hooked(
        "crash",
        "test.seldon-deploy/crash-loop",
        "seldonio/mock_classifier_rest:1.3",
    ))
    .await;

    // Two observations of the same pod: the restart count must grow between them.
    let mut first: Option<(String, i32)> = None;
    watch_pods_until(&ns, "a growing restartCount in CrashLoopBackOff", |pod| {
        let Some(cs) = container(pod, "classifier") else {
            return false;
        };
        if waiting_reason(cs) != Some("CrashLoopBackOff") {
            return false;
        }
        let last = cs
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .unwrap_or_else(|| panic!("no lastState.terminated: {cs:?}"));
        assert_eq!(last.exit_code, 1, "{cs:?}");
        assert_eq!(last.reason.as_deref(), Some("Error"), "{cs:?}");
        assert!(!cs.ready, "{cs:?}");
        assert!(cs.restart_count >= 1, "{cs:?}");
        assert!(
            waiting_message(cs).contains("restarting failed container=classifier"),
            "{cs:?}"
        );
        assert_eq!(phase(pod), Some("Running"));
        assert_eq!(condition(pod, "Ready").as_deref(), Some("False"));
        assert_executor_runs_unready(pod);
        match &first {
            None => {
                first = Some((pod_name(pod), cs.restart_count));
                false
            }
            Some((name, count)) => *name == pod_name(pod) && cs.restart_count > *count,
        }
    })
    .await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn image_pull_error_hook_reports_err_image_pull_then_image_pull_back_off_naming_the_image() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("hook-pull").await;
    let image = "registry.invalid/testenv/no-such-model:0.1";
    ns.create_sdep(&hooked(
        "pull",
        "test.seldon-deploy/image-pull-error",
        image,
    ))
    .await;

    let mut seen_err_image_pull = false;
    watch_pods_until(&ns, "ImagePullBackOff", |pod| {
        let Some(cs) = container(pod, "classifier") else {
            return false;
        };
        let Some(reason) = waiting_reason(cs) else {
            return false;
        };
        assert!(!cs.ready, "{cs:?}");
        assert_eq!(cs.restart_count, 0, "{cs:?}");
        assert_eq!(phase(pod), Some("Pending"), "a container never started");
        assert_eq!(condition(pod, "Ready").as_deref(), Some("False"));
        assert_executor_runs_unready(pod);
        match reason {
            "ErrImagePull" => {
                assert!(
                    waiting_message(cs)
                        .contains(&format!("failed to pull and unpack image \"{image}\"")),
                    "{cs:?}"
                );
                seen_err_image_pull = true;
                false
            }
            "ImagePullBackOff" => {
                assert_eq!(
                    waiting_message(cs),
                    format!("Back-off pulling image \"{image}\"")
                );
                true
            }
            other => panic!("unexpected waiting reason {other}: {cs:?}"),
        }
    })
    .await;
    assert!(
        seen_err_image_pull,
        "ErrImagePull comes first, as with kubelet"
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn adding_a_failing_hook_label_rolls_out_a_failing_pod_while_the_old_pod_keeps_serving() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("hook-rollout").await;
    let manifest = sdep_manifest("roll", json!({}), json!({}));
    ns.create_sdep(&manifest).await;

    let mut old_pod = String::new();
    watch_pods_until(&ns, "a Ready pod", |pod| {
        let ready = condition(pod, "Ready").as_deref() == Some("True");
        if ready {
            old_pod = pod_name(pod);
        }
        ready
    })
    .await;

    // An update through the API, as `apply` would send it: only the pod template's labels change.
    ns.update_pod_meta(
        manifest,
        json!({"labels": {"test.seldon-deploy/crash-loop": "true"}}),
    )
    .await;

    watch_pods_until(&ns, "a crash-looping new pod", |pod| {
        pod_name(pod) != old_pod
            && container(pod, "classifier").and_then(waiting_reason) == Some("CrashLoopBackOff")
    })
    .await;

    // The Deployment controller has counted the new pod: one updated, the old one still available.
    watch_until(
        ns.deployments(),
        "the rollout in the Deployment's status",
        |d: &Deployment| {
            let status = d.status.clone().unwrap_or_default();
            if status.updated_replicas != Some(1) || status.replicas != Some(2) {
                return false;
            }
            assert_eq!(status.available_replicas, Some(1), "{status:?}");
            assert_eq!(status.unavailable_replicas, Some(1), "{status:?}");
            true
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let old = pods.get(&old_pod).await.expect("the old pod still exists");
    assert!(old.metadata.deletion_timestamp.is_none(), "{old:?}");
    assert_eq!(condition(&old, "Ready").as_deref(), Some("True"));
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn restart_once_hook_reports_one_oom_kill_then_turns_ready_after_the_ready_delay() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("hook-restart").await;
    ns.create_sdep(&sdep_manifest(
        "restart",
        json!({"labels": {"test.seldon-deploy/restart-once": "true"},
               "annotations": {"test.seldon-deploy/ready-delay": "3s"}}),
        json!({}),
    ))
    .await;

    let mut seen_loading = false;
    watch_pods_until(&ns, "an OOM-killed container turning Ready", |pod| {
        let Some(cs) = container(pod, "classifier") else {
            return false;
        };
        let last = cs
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .unwrap_or_else(|| panic!("no lastState.terminated: {cs:?}"));
        assert_eq!(
            (last.exit_code, last.reason.as_deref()),
            (137, Some("OOMKilled")),
            "{cs:?}"
        );
        assert_eq!(cs.restart_count, 1, "{cs:?}");
        assert!(
            cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some(),
            "{cs:?}"
        );
        assert_eq!(phase(pod), Some("Running"));
        if !cs.ready {
            assert_eq!(condition(pod, "Ready").as_deref(), Some("False"));
            assert_executor_runs_unready(pod);
            seen_loading = true;
            return false;
        }
        assert_eq!(condition(pod, "Ready").as_deref(), Some("True"));
        true
    })
    .await;
    assert!(
        seen_loading,
        "running, not Ready, before the ready-delay passed"
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn image_pull_error_for_hook_fails_the_pull_for_that_long_then_the_pod_turns_ready() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("hook-pull-for").await;
    let image = "registry.invalid/testenv/slow-registry:0.1";
    ns.create_sdep(&sdep_manifest(
        "pullfor",
        json!({"annotations": {"test.seldon-deploy/image-pull-error-for": "2s",
                               "test.seldon-deploy/image-pull-error-after": "1s"}}),
        json!({"containers": [{"name": "classifier", "image": image}]}),
    ))
    .await;

    let mut seen_err_image_pull = false;
    watch_pods_until(&ns, "ErrImagePull, then Ready", |pod| {
        let Some(cs) = container(pod, "classifier") else {
            return false;
        };
        assert_eq!(cs.restart_count, 0, "{cs:?}");
        if cs.ready {
            assert_eq!(condition(pod, "Ready").as_deref(), Some("True"));
            assert_eq!(phase(pod), Some("Running"));
            return true;
        }
        // Only ErrImagePull, never the back-off of a pull that fails for good.
        assert_eq!(waiting_reason(cs), Some("ErrImagePull"), "{cs:?}");
        assert!(
            waiting_message(cs).contains(&format!("failed to pull and unpack image \"{image}\"")),
            "{cs:?}"
        );
        assert_eq!(condition(pod, "Ready").as_deref(), Some("False"));
        seen_err_image_pull = true;
        false
    })
    .await;
    assert!(seen_err_image_pull, "the pull failed before it worked");
    ns.cleanup().await;
}
