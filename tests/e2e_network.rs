//! End to end: an unreliable network and a concurrent writer.

mod common;
mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{Cluster, CuttingProxy, describe, kubeconfig_json, report, write_kubeconfig};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_completes_while_connections_are_cut_every_two_seconds() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("cut").await;
    let tmp = tempfile::tempdir().unwrap();
    let mut kc = kubeconfig_json(&cluster.kubeconfig);
    let proxy = CuttingProxy::start(support::apiserver_addr(&kc), Duration::from_secs(2)).await;
    kc["clusters"][0]["cluster"]["server"] = json!(format!("https://{}", proxy.addr));
    let kc_path = write_kubeconfig(tmp.path(), "config", &kc);
    let file = support::write_json(tmp.path(), "cut.json", &support::slow_manifest("cut", "4s"));

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"));
    cmd.env_remove("KUBECONFIG")
        .args(["run", "-n", &ns.name, "-o", "json", "--timeout", "3m", "-f"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&kc_path);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cuts = proxy.cuts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(cuts >= 3, "the proxy really cut connections ({cuts})");
    let report = report(&out);
    // Re-watches are expected after every cut; full relists only after a 410 or a failed
    // re-watch. Either way they stay bounded by the cuts, not by how long the cluster took.
    let relists = report["watch"]["relists"]
        .as_u64()
        .expect("watch.relists in the report");
    eprintln!("connections cut: {cuts}, relists reported: {relists}");
    assert!(
        relists <= 4 * cuts as u64 + 8,
        "relists bounded: {relists} for {cuts} cuts"
    );
    ns.assert_nothing_left("cut").await;
    ns.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_concurrent_writers_changes_survive_the_scale() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("writer").await;
    let tmp = tempfile::tempdir().unwrap();
    let file = support::write_json(
        tmp.path(),
        "writer.json",
        &support::slow_manifest("writer", "2s"),
    );

    let mut cmd = cluster.sdep_std(&[
        "run",
        "-n",
        &ns.name,
        "--keep",
        "--timeout",
        "2m",
        "-f",
        &file,
    ]);
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());

    // Another writer keeps changing labels and annotations for the whole run.
    let api = ns.sdeps();
    let mut last = 0;
    while !run.is_finished() {
        if ns.get_sdep("writer").await.is_some() {
            last += 1;
            let patch = json!({"metadata": {
                "annotations": {"writer.example.com/seq": last.to_string()},
                "labels": {"writer-seq": last.to_string()}}});
            if api
                .patch("writer", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_err()
            {
                last -= 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = run.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(last > 5, "the writer really wrote ({last} writes)");
    let live = ns.get_sdep("writer").await.expect("kept");
    assert_eq!(
        live["metadata"]["annotations"]["writer.example.com/seq"],
        json!(last.to_string())
    );
    assert_eq!(
        live["metadata"]["labels"]["writer-seq"],
        json!(last.to_string())
    );
    assert_eq!(
        live["spec"]["predictors"][0]["replicas"],
        json!(2),
        "the scale landed"
    );
    ns.cleanup().await;
}

/// A proxy in front of the real API server (through [`common::serve_http_with_pods`]) that
/// forwards everything, but answers the first request `lose` picks with a 504 after the API server has
/// stored it, as a load balancer timing out does.
async fn losing_proxy(
    cluster: &Cluster,
    lose: impl Fn(&common::Req) -> bool + Send + 'static,
) -> (common::HttpMock, common::Log) {
    let upstream = cluster.client().await;
    let mut lost_one = false;
    common::serve_http_with_pods(Box::new(move |r| {
        let body = if r.body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&r.body).unwrap()
        };
        let mut req = http::Request::builder()
            .method(r.method.as_str())
            .uri(r.uri.as_str());
        for (k, v) in &r.headers {
            // The proxy's own credentials and framing replace the client's.
            let hop = [
                http::header::AUTHORIZATION,
                http::header::HOST,
                http::header::CONTENT_LENGTH,
                http::header::TRANSFER_ENCODING,
            ];
            if !hop.contains(k) {
                req = req.header(k, v);
            }
        }
        let req = req.body(kube::client::Body::from(body)).unwrap();
        let client = upstream.clone();
        let lose_answer = !lost_one && lose(r);
        lost_one |= lose_answer;
        common::Reply::Later(Box::pin(async move {
            let resp = client.send(req).await.expect("the API server answers");
            if lose_answer {
                assert!(resp.status().is_success(), "stored: {}", resp.status());
                let body = common::status(504, "Timeout", "the proxy gave up waiting");
                return http::Response::builder()
                    .status(504)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
            }
            resp
        }))
    }))
    .await
}

/// The first SeldonDeployment create is answered 504 after the API server stored it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_create_stored_but_answered_504_by_a_proxy_is_sent_once_and_cleaned_up() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("lost").await;
    let (proxy, log) = losing_proxy(&cluster, |r| {
        r.method == "POST" && r.path.ends_with("/seldondeployments")
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let file = support::write_json(
        tmp.path(),
        "lost.json",
        &support::slow_manifest("lost", "1s"),
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"));
    cmd.env_remove("KUBECONFIG")
        .args(["run", "-n", &ns.name, "-o", "json", "--timeout", "2m", "-f"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&proxy.kubeconfig);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        common::count(&log, |r| r.method == "POST"),
        1,
        "the create was sent once"
    );
    ns.assert_nothing_left("lost").await;
    ns.cleanup().await;
}

/// The update `apply` sends is answered 504 after the API server stored it: the read after it
/// finds the update's marker, so `apply` goes on as updated (waits for the rollout, and with
/// `--atomic` rolls back when it fails), and the update is sent once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn an_update_stored_but_answered_504_by_a_proxy_is_sent_once_waited_for_and_rolled_back() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("lost-put").await;
    let tmp = tempfile::tempdir().unwrap();
    let v1 = support::slow_manifest("lost-put", "0s");
    let file = support::write_json(tmp.path(), "v1.json", &v1);
    let out = cluster
        .sdep(&["apply", "-n", &ns.name, "-f", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = ns.get_sdep("lost-put").await.unwrap();

    let (proxy, log) = losing_proxy(&cluster, |r| {
        r.method == "PUT" && r.path.ends_with("/seldondeployments/lost-put")
    })
    .await;
    let v2 = support::sdep_manifest(
        "lost-put",
        json!({"labels": {"test.seldon-deploy/crash-loop": "true"}}),
        json!({"containers": [{"name": "classifier", "image": "seldonio/mock_classifier_rest:1.4"}]}),
    );
    let file = support::write_json(tmp.path(), "v2.json", &v2);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"));
    cmd.env_remove("KUBECONFIG")
        .args(["apply", "-n", &ns.name, "-o", "json", "--atomic"])
        .args(["--timeout", "2m", "--failed-grace", "2s", "-f"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&proxy.kubeconfig);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rep = report(&out);
    assert_eq!(rep["change"], "updated", "{rep}");
    assert!(
        rep["error"].as_str().unwrap().contains("CrashLoopBackOff"),
        "the rollout was waited for: {rep}"
    );
    assert_eq!(rep["rollback"]["outcome"], "restored", "{rep}");
    assert_eq!(
        common::count(&log, |r| r.method == "PUT" && r.body["spec"] == v2["spec"]),
        1,
        "the update was sent once"
    );
    let live = ns.get_sdep("lost-put").await.unwrap();
    assert_eq!(live["spec"], before["spec"]);
    ns.cleanup().await;
}
