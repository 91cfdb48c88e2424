//! End to end: how the tool finds its cluster and namespace, kubectl-style.

mod support;

use serde_json::json;
use support::{Cluster, describe, example, example_json, kubeconfig_json, write_kubeconfig};

fn spec_replicas_name() -> String {
    example_json("spec-replicas.yaml")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `seldon-deploy ARGS` with only the given environment deciding the cluster.
fn bare_sdep(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"));
    cmd.env_remove("KUBECONFIG")
        .args(args)
        .timeout(std::time::Duration::from_secs(300));
    cmd
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_n_the_namespace_comes_from_the_current_context() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("ctxns").await;
    let tmp = tempfile::tempdir().unwrap();
    let mut kc = kubeconfig_json(&cluster.kubeconfig);
    kc["contexts"][0]["context"]["namespace"] = json!(ns.name);
    let path = write_kubeconfig(tmp.path(), "config", &kc);
    let file = example("spec-replicas.yaml");

    let out = bare_sdep(&["create", "-f", file.to_str().unwrap()])
        .env("KUBECONFIG", &path)
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        ns.get_sdep(&spec_replicas_name()).await.is_some(),
        "created in the context's namespace"
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn context_flag_selects_another_context_and_its_namespace() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("ctxflag").await;
    let tmp = tempfile::tempdir().unwrap();
    let mut kc = kubeconfig_json(&cluster.kubeconfig);
    // The current context points at a server that does not exist; only --context can work.
    let mut good = kc["contexts"][0].clone();
    good["name"] = json!("e2e");
    good["context"]["namespace"] = json!(ns.name);
    let mut broken_cluster = kc["clusters"][0].clone();
    broken_cluster["name"] = json!("nowhere");
    broken_cluster["cluster"]["server"] = json!("https://127.0.0.1:1");
    kc["clusters"].as_array_mut().unwrap().push(broken_cluster);
    kc["contexts"][0]["context"]["cluster"] = json!("nowhere");
    kc["contexts"].as_array_mut().unwrap().push(good);
    let path = write_kubeconfig(tmp.path(), "config", &kc);
    let file = example("spec-replicas.yaml");

    let out = bare_sdep(&["create", "-f", file.to_str().unwrap(), "--context", "e2e"])
        .arg("--kubeconfig")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(ns.get_sdep(&spec_replicas_name()).await.is_some());

    // And the broken current context is reported as a cluster-access problem (exit 3).
    let out = bare_sdep(&["status", "x", "--kubeconfig", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn kubeconfig_variable_merges_several_files() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("merge").await;
    let tmp = tempfile::tempdir().unwrap();
    let kc = kubeconfig_json(&cluster.kubeconfig);
    // Credentials and cluster in one file, the context in another, as people split them.
    let creds = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": kc["clusters"], "users": kc["users"], "contexts": []});
    let mut ctx = kc["contexts"][0].clone();
    ctx["context"]["namespace"] = json!(ns.name);
    let contexts = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [], "users": [], "contexts": [ctx], "current-context": ctx["name"]});
    let a = write_kubeconfig(tmp.path(), "contexts", &contexts);
    let b = write_kubeconfig(tmp.path(), "creds", &creds);
    let joined = std::env::join_paths([a, b]).unwrap();
    let file = example("spec-replicas.yaml");

    let out = bare_sdep(&["create", "-f", file.to_str().unwrap()])
        .env("KUBECONFIG", joined)
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(ns.get_sdep(&spec_replicas_name()).await.is_some());
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn home_kube_config_is_the_fallback() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("home").await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".kube")).unwrap();
    let mut kc = kubeconfig_json(&cluster.kubeconfig);
    kc["contexts"][0]["context"]["namespace"] = json!(ns.name);
    write_kubeconfig(&home.path().join(".kube"), "config", &kc);

    let out = bare_sdep(&[
        "create",
        "-f",
        example("spec-replicas.yaml").to_str().unwrap(),
    ])
    .env("HOME", home.path())
    .env_remove("KUBERNETES_SERVICE_HOST")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(ns.get_sdep(&spec_replicas_name()).await.is_some());
    ns.cleanup().await;
}
