//! Mock-API tests through the production client: a scripted server on a real local socket,
//! reached through a kubeconfig and `connect::connect`, so kube's own layers (retry, auth,
//! tracing) are in the path. Here: a create whose answer is lost.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use seldon_deploy::Deployer;
use seldon_deploy::judge::freshness::Renders;
use seldon_deploy::names::{APPLY_ID_ANNOTATION, RUN_ID_ANNOTATION};
use seldon_deploy::run::{self, Context, RunOptions};
use serde_json::{Value, json};
use tokio::time::Instant;

/// How the fake answers the first create.
#[derive(Clone, Copy)]
enum FirstPost {
    /// Stores it, then answers 504 (a proxy or etcd timing out after the write).
    StoredThen504,
    /// Stores it, then closes the connection without an answer.
    StoredThenDropped,
    /// Stores it and never answers.
    StoredThenHang,
    /// Answers 504 without storing: the name already belongs to someone else's object.
    TakenThen504,
}

const THEIR_UID: &str = "99999999-0000-0000-0000-000000000000";

/// A stateful fake of the API server, operator and deployment controller for `iris`, like
/// `mock_lifecycle`'s: every list shows the reconciled state, watches stay silent.
fn cluster(first: FirstPost) -> (Script, Arc<Mutex<Option<Value>>>) {
    let state = Arc::new(Mutex::new(None::<Value>));
    if let FirstPost::TakenThen504 = first {
        let mut theirs = sdep("1", Some("Available"), 1);
        theirs["metadata"]["uid"] = json!(THEIR_UID);
        *state.lock().unwrap() = Some(theirs);
    }
    let st = state.clone();
    let mut rv = 100;
    let mut posts = 0;
    let script: Script = Box::new(move |r| {
        rv += 1;
        let mut st = st.lock().unwrap();
        match (r.method.as_str(), r.resource()) {
            ("POST", "sdep") => {
                posts += 1;
                if posts == 1 && matches!(first, FirstPost::TakenThen504) {
                    return respond(
                        504,
                        &status(
                            504,
                            "Timeout",
                            "request did not complete within the allotted timeout",
                        ),
                    );
                }
                if st.is_some() {
                    return respond(
                        409,
                        &status(
                            409,
                            "AlreadyExists",
                            "seldondeployments.machinelearning.seldon.io \"iris\" already exists",
                        ),
                    );
                }
                let mut o = r.body.clone();
                o["apiVersion"] = json!("machinelearning.seldon.io/v1");
                o["metadata"]["uid"] = json!(UID);
                o["metadata"]["namespace"] = json!("ns");
                o["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
                *st = Some(o.clone());
                match (posts, first) {
                    (1, FirstPost::StoredThen504) => respond(
                        504,
                        &status(
                            504,
                            "Timeout",
                            "request did not complete within the allotted timeout",
                        ),
                    ),
                    (1, FirstPost::StoredThenDropped) => Reply::Drop,
                    (1, FirstPost::StoredThenHang) => Reply::Hang,
                    _ => respond(201, &o),
                }
            }
            ("GET", "sdep") if !r.is_watch() && r.path.ends_with("/iris") => match st.as_ref() {
                Some(o) => respond(200, o),
                None => {
                    let mut s = status(404, "NotFound", "seldondeployments \"iris\" not found");
                    s["details"] = json!({"name": "iris", "kind": "seldondeployments"});
                    respond(404, &s)
                }
            },
            ("PATCH", "sdep") => {
                let patch: json_patch::Patch = serde_json::from_value(r.body.clone()).unwrap();
                let o = st.as_mut().unwrap();
                json_patch::patch(o, &patch).unwrap();
                respond(200, o)
            }
            ("DELETE", "sdep") => {
                assert_eq!(
                    r.body["preconditions"]["uid"], UID,
                    "only ever our own object"
                );
                let o = st.take().unwrap();
                respond(200, &o)
            }
            (_, _) if r.is_watch() => Reply::Hang,
            ("GET", "sdep") => {
                let items = st
                    .iter()
                    .map(|o| {
                        let mut o = o.clone();
                        let n = o["spec"]["predictors"][0]["replicas"].as_i64().unwrap_or(1);
                        o["status"] = json!({"state": "Available", "deploymentStatus": {
                            "iris-default-0-classifier": {"replicas": n, "availableReplicas": n}}});
                        o
                    })
                    .collect();
                respond(200, &list("SeldonDeploymentList", &rv.to_string(), items))
            }
            ("GET", "deployments") => {
                let items = st
                    .iter()
                    .filter(|o| o["metadata"]["uid"] == UID)
                    .map(|o| {
                        let n = o["spec"]["predictors"][0]["replicas"].as_i64().unwrap_or(1);
                        deployment(&rv.to_string(), n, n)
                    })
                    .collect();
                respond(200, &list("DeploymentList", &rv.to_string(), items))
            }
            ("GET", "events") => respond(200, &list("EventList", &rv.to_string(), vec![])),
            _ => respond(500, &status(500, "Unexpected", "unexpected request")),
        }
    });
    (script, state)
}

fn posts(log: &Log) -> usize {
    count(log, |r| r.method == "POST")
}

async fn run_through_connect(
    first: FirstPost,
) -> (
    seldon_deploy::report::Report,
    Log,
    Arc<Mutex<Option<Value>>>,
) {
    let (script, state) = cluster(first);
    let (mock, log) = serve_http(script).await;
    let conn = mock.connect().await;
    let ctx = Context::new(Deployer::new(conn.client, &conn.namespace));
    let opts = RunOptions {
        timeout: Duration::from_secs(30),
        ..RunOptions::default()
    };
    let report = run::run(&ctx, &iris_manifest(), &opts).await;
    assert!(
        ctx.left_behind.describe().is_empty(),
        "{:?}",
        ctx.left_behind.describe()
    );
    (report, log, state)
}

#[tokio::test]
async fn a_stored_create_answered_504_is_sent_once_and_the_run_goes_on_with_it() {
    let (report, log, state) = run_through_connect(FirstPost::StoredThen504).await;
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    assert_eq!(posts(&log), 1, "the create was sent exactly once");
    assert_eq!(
        report.uid.as_deref(),
        Some(UID),
        "went on with the stored object"
    );
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["create", "wait-ready", "scale", "wait-scaled", "delete"]
    );
    assert_eq!(count(&log, |r| r.method == "DELETE"), 1);
    assert!(
        state.lock().unwrap().is_none(),
        "its own object was deleted at the end"
    );
}

#[tokio::test]
async fn every_request_names_seldon_deploy_and_its_version_as_its_user_agent() {
    let (report, log, _) = run_through_connect(FirstPost::StoredThen504).await;
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    let agent = format!("seldon-deploy/{}", env!("CARGO_PKG_VERSION"));
    let requests = log.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            r.headers.get("user-agent").and_then(|v| v.to_str().ok()),
            Some(agent.as_str()),
            "{} {}",
            r.method,
            r.uri
        );
    }
}

#[tokio::test]
async fn a_stored_create_whose_connection_drops_is_recognised_as_this_runs_own() {
    let (report, log, state) = run_through_connect(FirstPost::StoredThenDropped).await;
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    assert_eq!(posts(&log), 1);
    assert_eq!(report.uid.as_deref(), Some(UID));
    assert!(state.lock().unwrap().is_none(), "cleaned up");
}

#[tokio::test]
async fn a_lost_create_answer_for_a_name_someone_else_holds_exits_3_and_leaves_it_untouched() {
    let (report, log, state) = run_through_connect(FirstPost::TakenThen504).await;
    assert_eq!(report.exit_code, 3, "{:?}", report.error);
    assert!(
        report.error.as_deref().unwrap().contains("already exists"),
        "{:?}",
        report.error
    );
    assert_eq!(posts(&log), 1);
    assert_eq!(
        count(&log, |r| r.method != "GET" && r.method != "POST"),
        0,
        "nothing but reads after the create"
    );
    let theirs = state.lock().unwrap().clone().expect("still there");
    assert_eq!(theirs["metadata"]["uid"], THEIR_UID);
    assert!(theirs["metadata"]["annotations"][RUN_ID_ANNOTATION].is_null());
}

#[tokio::test]
async fn a_stored_create_unanswered_by_the_deadline_is_found_and_returned() {
    let (script, state) = cluster(FirstPost::StoredThenHang);
    let (mock, log) = serve_http(script).await;
    let conn = mock.connect().await;
    let d = Deployer::new(conn.client, &conn.namespace);
    let h = d
        .create(
            &iris_manifest(),
            Instant::now() + Duration::from_millis(500),
        )
        .await
        .expect("the read after the deadline finds it");
    assert_eq!(h.uid, UID);
    assert_eq!(posts(&log), 1);
    let stored = state.lock().unwrap().clone().unwrap();
    assert!(stored["metadata"]["annotations"][RUN_ID_ANNOTATION].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_while_the_create_is_unanswered_names_the_object_it_may_have_made() {
    let stderr = second_ctrl_c_while_the_post_hangs("run").await;
    assert!(stderr.contains("create request in flight"), "{stderr}");
}

/// `apply` creates what is absent: its create is named as for `run`'s.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_while_an_applys_create_is_unanswered_names_the_object_it_may_have_made() {
    let stderr = second_ctrl_c_while_the_post_hangs("apply").await;
    assert!(stderr.contains("apply request in flight"), "{stderr}");
}

/// Runs `command -f iris.yaml` against a server on which the object is absent and a POST is
/// never answered; sends SIGINT once the POST arrived, and a second once the first was
/// handled; checks the exit names the object as possibly made, and returns stderr.
async fn second_ctrl_c_while_the_post_hangs(command: &str) -> String {
    use std::io::BufRead;
    let (posted_tx, posted_rx) = std::sync::mpsc::channel();
    let (mock, _log) = serve_http(Box::new(move |r| {
        if r.method == "POST" {
            let _ = posted_tx.send(());
            return Reply::Hang;
        }
        if r.method == "GET" && r.resource() == "sdep" && !r.is_watch() && !r.is_list() {
            let mut absent = status(404, "NotFound", "seldondeployments \"iris\" not found");
            absent["details"] = json!({"name": "iris", "group": "machinelearning.seldon.io", "kind": "seldondeployments"});
            return respond(404, &absent);
        }
        Reply::Hang
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("iris.yaml");
    std::fs::write(&file, iris_yaml()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seldon-deploy"))
        .env_remove("KUBECONFIG")
        .args([command, "-n", "ns", "-f"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&mock.kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    let kill = |pid: u32| {
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    posted_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the create reached the server");
    kill(child.id());
    let mut stderr = Vec::new();
    // The second signal only after the first was handled, so it counts as the second.
    while !stderr
        .iter()
        .any(|l: &String| l.contains("SIGINT received"))
    {
        stderr.push(
            line_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("first SIGINT handled"),
        );
    }
    kill(child.id());
    let status = child.wait().unwrap();
    stderr.extend(line_rx.iter());
    let stderr = stderr.join("\n");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("nothing created by this run"), "{stderr}");
    assert!(stderr.contains("seldondeployment/iris -n ns"), "{stderr}");
    assert!(stderr.contains("may have gone through"), "{stderr}");
    stderr
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_reported_at_once_not_slept_by_kube() {
    // kube's retry layer would sleep the 1000 s the server asks for; ours sees that it does
    // not fit before the deadline and reports the 429 itself.
    let (mock, log) = serve_http(Box::new(|_| {
        let mut body = status(429, "TooManyRequests", "slow down");
        body["details"] = json!({"retryAfterSeconds": 1000});
        respond_with_header(429, &body, "Retry-After", "1000")
    }))
    .await;
    let conn = mock.connect().await;
    let d = Deployer::new(conn.client, &conn.namespace);
    let err = d
        .get("iris", Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("slow down"), "{err}");
    assert_eq!(count(&log, |_| true), 1);
}

/// A library caller may build its client with kube's defaults, whose retry layer re-sends a
/// POST answered 504. The create then sees only the second answer, 409, with no lost answer
/// of its own: it still reads the object, recognises its run-id, and goes on with it (and
/// cleans it up) instead of calling the name taken and leaving its own object behind.
#[tokio::test]
async fn with_kubes_retrying_client_a_409_for_this_runs_own_stored_create_is_recognised() {
    let (script, state) = cluster(FirstPost::StoredThen504);
    let (mock, log) = serve_http(script).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(&mock.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert!(
        config.default_retry,
        "kube's default: its retry layer is on"
    );
    let client = kube::Client::try_from(config).unwrap();
    let ctx = Context::new(Deployer::new(client, "ns"));
    let opts = RunOptions {
        timeout: Duration::from_secs(30),
        ..RunOptions::default()
    };
    let report = run::run(&ctx, &iris_manifest(), &opts).await;
    assert!(posts(&log) >= 2, "kube's layer re-sent the POST");
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    assert_eq!(
        report.uid.as_deref(),
        Some(UID),
        "went on with its own object"
    );
    assert!(
        state.lock().unwrap().is_none(),
        "its own object was deleted at the end"
    );
}

/// How the fake answers the first update.
#[derive(Clone, Copy, PartialEq)]
enum FirstPut {
    /// Stores it, then answers 504.
    StoredThen504,
    /// Answers 504 without storing it.
    NotStoredThen504,
    /// Stores it, answers 504, and then refuses every read (403).
    StoredThenUnreadable,
    /// Answers 504 and stores it late: just after the read that follows.
    StoredLateThen504,
}

/// A live `iris` that an apply of [`iris_manifest`] updates, with a PUT honouring the
/// resourceVersion precondition; returns the requests' log and the stored object.
async fn update_through_connect(
    first: FirstPut,
) -> (
    seldon_deploy::Result<seldon_deploy::ops::Applied>,
    Log,
    Arc<Mutex<Value>>,
) {
    let mut live = sdep("5", Some("Available"), 1);
    live["spec"]["predictors"][0]["replicas"] = json!(3);
    let state = Arc::new(Mutex::new(live));
    let st = state.clone();
    let mut puts = 0;
    let mut late: Option<Value> = None;
    // Every version stored, for watches from a resourceVersion.
    let mut history: Vec<Value> = Vec::new();
    let (mock, log) = serve_http(Box::new(move |r| {
        let mut st = st.lock().unwrap();
        match (r.method.as_str(), r.resource()) {
            ("GET", "sdep") if r.is_watch() => {
                let from: u64 = r.query["resourceVersion"].parse().unwrap();
                let since: Vec<Value> = history
                    .iter()
                    .filter(|o| {
                        o["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap()
                            .parse::<u64>()
                            .unwrap()
                            > from
                    })
                    .map(|o| json!({"type": "MODIFIED", "object": o}))
                    .collect();
                watch_events(&since)
            }
            ("GET", "sdep") if puts > 0 && first == FirstPut::StoredThenUnreadable => respond(
                403,
                &status(403, "Forbidden", "seldondeployments \"iris\" is forbidden"),
            ),
            ("GET", "sdep") => {
                let answer = respond(200, &st);
                if let Some(o) = late.take() {
                    *st = o;
                }
                answer
            }
            ("PUT", "sdep") => {
                puts += 1;
                if r.body["metadata"]["resourceVersion"] != st["metadata"]["resourceVersion"] {
                    return respond(
                        409,
                        &status(409, "Conflict", "the object has been modified"),
                    );
                }
                let lost = puts == 1;
                let rv: u64 = st["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut o = r.body.clone();
                o["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
                o["status"] = st["status"].clone();
                match first {
                    FirstPut::NotStoredThen504 if lost => {}
                    FirstPut::StoredLateThen504 if lost => late = Some(o),
                    FirstPut::StoredThen504 if lost => {
                        // The operator writes a status right after the update.
                        history.push(o.clone());
                        let mut after = o;
                        after["metadata"]["resourceVersion"] = json!((rv + 2).to_string());
                        after["status"] = json!({"state": "Creating"});
                        history.push(after.clone());
                        *st = after;
                    }
                    _ => *st = o,
                }
                if lost {
                    return respond(504, &status(504, "Timeout", "the proxy gave up waiting"));
                }
                respond(200, &st)
            }
            _ => respond(500, &status(500, "Unexpected", "unexpected request")),
        }
    }))
    .await;
    let conn = mock.connect().await;
    let d = Deployer::new(conn.client, &conn.namespace);
    let applied = d
        .apply(&iris_manifest(), Instant::now() + Duration::from_secs(20))
        .await;
    (applied, log, state)
}

fn marker(o: &Value) -> Option<&str> {
    o["metadata"]["annotations"][APPLY_ID_ANNOTATION].as_str()
}

#[tokio::test]
async fn a_stored_update_answered_504_is_recognised_by_its_marker_and_sent_once() {
    let (applied, log, state) = update_through_connect(FirstPut::StoredThen504).await;
    let applied = applied.expect("the read finds the update");
    assert_eq!(applied.change, seldon_deploy::model::merge::Change::Updated);
    assert_eq!(count(&log, |r| r.method == "PUT"), 1, "sent once");
    let stored = state.lock().unwrap().clone();
    assert_eq!(marker(&stored), applied.apply_id.as_deref());
    assert_eq!(
        stored["metadata"]["resourceVersion"], "7",
        "a status came after"
    );
    assert_eq!(
        applied.revision,
        Some(6),
        "the update's own resourceVersion, found by a watch from the one before"
    );
    assert_eq!(count(&log, |r| r.is_watch()), 1);
    assert_eq!(applied.after["spec"], stored["spec"]);
    assert_eq!(
        applied.before.unwrap()["spec"]["predictors"][0]["replicas"],
        3
    );
}

#[tokio::test]
async fn a_lost_update_the_read_shows_unstored_is_sent_again_under_the_same_precondition() {
    let (applied, log, state) = update_through_connect(FirstPut::NotStoredThen504).await;
    let applied = applied.expect("the second PUT is stored");
    assert_eq!(applied.change, seldon_deploy::model::merge::Change::Updated);
    let log = log.lock().unwrap();
    let puts: Vec<&Req> = log.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2, "sent again once");
    assert_eq!(
        puts[0].body, puts[1].body,
        "the same write, precondition and marker"
    );
    assert_eq!(puts[1].body["metadata"]["resourceVersion"], "5");
    assert_eq!(marker(&state.lock().unwrap()), applied.apply_id.as_deref());
}

#[tokio::test]
async fn a_lost_update_answer_whose_read_fails_exits_3_saying_it_may_be_live_and_how_to_tell() {
    let (applied, log, state) = update_through_connect(FirstPut::StoredThenUnreadable).await;
    let err = applied.expect_err("cannot settle it");
    assert_eq!(err.exit_code(), 3, "{err}");
    let msg = err.to_string();
    let stored = state.lock().unwrap().clone();
    let id = marker(&stored).expect("stored with its marker");
    assert!(msg.contains("the update may be live"), "{msg}");
    assert!(
        msg.contains(&format!("{APPLY_ID_ANNOTATION}={id}")),
        "{msg}"
    );
    assert_eq!(
        count(&log, |r| r.method == "PUT"),
        1,
        "not sent blindly again"
    );
}

#[tokio::test]
async fn a_lost_update_that_lands_after_the_read_is_recognised_when_the_resend_meets_409() {
    let (applied, log, state) = update_through_connect(FirstPut::StoredLateThen504).await;
    let applied = applied.expect("the 409's re-read finds the update");
    assert_eq!(
        applied.change,
        seldon_deploy::model::merge::Change::Updated,
        "not mistaken for an unchanged object"
    );
    assert_eq!(count(&log, |r| r.method == "PUT"), 2, "the re-send met 409");
    assert_eq!(marker(&state.lock().unwrap()), applied.apply_id.as_deref());
    assert_eq!(
        applied.before.unwrap()["spec"]["predictors"][0]["replicas"],
        3
    );
}

/// An update whose answer the deadline cut off is read once to settle it, and then not sent
/// again: past the deadline there is no time for another write, and each would only add a
/// request in flight and another read.
#[tokio::test]
async fn an_update_cut_off_by_the_deadline_is_read_once_and_not_sent_again() {
    let live = sdep("5", Some("Available"), 1);
    let (mock, log) = serve_http(Box::new(move |r| match (r.method.as_str(), r.resource()) {
        ("GET", "sdep") if r.is_watch() => Reply::Hang,
        ("GET", "sdep") => respond(200, &live),
        // Accepted, never answered, never stored.
        ("PUT", "sdep") => Reply::Hang,
        _ => respond(500, &status(500, "Unexpected", "unexpected request")),
    }))
    .await;
    let conn = mock.connect().await;
    let d = Deployer::new(conn.client, &conn.namespace);
    let err = d
        .apply(&iris_manifest(), Instant::now() + Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(err.to_string().contains("may be live"), "{err}");
    let reads = count(&log, |r| r.method == "GET" && !r.is_watch());
    assert_eq!(
        reads, 2,
        "the read before the write and one read to settle it"
    );
}

/// An `--atomic` rollback after another writer already put the previous spec back writes only
/// what else the update changed (its label), so its rollout wait must expect no new pod
/// template: judged by the update it undoes, it waited for one that never comes, until
/// `--timeout`.
#[tokio::test]
async fn a_restore_that_writes_only_metadata_waits_for_no_new_pod_template() {
    let previous = sdep("5", Some("Available"), 1);
    let mut wrote = previous.clone();
    wrote["metadata"]["resourceVersion"] = json!("6");
    wrote["metadata"]["labels"] = json!({"team": "a"});
    wrote["spec"]["predictors"][0]["graph"]["modelUri"] = json!("gs://models/v2");
    // Someone else has since put the previous spec back; the label is still the update's.
    let mut live = wrote.clone();
    live["metadata"]["resourceVersion"] = json!("7");
    live["spec"] = previous["spec"].clone();
    let state = Arc::new(Mutex::new(live));
    let st = state.clone();
    let (mock, log) = serve_http(Box::new(move |r| {
        let mut st = st.lock().unwrap();
        match (r.method.as_str(), r.resource()) {
            ("GET", "sdep") if !r.is_watch() => respond(200, &st),
            ("PUT", "sdep") => {
                let mut o = r.body.clone();
                o["metadata"]["resourceVersion"] = json!("8");
                o["status"] = st["status"].clone();
                *st = o;
                respond(200, &st)
            }
            _ => respond(500, &status(500, "Unexpected", "unexpected request")),
        }
    }))
    .await;
    let conn = mock.connect().await;
    let d = Deployer::new(conn.client, &conn.namespace);
    let restore = d
        .restore(
            &handle(),
            &previous,
            &wrote,
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .expect("the label is restored")
        .expect("something was written");
    assert_eq!(count(&log, |r| r.method == "PUT"), 1);
    let stored = state.lock().unwrap().clone();
    assert!(
        stored["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("team").is_none())
    );
    assert_eq!(restore.revision, 8);
    assert_eq!(
        restore.renders,
        Renders::Nothing,
        "the restore changed no pod template"
    );
}
