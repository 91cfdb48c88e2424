//! End to end: seldon-deploy inside the cluster, the way a pod of `deploy/job.yaml` sees it.
//!
//! The ServiceAccount, Role and RoleBinding of `deploy/` are applied as shipped (only the
//! namespace changed), a token for the ServiceAccount comes from the TokenRequest API, and the
//! binary runs the Job's own arguments with nothing but the in-cluster configuration:
//! `KUBERNETES_SERVICE_HOST`/`PORT`, and the token, CA and namespace files under
//! `/var/run/secrets/kubernetes.io/serviceaccount`. No kubeconfig, no `-n`.
//!
//! kube reads those files from that fixed path and has no override, so the binary runs in a
//! private mount namespace (`unshare --mount`, util-linux) where a temporary directory is
//! bind-mounted over `/run` (`/var/run` links to it); the machine's own `/run` is untouched.
//! The apiserver's certificate is valid for 127.0.0.1, which is the service host given.

mod support;

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::{Cluster, describe, kubeconfig_json};

/// Where a pod finds its service account, relative to `/run`.
const SA_DIR: &str = "secrets/kubernetes.io/serviceaccount";

/// The documents of `deploy/FILE`.
fn deploy_docs(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The one document of `deploy/FILE` of `kind`, moved into namespace `ns`.
fn deploy_object(file: &str, kind: &str, ns: &str) -> Value {
    let mut doc = deploy_docs(file)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("deploy/{file} has no {kind}"));
    doc["metadata"]["namespace"] = json!(ns);
    doc
}

/// `unshare` must exist and be allowed to make a mount namespace, or this test cannot run.
fn require_unshare() {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "true"])
        .output();
    let why = match out {
        Ok(o) if o.status.success() => return,
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    panic!(
        "the in-cluster test needs `unshare --mount` (util-linux) and the right to create a \
         mount namespace (root, or CAP_SYS_ADMIN): {why}"
    );
}

/// The cluster CA as PEM, from the admin kubeconfig.
fn cluster_ca(kubeconfig: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let cluster = &kubeconfig["clusters"][0]["cluster"];
    if let Some(data) = cluster["certificate-authority-data"].as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("certificate-authority-data is base64");
    }
    let file = cluster["certificate-authority"]
        .as_str()
        .expect("the kubeconfig names its CA");
    std::fs::read(file).expect("read the cluster CA")
}

/// Writes the ConfigMap's files as the kubelet does (`..data/KEY` with a `KEY` symlink to it)
/// and returns the directory.
fn mount_config_map(cm: &Value, dir: &Path) -> PathBuf {
    let data = dir.join("..data");
    std::fs::create_dir_all(&data).unwrap();
    for (key, text) in cm["data"].as_object().expect("ConfigMap data") {
        std::fs::write(data.join(key), text.as_str().expect("text data")).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(key), dir.join(key)).unwrap();
    }
    dir.to_path_buf()
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_job_with_the_deploy_role_runs_the_lifecycle_from_the_in_cluster_configuration() {
    require_unshare();
    let cluster = Cluster::get();
    let ns = cluster.namespace("incluster").await;
    let client = ns.client.clone();

    // deploy/'s ServiceAccount, Role and RoleBinding, as shipped, in the test namespace.
    let sa: ServiceAccount = serde_json::from_value(deploy_object(
        "serviceaccount.yaml",
        "ServiceAccount",
        &ns.name,
    ))
    .unwrap();
    let sa_name = sa.metadata.name.clone().unwrap();
    let role: Role = serde_json::from_value(deploy_object("role.yaml", "Role", &ns.name)).unwrap();
    let mut binding = deploy_object("rolebinding.yaml", "RoleBinding", &ns.name);
    for s in binding["subjects"].as_array_mut().expect("subjects") {
        assert_eq!(
            s["name"],
            sa_name.as_str(),
            "the binding names the ServiceAccount"
        );
        s["namespace"] = json!(ns.name);
    }
    assert_eq!(
        binding["roleRef"]["name"],
        role.metadata.name.as_deref().unwrap()
    );
    let binding: RoleBinding = serde_json::from_value(binding).unwrap();
    let pp = PostParams::default();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns.name);
    sas.create(&pp, &sa).await.expect("create ServiceAccount");
    Api::<Role>::namespaced(client.clone(), &ns.name)
        .create(&pp, &role)
        .await
        .expect("create Role");
    Api::<RoleBinding>::namespaced(client.clone(), &ns.name)
        .create(&pp, &binding)
        .await
        .expect("create RoleBinding");

    // A bound token, as the kubelet projects into a pod.
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 600}}))
            .unwrap();
    let granted: TokenRequest = sas
        .create_subresource("token", &sa_name, &pp, &request)
        .await
        .expect("TokenRequest");
    let token = granted
        .status
        .and_then(|s| s.token)
        .expect("a token in the TokenRequest status");

    // The pod's view: /run/secrets/kubernetes.io/serviceaccount and the ConfigMap volume.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let sa_dir = run.join(SA_DIR);
    std::fs::create_dir_all(&sa_dir).unwrap();
    let admin = kubeconfig_json(&cluster.kubeconfig);
    std::fs::write(sa_dir.join("token"), &token).unwrap();
    std::fs::write(sa_dir.join("ca.crt"), cluster_ca(&admin)).unwrap();
    std::fs::write(sa_dir.join("namespace"), &ns.name).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let config_map = deploy_object("job.yaml", "ConfigMap", &ns.name);
    let job = deploy_object("job.yaml", "Job", &ns.name);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa_name.as_str());
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    let manifests = mount_config_map(&config_map, &tmp.path().join("manifests"));
    // The Job's own arguments, with the volume's mount path mapped to the directory here.
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            a.strip_prefix(mount).map_or_else(
                || a.to_owned(),
                |rest| format!("{}{rest}", manifests.display()),
            )
        })
        .collect();

    let api = support::apiserver_addr(&admin);
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount --bind "$0" /run && exec "$@""#)
        .arg(&run)
        .arg(env!("CARGO_BIN_EXE_seldon-deploy"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .env("KUBERNETES_SERVICE_HOST", api.ip().to_string())
        .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
        .output()
        .expect("run seldon-deploy under unshare");

    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the Job's -o json report ({e}): {}", describe(&out)));
    assert_eq!(report["outcome"], "success", "{}", describe(&out));
    // The namespace came from the service account's namespace file.
    assert_eq!(report["namespace"], ns.name.as_str(), "{}", describe(&out));
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        phases,
        ["create", "wait-ready", "scale", "wait-scaled", "delete"],
        "{}",
        describe(&out)
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(&token),
            "the token was printed"
        );
    }
    ns.assert_nothing_left(report["name"].as_str().unwrap())
        .await;
    ns.cleanup().await;
}
