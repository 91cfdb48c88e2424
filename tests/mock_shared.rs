//! Mock-API tests of the shared watches: several lifecycles in one process issue one list
//! (and one watch at a time) per resource for the namespace, not one per lifecycle.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use seldon_deploy::Deployer;
use seldon_deploy::model::manifest;
use seldon_deploy::run::{self, Context, RunOptions};
use serde_json::{Value, json};

const IRIS: &str = include_str!("../examples/iris-v1alpha2.yaml");

fn manifest_named(name: &str) -> manifest::Manifest {
    manifest::parse(
        &format!("{name}.yaml"),
        IRIS.replace("name: sklearn", &format!("name: {name}"))
            .as_bytes(),
    )
    .unwrap()
    .remove(0)
}

/// A fake API server + operator + deployment controller for any number of
/// SeldonDeployments: every write is reconciled at once. A watch gets the changes after its
/// resourceVersion and closes; with none, it ends in a retryable error, so the client backs
/// off (paused time skips the wait) and re-watches from the same version: the mock cannot
/// hold a stream open and push into it later.
#[derive(Default)]
struct World {
    rv: u64,
    sdeps: BTreeMap<String, Value>,
    /// A SeldonDeployment the operator leaves unreconciled (never ready) until this many
    /// other SeldonDeployments have been deleted.
    held: Option<(String, usize)>,
    deletes: usize,
    /// (resourceVersion, resource, watch event type, object)
    log: Vec<(u64, &'static str, &'static str, Value)>,
}

impl World {
    fn reconcile(&mut self, name: &str, kind: &'static str) {
        self.rv += 1;
        let rv = self.rv;
        let o = self.sdeps.get_mut(name).unwrap();
        let n = o["spec"]["predictors"][0]["replicas"].as_i64().unwrap_or(1);
        let uid = o["metadata"]["uid"].clone();
        o["metadata"]["resourceVersion"] = json!(rv.to_string());
        let child = format!("{name}-default-0-classifier");
        o["status"] = json!({"state": "Available", "deploymentStatus": {
            child.clone(): {"replicas": n, "availableReplicas": n}}});
        let sdep = o.clone();
        let dep = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": child, "namespace": "ns", "uid": format!("dep-{name}"),
                "resourceVersion": rv.to_string(), "generation": 1,
                "labels": {"seldon-deployment-id": name},
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1",
                    "kind": "SeldonDeployment", "name": name, "uid": uid, "controller": true}]},
            "spec": {"replicas": n, "selector": {"matchLabels": {"a": "b"}}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": n, "updatedReplicas": n,
                       "availableReplicas": n}
        });
        self.log.push((rv, "sdep", kind, sdep));
        self.log.push((rv, "deployments", kind, dep));
    }

    fn current(&self, resource: &str) -> Vec<Value> {
        let mut latest: BTreeMap<String, (&str, Value)> = BTreeMap::new();
        for (_, r, t, o) in &self.log {
            if *r == resource {
                let name = o["metadata"]["name"].as_str().unwrap().to_owned();
                latest.insert(name, (t, o.clone()));
            }
        }
        latest
            .into_values()
            .filter(|(t, _)| *t != "DELETED")
            .map(|(_, o)| o)
            .collect()
    }
}

fn server() -> (kube::Client, Arc<Mutex<Vec<Req>>>) {
    server_holding(None)
}

/// As [`server`], with `held = Some((name, n))`: `name` stays unreconciled until `n` other
/// SeldonDeployments have been deleted.
fn server_holding(held: Option<(&str, usize)>) -> (kube::Client, Arc<Mutex<Vec<Req>>>) {
    let world = Arc::new(Mutex::new(World {
        held: held.map(|(n, after)| (n.to_owned(), after)),
        ..World::default()
    }));
    serve(Box::new(move |r| {
        let mut w = world.lock().unwrap();
        let name = r.path.rsplit('/').next().unwrap_or_default().to_owned();
        match (r.method.as_str(), r.resource()) {
            ("POST", "sdep") => {
                let mut o = r.body.clone();
                let name = o["metadata"]["name"].as_str().unwrap().to_owned();
                o["apiVersion"] = json!("machinelearning.seldon.io/v1");
                o["metadata"]["uid"] = json!(format!("uid-{name}"));
                o["metadata"]["namespace"] = json!("ns");
                o["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                w.sdeps.insert(name.clone(), o);
                if w.held.as_ref().is_some_and(|(h, _)| *h == name) {
                    w.rv += 1;
                    let rv = w.rv;
                    let o = w.sdeps.get_mut(&name).unwrap();
                    o["metadata"]["resourceVersion"] = json!(rv.to_string());
                    let o = o.clone();
                    w.log.push((rv, "sdep", "ADDED", o));
                } else {
                    w.reconcile(&name, "ADDED");
                }
                respond(201, &w.sdeps[&name])
            }
            ("PATCH", "sdep") => {
                let patch: json_patch::Patch = serde_json::from_value(r.body.clone()).unwrap();
                json_patch::patch(w.sdeps.get_mut(&name).unwrap(), &patch).unwrap();
                w.reconcile(&name, "MODIFIED");
                respond(200, &w.sdeps[&name])
            }
            ("DELETE", "sdep") => {
                w.rv += 1;
                let rv = w.rv;
                // Like the real server, the DELETED object carries the deletion's version.
                let mut o = w.sdeps.remove(&name).unwrap();
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
                let dep = w
                    .current("deployments")
                    .into_iter()
                    .find(|d| d["metadata"]["labels"]["seldon-deployment-id"] == name.as_str());
                w.log.push((rv, "sdep", "DELETED", o.clone()));
                // A held SeldonDeployment that was never reconciled has no Deployment.
                if let Some(mut dep) = dep {
                    dep["metadata"]["resourceVersion"] = json!(rv.to_string());
                    w.log.push((rv, "deployments", "DELETED", dep));
                }
                w.deletes += 1;
                if let Some((held, after)) = w.held.clone()
                    && w.deletes == after
                    && w.sdeps.contains_key(&held)
                {
                    w.reconcile(&held, "MODIFIED");
                }
                respond(200, &o)
            }
            ("GET", "sdep") if !r.is_watch() && w.sdeps.contains_key(&name) => {
                respond(200, &w.sdeps[&name])
            }
            ("GET", "events") if !r.is_watch() => {
                respond(200, &list("EventList", &w.rv.to_string(), vec![]))
            }
            (_, "events") => Reply::Hang,
            ("GET", res) if r.is_watch() => {
                let since: u64 = r.query["resourceVersion"].parse().unwrap();
                let changes: Vec<Value> = w
                    .log
                    .iter()
                    .filter(|(rv, rr, _, o)| *rr == res && *rv > since && selected(r, o))
                    .map(|(_, _, t, o)| json!({"type": t, "object": o}))
                    .collect();
                if changes.is_empty() {
                    watch_events(&[json!({"type": "ERROR", "object":
                        status(500, "InternalError", "nothing yet, come back")})])
                } else {
                    watch_events(&changes)
                }
            }
            ("GET", res) => {
                let kind = if res == "sdep" {
                    "SeldonDeploymentList"
                } else {
                    "DeploymentList"
                };
                let items = w.current(res).into_iter().filter(|o| selected(r, o));
                respond(200, &list(kind, &w.rv.to_string(), items.collect()))
            }
            _ => respond(500, &status(500, "Unexpected", "unexpected request")),
        }
    }))
}

/// Whether `o` passes the request's `metadata.name=` field selector, as on a real server.
fn selected(r: &Req, o: &Value) -> bool {
    r.query
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name="))
        .is_none_or(|name| o["metadata"]["name"] == name)
}

/// Lists of a collection (GETs of one object, by name, are not lists).
fn lists(log: &Arc<Mutex<Vec<Req>>>, resource: &str) -> usize {
    let collection = ["seldondeployments", "deployments", "events", "pods"];
    count(log, |r| {
        r.resource() == resource
            && r.is_list()
            && collection
                .iter()
                .any(|c| r.path.ends_with(&format!("/{c}")))
    })
}

fn opts() -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(3600),
        ..RunOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn many_lifecycles_share_one_list_and_watch_per_resource() {
    let (client, log) = server();
    let ctx = Context::new(Deployer::new(client, "ns"));
    let manifests: Vec<_> = ["a", "b", "c"].iter().map(|n| manifest_named(n)).collect();
    let steps = run::lifecycle_steps(2, false);
    let summary = run::run_many(&ctx, &manifests, &steps, &opts(), 3).await;
    for r in &summary.deployments {
        assert_eq!(r.exit_code, 0, "{}: {:?}", r.name, r.error);
        assert_eq!(r.phases.len(), 5, "{}", r.name);
    }
    assert_eq!(summary.exit_code, 0);
    // All three lifecycles ran together on one list per resource.
    assert_eq!(lists(&log, "sdep"), 1);
    assert_eq!(lists(&log, "deployments"), 1);
    assert_eq!(lists(&log, "events"), 1);
    assert_eq!(lists(&log, "pods"), 1);
    // Namespace-scoped: no per-object field selector, and every Seldon pod.
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.resource() == "pods")
            .all(|r| r.query["labelSelector"] == "seldon-deployment-id")
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.is_watch())
            .all(|w| !w.query.contains_key("fieldSelector"))
    );
    assert_eq!(count(&log, |r| r.method == "DELETE"), 3);
    assert!(ctx.left_behind.describe().is_empty());
}

#[tokio::test(start_paused = true)]
async fn unshared_lifecycles_list_per_wait_for_comparison() {
    // The pre-sharing behaviour, still the library default: every wait and follower lists.
    let (client, log) = server();
    let ctx = Context::new(Deployer::new(client, "ns"));
    for n in ["a", "b"] {
        let r = run::run(&ctx, &manifest_named(n), &opts()).await;
        assert_eq!(r.exit_code, 0, "{:?}", r.error);
    }
    assert_eq!(lists(&log, "sdep"), 6, "three waits per lifecycle");
    assert_eq!(
        lists(&log, "deployments"),
        8,
        "three waits and the follower"
    );
    assert_eq!(lists(&log, "events"), 2);
    assert_eq!(
        lists(&log, "pods"),
        4,
        "the two readiness waits; a deletion needs no pods"
    );
}

#[tokio::test(start_paused = true)]
async fn the_shared_watches_stop_when_the_last_lifecycle_ends() {
    let (client, log) = server();
    let d = Deployer::new(client, "ns").with_shared_watches();
    let ctx = Context::new(d.clone());
    let r = run::run(&ctx, &manifest_named("a"), &opts()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.error);
    // A later run in the same process starts them again: a second list per resource.
    let r = run::run(&ctx, &manifest_named("b"), &opts()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.error);
    assert_eq!(lists(&log, "sdep"), 2);
    assert_eq!(lists(&log, "events"), 2);
    // While one lease is held, joining costs nothing.
    let lease = d.keep_watches_running();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = count(&log, |_| true);
    let r = run::run(&ctx, &manifest_named("c"), &opts()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.error);
    drop(lease);
    assert_eq!(lists(&log, "sdep"), 3);
    assert!(count(&log, |_| true) > before);
}

#[tokio::test(start_paused = true)]
async fn one_deployment_narrows_the_shared_watch_to_its_name() {
    let (client, log) = server();
    // Someone else's object in the namespace, which the narrowed watch must not list.
    let other = Context::new(Deployer::new(client.clone(), "ns"));
    let kept = RunOptions {
        keep: true,
        ..opts()
    };
    assert_eq!(
        run::run(&other, &manifest_named("other"), &kept)
            .await
            .exit_code,
        0
    );
    let before = log.lock().unwrap().len();

    let ctx = Context::new(Deployer::new(client, "ns").with_shared_watches_for("a"));
    let r = run::run(&ctx, &manifest_named("a"), &opts()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.error);
    // Lists and watches of the collection (GETs by name are not affected).
    let sdep_reads: Vec<Req> = log.lock().unwrap()[before..]
        .iter()
        .filter(|q| q.path.ends_with("/seldondeployments") && q.method == "GET")
        .cloned()
        .collect();
    assert!(!sdep_reads.is_empty());
    for q in &sdep_reads {
        assert_eq!(
            q.query.get("fieldSelector").map(String::as_str),
            Some("metadata.name=a"),
            "{} {:?}",
            q.path,
            q.query
        );
    }
    // Still one list for the whole lifecycle: narrowing keeps the sharing.
    assert_eq!(sdep_reads.iter().filter(|q| !q.is_watch()).count(), 1);
    // Its pods are narrowed to its label value the same way.
    let pod_reads: Vec<Req> = log.lock().unwrap()[before..]
        .iter()
        .filter(|q| q.resource() == "pods")
        .cloned()
        .collect();
    assert_eq!(pod_reads.iter().filter(|q| !q.is_watch()).count(), 1);
    assert!(
        pod_reads
            .iter()
            .all(|q| q.query["labelSelector"] == "seldon-deployment-id=a")
    );

    // Another name on the narrowed deployer gets watches of its own, and works.
    let r = run::run(&ctx, &manifest_named("b"), &opts()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.error);
    // Several manifests on it switch to namespace-wide sharing.
    let summary = run::run_many(
        &ctx,
        &[manifest_named("c"), manifest_named("d")],
        &run::lifecycle_steps(2, false),
        &opts(),
        2,
    )
    .await;
    assert_eq!(summary.exit_code, 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_lifecycle_does_not_keep_the_others_from_starting() {
    // "slow" becomes ready only after the four others have run their whole lifecycle, at
    // concurrency 2: so they must start, one after another, while it is still waiting.
    let names = ["slow", "b", "c", "d", "e"];
    let (client, log) = server_holding(Some(("slow", names.len() - 1)));
    let ctx = Context::new(Deployer::new(client, "ns"));
    let manifests: Vec<_> = names.iter().map(|n| manifest_named(n)).collect();
    let steps = run::lifecycle_steps(2, false);
    let summary = run::run_many(&ctx, &manifests, &steps, &opts(), 2).await;
    for r in &summary.deployments {
        assert_eq!(r.exit_code, 0, "{}: {:?}", r.name, r.error);
    }
    // Reports in input order, whatever the order of completion.
    let order: Vec<&str> = summary
        .deployments
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(order, names);
    // Every other lifecycle was created and deleted while "slow" still waited to be ready.
    let reqs = log.lock().unwrap().clone();
    let at = |method: &str, name: &str| {
        reqs.iter()
            .position(|r| {
                r.method == method
                    && r.resource() == "sdep"
                    && (r.path.ends_with(&format!("/{name}")) || r.body["metadata"]["name"] == name)
            })
            .unwrap_or_else(|| panic!("no {method} of {name}"))
    };
    let slow_scaled = at("PATCH", "slow");
    for n in &names[1..] {
        assert!(
            at("POST", n) < slow_scaled && at("DELETE", n) < slow_scaled,
            "{n}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn lifecycles_run_one_at_a_time_still_share_one_list_per_resource() {
    let (client, log) = server();
    let ctx = Context::new(Deployer::new(client, "ns"));
    let manifests: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| manifest_named(n))
        .collect();
    let steps = run::lifecycle_steps(2, false);
    let summary = run::run_many(&ctx, &manifests, &steps, &opts(), 1).await;
    for r in &summary.deployments {
        assert_eq!(r.exit_code, 0, "{}: {:?}", r.name, r.error);
    }
    // One after another, yet the watches stayed up between them: three lists in all.
    assert_eq!(lists(&log, "sdep"), 1);
    assert_eq!(lists(&log, "deployments"), 1);
    assert_eq!(lists(&log, "events"), 1);
    assert_eq!(count(&log, |r| r.method == "DELETE"), 4);
}

#[tokio::test(start_paused = true)]
async fn a_watch_item_about_one_deployment_wakes_only_its_own_lifecycle_among_200() {
    const N: usize = 200;
    let (client, log) = server();
    let ctx = Context::new(Deployer::new(client, "ns"));
    let manifests: Vec<_> = (0..N).map(|i| manifest_named(&format!("m{i}"))).collect();
    let steps = run::lifecycle_steps(2, false);
    let summary = run::run_many(&ctx, &manifests, &steps, &opts(), N).await;
    assert_eq!(summary.exit_code, 0);

    // Every write (create, scale, delete) makes one SeldonDeployment item and one Deployment
    // item. A SeldonDeployment item concerns one wait; a Deployment item that wait and its
    // event follower. Each list wakes every reader registered then (at most a wait and a
    // follower per lifecycle, on each of the four stores). Broadcast to every subscriber
    // instead would wake about 2N readers per item: 2N × items ≈ 480 000 here.
    let writes = count(&log, |r| {
        matches!(r.method.as_str(), "POST" | "PATCH" | "DELETE")
    });
    assert_eq!(writes, 3 * N);
    let items = 2 * writes as u64;
    let per_item = 2 * items;
    let per_list = 4 * 2 * N as u64;
    let wakeups = ctx.deployer.watch_stats().wakeups;
    assert!(
        wakeups <= per_item + per_list,
        "{wakeups} wake-ups for {items} items and {N} lifecycles"
    );
    assert!(wakeups >= items, "{wakeups} wake-ups: an item woke nobody?");
}
