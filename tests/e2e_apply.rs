//! End to end on the local control plane: `apply` ships a new version into a live
//! SeldonDeployment and returns only when the rollout is complete; `diff`, `--dry-run=server`
//! and `--atomic`.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::{
    Cluster, TestNamespace, describe, manifest_file, report, restricted_user, sdep_manifest,
};

const IMAGE_V1: &str = "seldonio/mock_classifier_rest:1.3";
const IMAGE_V2: &str = "seldonio/mock_classifier_rest:1.4";

/// A one-component SeldonDeployment at `replicas`, running `image`, whose pods turn Ready
/// `delay` after they start.
fn versioned(name: &str, image: &str, replicas: i64, delay: &str) -> Value {
    let mut m = sdep_manifest(
        name,
        json!({"annotations": {"test.seldon-deploy/ready-delay": delay}}),
        json!({"containers": [{"name": "classifier", "image": image}]}),
    );
    m["spec"]["predictors"][0]["replicas"] = json!(replicas);
    m
}

fn apply(cluster: &Cluster, ns: &str, manifest: &Value, extra: &[&str]) -> std::process::Output {
    let (_dir, file) = manifest_file(manifest);
    let mut args = vec!["apply", "-n", ns, "-f", &file, "-o", "json"];
    args.extend_from_slice(extra);
    cluster.sdep(&args).output().unwrap()
}

/// Every pod of `sdep` is Ready, runs `image`, and none is being deleted; the Deployment
/// reports `replicas == updatedReplicas == availableReplicas == n` for its current generation.
async fn assert_rolled_out(ns: &TestNamespace, sdep: &str, image: &str, n: i32) {
    let deps = ns.child_deployments(sdep).await;
    assert_eq!(deps.len(), 1, "{deps:?}");
    let d = ns.deployments().get(&deps[0]).await.unwrap();
    let st = d.status.clone().unwrap_or_default();
    assert_eq!(
        (
            st.replicas,
            st.updated_replicas,
            st.available_replicas,
            st.observed_generation
        ),
        (Some(n), Some(n), Some(n), d.metadata.generation),
        "{deps:?} status {st:?}"
    );
    let template = d.spec.template.spec.clone().unwrap();
    assert_eq!(template.containers[0].image.as_deref(), Some(image));
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let pods = pods
        .list(&ListParams::default().labels(&format!("seldon-deployment-id={sdep}")))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), n as usize, "pods left from an older ReplicaSet");
    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        assert!(
            p.metadata.deletion_timestamp.is_none(),
            "{name} terminating"
        );
        let spec = p.spec.as_ref().unwrap();
        let model = spec
            .containers
            .iter()
            .find(|c| c.name == "classifier")
            .expect("model container");
        assert_eq!(
            model.image.as_deref(),
            Some(image),
            "{name} runs an old image"
        );
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        assert!(ready, "{name} is not Ready");
    }
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_returns_only_after_every_new_pod_is_ready_and_no_old_pod_remains() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-image").await;

    // A name that does not exist yet is created.
    let out = apply(
        &cluster,
        &ns.name,
        &versioned("model", IMAGE_V1, 2, "0s"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report(&out)["change"], "created");
    assert_rolled_out(&ns, "model", IMAGE_V1, 2).await;

    // The new image's pods take 10 s to turn Ready; the operator keeps Available meanwhile.
    let out = apply(
        &cluster,
        &ns.name,
        &versioned("model", IMAGE_V2, 2, "10s"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["change"], "updated");
    assert_eq!(rep["images"][0]["old"], IMAGE_V1);
    assert_eq!(rep["images"][0]["new"], IMAGE_V2);
    assert_rolled_out(&ns, "model", IMAGE_V2, 2).await;
    let waited = rep["phases"][1]["duration_ms"].as_u64().unwrap();
    assert!(waited > 0, "{rep}");
    // The rollout's last Events (the old ReplicaSet scaled down to 0, its last pod deleted)
    // are in the report, although the run stops listening once the Events are in.
    let messages: Vec<&str> = rep["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Scaled down replica set") && m.ends_with(" to 0")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("Deleted pod: ")),
        "{messages:?}"
    );

    // The same manifest again changes nothing and still confirms readiness.
    let out = apply(
        &cluster,
        &ns.name,
        &versioned("model", IMAGE_V2, 2, "10s"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report(&out)["change"], "unchanged");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_adds_a_canary_and_returns_after_removing_it_only_once_its_deployments_are_gone() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-canary").await;
    let base = versioned("split", IMAGE_V1, 1, "0s");
    let out = apply(&cluster, &ns.name, &base, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let mut canary = base.clone();
    let mut pred = canary["spec"]["predictors"][0].clone();
    pred["name"] = json!("canary");
    pred["traffic"] = json!(10);
    pred["componentSpecs"][0]["spec"]["containers"][0]["image"] = json!(IMAGE_V2);
    canary["spec"]["predictors"][0]["traffic"] = json!(90);
    canary["spec"]["predictors"]
        .as_array_mut()
        .unwrap()
        .push(pred);
    let out = apply(&cluster, &ns.name, &canary, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let mut deps = ns.child_deployments("split").await;
    deps.sort();
    assert_eq!(
        deps,
        ["split-canary-0-classifier", "split-default-0-classifier"]
    );

    let mut back = base.clone();
    back["spec"]["predictors"][0]["traffic"] = json!(100);
    let out = apply(&cluster, &ns.name, &back, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        ns.child_deployments("split").await,
        ["split-default-0-classifier"],
        "apply returned while the canary's Deployment still existed"
    );
    let live = ns.get_sdep("split").await.unwrap();
    assert_eq!(
        live["spec"], back["spec"],
        "the live spec is the manifest's"
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_keeps_labels_other_tools_wrote_and_removes_fields_the_manifest_dropped() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-merge").await;
    let mut theirs = versioned("merge", IMAGE_V1, 1, "0s");
    theirs["metadata"]["labels"] = json!({"team": "fraud"});
    theirs["metadata"]["annotations"] = json!({"other-tool/owner": "argo"});
    theirs["spec"]["predictors"][0]["labels"] = json!({"old": "field"});
    ns.create_sdep(&theirs).await;

    let mut ours = versioned("merge", IMAGE_V1, 1, "0s");
    ours["metadata"]["labels"] = json!({"version": "2"});
    let out = apply(&cluster, &ns.name, &ours, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let live = ns.get_sdep("merge").await.unwrap();
    assert_eq!(live["spec"], ours["spec"]);
    assert_eq!(
        live["metadata"]["labels"],
        json!({"team": "fraud", "version": "2"})
    );
    assert_eq!(live["metadata"]["annotations"]["other-tool/owner"], "argo");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn dry_run_and_diff_change_nothing_and_diff_exits_1_on_a_difference() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-diff").await;
    let v1 = versioned("diffed", IMAGE_V1, 1, "0s");
    // Created and ready, so the operator has no more status to write.
    let out = apply(&cluster, &ns.name, &v1, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let rv = |o: &Value| o["metadata"]["resourceVersion"].clone();
    let before = ns.get_sdep("diffed").await.unwrap();

    let v2 = versioned("diffed", IMAGE_V2, 1, "0s");
    let (_d, file) = manifest_file(&v2);
    let out = cluster
        .sdep(&["apply", "-n", &ns.name, "-f", &file, "--dry-run=server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("-        - image: {IMAGE_V1}"))
            && text.contains(&format!("+        - image: {IMAGE_V2}")),
        "{text}"
    );
    let out = cluster
        .sdep(&["diff", "-n", &ns.name, "-f", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let after = ns.get_sdep("diffed").await.unwrap();
    assert_eq!(rv(&after), rv(&before), "a dry run wrote to the object");
    assert_eq!(after["spec"], v1["spec"]);

    let (_d, same) = manifest_file(&v1);
    let out = cluster
        .sdep(&["diff", "-n", &ns.name, "-f", &same])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn atomic_apply_restores_the_previous_spec_when_the_rollout_does_not_complete() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-atomic").await;
    let good = versioned("atomic", IMAGE_V1, 1, "0s");
    let out = apply(&cluster, &ns.name, &good, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = ns.get_sdep("atomic").await.unwrap();

    // New pods that never turn Ready: the rollout cannot complete in time.
    let mut bad = versioned("atomic", IMAGE_V2, 1, "0s");
    bad["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"] =
        json!({"test.seldon-deploy/never-ready": "true"});
    let out = apply(&cluster, &ns.name, &bad, &["--atomic", "--timeout", "8s"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["rollback"]["outcome"], "restored", "{rep}");
    let error = rep["error"].as_str().unwrap();
    assert!(error.contains("rolled back"), "{error}");
    let live = ns.get_sdep("atomic").await.unwrap();
    assert_eq!(live["spec"], before["spec"]);
    assert_eq!(live["metadata"]["labels"], before["metadata"]["labels"]);
    assert_rolled_out(&ns, "atomic", IMAGE_V1, 1).await;

    // Without --atomic the failed update stays, and the message says how to roll back.
    let out = apply(&cluster, &ns.name, &bad, &["--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let error = report(&out)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("stays in place"), "{error}");
    assert_eq!(ns.get_sdep("atomic").await.unwrap()["spec"], bad["spec"]);
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn atomic_apply_deletes_what_it_created_when_the_rollout_fails() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-atomic-new").await;
    let mut bad = versioned("fresh", IMAGE_V1, 1, "0s");
    bad["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"] =
        json!({"test.seldon-deploy/never-ready": "true"});
    let out = apply(&cluster, &ns.name, &bad, &["--atomic", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert_eq!(report(&out)["rollback"]["outcome"], "deleted");
    ns.assert_nothing_left("fresh").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_label_written_during_the_rollout_survives_the_next_apply() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-writer").await;
    let v1 = versioned("shared", IMAGE_V1, 1, "0s");
    let out = apply(&cluster, &ns.name, &v1, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Another writer labels the object while our rollout runs.
    let v2 = versioned("shared", IMAGE_V2, 1, "3s");
    let (_d, file) = manifest_file(&v2);
    let child = cluster.spawn(&["apply", "-n", &ns.name, "-f", &file, "-o", "json"]);
    let patch = json!({"metadata": {"labels": {"written-by": "someone-else"}}});
    ns.sdeps()
        .patch("shared", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let live = ns.get_sdep("shared").await.unwrap();
    assert_eq!(live["metadata"]["labels"]["written-by"], "someone-else");
    assert_eq!(live["spec"], v2["spec"]);
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn junit_output_has_one_case_per_phase() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-junit").await;
    let (_d, file) = manifest_file(&versioned("reported", IMAGE_V1, 1, "0s"));
    let out = cluster
        .sdep(&["apply", "-n", &ns.name, "-f", &file, "-o", "junit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(xml.starts_with("<?xml"), "{xml}");
    let case = |phase: &str| format!("classname=\"{}/reported\" name=\"{phase}\"", ns.name);
    assert!(xml.contains(&case("apply")), "{xml}");
    assert!(xml.contains(&case("wait-rollout")), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    ns.cleanup().await;
}

/// A new traffic split changes no object the operator makes (testenv has no Istio or
/// Ambassador), so the operator writes no status after it, and no Deployment changes: the
/// rollout is complete once readiness holds, with no sign from the operator (the wait reads no
/// Events; on a cluster that keeps them in their own etcd it could not compare them anyway).
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_traffic_split_change_completes_although_the_operator_writes_no_status() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-traffic").await;
    let mut split = versioned("traffic", IMAGE_V1, 1, "0s");
    let mut canary = split["spec"]["predictors"][0].clone();
    canary["name"] = json!("canary");
    canary["traffic"] = json!(10);
    split["spec"]["predictors"][0]["traffic"] = json!(90);
    split["spec"]["predictors"]
        .as_array_mut()
        .unwrap()
        .push(canary);
    let out = apply(&cluster, &ns.name, &split, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let status_before = ns.get_sdep("traffic").await.unwrap()["status"].clone();

    split["spec"]["predictors"][0]["traffic"] = json!(50);
    split["spec"]["predictors"][1]["traffic"] = json!(50);
    let out = apply(&cluster, &ns.name, &split, &["--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report(&out)["change"], "updated");
    let live = ns.get_sdep("traffic").await.unwrap();
    assert_eq!(live["spec"], split["spec"]);
    assert_eq!(
        live["status"], status_before,
        "the operator wrote a status after all"
    );
    ns.cleanup().await;
}

/// How an update can break, as testenv produces it: a KWOK hook on the new pod template, or a
/// quota the new ReplicaSet's surge pod exceeds.
#[derive(Clone, Copy)]
enum Breakage {
    CrashLoop,
    ImagePull,
    Quota,
}

/// Ships a broken v2 over a ready v1 and checks that the wait ends with exit 1 naming the
/// cause (well inside `--timeout`: a timeout would be exit 4), and what becomes of the update
/// with and without `--atomic` (without it, `e2e_broken_pods` covers each breakage).
async fn broken_update(prefix: &str, breakage: Breakage, atomic: bool) {
    let cluster = Cluster::get();
    let ns = cluster.namespace(prefix).await;
    let v1 = versioned("broken", IMAGE_V1, 1, "0s");
    let out = apply(&cluster, &ns.name, &v1, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = ns.get_sdep("broken").await.unwrap();

    let mut v2 = versioned("broken", IMAGE_V2, 1, "0s");
    let labels = &mut v2["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"];
    let expected: &[&str] = match breakage {
        Breakage::CrashLoop => {
            *labels = json!({"test.seldon-deploy/crash-loop": "true"});
            &[
                "CrashLoopBackOff",
                "classifier",
                "broken-default-0-classifier-",
            ]
        }
        Breakage::ImagePull => {
            *labels = json!({"test.seldon-deploy/image-pull-error": "true"});
            &["classifier", IMAGE_V2, "broken-default-0-classifier-"]
        }
        Breakage::Quota => {
            let quota: k8s_openapi::api::core::v1::ResourceQuota = serde_json::from_value(json!({
                "metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}
            }))
            .unwrap();
            Api::namespaced(ns.client.clone(), &ns.name)
                .create(&kube::api::PostParams::default(), &quota)
                .await
                .unwrap();
            &["FailedCreate", "exceeded quota: one-pod"]
        }
    };
    let mut args = vec!["--timeout", "3m", "--failed-grace", "2s"];
    if atomic {
        args.push("--atomic");
    }
    let out = apply(&cluster, &ns.name, &v2, &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rep = report(&out);
    let error = rep["error"].as_str().unwrap_or_default().to_owned();
    for word in expected {
        assert!(error.contains(word), "{word:?} not in: {error}");
    }
    assert!(!rep["failing_pods"].as_array().unwrap().is_empty(), "{rep}");
    let live = ns.get_sdep("broken").await.unwrap();
    if atomic {
        assert!(error.contains("rolled back"), "{error}");
        assert_eq!(rep["rollback"]["outcome"], "restored", "{rep}");
        assert_eq!(live["spec"], before["spec"]);
        assert_rolled_out(&ns, "broken", IMAGE_V1, 1).await;
    } else {
        assert!(error.contains("stays in place"), "{error}");
        assert_eq!(live["spec"], v2["spec"]);
    }
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_crash_looping_update_with_atomic_rolls_back_to_ready_old_pods() {
    broken_update("apply-crash-atomic", Breakage::CrashLoop, true).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_unpullable_image_update_with_atomic_fails_naming_the_image_and_rolls_back() {
    broken_update("apply-pull-atomic", Breakage::ImagePull, true).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_update_a_quota_forbids_with_atomic_fails_naming_failed_create_and_rolls_back() {
    broken_update("apply-quota-atomic", Breakage::Quota, true).await;
}

/// What an update changes, for the rollout tests below.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// The image of predictor `default`: its pod template names the new image.
    Image,
    /// Only the `modelUri` of predictor `default`'s graph: the images stay the same, so only
    /// the proof that the operator has acted on the update tells a stale Deployment apart.
    ModelUri,
    /// Only the traffic split: no Deployment and no status changes.
    Traffic,
}

const MODEL_V1: &str = "gs://seldon-models/test/model-v1";
const MODEL_V2: &str = "gs://seldon-models/test/model-v2";

/// Two predictors (90/10), each with a model at `model` and pods that turn Ready 3 s after
/// they start, so a rollout lasts long enough to be caught unfinished.
fn two_predictors(image: &str, model: &str, traffic: i64) -> Value {
    let mut m = versioned("fresh", image, 1, "3s");
    m["spec"]["predictors"][0]["graph"]["modelUri"] = json!(model);
    m["spec"]["predictors"][0]["traffic"] = json!(traffic);
    let mut canary = m["spec"]["predictors"][0].clone();
    canary["name"] = json!("canary");
    canary["traffic"] = json!(100 - traffic);
    canary["componentSpecs"][0]["spec"]["containers"][0]["image"] = json!(IMAGE_V1);
    canary["graph"]["modelUri"] = json!(MODEL_V1);
    m["spec"]["predictors"].as_array_mut().unwrap().push(canary);
    m
}

/// `seldon-deploy apply -f MANIFEST -o json --timeout 2m` as the identity of `kubeconfig`.
fn apply_as(kubeconfig: &str, ns: &str, manifest: &Value) -> std::process::Output {
    let (_dir, file) = manifest_file(manifest);
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"))
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .args([
            "apply",
            "-n",
            ns,
            "-f",
            &file,
            "-o",
            "json",
            "--timeout",
            "2m",
        ])
        .args(["--kubeconfig", kubeconfig])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap()
}

/// The rollout of `sdep` is complete, read from the server right after `apply` exited: each
/// owned Deployment's status is current and at its count, its pod template holds `wanted`
/// (for the one of predictor `default`), and every pod is Ready, not terminating, and of the
/// Deployment's newest ReplicaSet (the one carrying its `deployment.kubernetes.io/revision`).
async fn assert_complete(ns: &TestNamespace, sdep: &str, wanted: &str) {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    const REVISION: &str = "deployment.kubernetes.io/revision";
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let sets: Api<ReplicaSet> = Api::namespaced(ns.client.clone(), &ns.name);
    let names = ns.child_deployments(sdep).await;
    assert_eq!(names.len(), 2, "{names:?}");
    let mut expected_pods = 0;
    for name in &names {
        let d = ns.deployments().get(name).await.unwrap();
        let st = d.status.clone().unwrap_or_default();
        let n = d.spec.replicas.unwrap_or(1);
        assert_eq!(
            (st.observed_generation, st.replicas, st.updated_replicas),
            (d.metadata.generation, Some(n), Some(n)),
            "{name}: status {st:?}"
        );
        assert_eq!(st.available_replicas, Some(n), "{name}: status {st:?}");
        if name.contains("-default-") {
            let template = rendered(&d);
            assert!(template.contains(wanted), "{name}: template lacks {wanted}");
        }
        let revision = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION));
        let newest: Vec<String> = sets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| &o.name == name)
                    && rs
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(REVISION))
                        == revision
            })
            .filter_map(|rs| rs.metadata.name)
            .collect();
        assert_eq!(newest.len(), 1, "{name}: newest ReplicaSet {newest:?}");
        let of_d: Vec<Pod> = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| sets_owned_by(&o.name, name))
            })
            .collect();
        for p in &of_d {
            let pod = p.metadata.name.clone().unwrap_or_default();
            let owner = p.metadata.owner_references.iter().flatten().next().unwrap();
            assert_eq!(owner.name, newest[0], "{pod} is of an older ReplicaSet");
            assert!(p.metadata.deletion_timestamp.is_none(), "{pod} terminating");
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            assert!(ready, "{pod} is not Ready");
        }
        assert_eq!(of_d.len(), n as usize, "{name}: pods {of_d:?}");
        expected_pods += n as usize;
    }
    let all = pods
        .list(&ListParams::default().labels(&format!("seldon-deployment-id={sdep}")))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), expected_pods, "pods left over");
}

/// `d`'s pod template as JSON, with the predictor the operator put into the executor's
/// `ENGINE_PREDICTOR` (base64 JSON) decoded: a custom model's `modelUri` is only there.
fn rendered(d: &Deployment) -> String {
    use base64::Engine as _;
    let mut out = serde_json::to_string(&d.spec.template).unwrap();
    let containers = d.spec.template.spec.iter().flat_map(|p| &p.containers);
    for e in containers.flat_map(|c| c.env.iter().flatten()) {
        if e.name == "ENGINE_PREDICTOR" {
            let b64 = e.value.as_deref().unwrap_or_default();
            let json = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            out.push_str(&String::from_utf8_lossy(&json));
        }
    }
    out
}

/// A ReplicaSet named `rs` belongs to Deployment `d` (`<d>-<pod-template-hash>`).
fn sets_owned_by(rs: &str, d: &str) -> bool {
    rs.strip_prefix(d)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hash| !hash.contains('-'))
}

/// Ships `change` into a ready SeldonDeployment, as the admin or as a user without any right
/// on events, and checks that `apply` exits 0 and that at that moment the rollout is complete.
/// The suite also runs on a cluster that keeps Events in an etcd of their own
/// (`scripts/test.sh`), where Event resourceVersions say nothing about other objects'.
async fn update_completes(prefix: &str, change: Change, without_events: bool) {
    let cluster = Cluster::get();
    let ns = cluster.namespace(prefix).await;
    let kubeconfig = if without_events {
        let user = format!("noevents-{}", ns.name);
        let missing = [("get", "events"), ("list", "events"), ("watch", "events")];
        restricted_user(&cluster, &ns, &user, &missing).await
    } else {
        cluster.kubeconfig.to_string_lossy().into_owned()
    };
    let v1 = two_predictors(IMAGE_V1, MODEL_V1, 90);
    let out = apply_as(&kubeconfig, &ns.name, &v1);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_complete(&ns, "fresh", MODEL_V1).await;

    let (v2, wanted) = match change {
        Change::Image => (two_predictors(IMAGE_V2, MODEL_V1, 90), IMAGE_V2),
        Change::ModelUri => (two_predictors(IMAGE_V1, MODEL_V2, 90), MODEL_V2),
        Change::Traffic => (two_predictors(IMAGE_V1, MODEL_V1, 50), MODEL_V1),
    };
    let status_before = ns.get_sdep("fresh").await.unwrap()["status"].clone();
    let out = apply_as(&kubeconfig, &ns.name, &v2);
    assert_eq!(out.status.code(), Some(0), "{change:?}: {}", describe(&out));
    assert_eq!(report(&out)["change"], "updated");
    assert_complete(&ns, "fresh", wanted).await;
    let live = ns.get_sdep("fresh").await.unwrap();
    assert_eq!(live["spec"], v2["spec"]);
    if let Change::Traffic = change {
        assert_eq!(
            live["status"], status_before,
            "the operator wrote a status after all"
        );
    }
    if without_events {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("warning:") && l.contains("events")),
            "warns that it goes on without events: {}",
            describe(&out)
        );
    }
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_image_change_completes_for_a_user_without_rights_on_events() {
    update_completes("apply-noev-image", Change::Image, true).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_model_uri_change_completes_for_a_user_without_rights_on_events() {
    update_completes("apply-noev-model", Change::ModelUri, true).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_traffic_change_completes_for_a_user_without_rights_on_events() {
    update_completes("apply-noev-traffic", Change::Traffic, true).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_model_uri_change_returns_only_once_its_pods_are_rolled_out() {
    update_completes("apply-model", Change::ModelUri, false).await;
}

/// `v2` of `name` at `IMAGE_V2` whose new pods crash-loop, with label `version: 2`.
fn crash_looping(name: &str) -> Value {
    let mut v2 = versioned(name, IMAGE_V2, 1, "0s");
    v2["metadata"]["labels"] = json!({"version": "2"});
    v2["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"] =
        json!({"test.seldon-deploy/crash-loop": "true"});
    v2
}

/// Polls until the live object's spec equals `spec` (the running apply's update is live).
async fn until_spec(ns: &TestNamespace, name: &str, spec: &Value) {
    for _ in 0..600 {
        if ns.get_sdep(name).await.is_some_and(|o| o["spec"] == *spec) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the spec never became {spec}");
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_spec_another_writer_changed_during_a_failing_atomic_apply_is_not_rolled_back() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-atomic-writer").await;
    let v1 = versioned("contested", IMAGE_V1, 1, "0s");
    let out = apply(&cluster, &ns.name, &v1, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let v2 = crash_looping("contested");
    let (_d, file) = manifest_file(&v2);
    let args = [
        "apply",
        "-n",
        &ns.name,
        "-f",
        &file,
        "-o",
        "json",
        "--atomic",
        "--timeout",
        "3m",
        "--failed-grace",
        "5s",
    ];
    let child = cluster.spawn(&args);
    // While the rollout fails, a second pipeline changes the spec.
    until_spec(&ns, "contested", &v2["spec"]).await;
    let patch = json!({"spec": {"annotations": {"seldon.io/rest-timeout": "5000"}}});
    let theirs = ns
        .sdeps()
        .patch("contested", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let theirs = serde_json::to_value(theirs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["rollback"]["outcome"], "refused", "{rep}");
    let error = rep["error"].as_str().unwrap();
    assert!(
        error
            .contains("not rolled back: the object was changed by another writer since this apply")
            && error.contains("spec.annotations.seldon.io/rest-timeout"),
        "{error}"
    );
    let live = ns.get_sdep("contested").await.unwrap();
    assert_eq!(live["spec"], theirs["spec"], "their change was overwritten");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_label_another_writer_added_survives_an_atomic_rollback() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-atomic-label").await;
    let mut v1 = versioned("labelled", IMAGE_V1, 1, "0s");
    v1["metadata"]["labels"] = json!({"version": "1"});
    let out = apply(&cluster, &ns.name, &v1, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = ns.get_sdep("labelled").await.unwrap();

    let v2 = crash_looping("labelled");
    let (_d, file) = manifest_file(&v2);
    let args = [
        "apply",
        "-n",
        &ns.name,
        "-f",
        &file,
        "-o",
        "json",
        "--atomic",
        "--timeout",
        "3m",
        "--failed-grace",
        "5s",
    ];
    let child = cluster.spawn(&args);
    // A policy controller labels the object while the rollout fails.
    until_spec(&ns, "labelled", &v2["spec"]).await;
    let patch = json!({"metadata": {"labels": {"policy": "checked"}}});
    ns.sdeps()
        .patch("labelled", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["rollback"]["outcome"], "restored", "{rep}");
    let live = ns.get_sdep("labelled").await.unwrap();
    assert_eq!(live["spec"], before["spec"]);
    assert_eq!(
        live["metadata"]["labels"],
        json!({"version": "1", "policy": "checked"}),
        "our label is undone, theirs kept"
    );
    assert_eq!(
        live["metadata"]["annotations"], before["metadata"]["annotations"],
        "the update's marker is undone with it"
    );
    assert_rolled_out(&ns, "labelled", IMAGE_V1, 1).await;
    ns.cleanup().await;
}

/// Neither version's pods ever turn Ready (none fails either), so the rollout times out at
/// `--timeout` and the rollback's wait would too; the SIGTERM, sent once the restore has
/// landed, ends it `--cleanup-timeout` later instead.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn sigterm_during_a_rollback_ends_it_within_cleanup_timeout_saying_where_it_stopped() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-atomic-term").await;
    let never_ready = |image| {
        let mut m = versioned("stuck", image, 1, "0s");
        m["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"] =
            json!({"test.seldon-deploy/never-ready": "true"});
        m
    };
    let v1 = ns.create_sdep(&never_ready(IMAGE_V1)).await;
    let v2 = never_ready(IMAGE_V2);
    let (_d, file) = manifest_file(&v2);
    let args = [
        "apply",
        "-n",
        &ns.name,
        "-f",
        &file,
        "-o",
        "json",
        "--atomic",
        "--timeout",
        "15s",
        "--cleanup-timeout",
        "2s",
    ];
    let child = cluster.spawn(&args);
    let pid = child.id();
    let run = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    until_spec(&ns, "stuck", &v2["spec"]).await;
    // The rollout times out; the rollback restores v1 and waits for it.
    until_spec(&ns, "stuck", &v1["spec"]).await;
    support::signal(pid, "TERM");
    let out = match tokio::time::timeout(std::time::Duration::from_secs(120), run).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            support::signal(pid, "KILL");
            panic!("still rolling back long after --cleanup-timeout");
        }
    };
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["rollback"]["outcome"], "incomplete", "{rep}");
    let error = rep["error"].as_str().unwrap();
    assert!(
        error.contains("the restore is complete")
            && error.contains("not confirmed ready")
            && error.contains("--cleanup-timeout had passed since the signal"),
        "ended by the signal, not by --timeout: {error}"
    );
    ns.cleanup().await;
}

/// As above, with a `--cleanup-timeout` that outlasts the test: a second Ctrl-C during the
/// rollback's wait exits at once and says the restore is complete (not "nothing left behind").
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_second_ctrl_c_during_a_rollback_says_the_restore_is_complete() {
    use std::io::BufRead;
    let cluster = Cluster::get();
    let ns = cluster.namespace("apply-atomic-int").await;
    let never_ready = |image| {
        let mut m = versioned("halted", image, 1, "0s");
        m["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"] =
            json!({"test.seldon-deploy/never-ready": "true"});
        m
    };
    let v1 = ns.create_sdep(&never_ready(IMAGE_V1)).await;
    let v2 = never_ready(IMAGE_V2);
    let (_d, file) = manifest_file(&v2);
    let args = [
        "apply",
        "-n",
        &ns.name,
        "-f",
        &file,
        // Progress then goes to stderr, where the test reads it.
        "-o",
        "json",
        "--atomic",
        "--timeout",
        "10m",
        "--cleanup-timeout",
        "10m",
    ];
    let mut child = cluster.spawn(&args);
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    until_spec(&ns, "halted", &v2["spec"]).await;
    // The first signal starts the rollback; once the restore has landed, the second one.
    support::signal(child.id(), "INT");
    until_spec(&ns, "halted", &v1["spec"]).await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("wait-rollback")) {
        match line_rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("the rollback's wait never began: {}", lines.join("\n")),
        }
    }
    support::signal(child.id(), "INT");
    let pid = child.id();
    let run = tokio::task::spawn_blocking(move || child.wait().unwrap());
    let status = match tokio::time::timeout(std::time::Duration::from_secs(60), run).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            support::signal(pid, "KILL");
            panic!("the second Ctrl-C did not exit at once");
        }
    };
    lines.extend(line_rx.iter());
    let stderr = lines.join("\n");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("nothing created by this run"), "{stderr}");
    assert!(
        stderr.contains("seldondeployment/halted") && stderr.contains("the restore is complete"),
        "{stderr}"
    );
    ns.cleanup().await;
}
