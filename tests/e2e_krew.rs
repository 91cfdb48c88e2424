//! End to end: the release as a kubectl user installs it. `scripts/release.sh` packages the
//! binary (this build's) into the release archive and writes the krew manifest; krew (built
//! from its Go module by `testenv/tools krew`) installs it offline, as krew's docs advise plugin
//! authors to test (`kubectl krew install --manifest=… --archive=…`), into a temporary
//! KREW_ROOT; then testenv's kubectl runs the installed plugin: its version, one real
//! lifecycle, and its completion linked as the manifest's caveat says.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::Cluster;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`; panics with its output unless it succeeds.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn krew_installs_the_release_archive_and_the_plugin_runs_a_lifecycle() {
    let cluster = Cluster::get();
    let tmp = tempfile::tempdir().unwrap();
    let krew_dir = ok(Command::new(repo().join("testenv/tools")).arg("krew")).stdout;
    let krew_dir = PathBuf::from(String::from_utf8(krew_dir).unwrap().trim());

    let dist = tmp.path().join("dist");
    let manifest = tmp.path().join("plugins/sdep.yaml");
    ok(Command::new(repo().join("scripts/release.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_seldon-deploy"))
        .arg("--out")
        .arg(&dist)
        .arg("--manifest")
        .arg(&manifest));
    let archives: Vec<PathBuf> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [archive] = &archives[..] else {
        panic!("one archive: {archives:?}");
    };
    let version = env!("CARGO_PKG_VERSION");
    let file = archive.file_name().unwrap().to_str().unwrap();
    assert!(
        file.starts_with(&format!("seldon-deploy-{version}-")) && file.ends_with(".tar.gz"),
        "{file}"
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(&format!("version: v{version}\n")), "{text}");
    assert!(
        text.contains(&format!("/v{version}/{file}\n")),
        "the URL: {text}"
    );

    // kubectl, krew and the plugins krew installs, in a KREW_ROOT of the test's own.
    let root = tmp.path().join("krew");
    let kubectl = cluster.kubectl();
    let path = std::env::join_paths(
        [
            root.join("bin"),
            krew_dir,
            kubectl.parent().unwrap().to_path_buf(),
        ]
        .into_iter()
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let kubectl_cmd = |args: &[&str]| {
        let mut c = Command::new(&kubectl);
        c.args(args)
            .env("PATH", &path)
            .env("KREW_ROOT", &root)
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1");
        c
    };
    ok(&mut kubectl_cmd(&[
        "krew",
        "install",
        &format!("--manifest={}", manifest.display()),
        &format!("--archive={}", archive.display()),
    ]));
    let installed = ok(&mut kubectl_cmd(&["plugin", "list", "--name-only"])).stdout;
    assert!(
        String::from_utf8_lossy(&installed).contains("kubectl-sdep"),
        "{}",
        String::from_utf8_lossy(&installed)
    );

    let out = ok(&mut kubectl_cmd(&["sdep", "--version"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("kubectl-sdep {version}\n")
    );

    let ns = cluster.namespace("krew").await;
    let (_dir, file) = support::manifest_file(&support::sdep_manifest(
        "krew-iris",
        serde_json::json!({}),
        serde_json::json!({}),
    ));
    let out = ok(&mut kubectl_cmd(&[
        "sdep",
        "run",
        "-n",
        &ns.name,
        "-f",
        &file,
        "-o",
        "json",
        "--kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
    ]));
    let report = support::report(&out);
    assert_eq!(report["outcome"], "success", "{report:#}");
    ns.assert_nothing_left("krew-iris").await;

    // Completion, linked into krew's bin directory as the manifest's caveat says.
    std::os::unix::fs::symlink(
        root.join(format!("store/sdep/v{version}/kubectl_complete-sdep")),
        root.join("bin/kubectl_complete-sdep"),
    )
    .unwrap();
    let out = ok(&mut kubectl_cmd(&["__complete", "sdep", ""]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("run\t")), "{stdout}");
    ns.cleanup().await;
}
