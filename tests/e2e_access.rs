//! End to end: identities, permissions and cluster access on the real apiserver (RBAC on).

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Cluster, describe, example, kubeconfig_json, restricted_user, write_kubeconfig};

fn run_as(kubeconfig: &str, ns: &str, timeout: &str) -> std::process::Output {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"))
        .env_remove("KUBECONFIG")
        .args(["run", "-n", ns, "-f"])
        .arg(example("spec-replicas.yaml"))
        .args(["--timeout", timeout, "--kubeconfig", kubeconfig])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap()
}

fn assert_names_denied(out: &std::process::Output, verb: &str, resource: &str, ns: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    for word in [verb, resource, ns] {
        assert!(
            stderr.contains(word),
            "message names {word:?}: {}",
            describe(out)
        );
    }
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_patch_the_scale_fails_with_exit_3_naming_the_verb_and_cleans_up() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("nopatch").await;
    let user = format!("nopatch-{}", ns.name);
    // The tool may scale with patch or update; deny both so either path is covered.
    let denied = [
        ("patch", "seldondeployments"),
        ("update", "seldondeployments"),
    ];
    let kc = restricted_user(&cluster, &ns, &user, &denied).await;
    let out = run_as(&kc, &ns.name, "1m");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_names_denied(&out, "patch", "seldondeployments", &ns.name);
    ns.assert_nothing_left("seldon-scale").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_delete_the_tool_names_the_object_it_could_not_delete() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("nodelete").await;
    let user = format!("nodelete-{}", ns.name);
    let kc = restricted_user(&cluster, &ns, &user, &[("delete", "seldondeployments")]).await;
    let out = run_as(&kc, &ns.name, "1m");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_names_denied(&out, "delete", "seldondeployments", &ns.name);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seldon-scale"),
        "names the object left: {}",
        describe(&out)
    );
    assert!(
        ns.get_sdep("seldon-scale").await.is_some(),
        "it could not be deleted"
    );
    ns.cleanup().await;
}

/// Runs the lifecycle as a user without `missing` on events: it must complete, warning once
/// (on stderr) that it goes on without events, naming `verb`.
async fn completes_without_events(prefix: &str, missing: &[(&str, &str)], verb: &str) {
    let cluster = Cluster::get();
    let ns = cluster.namespace(prefix).await;
    let user = format!("{prefix}-{}", ns.name);
    let kc = restricted_user(&cluster, &ns, &user, missing).await;
    let out = run_as(&kc, &ns.name, "2m");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("events"))
        .collect();
    assert_eq!(warnings.len(), 1, "warned once: {}", describe(&out));
    for word in [verb, "events", ns.name.as_str()] {
        assert!(
            warnings[0].contains(word),
            "names {word:?}: {}",
            describe(&out)
        );
    }
    ns.assert_nothing_left("seldon-scale").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_watch_on_pods_the_run_fails_naming_watch_pods() {
    // The waits watch the pods to stop early on broken ones: a right the README lists.
    let cluster = Cluster::get();
    let ns = cluster.namespace("nopods").await;
    let user = format!("nopods-{}", ns.name);
    let kc = restricted_user(&cluster, &ns, &user, &[("watch", "pods")]).await;
    let out = run_as(&kc, &ns.name, "1m");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_names_denied(&out, "watch", "pods", &ns.name);
    ns.assert_nothing_left("seldon-scale").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_watch_on_events_the_run_completes_and_warns_once_naming_watch() {
    completes_without_events("nowatchev", &[("watch", "events")], "watch").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_any_right_on_events_the_run_completes_and_warns_once_naming_list() {
    let missing = [("get", "events"), ("list", "events"), ("watch", "events")];
    completes_without_events("noevents", &missing, "list").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_missing_namespace_is_exit_3_with_a_hint() {
    let cluster = Cluster::get();
    let out = run_as(
        cluster.kubeconfig.to_str().unwrap(),
        "no-such-namespace-e2e",
        "30s",
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-namespace-e2e"),
        "{}",
        describe(&out)
    );
}

/// A variant of the admin kubeconfig, changed by `f`, in `dir`.
fn variant(cluster: &Cluster, dir: &std::path::Path, f: impl FnOnce(&mut Value)) -> String {
    let mut kc = kubeconfig_json(&cluster.kubeconfig);
    f(&mut kc);
    write_kubeconfig(dir, "config", &kc)
        .to_str()
        .unwrap()
        .to_string()
}

fn assert_access_error(kubeconfig: &str, hint: &str) {
    let out = run_as(kubeconfig, "default", "20s");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains(hint),
        "mentions {hint:?}: {}",
        describe(&out)
    );
    assert!(!stderr.contains("panicked"), "{}", describe(&out));
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_unreachable_apiserver_is_exit_3() {
    let cluster = Cluster::get();
    let tmp = tempfile::tempdir().unwrap();
    let kc = variant(&cluster, tmp.path(), |kc| {
        kc["clusters"][0]["cluster"]["server"] = json!("https://127.0.0.1:1");
    });
    assert_access_error(&kc, "127.0.0.1:1");
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_wrong_ca_is_exit_3_naming_tls() {
    let cluster = Cluster::get();
    let tmp = tempfile::tempdir().unwrap();
    let wrong_ca = cluster.state_dir().join("pki/client-ca.crt");
    let kc = variant(&cluster, tmp.path(), |kc| {
        kc["clusters"][0]["cluster"]["certificate-authority"] = json!(wrong_ca);
    });
    assert_access_error(&kc, "certificate");
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_invalid_token_is_exit_3_naming_authentication() {
    let cluster = Cluster::get();
    let tmp = tempfile::tempdir().unwrap();
    let kc = variant(&cluster, tmp.path(), |kc| {
        kc["users"][0]["user"]["token"] = json!("not-a-valid-token-0123456789");
    });
    assert_access_error(&kc, "unauthorized");
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn insecure_skip_tls_verify_prints_a_warning() {
    let cluster = Cluster::get();
    let tmp = tempfile::tempdir().unwrap();
    let kc = variant(&cluster, tmp.path(), |kc| {
        let c = kc["clusters"][0]["cluster"].as_object_mut().unwrap();
        c.remove("certificate-authority");
        c.insert("insecure-skip-tls-verify".into(), json!(true));
    });
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"))
        .env_remove("KUBECONFIG")
        .args(["status", "anything", "-n", "default", "--kubeconfig", &kc])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("insecure"),
        "warns about skipped TLS verification: {}",
        describe(&out)
    );
}

/// Runs the whole lifecycle at maximum verbosity and returns everything it printed.
fn verbose_run(kubeconfig: &str, ns: &str) -> String {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"))
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "trace")
        .args(["run", "-vvv", "-n", ns, "-f"])
        .arg(example("spec-replicas.yaml"))
        .args(["--timeout", "2m", "--kubeconfig", kubeconfig])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_bearer_token_never_appears_in_the_output() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("token").await;
    let kc = kubeconfig_json(&cluster.kubeconfig);
    let token = kc["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let printed = verbose_run(cluster.kubeconfig.to_str().unwrap(), &ns.name);
    assert!(printed.len() > 200, "verbose output is not empty");
    assert!(
        !printed.contains(&token),
        "the token leaked into the output"
    );
    assert!(!printed.contains(&token[..12]), "part of the token leaked");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn client_key_material_never_appears_in_the_output() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("cert").await;
    let tmp = tempfile::tempdir().unwrap();
    let users = cluster.state_dir().join("users");
    let key = std::fs::read_to_string(users.join("admin-cert.key")).unwrap();
    let crt = std::fs::read_to_string(users.join("admin-cert.crt")).unwrap();
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let kc = variant(&cluster, tmp.path(), |kc| {
        kc["users"][0]["user"] = json!({
            "client-certificate-data": encode(crt.as_bytes()),
            "client-key-data": encode(key.as_bytes()),
        });
    });
    let printed = verbose_run(&kc, &ns.name);
    let key_body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for line in &key_body {
        assert!(!printed.contains(line), "a line of the private key leaked");
    }
    let key_b64 = encode(key.as_bytes());
    assert!(!printed.contains(&key_b64[..40]), "the base64 key leaked");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_cluster_without_the_crd_is_exit_3_with_a_hint() {
    let cluster = Cluster::get();
    // A second, bare cluster: etcd and kube-apiserver only, so no SeldonDeployment CRD.
    let state = tempfile::tempdir().unwrap();
    let script = |arg: &str| {
        std::process::Command::new(&cluster.script)
            .args(arg.split(' '))
            .env("SDEP_TESTENV_DIR", state.path())
            .output()
            .unwrap()
    };
    let up = script("up --bare");
    assert!(up.status.success(), "bare cluster: {}", describe(&up));
    let out = run_as(
        state.path().join("admin.kubeconfig").to_str().unwrap(),
        "default",
        "20s",
    );
    script("down");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seldondeployments"),
        "names the missing resource: {}",
        describe(&out)
    );
    assert!(
        stderr.to_lowercase().contains("seldon core"),
        "hints at installing Seldon Core: {}",
        describe(&out)
    );
}
