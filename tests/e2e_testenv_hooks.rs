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

// ------------------------------------------------- port-forward to testenv's model servers
//
// testenv/README.md, "Model servers behind port-forward": a port-forward to a Seldon pod's
// executor port goes kubectl -> apiserver (`pods/portforward`) -> KWOK's kubelet server -> a real
// seldon-core or MLServer process, chosen by the pod's `test.seldon-deploy/serve` annotation.

/// The executor's HTTP port, which testenv forwards to a model server.
const EXECUTOR_HTTP_PORT: u16 = 8000;

/// A SeldonDeployment whose pod carries `test.seldon-deploy/serve: serve` (none: the default),
/// with `spec.protocol` set when given.
fn served(name: &str, protocol: Option<&str>, serve: Option<&str>) -> Value {
    let meta = match serve {
        Some(s) => json!({"annotations": {"test.seldon-deploy/serve": s}}),
        None => json!({}),
    };
    let mut manifest = sdep_manifest(name, meta, json!({}));
    if let Some(p) = protocol {
        manifest["spec"]["protocol"] = json!(p);
    }
    manifest
}

/// The Ready pod of each SeldonDeployment in `sdeps` (by the operator's `seldon-deployment-id`
/// label), once serve-controller has written its PortForward: it writes it when it first sees
/// the pod, and the test must not race it.
async fn served_pods(
    cluster: &Cluster,
    ns: &TestNamespace,
    sdeps: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let mut pods = std::collections::BTreeMap::new();
    watch_pods_until(ns, "a Ready pod for every SeldonDeployment", |pod| {
        let sdep = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("seldon-deployment-id"))
            .cloned()
            .unwrap_or_default();
        if sdeps.contains(&sdep.as_str()) && condition(pod, "Ready").as_deref() == Some("True") {
            pods.insert(sdep, pod_name(pod));
        }
        pods.len() == sdeps.len()
    })
    .await;
    let kubectl = cluster.state_dir().join("kubectl");
    for pod in pods.values() {
        let found = tokio::time::timeout(HANG_GUARD, async {
            loop {
                let out = std::process::Command::new(&kubectl)
                    .arg("--kubeconfig")
                    .arg(&cluster.kubeconfig)
                    .args([
                        "-n",
                        &ns.name,
                        "get",
                        "portforwards.kwok.x-k8s.io",
                        pod,
                        "-o",
                        "name",
                    ])
                    .output()
                    .expect("run kubectl");
                if out.status.success() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "serve-controller wrote no PortForward for {pod}"
        );
    }
    pods
}

/// `kubectl port-forward pod/POD :8000` from testenv's own kubectl, stopped on drop.
struct KubectlPortForward {
    child: std::process::Child,
    local_port: u16,
    /// Kept open: kubectl writes a line per connection and must not meet a closed pipe.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl KubectlPortForward {
    fn start(cluster: &Cluster, ns: &str, pod: &str) -> Self {
        use std::io::{BufRead, Read};
        let mut child = std::process::Command::new(cluster.state_dir().join("kubectl"))
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["-n", ns, "port-forward", "--address", "127.0.0.1"])
            .arg(format!("pod/{pod}"))
            .arg(format!(":{EXECUTOR_HTTP_PORT}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn kubectl port-forward");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        // "Forwarding from 127.0.0.1:41234 -> 8000"
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read kubectl's output");
        let local_port = line
            .split_whitespace()
            .nth(2)
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                std::thread::sleep(Duration::from_millis(500));
                panic!(
                    "kubectl port-forward printed {line:?}; stderr: {}",
                    stderr.lock().expect("stderr lock")
                )
            });
        KubectlPortForward {
            child,
            local_port,
            _stdout: stdout,
            stderr,
        }
    }

    /// `curl -X METHOD` on the forwarded port: the HTTP status (0 when no HTTP answer came)
    /// and the body.
    fn curl(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-sS",
            "-m",
            "30",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .arg(format!("http://127.0.0.1:{}{path}", self.local_port));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Waits until kubectl's stderr contains `needle`; returns all of it.
    async fn stderr_containing(&self, needle: &str) -> String {
        let found = tokio::time::timeout(HANG_GUARD, async {
            loop {
                let text = self.stderr.lock().expect("stderr lock").clone();
                if text.contains(needle) {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "kubectl port-forward never said {needle:?}; stderr: {}",
                self.stderr.lock().expect("stderr lock")
            )
        })
    }
}

impl Drop for KubectlPortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_json(code: u16, body: &str) -> Value {
    serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("HTTP {code}, body not JSON ({e}): {body}"))
}

/// Every pod in `pods` has an audit line for its port-forward: the request went through the
/// apiserver (testenv's default audit policy logs `pods/portforward`).
fn assert_port_forwards_audited(
    cluster: &Cluster,
    ns: &str,
    pods: &std::collections::BTreeMap<String, String>,
) {
    let log = std::fs::read_to_string(cluster.state_dir().join("logs/audit.log"))
        .expect("read the audit log");
    for pod in pods.values() {
        let audited = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| {
                e["objectRef"]["subresource"] == "portforward"
                    && e["objectRef"]["resource"] == "pods"
                    && e["objectRef"]["namespace"] == ns
                    && e["objectRef"]["name"] == pod.as_str()
                    && e["responseStatus"]["code"] == 101
            });
        assert!(audited, "no audit line for the port-forward to {ns}/{pod}");
    }
}

/// Behaviours by SeldonDeployment name, for one protocol.
const SERVE_CASES: [(&str, Option<&str>); 4] = [
    ("ok", None),
    ("error", Some("error-500")),
    ("shape", Some("wrong-shape")),
    ("refuse", Some("refuse")),
];

/// The pod of "refuse": nothing listens, and kubectl reports the refused connection.
async fn assert_refused(cluster: &Cluster, ns: &str, pod: &str, path: &str) {
    let pf = KubectlPortForward::start(cluster, ns, pod);
    let (code, body) = pf.curl("GET", path, None);
    assert_eq!(
        code, 0,
        "refuse: no HTTP answer expected, got {code}: {body}"
    );
    let stderr = pf.stderr_containing("connection refused").await;
    assert!(
        stderr.contains(&format!("error forwarding port {EXECUTOR_HTTP_PORT}")),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn port_forward_to_a_seldon_protocol_pod_reaches_seldon_core_as_the_serve_annotation_says() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("serve-v1").await;
    for (name, serve) in SERVE_CASES {
        ns.create_sdep(&served(name, None, serve)).await;
    }
    let names: Vec<&str> = SERVE_CASES.iter().map(|(n, _)| *n).collect();
    let pods = served_pods(&cluster, &ns, &names).await;
    let request = json!({"data": {"ndarray": [[1, 2], [3, 4]]}});

    let pf = KubectlPortForward::start(&cluster, &ns.name, &pods["ok"]);
    let (code, body) = pf.curl("POST", "/api/v1.0/predictions", Some(&request));
    let answer = parse_json(code, &body);
    assert_eq!(code, 200, "{body}");
    assert_eq!(answer["data"]["ndarray"], json!([[3.0], [7.0]]), "{body}");
    assert_eq!(answer["data"]["names"], json!(["sum"]), "{body}");
    assert_eq!(
        pf.curl("GET", "/ready", None).0,
        200,
        "the executor's readiness path"
    );
    assert_eq!(
        pf.curl("GET", "/live", None).0,
        200,
        "the executor's liveness path"
    );
    drop(pf);

    let pf = KubectlPortForward::start(&cluster, &ns.name, &pods["error"]);
    let (code, body) = pf.curl("POST", "/api/v1.0/predictions", Some(&request));
    assert_eq!(code, 500, "{body}");
    let answer = parse_json(code, &body);
    assert_eq!(
        answer["status"]["reason"], "MICROSERVICE_INTERNAL_ERROR",
        "{body}"
    );
    assert_eq!(
        pf.curl("GET", "/ready", None).0,
        200,
        "it is up, only its answers fail"
    );
    drop(pf);

    let pf = KubectlPortForward::start(&cluster, &ns.name, &pods["shape"]);
    let (code, body) = pf.curl("POST", "/api/v1.0/predictions", Some(&request));
    assert_eq!(code, 200, "{body}");
    let answer = parse_json(code, &body);
    assert_eq!(
        answer["data"]["ndarray"],
        json!([[3.0, 3.0], [7.0, 7.0]]),
        "{body}"
    );
    drop(pf);

    assert_refused(&cluster, &ns.name, &pods["refuse"], "/ready").await;
    assert_port_forwards_audited(&cluster, &ns.name, &pods);
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn port_forward_to_a_v2_protocol_pod_reaches_mlserver_as_the_serve_annotation_says() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("serve-v2").await;
    for (name, serve) in SERVE_CASES {
        ns.create_sdep(&served(name, Some("v2"), serve)).await;
    }
    let names: Vec<&str> = SERVE_CASES.iter().map(|(n, _)| *n).collect();
    let pods = served_pods(&cluster, &ns, &names).await;
    // The model's name is the graph's root node, "classifier" (support::sdep_manifest).
    let infer = "/v2/models/classifier/infer";
    let request = json!({"inputs": [
        {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]});

    let pf = KubectlPortForward::start(&cluster, &ns.name, &pods["ok"]);
    let (code, body) = pf.curl("POST", infer, Some(&request));
    assert_eq!(code, 200, "{body}");
    let answer = parse_json(code, &body);
    assert_eq!(answer["model_name"], "classifier", "{body}");
    assert_eq!(answer["outputs"][0]["shape"], json!([2, 1]), "{body}");
    assert_eq!(answer["outputs"][0]["data"], json!([3.0, 7.0]), "{body}");
    assert_eq!(
        pf.curl("GET", "/v2/health/ready", None).0,
        200,
        "MLServer's readiness path"
    );
    assert_eq!(
        pf.curl("GET", "/ready", None).0,
        200,
        "the executor's readiness path"
    );
    drop(pf);

    let pf = KubectlPortForward::start(&cluster, &ns.name, &pods["error"]);
    let (code, body) = pf.curl("POST", infer, Some(&request));
    assert_eq!(code, 500, "{body}");
    assert!(parse_json(code, &body)["error"].is_string(), "{body}");
    drop(pf);

    let pf = KubectlPortForward::start(&cluster, &ns.name, &pods["shape"]);
    let (code, body) = pf.curl("POST", infer, Some(&request));
    assert_eq!(code, 200, "{body}");
    let answer = parse_json(code, &body);
    assert_eq!(answer["outputs"][0]["shape"], json!([2, 2]), "{body}");
    assert_eq!(
        answer["outputs"][0]["data"],
        json!([3.0, 3.0, 7.0, 7.0]),
        "{body}"
    );
    drop(pf);

    assert_refused(&cluster, &ns.name, &pods["refuse"], "/v2/health/ready").await;
    assert_port_forwards_audited(&cluster, &ns.name, &pods);
    ns.cleanup().await;
}
