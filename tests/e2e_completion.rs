//! End to end: `kubectl sdep <TAB>`. A real kubectl (testenv's) finds `kubectl-sdep` and
//! `kubectl_complete-sdep` on the PATH, as installed beside each other, and asks the latter
//! for completions (`kubectl __complete …` is what the shells' kubectl completion runs).

mod support;

use std::path::Path;
use std::process::Command;

use support::Cluster;

/// `kubectl __complete sdep WORDS…` with the plugin's two entries on the PATH and the
/// kubeconfig `kubeconfig`; returns the candidates (without help) and the directive line.
fn complete(
    cluster: &Cluster,
    bin: &Path,
    kubeconfig: &Path,
    words: &[&str],
) -> (Vec<String>, String) {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(cluster.kubectl())
        .args(["__complete", "sdep"])
        .args(words)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    let directive = lines.pop().unwrap_or_default().to_owned();
    let values = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect();
    (values, directive)
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn kubectl_completes_subcommands_flags_and_the_names_in_the_current_namespace() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("complete").await;
    for n in ["iris", "income"] {
        ns.create_sdep(&support::sdep_manifest(
            n,
            serde_json::json!({}),
            serde_json::json!({}),
        ))
        .await;
    }
    // The plugin as the README installs it: two links to the binary, side by side.
    let bin = tempfile::tempdir().unwrap();
    for link in ["kubectl-sdep", "kubectl_complete-sdep"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_seldon-deploy"), bin.path().join(link))
            .unwrap();
    }
    // The current context's namespace is the test's, as after `kubectl config set-context
    // --current --namespace=…`.
    let kubeconfig = bin.path().join("config");
    std::fs::copy(&cluster.kubeconfig, &kubeconfig).unwrap();
    let set = Command::new(cluster.kubectl())
        .args([
            "config",
            "set-context",
            "--current",
            "--namespace",
            &ns.name,
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(set.status.success(), "{set:?}");

    let (subs, directive) = complete(&cluster, bin.path(), &kubeconfig, &[""]);
    for s in [
        "run", "create", "apply", "diff", "scale", "wait", "delete", "status", "events",
    ] {
        assert!(subs.iter().any(|c| c == s), "{s} in {subs:?}");
    }
    assert_eq!(directive, ":4", "no file names among subcommands");

    let (names, _) = complete(&cluster, bin.path(), &kubeconfig, &["status", ""]);
    assert_eq!(names, ["income", "iris"]);
    let (names, _) = complete(&cluster, bin.path(), &kubeconfig, &["delete", "ir"]);
    assert_eq!(names, ["iris"]);

    let (flags, _) = complete(&cluster, bin.path(), &kubeconfig, &["apply", "--at"]);
    assert_eq!(flags, ["--atomic"]);
    let (outputs, _) = complete(&cluster, bin.path(), &kubeconfig, &["run", "-o", ""]);
    assert_eq!(outputs, ["text", "json", "jsonl", "junit"]);
    let (namespaces, _) = complete(
        &cluster,
        bin.path(),
        &kubeconfig,
        &["status", "-n", "e2e-complete"],
    );
    assert!(namespaces.contains(&ns.name), "{namespaces:?}");
    ns.cleanup().await;
}
