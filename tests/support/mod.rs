//! Shared harness for the end-to-end tests against the local control plane (`testenv/cluster`).
//!
//! The tests are `#[ignore]`d so a bare `cargo test` needs no cluster; `scripts/test.sh` starts
//! the cluster, exports `SDEP_E2E_KUBECONFIG` and runs them with `--include-ignored`. A test
//! that runs without that variable fails loudly instead of skipping.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

/// The reason every end-to-end test is ignored by a bare `cargo test`.
pub const NEEDS_CLUSTER: &str = "needs the local control plane: run scripts/test.sh";

/// The local cluster the tests run against.
pub struct Cluster {
    /// Admin kubeconfig (bearer token, `system:masters`).
    pub kubeconfig: PathBuf,
    /// `testenv/cluster`, for fault injection and minting identities.
    pub script: PathBuf,
}

impl Cluster {
    /// The cluster named by `SDEP_E2E_KUBECONFIG`.
    ///
    /// # Panics
    /// When the variable is unset: an end-to-end test must never pass without a cluster.
    pub fn get() -> Self {
        let kubeconfig = std::env::var_os("SDEP_E2E_KUBECONFIG").unwrap_or_else(|| {
            panic!(
                "SDEP_E2E_KUBECONFIG is not set. Start the cluster with `testenv/cluster up` and \
                 export SDEP_E2E_KUBECONFIG=$(testenv/cluster kubeconfig), or run scripts/test.sh"
            )
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testenv/cluster");
        Cluster {
            kubeconfig: PathBuf::from(kubeconfig),
            script,
        }
    }

    /// An admin client.
    pub async fn client(&self) -> Client {
        let kc = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
        Client::try_from(config).expect("client")
    }

    /// Runs `testenv/cluster ARGS` and returns its stdout; panics on failure.
    pub fn script(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(&self.script)
            .args(args)
            .env("SDEP_TESTENV_DIR", self.state_dir())
            .output()
            .expect("run testenv/cluster");
        assert!(
            out.status.success(),
            "testenv/cluster {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The cluster's own `kubectl` (built by testenv with the control plane, same version).
    pub fn kubectl(&self) -> PathBuf {
        let env = self.script(&["env"]);
        let bin = env
            .lines()
            .find_map(|l| l.strip_prefix("bin:"))
            .expect("testenv/cluster env names its bin directory");
        Path::new(bin.trim()).join("kubectl")
    }

    /// The cluster's state directory (the kubeconfig lives at its top).
    pub fn state_dir(&self) -> PathBuf {
        self.kubeconfig
            .parent()
            .expect("kubeconfig has a parent")
            .to_path_buf()
    }

    /// A fresh namespace for one test, deleted again by [`TestNamespace::cleanup`].
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        let client = self.client().await;
        let suffix: u32 = rand_suffix();
        let name = format!("e2e-{prefix}-{suffix:08x}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"seldon-deploy-e2e": "true"}}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        TestNamespace {
            name,
            client,
            seen_uids: Arc::default(),
        }
    }

    /// `seldon-deploy ARGS --kubeconfig <this cluster>`, with `KUBECONFIG` unset.
    pub fn sdep(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.sdep_std(args));
        cmd.timeout(Duration::from_secs(300));
        cmd
    }

    /// Starts `seldon-deploy ARGS` in the background with its output captured, to signal it
    /// or disturb the cluster while it runs.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.sdep_std(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn seldon-deploy")
    }

    /// Like [`Cluster::sdep`], as a plain command to spawn and signal.
    pub fn sdep_std(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"));
        cmd.env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig);
        cmd
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

/// A namespace owned by one test.
pub struct TestNamespace {
    /// Its name.
    pub name: String,
    /// An admin client.
    pub client: Client,
    /// The UIDs of the SeldonDeployments this test created or read, by name, for
    /// [`TestNamespace::assert_nothing_left`]'s diagnosis.
    seen_uids: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
}

/// Whether every owner of `d` is a SeldonDeployment named `sdep` (and there is one).
fn owned_only_by(d: &Deployment, sdep: &str) -> bool {
    let owners = d.metadata.owner_references.as_deref().unwrap_or_default();
    !owners.is_empty()
        && owners
            .iter()
            .all(|o| o.kind == "SeldonDeployment" && o.name == sdep)
}

/// The SeldonDeployment resource at version v1.
pub fn sdep_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("machinelearning.seldon.io", "v1", "SeldonDeployment"),
        "seldondeployments",
    )
}

impl TestNamespace {
    /// SeldonDeployments in this namespace.
    pub fn sdeps(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.name, &sdep_resource())
    }

    /// Deployments in this namespace.
    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The SeldonDeployment as JSON, if it exists.
    pub async fn get_sdep(&self, name: &str) -> Option<Value> {
        let found = self.sdeps().get_opt(name).await.expect("get sdep")?;
        self.saw(&found);
        Some(serde_json::to_value(found).unwrap())
    }

    /// Records a SeldonDeployment's UID for [`TestNamespace::assert_nothing_left`]'s diagnosis.
    fn saw(&self, o: &DynamicObject) {
        if let (Some(name), Some(uid)) = (&o.metadata.name, &o.metadata.uid) {
            let mut seen = self.seen_uids.lock().unwrap();
            seen.entry(name.clone()).or_default().insert(uid.clone());
        }
    }

    /// Names of the Deployments the operator made for `sdep`.
    pub async fn child_deployments(&self, sdep: &str) -> Vec<String> {
        self.deployments()
            .list(&ListParams::default().labels(&format!("seldon-deployment-id={sdep}")))
            .await
            .expect("list deployments")
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect()
    }

    /// Asserts that neither the SeldonDeployment nor any of its Deployments exists, once the
    /// garbage collector has removed what the operator made after the object was gone.
    ///
    /// The operator can create a child after its owner is gone: a reconcile that read the
    /// SeldonDeployment before the deletion still creates what it found missing (testenv's
    /// audit log showed a Deployment created 84 ms after a background delete of its owner, and
    /// one created during a foreground delete). No clean-up can wait for a create that has not
    /// happened yet, and none is needed: the child's owner reference names the deleted UID, so
    /// the garbage collector deletes it unprompted. Such a Deployment (every owner a
    /// SeldonDeployment of this name, which is gone) is watched until it is deleted; any other
    /// Deployment, or one the collector keeps, is left behind, and the failure explains it:
    /// when it was made, which owner UID it names, the UIDs `sdep` had, and the namespace's
    /// events. (That the clean-up deletes in the foreground, so the children it could see go
    /// before their owner, is pinned in tests/mock_lifecycle.rs.)
    pub async fn assert_nothing_left(&self, sdep: &str) {
        assert_eq!(
            self.get_sdep(sdep).await,
            None,
            "SeldonDeployment {sdep} was left behind"
        );
        let found = self
            .deployments()
            .list(&ListParams::default().labels(&format!("seldon-deployment-id={sdep}")))
            .await
            .expect("list deployments")
            .items;
        let found_at = Timestamp::now();
        let mut left = Vec::new();
        for d in found {
            if !owned_only_by(&d, sdep) {
                left.push((d, format!("not owned by SeldonDeployment {sdep} alone")));
            } else if !self.collected(&d).await {
                left.push((d, "the garbage collector kept it for 60 s".to_owned()));
            }
        }
        if !left.is_empty() {
            let why = self.explain_left(sdep, &left).await;
            panic!("Deployments of {sdep} were left behind (found at {found_at}):\n{why}");
        }
    }

    /// Whether the garbage collector deletes `d` (watched, with a guard against a hang).
    async fn collected(&self, d: &Deployment) -> bool {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        let uid = d.metadata.uid.as_deref().unwrap_or_default();
        let gone = kube::runtime::wait::await_condition(
            self.deployments(),
            name,
            kube::runtime::wait::conditions::is_deleted(uid),
        );
        matches!(
            tokio::time::timeout(Duration::from_secs(60), gone).await,
            Ok(Ok(_))
        )
    }

    /// The diagnosis [`TestNamespace::assert_nothing_left`] prints.
    async fn explain_left(&self, sdep: &str, left: &[(Deployment, String)]) -> String {
        let mut out = String::new();
        let seen = self.seen_uids.lock().unwrap().clone();
        let events = Api::<Event>::namespaced(self.client.clone(), &self.name)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let from_events: BTreeSet<String> = events
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("SeldonDeployment")
                    && e.involved_object.name.as_deref() == Some(sdep)
            })
            .filter_map(|e| e.involved_object.uid.clone())
            .collect();
        out += &format!(
            "SeldonDeployment {sdep} UIDs: seen by the test {seen:?}, named by events {from_events:?}\n"
        );
        for (d, reason) in left {
            let m = &d.metadata;
            let owners: Vec<String> = m
                .owner_references
                .iter()
                .flatten()
                .map(|o| format!("{}/{} uid={}", o.kind, o.name, o.uid))
                .collect();
            out += &format!(
                "Deployment {} ({reason}): uid={} created={} deletionTimestamp={} finalizers={:?} owners={owners:?}\n",
                m.name.as_deref().unwrap_or_default(),
                m.uid.as_deref().unwrap_or_default(),
                m.creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                m.deletion_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                m.finalizers.as_deref().unwrap_or_default(),
            );
        }
        let mut events: Vec<(String, String)> = events
            .iter()
            .map(|e| {
                let at = e
                    .last_timestamp
                    .as_ref()
                    .or(e.first_timestamp.as_ref())
                    .map(|t| t.0.to_string())
                    .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                    .unwrap_or_default();
                let o = &e.involved_object;
                let line = format!(
                    "  {at} {}/{} uid={} {} {} (x{})",
                    o.kind.as_deref().unwrap_or_default(),
                    o.name.as_deref().unwrap_or_default(),
                    o.uid.as_deref().unwrap_or_default(),
                    e.reason.as_deref().unwrap_or_default(),
                    e.message.as_deref().unwrap_or_default(),
                    e.count.unwrap_or(1)
                );
                (at, line)
            })
            .collect();
        events.sort();
        out += "events:\n";
        for (_, line) in events {
            out += &line;
            out += "\n";
        }
        out
    }

    /// Creates a SeldonDeployment directly (as another user of the cluster would).
    pub async fn create_sdep(&self, manifest: &Value) -> Value {
        let obj: DynamicObject = serde_json::from_value(manifest.clone()).unwrap();
        let created = self
            .sdeps()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create sdep");
        self.saw(&created);
        serde_json::to_value(created).unwrap()
    }

    /// Replaces the live SeldonDeployment `name` with `manifest` whose first component's pod
    /// metadata is `pod_meta`: a new pod template, so the Deployment rolls out a new ReplicaSet.
    ///
    /// Sent as `apply` sends it: with the live resourceVersion as a precondition. The operator
    /// writes the object's status at any time, so a 409 means "read again and retry", not failure.
    pub async fn update_pod_meta(&self, mut manifest: Value, pod_meta: Value) {
        let name = manifest["metadata"]["name"].as_str().unwrap().to_owned();
        manifest["spec"]["predictors"][0]["componentSpecs"][0]["metadata"] = pod_meta;
        for _ in 0..20 {
            let live = self.sdeps().get(&name).await.expect("get sdep");
            manifest["metadata"]["resourceVersion"] =
                serde_json::to_value(&live.metadata.resource_version).unwrap();
            let obj: DynamicObject = serde_json::from_value(manifest.clone()).unwrap();
            match self
                .sdeps()
                .replace(&name, &PostParams::default(), &obj)
                .await
            {
                Ok(_) => return,
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => panic!("update sdep {name}: {e}"),
            }
        }
        panic!("update sdep {name}: 20 conflicts in a row");
    }

    /// Deletes the namespace; the tests call it at the end, whatever happened before.
    pub async fn cleanup(self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await;
    }
}

/// Path of a file under `examples/`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Reads an example manifest as JSON.
pub fn example_json(name: &str) -> Value {
    let text = std::fs::read_to_string(example(name)).expect("read example");
    serde_saphyr::from_str(&text).expect("example parses")
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parses a `-o json` report from stdout.
pub fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", describe(out)))
}

/// The `reason` of every event in a `-o json` report.
pub fn event_reasons(report: &Value) -> Vec<String> {
    report["events"]
        .as_array()
        .expect("events in the report")
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect()
}

/// Asserts every field of `expected` is present with the same value in `actual` (extra fields
/// in `actual`, e.g. server defaults, are allowed). Returns the paths that differ.
pub fn missing_fields(expected: &Value, actual: &Value, path: &str) -> Vec<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .flat_map(|(k, v)| match a.get(k) {
                Some(av) => missing_fields(v, av, &format!("{path}/{k}")),
                None => vec![format!("{path}/{k} (absent)")],
            })
            .collect(),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .flat_map(|(i, (ev, av))| missing_fields(ev, av, &format!("{path}/{i}")))
            .collect(),
        (e, a) if e == a => vec![],
        (e, a) => vec![format!("{path}: expected {e}, found {a}")],
    }
}

/// Spawns `cmd`, lets it run for `secs` seconds, sends SIGINT, and collects its output.
pub fn run_then_interrupt(mut cmd: std::process::Command, secs: u64) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(secs));
    signal(child.id(), "INT");
    child.wait_with_output().expect("wait")
}

/// Sends a signal by name (`INT`, `TERM`, ...) with kill(1): the tests stay free of `unsafe`.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// The admin kubeconfig as JSON, to derive variants from (JSON is valid kubeconfig YAML).
pub fn kubeconfig_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read kubeconfig");
    serde_saphyr::from_str(&text).expect("kubeconfig parses")
}

/// Writes `value` as a kubeconfig file in `dir` and returns its path.
pub fn write_kubeconfig(dir: &Path, file: &str, value: &Value) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).expect("write kubeconfig");
    path
}

/// The apiserver's `host:port` from a kubeconfig's first cluster.
pub fn apiserver_addr(kubeconfig: &Value) -> std::net::SocketAddr {
    let server = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("server");
    server
        .trim_start_matches("https://")
        .parse()
        .expect("server is https://IP:PORT")
}

/// A TCP proxy in front of the apiserver that drops every open connection at a fixed
/// interval, as a flaky load balancer would.
pub struct CuttingProxy {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    /// How many connections were cut so far.
    pub cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CuttingProxy {
    /// Starts the proxy on 127.0.0.1 in the current runtime.
    pub async fn start(upstream: std::net::SocketAddr, every: Duration) -> Self {
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accept_open = open.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_open.lock().unwrap().push(task.abort_handle());
            }
        });
        let cut_cuts = cuts.clone();
        let cutter = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for task in open.lock().unwrap().drain(..) {
                    if !task.is_finished() {
                        task.abort();
                        cut_cuts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        CuttingProxy {
            addr,
            cuts,
            tasks: vec![accept, cutter],
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// A one-component SeldonDeployment on a plain (fake) image. `pod_meta` becomes the pod
/// template's metadata (the KWOK hooks in testenv/ live there); `pod_spec` fields are merged
/// into the pod spec.
pub fn sdep_manifest(name: &str, pod_meta: Value, pod_spec: Value) -> Value {
    let mut spec = serde_json::json!({"containers": [
        {"name": "classifier", "image": "seldonio/mock_classifier_rest:1.3"}]});
    for (k, v) in pod_spec.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    serde_json::json!({
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {"predictors": [{
            "name": "default",
            "replicas": 1,
            "componentSpecs": [{"metadata": pod_meta, "spec": spec}],
            "graph": {"name": "classifier", "type": "MODEL", "endpoint": {"type": "REST"}}
        }]}
    })
}

/// [`sdep_manifest`] whose pods turn Ready only after `delay` (a Go duration), so each wait
/// phase lasts long enough to act inside it.
pub fn slow_manifest(name: &str, delay: &str) -> Value {
    sdep_manifest(
        name,
        serde_json::json!({"annotations": {"test.seldon-deploy/ready-delay": delay}}),
        serde_json::json!({}),
    )
}

/// A SeldonDeployment the operator rejects at reconcile time (state Failed): no seldon-config,
/// testenv's or a real install's, has a `NO_SUCH_SERVER` prepackaged server.
pub fn failing_manifest(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {"predictors": [{"name": "default", "graph": {
            "name": "classifier", "implementation": "NO_SUCH_SERVER",
            "modelUri": "gs://seldon-models/triton/simple"}}]}
    })
}

/// Writes `manifest` to a fresh temporary directory; returns the directory (keep it alive
/// while the file is used) and the file's path, for `-f`.
pub fn manifest_file(manifest: &Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_json(dir.path(), "sdep.json", manifest);
    (dir, path)
}

/// Writes `value` as JSON to `dir/file` and returns the path as a string, for `-f`.
pub fn write_json(dir: &Path, file: &str, value: &Value) -> String {
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).expect("write manifest");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// Everything the lifecycle needs, by resource.
pub fn full_rules() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let all = vec![
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    vec![
        ("machinelearning.seldon.io", "seldondeployments", all),
        ("apps", "deployments", vec!["get", "list", "watch"]),
        ("apps", "replicasets", vec!["get", "list", "watch"]),
        ("", "pods", vec!["get", "list", "watch"]),
        ("", "events", vec!["get", "list", "watch"]),
        ("events.k8s.io", "events", vec!["get", "list", "watch"]),
    ]
}

/// Mints a client-certificate user bound to a Role with `full_rules()` minus the `missing`
/// (verb, resource) pairs and returns its kubeconfig.
pub async fn restricted_user(
    cluster: &Cluster,
    ns: &TestNamespace,
    user: &str,
    missing: &[(&str, &str)],
) -> String {
    let kubeconfig = cluster.script(&["mint-user", user]);
    let rules: Vec<Value> = full_rules()
        .into_iter()
        .filter_map(|(group, resource, verbs)| {
            let verbs: Vec<&str> = verbs
                .into_iter()
                .filter(|v| !missing.contains(&(*v, resource)))
                .collect();
            // A rule must hold a verb: one with none left is left out.
            (!verbs.is_empty())
                .then(|| json!({"apiGroups": [group], "resources": [resource], "verbs": verbs}))
        })
        .collect();
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": user}, "rules": rules})).unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": user},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    Api::<Role>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    kubeconfig
}
