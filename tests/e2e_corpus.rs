//! End to end: other people's SeldonDeployments (`../shared/upstream-sdeps/`), each through
//! `seldon-deploy run` on the local cluster, in a namespace of its own, `metadata.namespace`
//! stripped first.
//!
//! The corpus is not part of this repository and is never copied into it: its files are read
//! where they are, and `OUTCOMES.tsv` there classes each one. Expected here:
//! - classes `a`, `c-env` and `d-msg`, the namespace conflicts of class `b`, and the duplicate
//!   key of class `b*` (a warning now): complete, exit 0;
//! - class `b` autoscaled components: exit 2 before anything is created;
//! - classes `c`, `c-dep` and `a*` (two predictors with one name, refused like Seldon's
//!   webhook does): the exit code and message of their rejection ([`REJECTIONS`]).
//!
//! Every file must leave nothing behind: no SeldonDeployment and no Deployment in its namespace.
//!
//! Where: `$SDEP_CORPUS_DIR`, else `../shared/upstream-sdeps` beside the checkout. When it is
//! missing the test says so and passes, except under `CI=true`, where it fails.
//!
//! How much: by default a fixed sample, every fourth file in name order (74 of 295, spread
//! over the whole list); `SDEP_CORPUS=all` runs every file (README, Tests: measured times).
//! `SDEP_CORPUS_CLASSES=a,c` restricts the run to some classes, for debugging.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use kube::api::ListParams;
use seldon_deploy::model::manifest;
use serde_json::Value;
use support::{Cluster, TestNamespace};

/// How many files run at once (each in its own namespace).
const CONCURRENCY: usize = 4;

/// What the rejected files deserve: (file, exit code, words in the output).
const REJECTIONS: &[(&str, i32, &str)] = &[
    // The API server's strict validation.
    (
        "SeldonIO-seldon-core__testing-resources-bad_no_graph.yaml",
        2,
        "graph: Required value",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-graph-model.yaml",
        2,
        "unknown field",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-tfserving-model.yaml",
        2,
        "unknown field",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-tfserving-model_chain.yaml",
        2,
        "unknown field",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-tracing-model.yaml",
        2,
        "unknown field",
    ),
    (
        "SeldonIO-seldon-core__examples-infrastructure-upgrade_1_2_volume_patch-README--cell16-heredoc.yaml",
        2,
        "unknown field",
    ),
    (
        "SeldonIO-seldon-core__notebooks-resources-model_invalid1.json",
        2,
        "imagePullPolicy",
    ),
    // The operator's own rejections (state Failed).
    (
        "SeldonIO-seldon-core__notebooks-resources-loadtest_simple_model.json",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__testing-resources-bad_name_mismatch.json",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-metadata-chain.yaml",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-metadata-combiner.yaml",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__executor-samples-local-metadata-broken_chain.yaml",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__notebooks-resources-model_multiple_versions.json",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__notebooks-resources-model_invalid2.json",
        1,
        "engine not separate",
    ),
    (
        "SeldonIO-seldon-core__examples-models-lightgbm_custom_server-model_seldon_v1.yaml",
        1,
        "LIGHTGBM_SERVER",
    ),
    (
        "SeldonIO-seldon-core__examples-models-lightgbm_custom_server-model_seldon_v2.yaml",
        1,
        "LIGHTGBM_SERVER",
    ),
    (
        "SeldonIO-seldon-core__notebooks-resources-model_bad_volume.yaml",
        1,
        "myvolume",
    ),
    // Labelled for an operator that does not run here: no status ever, and the timeout says why.
    (
        "SeldonIO-seldon-core__testing-resources-model_controller_id.yaml",
        4,
        "CONTROLLER_ID",
    ),
    (
        "SeldonIO-seldon-core__notebooks-resources-model_controller_id.yaml",
        4,
        "CONTROLLER_ID",
    ),
    // Two predictors with one name: Seldon's webhook denies it, and so does the loader.
    (
        "SeldonIO-seldon-core__testing-resources-bad_duplicate_predictor_name.json",
        2,
        "predictor names must be unique",
    ),
    // Needs a PersistentVolumeClaim its user creates first: its pod is never scheduled.
    (
        "SeldonIO-seldon-core__examples-models-pvc-tfjob-sdep-pvc.yaml",
        4,
        "seldon-mnist-tfjob-m68v5-modelpvc",
    ),
];

/// One row of `OUTCOMES.tsv`.
#[derive(Debug, Clone)]
struct Row {
    file: String,
    class: String,
    /// Today's exit code as recorded (`2→0` for a namespace conflict that then completed).
    exit: String,
}

/// What a file must end with.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Exit 0; `warns` must appear on stderr when set.
    Complete { warns: Option<&'static str> },
    /// This exit code, with these words in the output.
    Reject { exit: i32, says: &'static str },
}

impl Expect {
    fn of(row: &Row) -> Result<Self, String> {
        match row.class.as_str() {
            "a" | "c-env" | "d-msg" => Ok(Expect::Complete { warns: None }),
            "b*" => Ok(Expect::Complete {
                warns: Some("duplicate key"),
            }),
            "b" if row.exit.starts_with("2→0") => Ok(Expect::Complete { warns: None }),
            "b" => Ok(Expect::Reject {
                exit: 2,
                says: "by hand",
            }),
            "c" | "c-dep" | "a*" => REJECTIONS
                .iter()
                .find(|(f, _, _)| *f == row.file)
                .map(|&(_, exit, says)| Expect::Reject { exit, says })
                .ok_or_else(|| {
                    format!(
                        "{}: class {} without an expectation in REJECTIONS",
                        row.file, row.class
                    )
                }),
            other => Err(format!("{}: unknown class {other:?}", row.file)),
        }
    }

    /// Flags that keep a deliberate failure short without changing its outcome.
    fn flags(&self) -> &'static [&'static str] {
        match self {
            Expect::Complete { .. } => &["--timeout", "90s"],
            Expect::Reject { exit: 4, .. } => &["--timeout", "8s"],
            Expect::Reject { exit: 1, .. } => &["--timeout", "90s", "--failed-grace", "5s"],
            Expect::Reject { .. } => &["--timeout", "30s"],
        }
    }
}

/// The corpus folder, or `None` (said plainly) when it is missing outside CI.
fn corpus_dir() -> Option<PathBuf> {
    let (dir, how) = match std::env::var_os("SDEP_CORPUS_DIR") {
        Some(d) => (PathBuf::from(d), "$SDEP_CORPUS_DIR"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream-sdeps"),
            "../shared/upstream-sdeps beside the checkout",
        ),
    };
    if dir.join("OUTCOMES.tsv").is_file() && dir.join("manifests").is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "the SeldonDeployment corpus is missing: no OUTCOMES.tsv and manifests/ in {} ({how}). \
         It is other people's work and is not in this repository; put a copy of shared/ beside \
         the checkout or point SDEP_CORPUS_DIR at upstream-sdeps/",
        dir.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (CI=true: failing)"
    );
    eprintln!("SKIPPED e2e_corpus: {msg}");
    None
}

fn read_rows(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("OUTCOMES.tsv")).expect("read OUTCOMES.tsv");
    let mut rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let mut next = || f.next().unwrap_or_default().to_owned();
            Row {
                file: next(),
                class: next(),
                exit: next(),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.file.cmp(&b.file));
    rows
}

/// The file to give the tool: the original, or, when it names a namespace, its documents
/// without `metadata.namespace` (as JSON, in `tmp`).
fn without_namespace(path: &Path, tmp: &Path) -> PathBuf {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).expect("read manifest");
    let Ok(manifests) = manifest::parse(&name, &bytes) else {
        return path.to_path_buf(); // the tool's own verdict is what the test checks
    };
    if manifests.iter().all(|m| m.namespace.is_none()) {
        return path.to_path_buf();
    }
    let mut out = String::new();
    for m in manifests {
        let mut obj = m.object;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("namespace");
        }
        out.push_str(&serde_json::to_string(&obj).unwrap());
        out.push('\n');
    }
    let stripped = tmp.join(format!("{name}.json"));
    std::fs::write(&stripped, out).unwrap();
    stripped
}

/// What the namespace still holds: SeldonDeployments and Deployments, by name.
async fn leftovers(ns: &TestNamespace) -> Vec<String> {
    let mut left: Vec<String> = ns
        .sdeps()
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .map(|n| format!("seldondeployment/{n}"))
        .collect();
    left.extend(
        ns.deployments()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .map(|n| format!("deployment/{n}")),
    );
    left
}

/// Runs one file and returns what is wrong with the result, if anything.
async fn check(cluster: &Cluster, dir: &Path, row: Row, tmp: &Path) -> Option<String> {
    let expect = match Expect::of(&row) {
        Ok(e) => e,
        Err(e) => return Some(e),
    };
    let path = without_namespace(&dir.join("manifests").join(&row.file), tmp);
    let ns = cluster.namespace("corpus").await;
    let mut cmd = cluster.sdep_std(&["run", "-n", &ns.name, "-o", "json"]);
    cmd.arg("-f").arg(&path).args(expect.flags());
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run seldon-deploy"))
        .await
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    eprintln!(
        "e2e_corpus: {} (class {}): exit {code} in {:.1} s",
        row.file,
        row.class,
        started.elapsed().as_secs_f64()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut wrong = Vec::new();
    match serde_json::from_str::<Value>(&stdout) {
        Ok(doc) if doc["exit_code"] == code => {}
        Ok(doc) => wrong.push(format!("the report says exit {}", doc["exit_code"])),
        Err(e) => wrong.push(format!("stdout is not one JSON document: {e}")),
    }
    match &expect {
        Expect::Complete { warns } => {
            if code != 0 {
                wrong.push("expected exit 0".into());
            }
            if let Some(w) = warns
                && !stderr.contains(w)
            {
                wrong.push(format!("no warning saying {w:?}"));
            }
        }
        Expect::Reject { exit, says } => {
            if code != *exit {
                wrong.push(format!("expected exit {exit}"));
            }
            if !stdout.contains(says) && !stderr.contains(says) {
                wrong.push(format!("the output does not say {says:?}"));
            }
        }
    }
    let left = leftovers(&ns).await;
    if !left.is_empty() {
        wrong.push(format!("left behind: {}", left.join(", ")));
    }
    ns.cleanup().await;
    if wrong.is_empty() {
        return None;
    }
    let tail: String = stderr
        .lines()
        .filter(|l| !l.starts_with(char::is_numeric)) // progress lines
        .take(12)
        .collect::<Vec<_>>()
        .join("\n    ");
    Some(format!(
        "{} (class {}): exit {code}: {}\n    {tail}",
        row.file,
        row.class,
        wrong.join("; ")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn the_upstream_corpus_ends_as_each_file_deserves() {
    let Some(dir) = corpus_dir() else { return };
    let cluster = Cluster::get();
    let rows = read_rows(&dir);

    // Every manifest has an outcome row, and every row a manifest.
    let mut files: Vec<String> = std::fs::read_dir(dir.join("manifests"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    let listed: Vec<String> = rows.iter().map(|r| r.file.clone()).collect();
    assert_eq!(files, listed, "manifests/ and OUTCOMES.tsv disagree");

    let all = std::env::var("SDEP_CORPUS").as_deref() == Ok("all");
    let classes: Option<Vec<String>> = std::env::var("SDEP_CORPUS_CLASSES")
        .ok()
        .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect());
    let chosen: Vec<Row> = rows
        .into_iter()
        .enumerate()
        .filter(|(i, _)| all || i % 4 == 0)
        .map(|(_, r)| r)
        .filter(|r| classes.as_ref().is_none_or(|c| c.contains(&r.class)))
        .collect();
    let total = chosen.len();
    eprintln!(
        "e2e_corpus: {total} files from {} ({})",
        dir.display(),
        if all { "all" } else { "every fourth" }
    );

    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let failures: Vec<String> = futures::stream::iter(chosen)
        .map(|row| check(&cluster, &dir, row, tmp.path()))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    eprintln!(
        "e2e_corpus: {total} files in {:.0?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
    assert!(
        failures.is_empty(),
        "{} of {total} corpus files did not end as they should:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
