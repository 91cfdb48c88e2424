//! End to end: faults on the real control plane. Each test checks the exit code, the message,
//! and what is left on the cluster afterwards.
//!
//! Tests that stop cluster components hold [`CLUSTER`] for writing, so nothing else in this
//! binary runs while a component is down; the rest hold it for reading and run in parallel.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use support::{Cluster, TestNamespace, describe, report, signal};
use tokio::sync::RwLock;

static CLUSTER: RwLock<()> = RwLock::const_new(());

/// Polls the cluster (test-side only) until `f` holds, for at most `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn spec_replicas_of(ns: &TestNamespace, name: &str) -> Option<i64> {
    let v = ns.sdeps().get_opt(name).await.ok().flatten()?;
    let v = serde_json::to_value(v).ok()?;
    v["spec"]["predictors"][0]["replicas"].as_i64()
}

async fn being_deleted(ns: &TestNamespace, name: &str) -> bool {
    matches!(ns.sdeps().get_opt(name).await, Ok(Some(o)) if o.metadata.deletion_timestamp.is_some())
}

/// Restarts a component, SIGKILLing it first, as a crash would.
fn crash_and_restart(cluster: &Cluster, component: &str) {
    cluster.script(&["kill", component]);
    std::thread::sleep(Duration::from_millis(500));
    cluster.script(&["start", component]);
    if component == "kube-apiserver" {
        // The apiserver's clients recover slowly on their own: the operator's event recorder
        // retries failed writes one at a time, 10 s apart (its events lag for minutes), and
        // the controller manager's and scheduler's informers back off for up to 30 s after
        // their watches broke. Fresh ones keep this test well inside its timeout and later
        // tests' event assertions meaningful; the run under test must survive these restarts
        // too. KWOK's informers back off alike, its PortForward one included: a Seldon pod
        // turns Ready only once its port-forward answers, so without a fresh KWOK the pods of
        // the tests after this one waited up to 95 s.
        for c in [
            "seldon-operator",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        ] {
            cluster.script(&["restart", c]);
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    FirstWait,
    SecondWait,
    Delete,
}

async fn wait_for_phase(ns: &TestNamespace, name: &str, phase: Phase) {
    match phase {
        Phase::FirstWait => {
            eventually(60, "the SeldonDeployment to exist", || async {
                ns.get_sdep(name).await.is_some()
            })
            .await
        }
        Phase::SecondWait => {
            eventually(60, "the scale to 2", || async {
                spec_replicas_of(ns, name).await == Some(2)
            })
            .await
        }
        Phase::Delete => {
            // Foreground deletion on KWOK takes well under a second: a finalizer on the child
            // Deployments holds it open until `release_deletion`.
            eventually(60, "the child Deployments", || async {
                !ns.child_deployments(name).await.is_empty()
            })
            .await;
            set_hold(ns, name, json!([HOLD])).await;
            eventually(90, "the deletion to start", || async {
                being_deleted(ns, name).await
            })
            .await
        }
    }
}

const HOLD: &str = "e2e.seldon-deploy/hold";

async fn set_hold(ns: &TestNamespace, name: &str, finalizers: Value) {
    let patch = json!({"metadata": {"finalizers": finalizers}});
    for d in ns.child_deployments(name).await {
        ns.deployments()
            .patch(&d, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch finalizers");
    }
}

/// Lets a deletion held by [`wait_for_phase`]`(Phase::Delete)` finish.
async fn release_deletion(ns: &TestNamespace, name: &str, phase: Phase) {
    if let Phase::Delete = phase {
        set_hold(ns, name, Value::Null).await;
    }
}

async fn apiserver_restart_in(phase: Phase) {
    let _guard = CLUSTER.write().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("apirestart").await;
    // Slow pods keep each wait phase open long enough to restart the apiserver inside it.
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("restart", "6s"));
    let child = cluster.spawn(&[
        "run",
        "-n",
        &ns.name,
        "-f",
        &file,
        "--timeout",
        "3m",
        "-o",
        "json",
    ]);
    wait_for_phase(&ns, "restart", phase).await;
    crash_and_restart(&cluster, "kube-apiserver");
    release_deletion(&ns, "restart", phase).await;
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "restart in {phase:?}: {}",
        describe(&out)
    );
    eprintln!("{}", describe(&out));
    ns.assert_nothing_left("restart").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_survives_an_apiserver_crash_during_the_first_wait() {
    apiserver_restart_in(Phase::FirstWait).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_survives_an_apiserver_crash_during_the_wait_after_scaling() {
    apiserver_restart_in(Phase::SecondWait).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_survives_an_apiserver_crash_during_deletion() {
    apiserver_restart_in(Phase::Delete).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn operator_down_times_out_with_exit_4_names_the_phase_and_cleans_up() {
    let _guard = CLUSTER.write().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("opdown").await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("opdown", "0s"));
    cluster.script(&["stop", "seldon-operator"]);
    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", &file, "--timeout", "5s"])
        .output()
        .unwrap();
    cluster.script(&["start", "seldon-operator"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("timed out"), "{}", describe(&out));
    assert!(
        stderr.contains("opdown"),
        "names the deployment: {}",
        describe(&out)
    );
    ns.assert_nothing_left("opdown").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn operator_failed_state_exits_1_with_its_description_before_the_timeout() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("failed").await;
    let m = support::failing_manifest("failing");
    let (_tmp, file) = support::manifest_file(&m);
    let started = std::time::Instant::now();
    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            &file,
            "--timeout",
            "10m",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // Not a timing assertion on the tool's speed: a 10-minute timeout must not be what ended it.
    assert!(started.elapsed() < Duration::from_secs(9 * 60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Failed to get server config for NO_SUCH_SERVER"),
        "operator's description: {}",
        describe(&out)
    );
    ns.assert_nothing_left("failing").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn pods_that_never_become_ready_time_out_with_exit_4() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("never").await;
    let m = support::sdep_manifest(
        "never",
        json!({"labels": {"test.seldon-deploy/never-ready": "true"}}),
        json!({}),
    );
    let (_tmp, file) = support::manifest_file(&m);
    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", &file, "--timeout", "6s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0/1"),
        "shows ready/desired: {}",
        describe(&out)
    );
    ns.assert_nothing_left("never").await;
    ns.cleanup().await;
}

/// testenv's operator runs with an empty CONTROLLER_ID, so it never touches an object
/// labelled for another one: the timeout must say so, with the label's value.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_controller_id_label_no_operator_serves_times_out_naming_the_label() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("ctlid").await;
    let mut m = support::sdep_manifest("ctlid", json!({}), json!({}));
    m["metadata"]["labels"] = json!({"seldon.io/controller-id": "seldon-team-b"});
    let (_tmp, file) = support::manifest_file(&m);
    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", &file, "--timeout", "4s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed = stderr
        .lines()
        .find(|l| l.starts_with("FAILED (exit 4)"))
        .unwrap_or_else(|| panic!("no FAILED line: {}", describe(&out)));
    assert!(
        failed.contains("labelled seldon.io/controller-id=\"seldon-team-b\"")
            && failed.contains("started with CONTROLLER_ID=\"seldon-team-b\""),
        "{}",
        describe(&out)
    );
    ns.assert_nothing_left("ctlid").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_unschedulable_second_replica_times_out_and_shows_failed_scheduling() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("full").await;
    // Two pods of 20 CPUs cannot share one 32-CPU node.
    let m = support::sdep_manifest(
        "full",
        json!({}),
        json!({
            "nodeSelector": {"kubernetes.io/hostname": "kwok-node-0"},
            "containers": [{"name": "classifier", "image": "seldonio/mock_classifier_rest:1.3",
                            "resources": {"requests": {"cpu": "20"}}}]
        }),
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
            "8s",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let report = report(&out);
    let reasons = support::event_reasons(&report);
    assert!(
        reasons.iter().any(|r| r == "FailedScheduling"),
        "events: {reasons:?}"
    );
    // The summary's last events keep the cause, however many events came after it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.split("last events:").nth(1).unwrap_or_default();
    assert!(
        last.contains("Warning FailedScheduling"),
        "{}",
        describe(&out)
    );
    ns.assert_nothing_left("full").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn someone_else_deleting_it_mid_wait_exits_1_without_recreating() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("stolen").await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("stolen", "20s"));
    let child = cluster.spawn(&["run", "-n", &ns.name, "-f", &file, "--timeout", "2m"]);
    wait_for_phase(&ns, "stolen", Phase::FirstWait).await;
    ns.sdeps()
        .delete("stolen", &kube::api::DeleteParams::background())
        .await
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deleted"),
        "{}",
        describe(&out)
    );
    // The garbage collector removes the children after their owner; the operator may even
    // create one after the owner is gone (see assert_nothing_left).
    ns.assert_nothing_left("stolen").await;
    ns.cleanup().await;
}

/// What the operator does when a reconcile that began before a deletion creates a child after
/// its owner is gone (testenv's audit log caught it 84 ms after a delete): the child names the
/// deleted UID, and the garbage collector deletes it unprompted, so the fault tests'
/// "nothing left behind" waits for that instead of failing on it.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_child_created_after_its_seldondeployment_is_gone_is_garbage_collected() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("late").await;
    // Labelled for an operator that does not run, so only this test makes its children.
    let mut m = support::sdep_manifest("late", json!({}), json!({}));
    m["metadata"]["labels"] = json!({"seldon.io/controller-id": "nobody"});
    let created = ns.create_sdep(&m).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    ns.sdeps()
        .delete("late", &kube::api::DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(ns.get_sdep("late").await, None, "no finalizer holds it");
    // The Deployment as the operator makes it: its label, and a controller reference.
    let labels = json!({"seldon-deployment-id": "late", "app": "late"});
    create_late_child(&ns, "late", "late-default-0-classifier", &uid, &labels).await;
    let release = async {
        let deleting = kube::runtime::wait::await_condition(
            ns.deployments(),
            "late-default-0-classifier",
            |d: Option<&k8s_openapi::api::apps::v1::Deployment>| {
                d.is_none_or(|d| d.metadata.deletion_timestamp.is_some())
            },
        );
        // Bounded so a collector that never acts fails the check below instead of hanging.
        let _ = tokio::time::timeout(Duration::from_secs(90), deleting).await;
        let patch = json!({"metadata": {"finalizers": null}});
        let _ = ns
            .deployments()
            .patch(
                "late-default-0-classifier",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
    };
    tokio::join!(ns.assert_nothing_left("late"), release);
    ns.cleanup().await;
}

/// Issue 19: a reconcile that began before the delete recreates a child after the
/// SeldonDeployment is gone. The run names it in one line, marks the Events that follow as
/// after the delete, and exits 0 only once the garbage collector has removed it.
///
/// Made deterministic with finalizers: the operator's Deployment is held (and made not to
/// block its owner's deletion) so that the SeldonDeployment goes while the run's delete still
/// waits; then the test plays the late reconcile, creating a child of the deleted UID (held
/// until the collector has marked it) and the operator's Event about it.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_child_recreated_after_the_delete_is_named_and_the_run_exits_only_once_it_is_gone() {
    use std::io::BufRead;
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("recreated").await;
    let name = "recreated";
    // Pods Ready after 3 s: the wait after scaling stays open while the children are held.
    let (_tmp, file) = support::manifest_file(&support::slow_manifest(name, "3s"));
    let mut child = cluster.spawn(&[
        "run",
        "-n",
        &ns.name,
        "-f",
        &file,
        "--timeout",
        "3m",
        "-o",
        "json",
    ]);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let wait_line = |what: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("no line with {what:?}: {e}"));
        if line.contains(what) {
            return line;
        }
    };
    // Scaled: the operator changes its Deployment no more, so the finalizer and owner
    // reference set here stay.
    eventually(60, "the Deployment at 2 replicas", || async {
        let deps = ns
            .deployments()
            .list(&Default::default())
            .await
            .unwrap()
            .items;
        !deps.is_empty() && deps.iter().all(|d| d.spec.replicas == Some(2))
    })
    .await;
    let uid = ns.get_sdep(name).await.unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = json!([{
        "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
        "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": false
    }]);
    let held = ns.child_deployments(name).await;
    for d in &held {
        let patch = json!({"metadata": {"finalizers": [HOLD], "ownerReferences": owner}});
        ns.deployments()
            .patch(d, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("hold the child");
    }
    // The run's own progress line: it has seen its SeldonDeployment gone, its child held.
    wait_line("delete: SeldonDeployment gone; 1 Deployment(s) left");
    let late_name = format!("{name}-late-classifier");
    let labels = json!({"seldon-deployment-id": name, "app": late_name});
    create_late_child(&ns, name, &late_name, &uid, &labels).await;
    let note = wait_line("was recreated by the operator after the delete");
    assert!(note.contains(&format!("deployment/{late_name}")), "{note}");
    // The operator's Event about it, as its recorder writes it.
    let event: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}.late")},
        "involvedObject": {"apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment", "name": name, "namespace": ns.name, "uid": uid},
        "reason": "CreateDeployment", "message": format!("Created Deployment {late_name:?}"),
        "type": "Normal", "source": {"component": "seldon-controller-manager"},
        "firstTimestamp": k8s_openapi::jiff::Timestamp::now(),
        "lastTimestamp": k8s_openapi::jiff::Timestamp::now(), "count": 1
    }))
    .unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Event>::namespaced(ns.client.clone(), &ns.name)
        .create(&kube::api::PostParams::default(), &event)
        .await
        .expect("post the late Event");
    wait_line("after the delete: Normal CreateDeployment");
    // Let the held child go; the collector marks the late one (its owner is gone), then it
    // is released too.
    for d in &held {
        let patch = json!({"metadata": {"finalizers": null}});
        let _ = ns
            .deployments()
            .patch(d, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
    let deleting = kube::runtime::wait::await_condition(
        ns.deployments(),
        &late_name,
        |d: Option<&k8s_openapi::api::apps::v1::Deployment>| {
            d.is_none_or(|d| d.metadata.deletion_timestamp.is_some())
        },
    );
    tokio::time::timeout(Duration::from_secs(90), deleting)
        .await
        .expect("the garbage collector marks the late child")
        .unwrap();
    // Still listening: the run has not exited while the late child exists.
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited while the late child existed"
    );
    let patch = json!({"metadata": {"finalizers": null}});
    ns.deployments()
        .patch(&late_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("release the late child");
    let out = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    let text = format!("{}\n{err}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Gone holds at exit: checked at once, not after waiting for the collector.
    assert!(
        ns.child_deployments(name).await.is_empty(),
        "a child outlived the run: {text}"
    );
    let r = report(&out);
    let events = r["events"].as_array().unwrap();
    let marked: Vec<&Value> = events
        .iter()
        .filter(|e| e["after_delete"] == json!(true))
        .collect();
    assert_eq!(
        marked.len(),
        1,
        "only the late Event is after the delete: {events:?}"
    );
    assert_eq!(
        marked[0]["message"],
        json!(format!("Created Deployment {late_name:?}"))
    );
    ns.assert_nothing_left(name).await;
    ns.cleanup().await;
}

/// Issue 19, the CI variant of `bench/run --chaos`: 20 lifecycles in one process while
/// the API server is SIGKILLed and restarted twice, the operator restarted, and every
/// connection cut every 3 s by a proxy. Each ends with exit 0 (or a failure naming its cause,
/// never a wrong success: an exit 0 means its object and children are gone), and nothing is
/// left behind.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn chaos_lifecycles_under_restarts_and_cut_watches_end_right_and_leave_nothing() {
    let _guard = CLUSTER.write().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("chaos").await;
    let tmp = tempfile::tempdir().unwrap();
    let mut kc = support::kubeconfig_json(&cluster.kubeconfig);
    let proxy =
        support::CuttingProxy::start(support::apiserver_addr(&kc), Duration::from_secs(3)).await;
    kc["clusters"][0]["cluster"]["server"] = json!(format!("https://{}", proxy.addr));
    let kc_path = support::write_kubeconfig(tmp.path(), "config", &kc);
    let dir = tmp.path().join("manifests");
    std::fs::create_dir(&dir).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("chaos-{i}")).collect();
    for n in &names {
        support::write_json(&dir, &format!("{n}.json"), &support::slow_manifest(n, "3s"));
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"));
    cmd.env_remove("KUBECONFIG")
        .args([
            "run",
            "-n",
            &ns.name,
            "-o",
            "json",
            "--timeout",
            "2m",
            "--concurrency",
            "20",
        ])
        .arg("-f")
        .arg(&dir)
        .arg("--kubeconfig")
        .arg(&kc_path);
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    // The schedule: fixed, so a failure can be replayed.
    for (after, component) in [
        (1_500, "kube-apiserver"),
        (3_000, "seldon-operator"),
        (3_000, "kube-apiserver"),
    ] {
        tokio::time::sleep(Duration::from_millis(after)).await;
        tokio::task::spawn_blocking(move || crash_and_restart(&Cluster::get(), component))
            .await
            .unwrap();
    }
    let out = run.await.unwrap();
    let summary = report(&out);
    let cuts = proxy.cuts.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "connections cut: {cuts}; watch: {}",
        summary["deployments"][0]["watch"]
    );
    let deployments = summary["deployments"].as_array().expect("deployments");
    assert_eq!(deployments.len(), names.len(), "{}", describe(&out));
    for d in deployments {
        let code = d["exit_code"].as_u64().unwrap();
        // A failure must name its cause; here, with every fault recoverable, none is expected.
        assert_eq!(code, 0, "{}: {}", d["name"], d["error"]);
    }
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(cuts >= 3, "the proxy really cut connections ({cuts})");
    for n in &names {
        ns.assert_nothing_left(n).await;
    }
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_existing_name_exits_3_and_leaves_the_object_untouched() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("taken").await;
    let theirs = ns.create_sdep(&support::slow_manifest("taken", "0s")).await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("taken", "0s"));
    let out = cluster
        .sdep(&["run", "-n", &ns.name, "-f", &file, "--timeout", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        describe(&out)
    );
    let after = ns.get_sdep("taken").await.expect("still there");
    assert_eq!(after["metadata"]["uid"], theirs["metadata"]["uid"]);
    assert!(
        after["metadata"]["deletionTimestamp"].is_null(),
        "not being deleted"
    );
    assert_eq!(after["spec"], theirs["spec"], "spec unchanged");
    ns.cleanup().await;
}

async fn interrupt_in(sig: &str, phase: Phase, expected: i32) {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("sig").await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("sig", "5s"));
    let mut child = cluster.spawn(&["run", "-n", &ns.name, "-f", &file, "--timeout", "2m"]);
    let reached = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(wait_for_phase(
        &ns, "sig", phase,
    )))
    .await;
    if let Err(panic) = reached {
        // Show what the run said about itself: why it never reached the phase.
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        eprintln!("the run, which never reached {phase:?}: {}", describe(&out));
        std::panic::resume_unwind(panic);
    }
    signal(child.id(), sig);
    release_deletion(&ns, "sig", phase).await;
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(expected),
        "{sig} in {phase:?}: {}",
        describe(&out)
    );
    // Shown only if what follows fails: the run's own account of its clean-up.
    eprintln!("{}", describe(&out));
    ns.assert_nothing_left("sig").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn sigint_during_the_first_wait_cleans_up_and_exits_130() {
    interrupt_in("INT", Phase::FirstWait, 130).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn sigterm_during_the_wait_after_scaling_cleans_up_and_exits_143() {
    interrupt_in("TERM", Phase::SecondWait, 143).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn sigint_during_deletion_finishes_the_deletion_and_exits_130() {
    interrupt_in("INT", Phase::Delete, 130).await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn sigint_right_after_start_leaves_nothing_behind() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("early").await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("early", "5s"));
    let child = cluster.spawn(&["run", "-n", &ns.name, "-f", &file, "--timeout", "2m"]);
    std::thread::sleep(Duration::from_millis(150));
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    // Whether or not the create had gone out, nothing may remain.
    ns.assert_nothing_left("early").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_second_sigint_during_clean_up_exits_at_once_and_names_what_is_left() {
    let _guard = CLUSTER.write().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("twice").await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("twice", "30s"));
    // Without the controller manager, the foreground deletion cannot finish, so clean-up is
    // still running when the second SIGINT arrives.
    let child = cluster.spawn(&["run", "-n", &ns.name, "-f", &file, "--timeout", "2m"]);
    wait_for_phase(&ns, "twice", Phase::FirstWait).await;
    cluster.script(&["stop", "kube-controller-manager"]);
    signal(child.id(), "INT");
    eventually(30, "clean-up to start", || async {
        being_deleted(&ns, "twice").await
    })
    .await;
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    cluster.script(&["start", "kube-controller-manager"]);
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("twice"),
        "names what is left: {}",
        describe(&out)
    );
    assert!(
        stderr.contains(&ns.name),
        "with its namespace: {}",
        describe(&out)
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_clean_up_that_outlasts_cleanup_timeout_names_what_is_left() {
    let _guard = CLUSTER.read().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("stuck").await;
    let (_tmp, file) = support::manifest_file(&support::slow_manifest("stuck", "30s"));
    let child = cluster.spawn(&[
        "run",
        "-n",
        &ns.name,
        "-f",
        &file,
        "--timeout",
        "2m",
        "--cleanup-timeout",
        "3s",
        "-o",
        "json",
    ]);
    // A finalizer on the child Deployments holds the clean-up's foreground deletion open.
    eventually(60, "the child Deployments", || async {
        !ns.child_deployments("stuck").await.is_empty()
    })
    .await;
    set_hold(&ns, "stuck", json!([HOLD])).await;
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let still_there = being_deleted(&ns, "stuck").await;
    set_hold(&ns, "stuck", Value::Null).await;
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(still_there, "the held deletion was still in progress");
    let doc = report(&out);
    let left = doc["left_behind"].to_string();
    assert!(
        left.contains("seldondeployment/stuck"),
        "{}",
        describe(&out)
    );
    assert!(left.contains(&ns.name), "{}", describe(&out));
    let cleanup = doc["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "cleanup"))
        .unwrap_or_else(|| panic!("no cleanup phase: {}", describe(&out)));
    assert_ne!(cleanup["outcome"], "ok", "{}", describe(&out));
    // The flag set the bound (the default is 30s); the clean-up's message names it.
    assert!(
        cleanup["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 3s"),
        "{}",
        describe(&out)
    );
    ns.cleanup().await;
}

/// The executor's `ENGINE_PREDICTOR` in the pod template of `deployment`: where the operator
/// renders a predictor, and so the only place a `modelUri` change shows.
async fn engine_predictor(ns: &TestNamespace, deployment: &str) -> Option<String> {
    let d = ns.deployments().get(deployment).await.ok()?;
    let containers = d.spec.template.spec?.containers;
    containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == "ENGINE_PREDICTOR")
        .and_then(|e| e.value.clone())
}

/// Another writer's label, added after `apply`'s update and before the operator acted on it,
/// moves the resourceVersion on but writes no status: it must not count as the operator's
/// work, so `apply` keeps waiting (on the old Deployments, which look complete) until the new
/// pods serve. A `modelUri` change shows only in the executor's `ENGINE_PREDICTOR`, so nothing
/// else tells the old pods from the new. Held deterministic by stopping the operator until the
/// label is on.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_label_written_before_the_operator_acted_does_not_end_the_rollout_wait() {
    let _guard = CLUSTER.write().await;
    let cluster = Cluster::get();
    let ns = cluster.namespace("labelrace").await;
    let name = "labelrace";
    let mut v1 = support::slow_manifest(name, "0s");
    v1["spec"]["predictors"][0]["graph"]["modelUri"] = json!("gs://models/labelrace/v1");
    let (_t1, f1) = support::manifest_file(&v1);
    let out = cluster
        .sdep(&["apply", "-n", &ns.name, "-f", &f1])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let deployments = ns.child_deployments(name).await;
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    let before = engine_predictor(&ns, &deployments[0]).await;
    assert!(before.is_some(), "the executor carries ENGINE_PREDICTOR");

    let mut v2 = v1.clone();
    v2["spec"]["predictors"][0]["graph"]["modelUri"] = json!("gs://models/labelrace/v2");
    let (_t2, f2) = support::manifest_file(&v2);
    cluster.script(&["stop", "seldon-operator"]);
    let mut child = cluster.spawn(&["apply", "-n", &ns.name, "-f", &f2, "-o", "json"]);
    eventually(60, "the update stored", || async {
        ns.get_sdep(name)
            .await
            .is_some_and(|o| o["spec"] == v2["spec"])
    })
    .await;
    let label = json!({"metadata": {"labels": {"other-writer": "was-here"}}});
    ns.sdeps()
        .patch(name, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    // Before the fix, the label's resourceVersion counted as the operator's status write and
    // the old, complete Deployments ended the wait within milliseconds.
    let mut early = None;
    for _ in 0..30 {
        early = child.try_wait().unwrap();
        if early.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.script(&["start", "seldon-operator"]);
    assert!(
        early.is_none(),
        "apply ended ({early:?}) while the operator was down: {}",
        describe(&child.wait_with_output().unwrap())
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_ne!(
        engine_predictor(&ns, &deployments[0]).await,
        before,
        "the operator rendered the new modelUri"
    );
    let d = ns.deployments().get(&deployments[0]).await.unwrap();
    let st = d.status.unwrap_or_default();
    assert_eq!(st.observed_generation, d.metadata.generation, "{st:?}");
    assert_eq!(st.updated_replicas, Some(1), "{st:?}");
    assert_eq!(st.available_replicas, Some(1), "{st:?}");
    ns.cleanup().await;
}

/// Creates Deployment `child` as the operator makes the children of SeldonDeployment `owner`
/// (UID `uid`): its `labels` and a controller reference, held by the [`HOLD`] finalizer so it
/// stays visible after the garbage collector's delete, until the test releases it.
async fn create_late_child(
    ns: &TestNamespace,
    owner: &str,
    child: &str,
    uid: &str,
    labels: &Value,
) {
    let late: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {
            "name": child, "labels": labels, "finalizers": [HOLD],
            "ownerReferences": [{
                "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
                "name": owner, "uid": uid, "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "seldonio/mock_classifier_rest:1.3"}]}
            }
        }
    }))
    .unwrap();
    ns.deployments()
        .create(&kube::api::PostParams::default(), &late)
        .await
        .expect("create the late child");
}
