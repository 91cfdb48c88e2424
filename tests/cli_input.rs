//! CLI tests that need no cluster: help, argument compatibility, and input validation that
//! must fail (exit 2, naming the file) before any request is sent.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

const TOKEN: &str = "very-secret-token-0123456789";

fn bin() -> Command {
    Command::cargo_bin("seldon-deploy").unwrap()
}

/// A kubeconfig pointing at a port where nothing listens; any request would fail with exit 3.
fn dead_kubeconfig(dir: &Path) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster: {{server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: u, namespace: from-context}}\n"
        ),
    )
    .unwrap();
    p
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

const GOOD: &str = "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata:\n  name: good\nspec:\n  predictors:\n  - name: p\n    graph: {name: c}\n";

/// `text` with every run of whitespace as one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The README's exit-code table is the library's, row for row (backticks aside), so the
/// three places that show it (README, `--help`, the library) cannot drift apart.
#[test]
fn the_readme_exit_code_table_is_the_librarys() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    let rows: Vec<(String, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 2, "two columns: {l}");
            (cells[0].to_owned(), cells[1].replace('`', ""))
        })
        .collect();
    let table: Vec<(String, String)> = seldon_deploy::error::EXIT_CODES
        .iter()
        .map(|(c, m)| ((*c).to_owned(), (*m).to_owned()))
        .collect();
    assert_eq!(rows, table);
}

#[test]
fn help_documents_exit_codes() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("130/143"))
        .stdout(predicate::str::contains("timed out waiting"));
    let help = bin().arg("--help").output().unwrap();
    let help = words(&String::from_utf8_lossy(&help.stdout));
    for (code, meaning) in seldon_deploy::error::EXIT_CODES {
        assert!(
            help.contains(&words(meaning)),
            "--help lacks exit {code}: {meaning}"
        );
    }
    bin()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--replicas"))
        .stdout(predicate::str::contains("[default: 5m]"));
}

#[test]
fn usage_errors_exit_2() {
    bin().assert().code(2);
    bin().args(["run"]).assert().code(2);
    bin()
        .args(["scale", "x", "--replicas", "-1"])
        .assert()
        .code(2);
    bin()
        .args(["run", "-f", "x.yaml", "--timeout", "soon"])
        .assert()
        .code(2);
    bin()
        .args(["run", "-f", "x.yaml", "--cleanup-timeout", "soon"])
        .assert()
        .code(2);
}

#[test]
fn bad_inputs_exit_2_naming_the_file_without_contacting_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let hpa = GOOD.replace(
        "    graph: {name: c}\n",
        "    graph: {name: c}\n    componentSpecs:\n    - hpaSpec: {maxReplicas: 3}\n      spec: {containers: [{name: c, image: i}]}\n",
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.yaml", b"".to_vec(), "no YAML or JSON document"),
        (
            "comments.yaml",
            b"# nothing\n".to_vec(),
            "no YAML or JSON document",
        ),
        (
            "garbage.bin",
            vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff],
            "not UTF-8",
        ),
        (
            "latin1.yaml",
            b"kind: caf\xe9\n".to_vec(),
            "line 1 column 10",
        ),
        ("syntax.yaml", b"apiVersion: [\n".to_vec(), "line"),
        (
            "deployment.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n".to_vec(),
            "not a SeldonDeployment",
        ),
        (
            "v2.yaml",
            b"apiVersion: mlops.seldon.io/v1alpha1\nkind: Model\nmetadata: {name: m}\n".to_vec(),
            "Seldon Core v2",
        ),
        (
            "noname.yaml",
            GOOD.replace("  name: good\n", "  labels: {}\n")
                .into_bytes(),
            "metadata.name is required",
        ),
        (
            "strrep.yaml",
            GOOD.replace("spec:\n", "spec:\n  replicas: \"2\"\n")
                .into_bytes(),
            "spec.replicas must be an integer",
        ),
        (
            "neg.yaml",
            GOOD.replace("spec:\n", "spec:\n  replicas: -2\n")
                .into_bytes(),
            "negative",
        ),
        (
            "huge.yaml",
            GOOD.replace("spec:\n", "spec:\n  replicas: 4294967296\n")
                .into_bytes(),
            "larger than the maximum",
        ),
        (
            "nopred.yaml",
            GOOD.replace("  - name: p\n    graph: {name: c}\n", "")
                .replace("predictors:", "predictors: []")
                .into_bytes(),
            "at least one predictor",
        ),
        (
            "nospec.yaml",
            GOOD.split("spec:").next().unwrap().to_owned().into_bytes(),
            "spec is missing",
        ),
        ("hpa.yaml", hpa.into_bytes(), "hpaSpec"),
        (
            "dup.yaml",
            format!("{GOOD}kind: SeldonDeploymentList\n").into_bytes(),
            "duplicate key \"kind\" with a different value",
        ),
    ];
    for (name, content, want) in cases {
        let p = write(dir.path(), name, &content);
        let out = bin()
            .args(["run", "-f"])
            .arg(&p)
            .arg("--kubeconfig")
            .arg(&kc)
            .timeout(std::time::Duration::from_secs(20))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(name))
            .stderr(predicate::str::contains(want));
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    bin()
        .args(["run", "-f", "/definitely/not/here.yaml", "--kubeconfig"])
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/definitely/not/here.yaml: no such file",
        ));
    let empty = dir.path().join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    bin()
        .args(["run", "-f"])
        .arg(&empty)
        .arg("--kubeconfig")
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("directory"));
}

#[test]
fn namespace_conflict_fails_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let p = write(
        dir.path(),
        "ns.yaml",
        GOOD.replace("  name: good\n", "  name: good\n  namespace: team-a\n")
            .as_bytes(),
    );
    // Against -n.
    bin()
        .args(["run", "-n", "team-b", "-f"])
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"team-a\""));
    // Against the context's namespace.
    bin()
        .args(["create", "-f"])
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("from-context"));
}

#[test]
fn original_flag_spelling_is_run() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let p = write(dir.path(), "deployment.yml", b"kind: [\n");
    bin()
        .args(["-namespace", "seldon", "-filename"])
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("deployment.yml"));
}

#[test]
fn stdin_is_named_in_errors() {
    bin()
        .args(["run", "-n", "x", "-f", "-"])
        .write_stdin("apiVersion: v1\nkind: ConfigMap\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("<stdin>"));
}

#[test]
fn unreachable_cluster_is_exit_3_and_never_prints_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let p = write(dir.path(), "good.yaml", GOOD.as_bytes());
    let out = bin()
        .args(["-vv", "run", "-f"])
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&kc)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("insecure-skip-tls-verify"))
        .stderr(predicate::str::contains("cannot create"));
    let o = out.get_output();
    for stream in [&o.stdout, &o.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(TOKEN),
            "token leaked"
        );
    }
}

#[test]
fn json_output_on_failure_is_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let p = write(dir.path(), "good.yaml", GOOD.as_bytes());
    let out = bin()
        .args(["run", "-o", "json", "-f"])
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&kc)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(3);
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["outcome"], "access");
    assert_eq!(doc["namespace"], "from-context");
    assert_eq!(doc["phases"][0]["name"], "create");
}

#[test]
fn completions_man_and_plugin_name() {
    bin()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("seldon-deploy"));
    bin()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH"));
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-sdep");
    // A symlink, not a copy: exec'ing a just-written file races with other tests' forks,
    // which inherit its write descriptor ("Text file busy").
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("seldon-deploy"), &plugin).unwrap();
    Command::new(&plugin)
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("kubectl sdep"));
}

#[test]
fn apply_input_errors_exit_2_without_contacting_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let bad = write(
        dir.path(),
        "bad.yaml",
        b"kind: SeldonDeployment\nmetadata: {name: x\n",
    );
    for cmd in ["apply", "diff"] {
        bin()
            .args([cmd, "-f"])
            .arg(&bad)
            .arg("--kubeconfig")
            .arg(&kc)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("bad.yaml"))
            .stderr(predicate::str::contains("127.0.0.1:1").not());
    }
    // kubectl spells it --dry-run=server; a bare --dry-run means the same.
    let good = write(dir.path(), "good.yaml", GOOD.as_bytes());
    bin()
        .args(["apply", "--dry-run=client", "-f"])
        .arg(&good)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("server"));
    bin()
        .args(["apply", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--atomic"))
        .stdout(predicate::str::contains("Rollout complete means"));
}

#[test]
fn jsonl_output_is_refused_where_there_are_no_reports_to_stream() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    bin()
        .args(["status", "x", "-o", "jsonl", "--kubeconfig"])
        .arg(&kc)
        .assert()
        .code(2)
        .stdout(predicate::function(|s: &str| {
            s.lines().count() == 1 && serde_json::from_str::<serde_json::Value>(s).is_ok()
        }))
        .stderr(predicate::str::contains("-o jsonl is for run"));
}

#[test]
fn junit_output_is_refused_where_there_are_no_phases() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    bin()
        .args(["status", "x", "-o", "junit", "--kubeconfig"])
        .arg(&kc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-o junit is for run"));
}

/// Runs the binary and parses its stdout as exactly one JSON document.
fn json_doc(cmd: &mut Command, code: i32) -> serde_json::Value {
    let out = cmd
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(code);
    let o = out.get_output();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn json_output_on_an_input_error_is_a_report_with_outcome_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let bad = write(dir.path(), "bad.yaml", b"kind: [unclosed\n");
    let doc = json_doc(
        bin()
            .args(["run", "-o", "json", "-n", "ns", "-f"])
            .arg(&bad)
            .arg("--kubeconfig")
            .arg(&kc),
        2,
    );
    assert_eq!(doc["outcome"], "invalid", "{doc}");
    assert_eq!(doc["exit_code"], 2, "{doc}");
    assert_eq!(doc["namespace"], "ns", "{doc}");
    assert_eq!(doc["source"], bad.to_str().unwrap(), "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("bad.yaml") && error.contains("invalid YAML"),
        "{doc}"
    );
    assert_eq!(doc["phases"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["left_behind"], serde_json::json!([]), "{doc}");

    // A namespace conflict, found after the manifest loaded: its name is in the report.
    let other = write(
        dir.path(),
        "other-ns.yaml",
        GOOD.replace("name: good", "name: good\n  namespace: team-a")
            .as_bytes(),
    );
    for extra in [&["-n", "ns"][..], &[][..]] {
        let doc = json_doc(
            bin()
                .args(["create", "-o", "json", "-f"])
                .arg(&other)
                .args(extra)
                .arg("--kubeconfig")
                .arg(&kc),
            2,
        );
        assert_eq!(doc["outcome"], "invalid", "{doc}");
        assert_eq!(doc["name"], "good", "{doc}");
        // -n, else the context's namespace.
        let ns = if extra.is_empty() {
            "from-context"
        } else {
            "ns"
        };
        assert_eq!(doc["namespace"], ns, "{doc}");
        assert!(
            doc["error"].as_str().unwrap().contains("\"team-a\""),
            "{doc}"
        );
    }
}

#[test]
fn json_output_on_a_usage_error_is_a_report_with_outcome_invalid() {
    for args in [
        &["run", "-f", "x.yaml", "--replicas", "0", "-o", "json"][..],
        &["-ojson", "scale", "x"],
        &["--output=json", "run", "-f", "x.yaml", "--timeout", "soon"],
    ] {
        let doc = json_doc(bin().args(args), 2);
        assert_eq!(doc["outcome"], "invalid", "{args:?}: {doc}");
        assert_eq!(doc["exit_code"], 2, "{args:?}: {doc}");
        assert!(!doc["error"].as_str().unwrap().is_empty(), "{doc}");
    }
    // --help is not an error, and text output stays text.
    bin()
        .args(["run", "--help", "-o", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--replicas"));
    bin()
        .args(["run", "--replicas", "0"])
        .assert()
        .code(2)
        .stdout("");
}

#[test]
fn json_output_on_an_access_error_before_any_lifecycle_is_a_report_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", GOOD.as_bytes());
    let missing = dir.path().join("no-kubeconfig");
    let good = good.to_str().unwrap();
    for (args, name) in [
        (&["run", "-f", good][..], "good"),
        (&["create", "-f", good], "good"),
        (&["scale", "sd", "--replicas", "3"], "sd"),
        (&["wait", "sd"], "sd"),
        (&["delete", "sd"], "sd"),
        (&["status", "sd"], "sd"),
        (&["events", "sd"], "sd"),
    ] {
        let doc = json_doc(
            bin()
                .args(args)
                .args(["-o", "json", "-n", "ns", "--kubeconfig"])
                .arg(&missing),
            3,
        );
        assert_eq!(doc["outcome"], "access", "{args:?}: {doc}");
        assert_eq!(doc["exit_code"], 3, "{args:?}: {doc}");
        assert_eq!(doc["name"], name, "{args:?}: {doc}");
        assert_eq!(doc["namespace"], "ns", "{args:?}: {doc}");
        assert!(
            doc["error"].as_str().unwrap().contains("no-kubeconfig"),
            "{args:?}: {doc}"
        );
    }
}

/// A plain-HTTP "API server" that only counts the connections made to it, so a test can
/// show that nothing was sent; and a kubeconfig pointing at it, with `namespace` as the
/// context's namespace.
struct RecordingServer {
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    kubeconfig: PathBuf,
}

impl RecordingServer {
    fn start(dir: &Path, namespace: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        let kubeconfig = dir.join(format!("recording-{port}.kubeconfig"));
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: rec\nclusters:\n- name: rec\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\nusers:\n- name: u\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: rec\n  context: {{cluster: rec, user: u, namespace: {namespace:?}}}\n"
            ),
        )
        .unwrap();
        RecordingServer {
            connections,
            kubeconfig,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Names and namespaces go into request paths: one that Kubernetes would never accept is
/// refused with exit 2 naming the argument and the rule, never a panic, and no request is
/// sent (a `..`, `/` or `?` would otherwise change the path the request goes to).
#[test]
fn a_bad_name_or_namespace_exits_2_naming_the_argument_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = RecordingServer::start(dir.path(), "from-context");
    let good = write(dir.path(), "good.yaml", GOOD.as_bytes());
    let good = good.to_str().unwrap();
    let long_ns = "n".repeat(70);
    let long_name = "a".repeat(254);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["wait", "a b"], "invalid NAME \"a b\""),
        (
            vec!["run", "-n", "a b", "-f", good],
            "invalid -n/--namespace \"a b\"",
        ),
        (vec!["status", "x/status"], "invalid NAME \"x/status\""),
        (vec!["delete", "../../foo"], "invalid NAME \"../../foo\""),
        (vec!["events", "x?watch=1"], "invalid NAME \"x?watch=1\""),
        (
            vec!["scale", "Upper", "--replicas", "2"],
            "invalid NAME \"Upper\"",
        ),
        (vec!["wait", ""], "invalid NAME \"\""),
        (vec!["status", "%2e%2e"], "invalid NAME \"%2e%2e\""),
        (vec!["wait", &long_name], "at most 253 characters"),
        (
            vec!["apply", "-n", "bad/ns", "-f", good],
            "invalid -n/--namespace \"bad/ns\"",
        ),
        (
            vec!["apply", "-n", &long_ns, "-f", good],
            "70 characters, at most 63",
        ),
        (
            vec!["create", "-n", "a.b", "-f", good],
            "invalid -n/--namespace \"a.b\"",
        ),
        (
            vec!["diff", "--namespace=x-", "-f", good],
            "invalid -n/--namespace \"x-\"",
        ),
    ];
    for (args, wanted) in &cases {
        let out = bin()
            .args(args)
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(wanted),
            "{args:?}: want {wanted:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // The same under -o json: a report, outcome invalid.
    let out = bin()
        .args(["wait", "a b", "-o", "json", "--kubeconfig"])
        .arg(&server.kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"], "invalid", "{doc}");
    assert_eq!(server.connections(), 0, "a request was sent");
}

/// A namespace that comes from the kubeconfig's context (no `-n`) is checked the same way,
/// and a manifest's `metadata.namespace` too, naming the file.
#[test]
fn a_bad_namespace_from_the_kubeconfig_or_a_manifest_exits_2_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = RecordingServer::start(dir.path(), "Team_A");
    for args in [vec!["status", "x"], vec!["wait", "x"]] {
        let out = bin()
            .args(&args)
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("namespace of the kubeconfig context") && stderr.contains("Team_A"),
            "{args:?}: {stderr}"
        );
    }
    let ok_ns = RecordingServer::start(dir.path(), "from-context");
    let p = write(
        dir.path(),
        "badns.yaml",
        GOOD.replace("  name: good\n", "  name: good\n  namespace: a/b\n")
            .as_bytes(),
    );
    let out = bin()
        .args(["apply", "-f"])
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&ok_ns.kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("badns.yaml") && stderr.contains("metadata.namespace \"a/b\""),
        "{stderr}"
    );
    assert_eq!(
        server.connections() + ok_ns.connections(),
        0,
        "a request was sent"
    );
}

/// The JUnit document on stdout, parsed: (test cases, each as (suite, name, the `<error>` or
/// `<failure>` message)), after checking the exit code.
fn junit_cases(out: &std::process::Output, code: i32) -> Vec<(String, String, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = roxmltree::Document::parse(&stdout)
        .unwrap_or_else(|e| panic!("not JUnit XML ({e}): {stdout:?}"));
    assert_eq!(doc.root_element().tag_name().name(), "testsuites");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| {
            let problem = c
                .children()
                .find(|n| n.has_tag_name("error") || n.has_tag_name("failure"))
                .and_then(|n| n.attribute("message"))
                .unwrap_or_default();
            (
                c.attribute("classname").unwrap_or_default().to_owned(),
                c.attribute("name").unwrap_or_default().to_owned(),
                problem.to_owned(),
            )
        })
        .collect();
    assert!(!cases.is_empty(), "no test case: {stdout}");
    cases
}

/// A CI test reporter reads `-o junit`'s stdout whatever happened: every exit before any
/// lifecycle starts (a file that does not load, a namespace conflict, a bad flag or name, no
/// access) prints a JUnit document with a test case per input carrying the message.
#[test]
fn junit_output_is_a_document_on_every_early_exit() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dead_kubeconfig(dir.path());
    let good = write(dir.path(), "good.yaml", GOOD.as_bytes());
    let bad = write(dir.path(), "bad.yaml", b"kind: [unclosed\n");
    let conflict = write(
        dir.path(),
        "ns.yaml",
        GOOD.replace("  name: good\n", "  name: good\n  namespace: team-a\n")
            .as_bytes(),
    );
    let run = |args: &[&std::ffi::OsStr]| {
        bin()
            .args(args)
            .args(["-o", "junit", "--kubeconfig"])
            .arg(&kc)
            .output()
            .unwrap()
    };

    // A bad file among good ones: one case per input, the refused file's carries the error.
    let out = run(&[
        "run".as_ref(),
        "-f".as_ref(),
        good.as_os_str(),
        "-f".as_ref(),
        bad.as_os_str(),
    ]);
    let cases = junit_cases(&out, 2);
    assert_eq!(cases.len(), 2, "{cases:?}");
    let of = |file: &str| {
        cases
            .iter()
            .find(|c| c.0.ends_with(file))
            .unwrap()
            .2
            .clone()
    };
    assert!(of("bad.yaml").contains("bad.yaml") && !of("bad.yaml").starts_with("not run"));
    assert!(of("good.yaml").starts_with("not run:"), "{cases:?}");

    // A namespace conflict.
    let out = run(&[
        "apply".as_ref(),
        "-n".as_ref(),
        "team-b".as_ref(),
        "-f".as_ref(),
        conflict.as_os_str(),
    ]);
    assert!(junit_cases(&out, 2)[0].2.contains("team-a"));

    // A bad flag, and a bad NAME.
    let out = run(&[
        "run".as_ref(),
        "-f".as_ref(),
        good.as_os_str(),
        "--timeout".as_ref(),
        "soon".as_ref(),
    ]);
    assert!(junit_cases(&out, 2)[0].2.contains("soon"));
    let out = run(&["wait".as_ref(), "a b".as_ref()]);
    assert!(junit_cases(&out, 2)[0].2.contains("invalid NAME"));

    // No access: the API server cannot be reached.
    let out = run(&["delete".as_ref(), "x".as_ref()]);
    let cases = junit_cases(&out, 3);
    assert!(!cases[0].2.is_empty(), "{cases:?}");
}
