//! End to end on the local control plane: several SeldonDeployments in one `run` (repeated
//! `-f`, a directory, a multi-document file), with `--concurrency`, a failing one among them,
//! and an interrupt that must clean up every one in flight.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cluster, TestNamespace, describe, report};

/// A SeldonDeployment whose pods turn Ready at once.
fn ready(name: &str) -> Value {
    support::sdep_manifest(name, json!({}), json!({}))
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn write(dir: &Path, file: &str, docs: &[Value]) -> PathBuf {
    // YAML for `.yaml` (documents separated by `---`), JSON for one document in `.json`.
    let text = if file.ends_with(".json") {
        serde_json::to_string_pretty(&docs[0]).unwrap()
    } else {
        let yaml: Vec<String> = docs
            .iter()
            .map(|d| serde_saphyr::to_string(d).unwrap())
            .collect();
        yaml.join("---\n")
    };
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Checks the summary document: every name present, with its outcome and five phases when
/// it succeeded.
fn check_summary(summary: &Value, expected: &[(String, &str)]) {
    let deps = summary["deployments"].as_array().expect("deployments");
    assert_eq!(deps.len(), expected.len(), "{summary:#}");
    for (name, outcome) in expected {
        let r = deps
            .iter()
            .find(|d| d["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from {summary:#}"));
        assert_eq!(r["outcome"], *outcome, "{name}: {r:#}");
        if *outcome == "success" {
            let phases: Vec<&str> = r["phases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                phases,
                ["create", "wait-ready", "scale", "wait-scaled", "delete"],
                "{name}"
            );
        }
    }
}

async fn nothing_left(ns: &TestNamespace, names: &[String]) {
    for n in names {
        ns.assert_nothing_left(n).await;
    }
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn run_with_several_files_a_directory_and_a_multi_document_file() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("many").await;
    let tmp = tempfile::tempdir().unwrap();
    let all = names("m", 8);
    // m-0, m-1: one file each; m-2..m-4: a directory; m-5..m-7: one multi-document file.
    let f0 = write(tmp.path(), "m0.yaml", &[ready(&all[0])]);
    let f1 = write(tmp.path(), "m1.json", &[ready(&all[1])]);
    let dir = tmp.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    for n in &all[2..5] {
        write(&dir, &format!("{n}.yaml"), &[ready(n)]);
    }
    let docs: Vec<Value> = all[5..].iter().map(|n| ready(n)).collect();
    let multi = write(tmp.path(), "multi.yaml", &docs);

    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            f0.to_str().unwrap(),
            "-f",
            f1.to_str().unwrap(),
            "-f",
            dir.to_str().unwrap(),
            "-f",
            multi.to_str().unwrap(),
            "--concurrency",
            "3",
            "--timeout",
            "2m",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let summary = report(&out);
    assert_eq!(summary["exit_code"], 0);
    let expected: Vec<(String, &str)> = all.iter().map(|n| (n.clone(), "success")).collect();
    check_summary(&summary, &expected);
    nothing_left(&ns, &all).await;
    ns.cleanup().await;
}

/// Runs `n` deployments that turn ready and one named `broken` that fails, in namespace
/// `prefix-…`, at `--concurrency 3` with `-o output`; returns the namespace, every name (the
/// broken one last) and the run's output.
async fn good_ones_and_a_broken_one(
    cluster: &Cluster,
    prefix: &str,
    n: usize,
    output: &str,
) -> (TestNamespace, Vec<String>, std::process::Output) {
    let ns = cluster.namespace(prefix).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut all = names(prefix, n);
    let mut docs: Vec<Value> = all.iter().map(|n| ready(n)).collect();
    docs.insert(1, support::failing_manifest("broken"));
    let file = write(tmp.path(), "all.yaml", &docs);
    let out = cluster
        .sdep(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            file.to_str().unwrap(),
            "--concurrency",
            "3",
            "--failed-grace",
            "2s",
            "--timeout",
            "2m",
            "-o",
            output,
        ])
        .output()
        .unwrap();
    all.push("broken".into());
    (ns, all, out)
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn a_failing_deployment_does_not_disturb_the_others_and_sets_the_exit_code() {
    let cluster = Cluster::get();
    let (ns, all, out) = good_ones_and_a_broken_one(&cluster, "manyfail", 4, "json").await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let summary = report(&out);
    assert_eq!(summary["exit_code"], 1);
    let expected: Vec<(String, &str)> = all
        .iter()
        .map(|n| (n.clone(), if n == "broken" { "failed" } else { "success" }))
        .collect();
    check_summary(&summary, &expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[broken]"), "{}", describe(&out));
    nothing_left(&ns, &all).await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn jsonl_writes_one_report_per_line_for_each_deployment_and_the_worst_exit_code() {
    let cluster = Cluster::get();
    let (ns, all, out) = good_ones_and_a_broken_one(&cluster, "jsonl", 3, "jsonl").await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let mut seen: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let rep: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                rep["name"].as_str().unwrap().to_owned(),
                rep["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = all
        .iter()
        .map(|n| {
            let outcome = if n == "broken" { "failed" } else { "success" };
            (n.clone(), outcome.to_owned())
        })
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[broken]"),
        "{}",
        describe(&out)
    );
    nothing_left(&ns, &all).await;
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn sigint_mid_run_cleans_up_every_deployment_in_flight() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("manyint").await;
    let tmp = tempfile::tempdir().unwrap();
    let all = names("slow", 6);
    // Pods become ready only after a minute: every lifecycle is still waiting at the signal.
    let docs: Vec<Value> = all
        .iter()
        .map(|n| support::slow_manifest(n, "60s"))
        .collect();
    let file = write(tmp.path(), "slow.yaml", &docs);

    let child = cluster
        .sdep_std(&[
            "run",
            "-n",
            &ns.name,
            "-f",
            file.to_str().unwrap(),
            "--concurrency",
            "3",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first three exist (the other three are queued behind them).
    let started = std::time::Instant::now();
    loop {
        let mut present = 0;
        for n in &all[..3] {
            present += usize::from(ns.get_sdep(n).await.is_some());
        }
        if present == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first three were never created"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    support::signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let summary = report(&out);
    assert_eq!(summary["exit_code"], 130);
    let deps = summary["deployments"].as_array().unwrap();
    for d in deps {
        assert!(
            d["left_behind"].as_array().is_none_or(Vec::is_empty),
            "{d:#}"
        );
    }
    // The ones in flight were cleaned up by UID; the queued ones were never created.
    for d in deps.iter().filter(|d| d["uid"].is_string()) {
        let phases: Vec<&str> = d["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(phases.last(), Some(&"cleanup"), "{d:#}");
    }
    nothing_left(&ns, &all).await;
    ns.cleanup().await;
}
