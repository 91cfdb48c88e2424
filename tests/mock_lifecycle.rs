//! Mock-API tests of create, scale, delete and the run driver: conflicts, throttling,
//! name clashes, invalid manifests, interrupts and the full lifecycle.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use seldon_deploy::Deployer;
use seldon_deploy::error::Signal;
use seldon_deploy::run::{self, Context, RunOptions};
use serde_json::{Value, json};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn scale_conflict_retries_against_fresh_object_and_keeps_concurrent_changes() {
    let stored = Arc::new(Mutex::new(sdep("1", Some("Available"), 1)));
    let st = stored.clone();
    let mut gets = 0;
    let mut patches = 0;
    let (client, log) = serve(Box::new(move |r| match r.method.as_str() {
        "GET" => {
            gets += 1;
            if gets == 2 {
                // A concurrent writer added an annotation between our two attempts.
                let mut s = st.lock().unwrap();
                s["metadata"]["annotations"] = json!({"writer": "was-here"});
                s["metadata"]["resourceVersion"] = json!("2");
            }
            respond(200, &st.lock().unwrap())
        }
        "PATCH" => {
            patches += 1;
            if patches == 1 {
                return respond(
                    409,
                    &status(
                        409,
                        "Conflict",
                        "Operation cannot be fulfilled: the object has been modified",
                    ),
                );
            }
            let patch: json_patch::Patch = serde_json::from_value(r.body.clone()).unwrap();
            let mut s = st.lock().unwrap();
            json_patch::patch(&mut s, &patch).unwrap();
            respond(200, &s)
        }
        _ => respond(500, &status(500, "Unexpected", "unexpected request")),
    }));
    let d = Deployer::new(client, "ns");
    let plan = d
        .scale(&handle(), 2, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(plan.paths, vec!["/spec/predictors/0/replicas"]);

    let s = stored.lock().unwrap();
    assert_eq!(s["spec"]["predictors"][0]["replicas"], 2);
    assert_eq!(
        s["metadata"]["annotations"]["writer"], "was-here",
        "concurrent change survives"
    );
    assert_eq!(
        count(&log, |r| r.method == "GET"),
        2,
        "re-read after the conflict"
    );
    let patches: Vec<Req> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PATCH")
        .cloned()
        .collect();
    assert_eq!(patches.len(), 2);
    assert_eq!(
        patches[1].headers["content-type"],
        "application/json-patch+json"
    );
    for op in patches[1].body.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        assert!(
            op["op"] == "test" || path.ends_with("/replicas"),
            "unexpected op {op}"
        );
    }
    assert_eq!(d.watch_stats().retries, 1);
}

#[tokio::test(start_paused = true)]
async fn throttled_429_waits_for_retry_after() {
    let mut gets = 0;
    let (client, log) = serve(Box::new(move |r| {
        assert_eq!(r.method, "GET");
        gets += 1;
        if gets == 1 {
            let mut body = status(
                429,
                "TooManyRequests",
                "too many requests, please try again later",
            );
            body["details"] = json!({"retryAfterSeconds": 3});
            return respond_with_header(429, &body, "Retry-After", "3");
        }
        respond(200, &sdep("1", None, 0))
    }));
    let d = Deployer::new(client, "ns");
    let obj = d
        .get("iris", Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(obj["metadata"]["uid"], UID);
    let times: Vec<Instant> = log.lock().unwrap().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_secs(3),
        "retried after {:?}",
        times[1] - times[0]
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_500_and_503_are_retried_with_growing_backoff() {
    let mut gets = 0;
    let (client, log) = serve(Box::new(move |r| {
        assert_eq!(r.method, "GET");
        gets += 1;
        match gets {
            1 => respond(500, &status(500, "InternalError", "etcd leader changed")),
            2 | 3 => respond(
                503,
                &status(503, "ServiceUnavailable", "apiserver is shutting down"),
            ),
            _ => respond(200, &sdep("1", None, 0)),
        }
    }));
    let d = Deployer::new(client, "ns");
    let obj = d
        .get("iris", Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(obj["metadata"]["uid"], UID);
    let times: Vec<Instant> = log.lock().unwrap().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 4, "three failures, then success");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] > Duration::ZERO, "waited before retrying: {gaps:?}");
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "backoff grows: {gaps:?}"
    );
    assert_eq!(d.watch_stats().retries, 3);
}

#[tokio::test(start_paused = true)]
async fn a_500_on_create_is_resent_only_after_a_read_finds_no_object() {
    let mut posts = 0;
    let (client, log) = serve(Box::new(move |r| match r.method.as_str() {
        "POST" => {
            posts += 1;
            if posts == 1 {
                return respond(500, &status(500, "InternalError", "etcd request timed out"));
            }
            let mut o = sdep("1", None, 0);
            o["metadata"]["annotations"] = r.body["metadata"]["annotations"].clone();
            respond(201, &o)
        }
        "GET" => {
            let mut s = status(404, "NotFound", "seldondeployments \"iris\" not found");
            s["details"] = json!({"name": "iris", "kind": "seldondeployments"});
            respond(404, &s)
        }
        _ => respond(500, &status(500, "Unexpected", "unexpected request")),
    }));
    let d = Deployer::new(client, "ns");
    let h = d
        .create(&iris_manifest(), Instant::now() + Duration::from_secs(30))
        .await
        .expect("created by the second request");
    assert_eq!(h.uid, UID);
    let methods: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(
        methods,
        ["POST", "GET", "POST"],
        "re-sent only after the read"
    );
    let marker = |i: usize| {
        log.lock().unwrap()[i].body["metadata"]["annotations"]
            [seldon_deploy::names::RUN_ID_ANNOTATION]
            .clone()
    };
    assert!(marker(0).is_string());
    assert_eq!(marker(0), marker(2), "the same marker both times");
}

#[tokio::test(start_paused = true)]
async fn throttling_beyond_the_deadline_gives_up() {
    let (client, log) = serve(Box::new(|_| {
        let mut body = status(429, "TooManyRequests", "slow down");
        body["details"] = json!({"retryAfterSeconds": 20});
        respond(429, &body)
    }));
    let d = Deployer::new(client, "ns");
    let err = d
        .get("iris", Instant::now() + Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        count(&log, |_| true),
        2,
        "one retry fits in 30 s, a second does not"
    );
}

#[tokio::test(start_paused = true)]
async fn create_name_taken_exits_3_and_deletes_nothing() {
    let (client, log) = serve(Box::new(|r| {
        if r.method == "POST" {
            return respond(
                409,
                &status(
                    409,
                    "AlreadyExists",
                    "seldondeployments.machinelearning.seldon.io \"iris\" already exists",
                ),
            );
        }
        // The read that tells a 409 for our own lost create from a namesake: theirs.
        if r.method == "GET" && !r.is_watch() && r.path.ends_with("/iris") {
            let mut theirs = sdep("1", Some("Available"), 1);
            theirs["metadata"]["uid"] = json!("99999999-0000-0000-0000-000000000000");
            return respond(200, &theirs);
        }
        respond(500, &status(500, "Unexpected", "no other request expected"))
    }));
    let ctx = Context::new(Deployer::new(client, "ns"));
    let report = run::run(&ctx, &iris_manifest(), &RunOptions::default()).await;
    assert_eq!(report.exit_code, 3, "{report:?}");
    assert!(report.error.as_deref().unwrap().contains("already exists"));
    assert_eq!(
        count(&log, |r| r.method == "DELETE"),
        0,
        "must not touch someone else's object"
    );
    assert_eq!(
        count(&log, |r| r.method != "GET"),
        1,
        "one POST, then only reads"
    );
    assert_eq!(count(&log, |_| true), 2);
    let post = log.lock().unwrap()[0].clone();
    assert_eq!(
        post.path,
        "/apis/machinelearning.seldon.io/v1alpha2/namespaces/ns/seldondeployments"
    );
    assert_eq!(post.query["fieldValidation"], "Strict");
    assert_eq!(
        post.body["spec"]["name"], "iris",
        "manifest sent as written"
    );
    assert_eq!(report.phases.len(), 1);
    assert_eq!(report.phases[0].outcome, "access");
}

#[tokio::test(start_paused = true)]
async fn create_rejected_by_strict_validation_exits_2_with_server_message() {
    let msg = "SeldonDeployment in version \"v1alpha2\" cannot be handled as a SeldonDeployment: strict decoding error: unknown field \"spec.predictors[0].replica\"";
    let (client, log) = serve(Box::new(move |_| {
        respond(400, &status(400, "BadRequest", msg))
    }));
    let ctx = Context::new(Deployer::new(client, "ns"));
    let report = run::run(&ctx, &iris_manifest(), &RunOptions::default()).await;
    assert_eq!(report.exit_code, 2);
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("unknown field \"spec.predictors[0].replica\"")
    );
    assert_eq!(count(&log, |_| true), 1);

    let (client, _log) = serve(Box::new(|_| {
        respond(
            422,
            &status(
                422,
                "Invalid",
                "SeldonDeployment.machinelearning.seldon.io \"iris\" is invalid: spec.predictors: Required value",
            ),
        )
    }));
    let d = Deployer::new(client, "ns");
    let err = d
        .create(&iris_manifest(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("Required value"));
}

#[tokio::test(start_paused = true)]
async fn missing_crd_and_namespace_are_access_errors() {
    let (client, _l) = serve(Box::new(|_| unserved()));
    let err = Deployer::new(client, "ns")
        .create(&iris_manifest(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string().contains("v1alpha2") && err.to_string().contains("CRD"),
        "{err}"
    );

    let (client, _l) = serve(Box::new(|_| {
        let mut s = status(404, "NotFound", "namespaces \"ns\" not found");
        s["details"] = json!({"name": "ns", "kind": "namespaces"});
        respond(404, &s)
    }));
    let err = Deployer::new(client, "ns")
        .create(&iris_manifest(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string().contains("namespace \"ns\" not found"),
        "{err}"
    );
}

/// A small stateful fake of the API server + operator + deployment controller for iris.
fn lifecycle_server(stuck_after_create: bool) -> (kube::Client, Arc<Mutex<Vec<Req>>>) {
    let state = Arc::new(Mutex::new(None::<Value>));
    let mut rv = 100;
    serve(Box::new(move |r| {
        rv += 1;
        let mut st = state.lock().unwrap();
        match (r.method.as_str(), r.resource()) {
            ("POST", "sdep") => {
                let mut o = r.body.clone();
                o["apiVersion"] = json!("machinelearning.seldon.io/v1");
                o["metadata"]["uid"] = json!(UID);
                o["metadata"]["namespace"] = json!("ns");
                o["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
                *st = Some(o.clone());
                respond(201, &o)
            }
            ("GET", "sdep") if !r.is_watch() && r.path.ends_with("/iris") => match st.as_ref() {
                Some(o) => respond(200, o),
                None => respond(404, &status(404, "NotFound", "not found")),
            },
            ("PATCH", "sdep") => {
                let patch: json_patch::Patch = serde_json::from_value(r.body.clone()).unwrap();
                let o = st.as_mut().unwrap();
                json_patch::patch(o, &patch).unwrap();
                respond(200, o)
            }
            ("DELETE", "sdep") => {
                assert_eq!(r.body["propagationPolicy"], "Foreground");
                assert_eq!(r.body["preconditions"]["uid"], UID);
                let o = st.take().unwrap();
                respond(200, &o)
            }
            (_, "sdep") if r.is_watch() => Reply::Hang,
            (_, "deployments") if r.is_watch() => Reply::Hang,
            (_, "events") if r.is_watch() => Reply::Hang,
            ("GET", "sdep") => {
                // List: the "operator" has reconciled the current spec, unless stuck.
                let items = match st.as_ref() {
                    None => vec![],
                    Some(o) => {
                        let mut o = o.clone();
                        let n = o["spec"]["predictors"][0]["replicas"].as_i64().unwrap_or(1);
                        if !stuck_after_create {
                            o["status"] = json!({"state": "Available", "deploymentStatus": {
                                "iris-default-0-classifier": {"replicas": n, "availableReplicas": n}}});
                        }
                        vec![o]
                    }
                };
                respond(200, &list("SeldonDeploymentList", &rv.to_string(), items))
            }
            ("GET", "deployments") => {
                let items = match st.as_ref() {
                    None => vec![],
                    Some(o) => {
                        let n = o["spec"]["predictors"][0]["replicas"].as_i64().unwrap_or(1);
                        vec![deployment(
                            &rv.to_string(),
                            n,
                            if stuck_after_create { 0 } else { n },
                        )]
                    }
                };
                respond(200, &list("DeploymentList", &rv.to_string(), items))
            }
            ("GET", "events") => respond(
                200,
                &list(
                    "EventList",
                    &rv.to_string(),
                    vec![json!({
                        "metadata": {"name": "e1", "namespace": "ns", "uid": "ev-1", "resourceVersion": "7"},
                        "involvedObject": {"kind": "SeldonDeployment", "name": "iris", "uid": UID},
                        "reason": "CreateDeployment", "message": "Created Deployment \"iris-default-0-classifier\"",
                        "type": "Normal", "source": {"component": "seldon-controller-manager"},
                        "lastTimestamp": "2026-01-01T00:00:01Z", "count": 1
                    })],
                ),
            ),
            _ => respond(500, &status(500, "Unexpected", "unexpected request")),
        }
    }))
}

#[tokio::test(start_paused = true)]
async fn full_lifecycle_on_a_fake_server() {
    // Each wait relists after its watch: the fake reports the reconciled state on every list.
    let (client, log) = lifecycle_server(false);
    let ctx = Context::new(Deployer::new(client, "ns"));
    let report = run::run(&ctx, &iris_manifest(), &RunOptions::default()).await;
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["create", "wait-ready", "scale", "wait-scaled", "delete"]
    );
    assert!(report.phases.iter().all(|p| p.outcome == "ok"));
    assert_eq!(report.uid.as_deref(), Some(UID));
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].reason, "CreateDeployment");
    assert!(report.final_status.as_ref().unwrap().is_ready());
    assert_eq!(count(&log, |r| r.method == "DELETE"), 1);
    assert!(ctx.left_behind.describe().is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcome"], "success");
    assert!(json["phases"][0]["start"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(start_paused = true)]
async fn interrupt_during_wait_cleans_up_by_uid() {
    let (client, log) = lifecycle_server(true);
    let ctx = Context::new(Deployer::new(client, "ns"));
    let interrupt = ctx.interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        interrupt.trigger(Signal::Term);
    });
    let report = run::run(&ctx, &iris_manifest(), &RunOptions::default()).await;
    assert_eq!(report.exit_code, 143);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["create", "wait-ready", "cleanup"]);
    assert_eq!(report.phases[1].outcome, "interrupted");
    assert_eq!(report.phases[2].outcome, "ok");
    assert_eq!(count(&log, |r| r.method == "DELETE"), 1);
    assert!(report.left_behind.is_empty());
}

#[tokio::test(start_paused = true)]
async fn timeout_cleans_up_unless_keep() {
    let (client, log) = lifecycle_server(true);
    let ctx = Context::new(Deployer::new(client, "ns"));
    let opts = RunOptions {
        timeout: Duration::from_secs(20),
        ..RunOptions::default()
    };
    let report = run::run(&ctx, &iris_manifest(), &opts).await;
    assert_eq!(report.exit_code, 4);
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("iris-default-0-classifier 0/1"),
        "{:?}",
        report.error
    );
    assert_eq!(count(&log, |r| r.method == "DELETE"), 1);

    let (client, log) = lifecycle_server(true);
    let ctx = Context::new(Deployer::new(client, "ns"));
    let opts = RunOptions {
        timeout: Duration::from_secs(20),
        keep: true,
        ..RunOptions::default()
    };
    let report = run::run(&ctx, &iris_manifest(), &opts).await;
    assert_eq!(report.exit_code, 4);
    assert!(report.kept);
    assert_eq!(count(&log, |r| r.method == "DELETE"), 0);
}

#[tokio::test(start_paused = true)]
async fn hung_api_server_is_bounded_by_the_phase_deadline() {
    let (client, log) = serve(Box::new(|_| Reply::Hang));
    let ctx = Context::new(Deployer::new(client, "ns"));
    let opts = RunOptions {
        timeout: Duration::from_secs(45),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let report = run::run(&ctx, &iris_manifest(), &opts).await;
    assert_eq!(report.exit_code, 3, "{:?}", report.error);
    assert!(report.error.as_deref().unwrap().contains("no answer"));
    assert!(started.elapsed() >= Duration::from_secs(45));
    assert_eq!(count(&log, |r| r.method == "DELETE"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_router_404_after_a_success_is_an_api_server_restart_and_is_retried() {
    let mut gets = 0;
    let (client, log) = serve(Box::new(move |_| {
        gets += 1;
        match gets {
            1 | 4 => respond(200, &sdep("1", None, 0)),
            // The restarted API server does not serve the CRD yet.
            _ => unserved(),
        }
    }));
    let d = Deployer::new(client, "ns");
    let deadline = Instant::now() + Duration::from_secs(30);
    d.get("iris", deadline).await.unwrap();
    let obj = d
        .get("iris", deadline)
        .await
        .expect("retried through the 404s");
    assert_eq!(obj["metadata"]["uid"], UID);
    assert_eq!(count(&log, |_| true), 4);
    // An object's own 404 (with details) is an answer, not a restart.
    let (client, _log) = serve(Box::new(|r| {
        if r.path.ends_with("/iris") {
            return respond(200, &sdep("1", None, 0));
        }
        let mut s = status(404, "NotFound", "seldondeployments \"other\" not found");
        s["details"] = json!({"name": "other", "group": "machinelearning.seldon.io", "kind": "seldondeployments"});
        respond(404, &s)
    }));
    let d = Deployer::new(client, "ns");
    d.get("iris", deadline).await.unwrap();
    let err = d.get("other", deadline).await.unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
}

/// The API server's answer to a JSON Patch whose `test` operation fails, as recorded from
/// testenv's kube-apiserver v1.35.4 (`kubectl patch --type=json -v=9`): nothing in it says
/// "test", only the code, the reason and empty details.
fn failed_patch_test() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "the server rejected our request due to an error in our request",
           "reason": "Invalid", "details": {}, "code": 422})
}

/// A server whose first PATCH answers `first`; later ones apply the patch.
fn scale_server(first: Value) -> (kube::Client, Log) {
    let stored = Arc::new(Mutex::new(sdep("1", Some("Available"), 1)));
    let mut patches = 0;
    serve(Box::new(move |r| match r.method.as_str() {
        "GET" => respond(200, &stored.lock().unwrap()),
        "PATCH" => {
            patches += 1;
            if patches == 1 {
                return respond(first["code"].as_u64().unwrap() as u16, &first);
            }
            let patch: json_patch::Patch = serde_json::from_value(r.body.clone()).unwrap();
            let mut s = stored.lock().unwrap();
            json_patch::patch(&mut s, &patch).unwrap();
            respond(200, &s)
        }
        _ => respond(500, &status(500, "Unexpected", "unexpected request")),
    }))
}

#[tokio::test(start_paused = true)]
async fn a_failed_json_patch_test_is_recognised_by_code_and_reason_and_retried() {
    let (client, log) = scale_server(failed_patch_test());
    let d = Deployer::new(client, "ns");
    d.scale(&handle(), 2, Instant::now() + Duration::from_secs(30))
        .await
        .expect("re-read and re-sent");
    assert_eq!(count(&log, |r| r.method == "PATCH"), 2);
    assert_eq!(count(&log, |r| r.method == "GET"), 2, "re-read in between");
}

#[tokio::test(start_paused = true)]
async fn a_patch_the_schema_rejects_is_not_retried_even_if_its_message_says_test() {
    // A validation failure names the kind and its causes; the word "test" in it means nothing.
    let mut invalid = status(
        422,
        "Invalid",
        "SeldonDeployment.machinelearning.seldon.io \"iris\" is invalid: spec.predictors[0].replicas: Invalid value: \"test\"",
    );
    invalid["details"] = json!({"name": "iris", "group": "machinelearning.seldon.io",
        "kind": "SeldonDeployment", "causes": [{"reason": "FieldValueTypeInvalid",
        "message": "Invalid value: \"test\"", "field": "spec.predictors[0].replicas"}]});
    let (client, log) = scale_server(invalid);
    let d = Deployer::new(client, "ns");
    let err = d
        .scale(&handle(), 2, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert_eq!(count(&log, |r| r.method == "PATCH"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_a_uid_is_an_unexpected_response_not_a_configuration_error() {
    let (client, _log) = serve(Box::new(|_| {
        let mut o = sdep("1", None, 0);
        o["metadata"].as_object_mut().unwrap().remove("uid");
        respond(201, &o)
    }));
    let err = Deployer::new(client, "ns")
        .create(&iris_manifest(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        matches!(err, seldon_deploy::Error::UnexpectedResponse { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("configuration"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn apply_conflict_rereads_and_keeps_a_concurrent_writers_label() {
    let stored = Arc::new(Mutex::new(sdep("1", Some("Available"), 1)));
    let st = stored.clone();
    let mut puts = 0;
    let (client, log) = serve(Box::new(move |r| match r.method.as_str() {
        "GET" => respond(200, &st.lock().unwrap()),
        "PUT" => {
            puts += 1;
            let mut s = st.lock().unwrap();
            if r.body["metadata"]["resourceVersion"] != s["metadata"]["resourceVersion"] {
                return respond(
                    409,
                    &status(409, "Conflict", "the object has been modified"),
                );
            }
            if puts == 1 {
                // Another writer got in first: a label, and so a new resourceVersion.
                s["metadata"]["labels"] = json!({"writer": "was-here"});
                s["metadata"]["resourceVersion"] = json!("2");
                return respond(
                    409,
                    &status(409, "Conflict", "the object has been modified"),
                );
            }
            let mut new = r.body.clone();
            new["metadata"]["resourceVersion"] = json!("3");
            *s = new;
            respond(200, &s)
        }
        _ => respond(500, &status(500, "Unexpected", "unexpected request")),
    }));
    let mut m = iris_manifest();
    m.object["metadata"]["labels"] = json!({"version": "2"});
    m.object["spec"]["predictors"][0]["replicas"] = json!(3);
    let d = Deployer::new(client, "ns");
    let applied = d
        .apply(&m, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(applied.change, seldon_deploy::model::merge::Change::Updated);
    assert_eq!(applied.revision, Some(3));
    let s = stored.lock().unwrap().clone();
    assert_eq!(
        s["metadata"]["labels"],
        json!({"writer": "was-here", "version": "2"})
    );
    assert_eq!(s["spec"], m.object["spec"]);
    let puts: Vec<Value> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.body["metadata"]["resourceVersion"].clone())
        .collect();
    assert_eq!(
        puts,
        [json!("1"), json!("2")],
        "each PUT carries the version it read"
    );
}

/// A library caller's name or namespace goes into request paths too: one Kubernetes would
/// never accept is an `InvalidName` (exit 2), and nothing is sent.
#[tokio::test]
async fn a_library_callers_bad_name_or_namespace_is_refused_before_any_request() {
    let (client, log) = serve(Box::new(|_| respond(500, &json!({}))));
    let deadline = || Instant::now() + Duration::from_secs(5);
    let d = Deployer::new(client.clone(), "ns");
    for name in ["a b", "x/status", "../../foo", "x?watch=1", ""] {
        let err = d.get(name, deadline()).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{name:?}: {err}");
        assert!(
            matches!(err, seldon_deploy::Error::InvalidName { .. }),
            "{err}"
        );
        let err = d.status(name, None, deadline()).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{name:?}: {err}");
    }
    let bad_ns = Deployer::new(client, "bad/ns");
    let err = bad_ns
        .create(&iris_manifest(), deadline())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let err = bad_ns.handle("sklearn", deadline()).await.unwrap_err();
    assert!(
        err.to_string().contains("invalid namespace \"bad/ns\""),
        "{err}"
    );
    assert_eq!(count(&log, |_| true), 0, "a request was sent");
}

/// A scale whose PATCH meets an API server that does not serve the CRD again (restarting)
/// until the deadline is an access error, never "deleted by someone else": that would make
/// the run forget, and leave behind, the object it created.
#[tokio::test(start_paused = true)]
async fn a_scale_that_meets_a_restarting_api_server_is_not_taken_for_a_deletion() {
    let (client, _log) = serve(Box::new(|r| {
        if r.method == "GET" && r.path.ends_with("/iris") {
            return respond(200, &sdep("1", Some("Available"), 1));
        }
        unserved()
    }));
    let d = Deployer::new(client, "ns");
    let err = d
        .scale(&handle(), 2, Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        !matches!(err, seldon_deploy::Error::Gone { .. }),
        "taken for a deletion: {err}"
    );
    assert_eq!(err.exit_code(), 3, "{err}");
}

/// A server holding one SeldonDeployment (`stored`) and its ready Deployment: lists answer
/// them, watches stay open and silent, GETs read `stored`, and a JSON Patch applies to it or,
/// when one of its `test` operations fails, is refused with 422 as the API server does.
fn stored_sdep_server(stored: Arc<Mutex<Value>>) -> (kube::Client, Log) {
    serve(Box::new(move |r| {
        if r.is_watch() {
            return Reply::Hang;
        }
        if r.resource() == "deployments" {
            return respond(
                200,
                &list("DeploymentList", "5", vec![deployment("5", 1, 1)]),
            );
        }
        match r.method.as_str() {
            "GET" if r.is_list() => {
                let s = stored.lock().unwrap().clone();
                let rv = s["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                respond(200, &list("SeldonDeploymentList", &rv, vec![s]))
            }
            "GET" => respond(200, &stored.lock().unwrap()),
            "PATCH" => {
                let patch: json_patch::Patch = serde_json::from_value(r.body.clone()).unwrap();
                let mut s = stored.lock().unwrap();
                let mut next = s.clone();
                if json_patch::patch(&mut next, &patch).is_err() {
                    return respond(422, &failed_patch_test());
                }
                next["metadata"]["resourceVersion"] = json!("99");
                *s = next;
                respond(200, &s)
            }
            _ => respond(500, &status(500, "Unexpected", "unexpected request")),
        }
    }))
}

/// Whether `r` reads the one SeldonDeployment (a GET that is neither a list nor a watch).
fn reads_the_sdep(r: &Req) -> bool {
    r.method == "GET" && r.resource() == "sdep" && !r.is_list() && !r.is_watch()
}

/// A deployer on [`stored_sdep_server`] as the binary builds it (shared watches, kept running
/// between the phases), after a wait for `stored` to be ready at its counts.
async fn waited_for_ready(
    stored: &Arc<Mutex<Value>>,
) -> (Deployer, Log, seldon_deploy::ops::WatchesRunning) {
    let (client, log) = stored_sdep_server(stored.clone());
    let d = Deployer::new(client, "ns").with_shared_watches_for("iris");
    let running = d.keep_watches_running();
    let deadline = Instant::now() + Duration::from_secs(30);
    d.wait_ready(
        &handle(),
        seldon_deploy::model::components::Target::Initial,
        deadline,
        &mut |_| {},
    )
    .await
    .expect("ready");
    (d, log, running)
}

#[tokio::test(start_paused = true)]
async fn a_scale_right_after_a_wait_patches_the_watched_copy_without_reading_it_again() {
    let stored = Arc::new(Mutex::new(sdep("10", Some("Available"), 1)));
    let (d, log, _running) = waited_for_ready(&stored).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let plan = d.scale(&handle(), 2, deadline).await.expect("scaled");

    assert_eq!(
        count(&log, reads_the_sdep),
        0,
        "no GET between wait and patch"
    );
    assert_eq!(count(&log, |r| r.method == "PATCH"), 1);
    let first = serde_json::to_value(&plan.patch).unwrap()[0].clone();
    assert_eq!(
        first,
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": "10"}),
        "the cached copy pins its version"
    );
    assert_eq!(
        stored.lock().unwrap()["spec"]["predictors"][0]["replicas"],
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_scale_from_a_stale_watched_copy_is_refused_and_sent_again_from_a_fresh_read() {
    let stored = Arc::new(Mutex::new(sdep("10", Some("Available"), 1)));
    let (d, log, _running) = waited_for_ready(&stored).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    {
        // Another writer sets a component's own count; the silent watch never tells us.
        let mut s = stored.lock().unwrap();
        s["spec"]["predictors"][0]["componentSpecs"] =
            json!([{"spec": {"containers": [{"name": "classifier"}]}, "replicas": 1}]);
        s["metadata"]["resourceVersion"] = json!("11");
    }
    let plan = d.scale(&handle(), 2, deadline).await.expect("scaled");

    assert_eq!(
        count(&log, |r| r.method == "PATCH"),
        2,
        "refused, then sent again"
    );
    assert_eq!(
        count(&log, reads_the_sdep),
        1,
        "one fresh read after the refusal"
    );
    assert!(
        plan.paths
            .contains(&"/spec/predictors/0/componentSpecs/0/replicas".to_owned()),
        "{:?}",
        plan.paths
    );
    let s = stored.lock().unwrap();
    assert_eq!(
        s["spec"]["predictors"][0]["componentSpecs"][0]["replicas"],
        2
    );
    assert_eq!(s["spec"]["predictors"][0]["replicas"], 2);
}
