//! `--smoke` end to end: a real request through the API server's `pods/portforward` to
//! testenv's real model servers (seldon-core for the Seldon protocol, MLServer for v2), chosen
//! by the pod annotation `test.seldon-deploy/serve` (see testenv/README.md, "Model servers
//! behind port-forward").

mod support;

use serde_json::{Value, json};
use support::{
    Cluster, TestNamespace, describe, manifest_file, report, restricted_user, sdep_manifest,
    write_json,
};

/// A v1 request for testenv's model, which sums each row: `[[3.0], [7.0]]`.
fn v1_request() -> Value {
    json!({"data": {"ndarray": [[1, 2], [3, 4]]}})
}

/// A v2 request for the same model: output `sum`, shape `[2, 1]`, data `[3.0, 7.0]`.
fn v2_request() -> Value {
    json!({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]})
}

/// A one-predictor SeldonDeployment whose pod answers as `serve` says (`None`: `ok`), with
/// `spec.protocol` when given.
fn served(name: &str, protocol: Option<&str>, serve: Option<&str>) -> Value {
    let mut m = sdep_manifest(name, pod_meta(serve), json!({}));
    if let Some(p) = protocol {
        m["spec"]["protocol"] = json!(p);
    }
    m
}

/// Pod metadata with the serve annotation. testenv's serve-controller writes a pod's
/// PortForward when it sees the pod, asynchronously; a real executor pod is Ready only once
/// it answers, so the pods here turn Ready a second after they start, by which time the
/// PortForward is there.
fn pod_meta(serve: Option<&str>) -> Value {
    let mut annotations = json!({"test.seldon-deploy/ready-delay": "1s"});
    if let Some(s) = serve {
        annotations["test.seldon-deploy/serve"] = json!(s);
    }
    json!({"annotations": annotations})
}

/// `seldon-deploy ARGS -n NS -o json`.
fn sdep_json(cluster: &Cluster, ns: &TestNamespace, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-n", &ns.name, "-o", "json"]);
    cluster.sdep(&all).output().expect("run seldon-deploy")
}

/// The audit log has a port-forward to `pod` in `ns` that the API server switched to a stream
/// (101): the request went through the API server.
fn assert_port_forward_audited(cluster: &Cluster, ns: &str, pod: &str) {
    let log = std::fs::read_to_string(cluster.state_dir().join("logs/audit.log"))
        .expect("read the audit log");
    let audited = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| {
            e["objectRef"]["resource"] == "pods"
                && e["objectRef"]["subresource"] == "portforward"
                && e["objectRef"]["namespace"] == ns
                && e["objectRef"]["name"] == pod
                && e["responseStatus"]["code"] == 101
        });
    assert!(audited, "no audit line for a port-forward to {ns}/{pod}");
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_smoke_of_a_v1_and_a_v2_deployment_exits_0_with_each_answer_in_the_report() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("smoke-run").await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "smoke-v1",
            None,
            v1_request(),
            "/api/v1.0/predictions",
            "\"ndarray\":[[3.0],[7.0]]",
        ),
        (
            "smoke-v2",
            Some("v2"),
            v2_request(),
            "/v2/models/classifier/infer",
            "\"data\":[3.0,7.0]",
        ),
    ];
    for (name, protocol, request, path, answer) in cases {
        let manifest = write_json(
            dir.path(),
            &format!("{name}.json"),
            &served(name, protocol, None),
        );
        let body = write_json(dir.path(), &format!("{name}-request.json"), &request);
        let out = sdep_json(&cluster, &ns, &["run", "-f", &manifest, "--smoke", &body]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let rep = report(&out);
        let phases: Vec<&str> = rep["phases"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            phases,
            [
                "create",
                "wait-ready",
                "smoke",
                "scale",
                "wait-scaled",
                "delete"
            ],
            "{}",
            describe(&out)
        );
        let smoke = rep["smoke"].as_array().expect("a smoke section");
        assert_eq!(smoke.len(), 1, "{}", describe(&out));
        let s = &smoke[0];
        assert_eq!(s["predictor"], "default");
        assert_eq!(
            (s["method"].as_str(), s["path"].as_str()),
            (Some("POST"), Some(path))
        );
        assert_eq!(
            (s["status"].as_u64(), s["outcome"].as_str()),
            (Some(200), Some("ok")),
            "{s}"
        );
        assert!(s["latency_ms"].is_u64(), "{s}");
        let body = s["body"].as_str().unwrap();
        assert!(body.replace(' ', "").contains(answer), "{name}: {body}");
        let pod = s["pod"].as_str().unwrap();
        assert!(
            pod.starts_with(&format!("{name}-default-0-classifier-")),
            "{pod}"
        );
        assert_port_forward_audited(&cluster, &ns.name, pod);
        ns.assert_nothing_left(name).await;
    }
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn smoke_expect_passes_on_a_match_and_a_wrong_shape_fails_with_exit_1_naming_the_difference()
{
    let cluster = Cluster::get();
    let ns = cluster.namespace("smoke-expect").await;
    let dir = tempfile::tempdir().unwrap();
    let body = write_json(dir.path(), "request.json", &v2_request());
    // Numbers within the tolerance; the model's float64 sums are exact anyway.
    let expected = write_json(
        dir.path(),
        "expected.json",
        &json!({"outputs": [{"name": "sum", "shape": [2, 1], "datatype": "FP64", "data": [3.0, 7.0000001]}]}),
    );
    let good = write_json(dir.path(), "good.json", &served("good", Some("v2"), None));
    let out = sdep_json(
        &cluster,
        &ns,
        &[
            "create",
            "-f",
            &good,
            "--smoke",
            &body,
            "--smoke-expect",
            &expected,
            "--smoke-tolerance",
            "1e-6",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report(&out)["smoke"][0]["outcome"], "ok");

    let shape = write_json(
        dir.path(),
        "shape.json",
        &served("shape", Some("v2"), Some("wrong-shape")),
    );
    let out = sdep_json(
        &cluster,
        &ns,
        &[
            "create",
            "-f",
            &shape,
            "--smoke",
            &body,
            "--smoke-expect",
            &expected,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        "smoke test failed",
        "predictor \"default\"",
        "(pod shape-default-0-classifier-",
        "HTTP 200",
        "outputs[0].shape[1]: expected 1, got 2",
    ] {
        assert!(stderr.contains(words), "{words:?}: {}", describe(&out));
    }
    let rep = report(&out);
    assert_eq!(rep["smoke"][0]["outcome"], "failed");
    // `create` cleans up what it made when the run fails.
    assert!(
        rep["phases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "cleanup"),
        "{}",
        describe(&out)
    );
    ns.assert_nothing_left("shape").await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn apply_atomic_smoke_of_a_version_whose_pods_answer_500_restores_the_previous_spec() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("smoke-atomic").await;
    let dir = tempfile::tempdir().unwrap();
    let body = write_json(dir.path(), "request.json", &v1_request());
    let v1 = served("iris", None, None);
    let (_d1, first) = manifest_file(&v1);
    let out = sdep_json(&cluster, &ns, &["apply", "-f", &first, "--smoke", &body]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = ns.get_sdep("iris").await.expect("created");

    // The new version's pods are Ready but answer 500.
    let v2 = served("iris", None, Some("error-500"));
    let (_d2, second) = manifest_file(&v2);
    let out = sdep_json(
        &cluster,
        &ns,
        &["apply", "-f", &second, "--atomic", "--smoke", &body],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        "smoke test failed",
        "predictor \"default\"",
        "HTTP 500",
        "MICROSERVICE_INTERNAL_ERROR",
        "rolled back",
    ] {
        assert!(stderr.contains(words), "{words:?}: {}", describe(&out));
    }
    let rep = report(&out);
    assert_eq!(rep["rollback"]["outcome"], "restored", "{}", describe(&out));
    assert_eq!(rep["smoke"][0]["status"], 500);
    let after = ns.get_sdep("iris").await.expect("still there");
    assert_eq!(
        after["spec"], before["spec"],
        "the previous spec is restored"
    );
    // Its pods are ready again, and they answer.
    let out = sdep_json(
        &cluster,
        &ns,
        &["wait", "iris", "--smoke", &body, "--timeout", "1m"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report(&out)["smoke"][0]["status"], 200);
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_canary_whose_pods_answer_500_fails_the_apply_although_the_main_predictor_answers() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("smoke-canary").await;
    let dir = tempfile::tempdir().unwrap();
    let body = write_json(dir.path(), "request.json", &v1_request());
    let main = served("iris", None, None);
    let (_d1, first) = manifest_file(&main);
    let out = sdep_json(&cluster, &ns, &["apply", "-f", &first]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // A canary predictor with 10% of the traffic, whose pods answer 500.
    let mut with_canary = main.clone();
    let mut canary = main["spec"]["predictors"][0].clone();
    canary["name"] = json!("canary");
    canary["traffic"] = json!(10);
    canary["componentSpecs"][0]["metadata"] = pod_meta(Some("error-500"));
    with_canary["spec"]["predictors"][0]["traffic"] = json!(90);
    with_canary["spec"]["predictors"]
        .as_array_mut()
        .unwrap()
        .push(canary);
    let (_d2, second) = manifest_file(&with_canary);
    let out = sdep_json(
        &cluster,
        &ns,
        &["apply", "-f", &second, "--smoke", &body, "--smoke-all"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        "smoke test failed",
        "predictor \"canary\"",
        "(pod iris-canary-0-classifier-",
        "HTTP 500",
    ] {
        assert!(stderr.contains(words), "{words:?}: {}", describe(&out));
    }
    let rep = report(&out);
    let outcomes: Vec<(&str, &str)> = rep["smoke"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["predictor"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("default", "ok"), ("canary", "failed")],
        "{}",
        describe(&out)
    );
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn without_pods_portforward_smoke_exits_3_naming_the_right_and_nothing_is_created() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("smoke-rights").await;
    let user = format!("noforward-{}", ns.name);
    // Every right the lifecycle needs, and none on pods/portforward.
    let kubeconfig = restricted_user(&cluster, &ns, &user, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let body = write_json(dir.path(), "request.json", &v1_request());
    let manifest = write_json(dir.path(), "iris.json", &served("iris", None, None));
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"))
        .env_remove("KUBECONFIG")
        .args(["run", "-n", &ns.name, "-f", &manifest, "--smoke", &body])
        .args(["--kubeconfig", &kubeconfig, "--timeout", "1m", "-o", "json"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        "pods/portforward",
        "forbidden",
        &ns.name,
        "nothing was created",
    ] {
        assert!(stderr.contains(words), "{words:?}: {}", describe(&out));
    }
    // Refused before the create: no phase ran (a create then a clean-up would leave nothing
    // behind too, but would have made the object).
    let rep = report(&out);
    assert_eq!(rep["phases"], json!([]), "{}", describe(&out));
    assert_eq!(rep["uid"], Value::Null, "{}", describe(&out));
    assert!(ns.get_sdep("iris").await.is_none(), "nothing is created");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn smoke_without_a_file_checks_readiness_and_a_pod_where_nothing_listens_fails_naming_why() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("smoke-ready").await;
    let dir = tempfile::tempdir().unwrap();
    for (name, protocol, path) in [
        ("ready-v1", None, "/ready"),
        ("ready-v2", Some("v2"), "/ready"),
    ] {
        let manifest = write_json(
            dir.path(),
            &format!("{name}.json"),
            &served(name, protocol, None),
        );
        let out = sdep_json(&cluster, &ns, &["create", "-f", &manifest, "--smoke"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let s = &report(&out)["smoke"][0];
        assert_eq!(
            (s["method"].as_str(), s["path"].as_str()),
            (Some("GET"), Some(path)),
            "{s}"
        );
        assert_eq!(s["status"], 200, "{s}");
        // The standalone command asks the same.
        let out = sdep_json(&cluster, &ns, &["smoke", name]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(report(&out)["smoke"][0]["path"], path);
    }
    let refuse = write_json(
        dir.path(),
        "refuse.json",
        &served("refuse", None, Some("refuse")),
    );
    let out = sdep_json(&cluster, &ns, &["create", "-f", &refuse, "--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let body = write_json(dir.path(), "request.json", &v1_request());
    let out = sdep_json(&cluster, &ns, &["wait", "refuse", "--smoke", &body]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        "smoke test failed",
        "(pod refuse-default-0-classifier-",
        "connection refused",
    ] {
        assert!(stderr.contains(words), "{words:?}: {}", describe(&out));
    }
    assert_eq!(
        report(&out)["smoke"][0]["status"],
        Value::Null,
        "no HTTP answer"
    );
    assert!(
        ns.get_sdep("refuse").await.is_some(),
        "wait deletes nothing"
    );
    ns.cleanup().await;
}
