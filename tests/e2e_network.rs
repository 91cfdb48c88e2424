//! End to end: an unreliable network and a concurrent writer.

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
