//! Bad input: every case runs the real binary, `seldon-deploy run -n test -f FILE`, and must
//! exit 2 with a message that names the file and says what is wrong (with the parser's line and
//! column where it gives them), never panic, and finish in bounded time and memory.
//!
//! **Nothing is sent.** The kubeconfig points at a local port where a [`Sentinel`] counts every
//! TCP connection and drops it. Each bad case asserts that the count stays at zero, which is
//! stronger than "exit 2 rather than 3": it holds even if a connection failure were ever
//! classified as exit 2. The control cases (`valid_manifest_*`) prove the sentinel sees the tool
//! when it does connect, so the zero-count assertions can fail.
//!
//! **Bounded memory.** Every run is wrapped in `prlimit --data=64MiB` (RLIMIT_DATA, which Linux
//! applies to the heap and all private writable mappings). The worst legitimate case, the alias
//! bomb stopped by the loader's alias budget, peaks near 30 MiB; reading a 100 MB input whole
//! cannot fit, so a loader that lost its size cap aborts on allocation and the test fails.
//! `TOKIO_WORKER_THREADS=2` keeps thread stacks (which count too) independent of the core count.
//!
//! **Bounded time.** assert_cmd's `timeout` is a guard against hangs, not a timing assertion.
//!
//! Files live in `tests/data/bad/` (see `tests/data/README.md`); the big ones (100 MB,
//! 100k-deep nesting) are generated into a temporary directory at test time.
//!
//! Linux only: it relies on `prlimit`, `setpriv` (to drop root for the unreadable-file case)
//! and `/proc`.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tempfile::TempDir;

/// RLIMIT_DATA for every run of the tool.
const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
/// Guard against a hang; every case finishes in well under a second.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The "nobody" user and group, for the unreadable-file case when the tests run as root.
const NOBODY: &str = "65534";

fn bad(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bad")
        .join(name)
}

/// Counts TCP connections to a local port and drops each one at once.
struct Sentinel {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<TcpListener>>,
}

impl Sentinel {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sentinel");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hits, stop) = (hits.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok(_) => {
                            hits.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
                listener
            })
        };
        Sentinel {
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops accepting and returns how many connections arrived, including any still queued.
    fn connections(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let listener = self.thread.take().unwrap().join().expect("sentinel thread");
        let mut n = self.hits.load(Ordering::SeqCst);
        while listener.accept().is_ok() {
            n += 1;
        }
        n
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A temporary directory holding a kubeconfig that points at a [`Sentinel`]. Readable by
/// everyone, so the tool can also run as `nobody`.
struct Env {
    dir: TempDir,
    kubeconfig: PathBuf,
    sentinel: Sentinel,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sentinel = Sentinel::start();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: sentinel
  cluster:
    server: https://{addr}
contexts:
- name: sentinel
  context: {{cluster: sentinel, user: nobody, namespace: test}}
current-context: sentinel
users:
- name: nobody
  user: {{token: not-a-real-token}}
",
                addr = sentinel.addr
            ),
        )
        .unwrap();
        std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
        Env {
            dir,
            kubeconfig,
            sentinel,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `run -n test -f FILE --kubeconfig SENTINEL`, under the memory limit.
    fn run(&self, file: &Path) -> Output {
        self.command(file.as_os_str(), None)
            .output()
            .expect("run seldon-deploy")
    }

    fn command(&self, file: &std::ffi::OsStr, run_as: Option<&str>) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(prlimit());
        cmd.args(self.prlimit_args(file, run_as))
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .env("TOKIO_WORKER_THREADS", "2")
            .timeout(TIMEOUT);
        cmd
    }

    /// Arguments to `prlimit` that run the tool under the memory limit (as `run_as`, if set).
    fn prlimit_args(&self, file: &std::ffi::OsStr, run_as: Option<&str>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![format!("--data={MEMORY_LIMIT}").into()];
        if let Some(user) = run_as {
            args.extend(
                [
                    "setpriv",
                    "--reuid",
                    user,
                    "--regid",
                    user,
                    "--clear-groups",
                ]
                .map(OsString::from),
            );
        }
        args.push(env!("CARGO_BIN_EXE_seldon-deploy").into());
        args.extend(["run", "-n", "test", "-f"].map(OsString::from));
        args.push(file.to_owned());
        args.push("--kubeconfig".into());
        args.push(self.kubeconfig.clone().into());
        args
    }
}

/// `prlimit`, required: without it the memory bound would go unchecked.
fn prlimit() -> &'static str {
    let ok = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "prlimit (util-linux) is required to bound the tool's memory in these tests"
    );
    "prlimit"
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The contract for input the client can judge on its own: exit 2, the file named, the
/// reason given, no panic, and no connection to the cluster.
fn assert_rejected(env: Env, out: &Output, names: &str, says: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all = describe(out);
    assert!(!stderr.contains("panicked"), "panic: {all}");
    assert_eq!(out.status.code(), Some(2), "exit code: {all}");
    assert!(
        stderr.contains(names),
        "stderr does not name {names:?}: {all}"
    );
    for s in says {
        assert!(stderr.contains(s), "stderr does not say {s:?}: {all}");
    }
    assert!(stderr.len() < 64 * 1024, "stderr is {} bytes", stderr.len());
    for internal in ["<input>", "Policy", "Options", "budget", " { "] {
        assert!(
            !stderr.contains(internal),
            "stderr speaks the parser's internals ({internal:?}): {all}"
        );
    }
    assert_eq!(
        env.sentinel.connections(),
        0,
        "the tool contacted the cluster: {all}"
    );
    stderr
}

/// One committed file from `tests/data/bad/`.
fn check_file(file: &str, says: &[&str]) -> String {
    let env = Env::new();
    let path = bad(file);
    assert!(path.exists(), "{path:?} missing");
    let out = env.run(&path);
    assert_rejected(env, &out, &path.to_string_lossy(), says)
}

macro_rules! bad_file {
    ($($test:ident: $file:literal => [$($says:literal),+ $(,)?];)+) => {$(
        #[test]
        fn $test() {
            check_file($file, &[$($says),+]);
        }
    )+};
}

bad_file! {
    empty_file: "empty.yaml" => ["contains no YAML or JSON document"];
    comments_only: "comments-only.yaml" => ["contains no YAML or JSON document"];
    binary_garbage: "binary-garbage.bin" => ["looks like binary data", "line 1 column 1"];
    non_utf8_bytes: "non-utf8.yaml" => ["not UTF-8", "line 4 column 12"];
    // The parser reports the tab at the plain scalar it ended ("default", line 7), not at the
    // start of line 8 where the tab is.
    tab_indentation: "tab-indent.yaml"
        => ["invalid YAML", "found a tab", "spaces only", "line 7 column 11"];
    duplicate_keys: "duplicate-keys.yaml"
        => ["invalid YAML: line 11 column 5: duplicate key \"replicas\" with a different value than at line 8 column 5"];
    yaml_syntax_error: "yaml-syntax.yaml" => ["invalid YAML", "mismatched bracket", "line 8 column 41"];
    json_syntax_error: "json-syntax.json" => ["invalid JSON", "trailing comma", "line 5 column 79"];
    alias_bomb: "alias-bomb.yaml" => ["invalid YAML", "aliases expand to too many values", "line "];
    wrong_kind_deployment: "deployment.yaml" => ["apps/v1", "Deployment", "is not a SeldonDeployment"];
    wrong_group_seldon_v2_model: "seldon-v2-model.yaml" => ["mlops.seldon.io/v1alpha1", "Seldon Core v2"];
    missing_metadata_name: "missing-name.yaml" => ["metadata.name is required"];
    replicas_string_at_spec: "replicas-string-spec.yaml"
        => ["spec.replicas must be an integer, found a string"];
    replicas_string_at_predictor: "replicas-string-predictor.yaml"
        => ["spec.predictors[0].replicas must be an integer, found a string"];
    replicas_string_at_component: "replicas-string-component.yaml"
        => ["spec.predictors[0].componentSpecs[0].replicas must be an integer, found a string"];
    replicas_negative_at_spec: "replicas-negative-spec.yaml"
        => ["spec.replicas is -1", "cannot be negative"];
    replicas_negative_at_predictor: "replicas-negative-predictor.yaml"
        => ["spec.predictors[0].replicas is -2", "cannot be negative"];
    replicas_negative_at_component: "replicas-negative-component.yaml"
        => ["spec.predictors[0].componentSpecs[0].replicas is -3", "cannot be negative"];
    replicas_too_large_at_spec: "replicas-too-large-spec.yaml"
        => ["spec.replicas is 2147483648", "larger than the maximum 2147483647"];
    replicas_too_large_at_predictor: "replicas-too-large-predictor.yaml"
        => ["spec.predictors[0].replicas is 99999999999", "larger than the maximum 2147483647"];
    replicas_too_large_at_component: "replicas-too-large-component.yaml"
        => ["spec.predictors[0].componentSpecs[0].replicas is", "larger than the maximum 2147483647"];
    no_predictors: "no-predictors.yaml" => ["spec.predictors must list at least one predictor"];
    empty_predictors: "empty-predictors.yaml" => ["spec.predictors must list at least one predictor"];
    namespace_conflict_with_dash_n: "namespace-conflict.yaml"
        => ["metadata.namespace is \"other\"", "\"test\"", "-n other"];
    autoscaled_component_given_to_run: "hpa-spec.yaml"
        => ["hpaSpec", "cannot scale \"autoscaled\" by hand", "componentSpecs[0]"];
    bad_second_document: "second-document-bad.yaml"
        => ["(document 2)", "spec.predictors[0].replicas is -1"];
    duplicate_predictor_name: "duplicate-predictor-name.yaml"
        => ["spec.predictors[1].name \"main\" is also the name of spec.predictors[0]"];
    same_name_twice: "duplicate-names.yaml" => ["\"iris\" appears twice", "documents 1 and 2"];
}

// --- Generated inputs -----------------------------------------------------------------------

/// A file of `size` bytes that occupies no disk space (a hole of zeros).
fn sparse_file(path: &Path, size: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
}

#[test]
fn file_of_100_mb_is_refused_by_the_size_cap() {
    let env = Env::new();
    let path = env.path("huge.yaml");
    sparse_file(&path, 100_000_000);
    let out = env.run(&path);
    // "larger than" proves the size cap fired (reading it would say "binary data" instead);
    // the memory limit proves it was not read whole.
    assert_rejected(env, &out, &path.to_string_lossy(), &["larger than 10 MiB"]);
}

#[test]
fn stream_of_100_mb_on_stdin_is_cut_off_at_the_size_cap() {
    let env = Env::new();
    // A pipe has no size to check up front: the loader must stop reading at the cap.
    let script = "yes '# padding, padding, padding' | head -c 100000000 | exec \"$0\" \"$@\"";
    let out = assert_cmd::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(prlimit())
        .args(env.prlimit_args("-".as_ref(), None))
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .env("TOKIO_WORKER_THREADS", "2")
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    assert_rejected(env, &out, "<stdin>", &["larger than 10 MiB"]);
}

#[test]
fn endless_device_is_cut_off_at_the_size_cap() {
    // /dev/zero has no size either and never ends.
    let env = Env::new();
    let out = env.run(Path::new("/dev/zero"));
    assert_rejected(env, &out, "/dev/zero", &["larger than 10 MiB"]);
}

const DEEP: usize = 100_000;

fn deep_case(name: &str, text: String, says: &[&str]) {
    let env = Env::new();
    let path = env.path(name);
    std::fs::write(&path, text).unwrap();
    let out = env.run(&path);
    assert_rejected(env, &out, &path.to_string_lossy(), says);
}

#[test]
fn nesting_100k_deep_yaml_flow() {
    let text = format!(
        "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata:\n  name: deep\nspec:\n  x: {}{}\n",
        "[".repeat(DEEP),
        "]".repeat(DEEP)
    );
    deep_case("deep-flow.yaml", text, &["invalid YAML", "line 6"]);
}

#[test]
fn nesting_100k_deep_yaml_block() {
    // `- - - x` nests block sequences without growing the indentation by hand.
    deep_case(
        "deep-block.yaml",
        format!("{}x\n", "- ".repeat(DEEP)),
        &["invalid YAML", "nested deeper than 64 levels", "line 1"],
    );
}

#[test]
fn nesting_100k_deep_json() {
    let text = format!("{}1{}", "{\"a\":".repeat(DEEP), "}".repeat(DEEP));
    deep_case(
        "deep.json",
        text,
        &["invalid JSON", "recursion limit", "line 1"],
    );
}

// --- Files that cannot be read ----------------------------------------------------------------

#[test]
fn missing_file() {
    let env = Env::new();
    let path = env.path("does-not-exist.yaml");
    let out = env.run(&path);
    assert_rejected(env, &out, &path.to_string_lossy(), &["no such file"]);
}

#[test]
fn empty_directory() {
    let env = Env::new();
    let dir = env.path("empty-dir");
    std::fs::create_dir(&dir).unwrap();
    let out = env.run(&dir);
    assert_rejected(
        env,
        &out,
        &dir.to_string_lossy(),
        &["is a directory with no *.yaml"],
    );
}

#[test]
fn directory_without_manifests() {
    let env = Env::new();
    let dir = env.path("notes");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("README.txt"), "not a manifest\n").unwrap();
    std::fs::create_dir(dir.join("sub.yaml")).unwrap(); // a directory, even with that name
    let out = env.run(&dir);
    assert_rejected(
        env,
        &out,
        &dir.to_string_lossy(),
        &["is a directory with no *.yaml"],
    );
}

#[test]
fn directory_with_a_bad_manifest_names_the_file_inside() {
    let env = Env::new();
    let dir = env.path("manifests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        bad("../fuzz-corpus/ok-iris-v1alpha2.yaml"),
        dir.join("a-good.yaml"),
    )
    .unwrap();
    std::fs::copy(bad("deployment.yaml"), dir.join("b-bad.yaml")).unwrap();
    let out = env.run(&dir);
    let inner = dir.join("b-bad.yaml");
    assert_rejected(
        env,
        &out,
        &inner.to_string_lossy(),
        &["is not a SeldonDeployment"],
    );
}

/// The effective user id, from `/proc/self/status` (no `unsafe` needed).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(2)
        .expect("euid")
        .parse()
        .expect("number")
}

/// `chmod 000` does not stop root (CAP_DAC_OVERRIDE), so as root the tool runs as `nobody`
/// via `setpriv`. Either way the test first proves the file really is unreadable to the user
/// the tool runs as, so it cannot pass vacuously.
#[test]
fn unreadable_file() {
    let env = Env::new();
    let path = env.path("secret.yaml");
    std::fs::copy(bad("../fuzz-corpus/ok-iris-v1alpha2.yaml"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();

    let run_as = (euid() == 0).then_some(NOBODY);
    let readable = match run_as {
        Some(user) => std::process::Command::new("setpriv")
            .args(["--reuid", user, "--regid", user, "--clear-groups", "cat"])
            .arg(&path)
            .output()
            .expect("setpriv (util-linux) is needed to drop root for this test")
            .status
            .success(),
        None => std::fs::File::open(&path).is_ok(),
    };
    assert!(
        !readable,
        "could not make {path:?} unreadable for the tool's user"
    );

    let out = env.command(path.as_os_str(), run_as).output().unwrap();
    assert_rejected(env, &out, &path.to_string_lossy(), &["permission denied"]);
}

// --- Controls: the harness can fail -----------------------------------------------------------

/// A valid manifest passes every local check, so the tool connects: the sentinel sees it and
/// the run exits 3. Without this, the zero-connection assertions above could be vacuous.
#[test]
fn valid_manifest_reaches_the_sentinel() {
    let env = Env::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/iris-v1alpha2.yaml");
    let out = env.run(&path);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        env.sentinel.connections() >= 1,
        "the sentinel saw no connection"
    );
}

/// A typo'd field (`replica:`) is not the client's to judge: the manifest is sent as written,
/// for the API server's strict validation (`tests/e2e_bad_input.rs`) to reject.
#[test]
fn valid_manifest_with_unknown_field_is_sent_to_the_server() {
    let env = Env::new();
    let out = env.run(&bad("unknown-field-replica.yaml"));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        env.sentinel.connections() >= 1,
        "the sentinel saw no connection"
    );
}

/// A key written twice with the same value (as in real manifests kubectl applies) is a
/// warning naming the file, line, column and key, and the manifest is sent.
#[test]
fn valid_manifest_with_an_equal_duplicate_key_warns_and_is_sent() {
    let env = Env::new();
    let path = bad("duplicate-key-same-value.yaml");
    let out = env.run(&path);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "warning: {}: line 12 column 5: duplicate key \"name\", with the same value as at line 7 column 5",
        path.display()
    );
    assert!(stderr.contains(&want), "{}", describe(&out));
    assert!(
        env.sentinel.connections() >= 1,
        "the sentinel saw no connection"
    );
}

/// The memory limit is enforced here and tight enough to matter: under it, holding 100 MB fails
/// while holding 1 MB works. (Some sandboxes ignore RLIMIT_DATA; this would catch that.)
#[test]
fn memory_limit_stops_holding_100_mb() {
    let hold = |bytes: u64| {
        std::process::Command::new(prlimit())
            .arg(format!("--data={MEMORY_LIMIT}"))
            .args([
                "sh",
                "-c",
                "x=$(head -c \"$0\" /dev/zero | tr '\\0' a); echo ${#x}",
            ])
            .arg(bytes.to_string())
            .output()
            .unwrap()
    };
    let small = hold(1_000_000);
    assert!(small.status.success(), "1 MB failed: {}", describe(&small));
    assert_eq!(String::from_utf8_lossy(&small.stdout).trim(), "1000000");
    let big = hold(100_000_000);
    assert!(
        !big.status.success(),
        "100 MB fit under the limit: {}",
        describe(&big)
    );
}
