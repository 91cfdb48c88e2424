//! Mock-API tests of the Events a run shows, through the production client (a scripted server
//! on a local socket, reached with a kubeconfig and `connect::connect`).

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use seldon_deploy::Deployer;
use seldon_deploy::error::Signal;
use seldon_deploy::model::components::Target;
use seldon_deploy::run::{self, Context, RunOn, RunOptions, Step, UpdateKind};
use serde_json::{Value, json};

/// The server's clock: an hour behind this machine's.
fn server_now() -> Timestamp {
    Timestamp::now() - SignedDuration::from_hours(1)
}

/// An HTTP `Date` header value for `t`.
fn http_date(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `reply` with the server's `Date` header.
fn dated(code: u16, body: &Value) -> Reply {
    respond_with_header(code, body, "date", &http_date(server_now()))
}

/// An Event about iris at `at` (server clock).
fn iris_event(uid: &str, rv: u32, message: &str, at: Timestamp) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": uid, "namespace": "ns", "uid": uid, "resourceVersion": rv.to_string()},
        "involvedObject": {"kind": "SeldonDeployment", "name": "iris", "uid": UID},
        "reason": "Updated", "message": message, "type": "Normal",
        "source": {"component": "seldon-controller-manager"},
        "lastTimestamp": at.to_string(), "count": 1
    })
}

/// A server whose clock is an hour behind the client's, where iris exists and is not ready; its
/// Event watch delivers `new_events` (stamped by the server's clock) once, then stays silent.
fn skewed_server(new_events: Vec<Value>) -> Script {
    let mut event_watches = 0;
    Box::new(move |r| match (r.resource(), r.is_watch()) {
        ("sdep", false) if r.path.ends_with("/iris") => {
            dated(200, &sdep("10", Some("Creating"), 0))
        }
        ("sdep", false) => dated(
            200,
            &list(
                "SeldonDeploymentList",
                "10",
                vec![sdep("10", Some("Creating"), 0)],
            ),
        ),
        ("deployments", false) => dated(
            200,
            &list("DeploymentList", "10", vec![deployment("10", 1, 0)]),
        ),
        ("events", false) => dated(200, &list("EventList", "10", vec![])),
        ("events", true) => {
            event_watches += 1;
            if event_watches == 1 {
                let lines: Vec<Value> = new_events
                    .iter()
                    .map(|e| json!({"type": "ADDED", "object": e}))
                    .collect();
                watch_events(&lines)
            } else {
                Reply::Hang
            }
        }
        (_, true) => Reply::Hang,
        _ => respond(500, &status(500, "Unexpected", "unexpected request")),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_clock_behind_the_clients_still_shows_new_events() {
    let at = server_now() + SignedDuration::from_secs(2);
    let (mock, _log) = serve_http(skewed_server(vec![iris_event(
        "ev-new",
        11,
        "after the wait began",
        at,
    )]))
    .await;
    let conn = mock.connect().await;
    let mut ctx = Context::new(Deployer::new(conn.client, &conn.namespace));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    ctx.updates = Some(tx);
    let interrupt = ctx.interrupt.clone();
    let opts = RunOptions {
        timeout: Duration::from_secs(600),
        ..RunOptions::default()
    };
    let run = tokio::spawn(async move {
        run::execute(
            &ctx,
            RunOn::Existing("iris"),
            &[Step::Wait(Target::Initial)],
            &opts,
        )
        .await
    });
    // The wait never ends by itself: stop it once the Event has been shown. Without it, the
    // bound below fails the test.
    let shown = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(u) = rx.recv().await {
            if let UpdateKind::Event(e) = u.kind {
                return Some(e);
            }
        }
        None
    })
    .await;
    interrupt.trigger(Signal::Int);
    let report = run.await.unwrap();
    let shown = shown
        .expect("the new Event was shown (a client clock ahead of the server hid it)")
        .expect("an Event");
    assert_eq!(shown.message, "after the wait began");
    assert_eq!(report.events.len(), 1, "{:?}", report.events);
}
