//! The smoke test (`--smoke`): after a wait ends ready, one request to each predictor, sent
//! to one ready pod of its executor's newest ReplicaSet through the API server's
//! port-forward subresource, and a verdict on the answer.
//!
//! One concern per file: `input` (the request and expected-answer files, checked before
//! anything is sent), `protocol` (the executor's paths per `spec.protocol`), `target` (which
//! pod and port), `verdict` (whether an answer passes: pure), `forward` (the HTTP/1 request
//! over a port-forward stream).
//!
//! Needs `get` and `create` on `pods/portforward` (a WebSocket port-forward is a `GET` the
//! API server authorizes as `get`; newer ones check `create` too):
//! [`Deployer::check_smoke_rights`] asks with SelfSubjectAccessReviews, so a run can refuse
//! before it creates or updates anything.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::{Error, Op, Result};
use crate::ops::{Deployer, Handle};

mod forward;
pub mod input;
pub mod protocol;
pub mod target;
pub mod verdict;

pub use input::JsonFile;
pub use protocol::{Ask, Protocol};
pub use verdict::DEFAULT_TOLERANCE;

/// What the smoke test sends and how it judges the answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeOptions {
    /// The request body (`--smoke FILE`); `None`: a readiness check (`--smoke` alone).
    pub request: Option<JsonFile>,
    /// The expected answer (`--smoke-expect FILE`).
    pub expected: Option<JsonFile>,
    /// How far numbers may differ from the expected ones, relative to the larger magnitude
    /// (`--smoke-tolerance`, default [`DEFAULT_TOLERANCE`]).
    pub tolerance: f64,
    /// `apply`: test every predictor, not only those the change touched (`--smoke-all`).
    pub all: bool,
}

impl SmokeOptions {
    /// Reads and checks the files: exit 2 naming the file (with the line and column of a
    /// syntax error) when one cannot be read or is not JSON, when the expected answer holds
    /// no response data, or when an expected answer comes without a request. Nothing is sent.
    pub fn load(
        request: Option<&Path>,
        expected: Option<&Path>,
        tolerance: f64,
        all: bool,
    ) -> Result<Self> {
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(Error::Usage(format!(
                "--smoke-tolerance must be a number of 0 or more (a fraction: 0.01 is 1%), not {tolerance}"
            )));
        }
        let request = request.map(input::load_json).transpose()?;
        let expected = expected.map(input::load_json).transpose()?;
        if let Some(e) = &expected {
            if request.is_none() {
                return Err(Error::Usage(
                    "--smoke-expect needs a request to compare the answer of: --smoke FILE".into(),
                ));
            }
            verdict::check_expected(&e.value).map_err(|message| Error::Manifest {
                source_name: e.name.clone(),
                message,
            })?;
        }
        Ok(SmokeOptions {
            request,
            expected,
            tolerance,
            all,
        })
    }

    /// What the test asks: a prediction with the request body, or readiness.
    #[must_use]
    pub fn ask(&self) -> Ask {
        if self.request.is_some() {
            Ask::Predict
        } else {
            Ask::Ready
        }
    }
}

/// One predictor's smoke test, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokeResult {
    /// The predictor.
    pub predictor: String,
    /// The Deployment holding its executor, once found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The pod the request went to, once chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The executor's HTTP port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `POST` or `GET`.
    pub method: String,
    /// The path asked.
    pub path: String,
    /// The HTTP status of the answer, if there was one.
    pub status: Option<u16>,
    /// From sending the request to the end of the answer.
    pub latency_ms: Option<u64>,
    /// The answer's body, at most 1 KiB of it ([`verdict::EXCERPT_BYTES`]).
    pub body: String,
    /// `ok` or `failed`.
    pub outcome: String,
    /// Why it failed: the status, an error payload, the first difference from the expected
    /// answer, or why no answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SmokeResult {
    /// Whether the predictor answered as it should.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.outcome == "ok"
    }

    /// One line for progress output and phase details: `predictor: HTTP 200 in 12 ms (pod P)`
    /// or why it failed.
    #[must_use]
    pub fn summary(&self) -> String {
        let pod = self
            .pod
            .as_deref()
            .map(|p| format!(" (pod {p})"))
            .unwrap_or_default();
        match (&self.error, self.status, self.latency_ms) {
            (None, Some(s), Some(ms)) => format!(
                "{}: {} {} answered HTTP {s} in {ms} ms{pod}",
                self.predictor, self.method, self.path
            ),
            (Some(e), _, _) => format!("{}: {e}{pod}", self.predictor),
            _ => format!("{}: {}{pod}", self.predictor, self.outcome),
        }
    }
}

/// The error for failed smoke results (exit 1), naming the first one's predictor, pod,
/// request, and its status with the body excerpt or the first difference; `None` when all
/// passed.
#[must_use]
pub fn failure(name: &str, results: &[SmokeResult]) -> Option<Error> {
    let failed: Vec<&SmokeResult> = results.iter().filter(|r| !r.passed()).collect();
    let first = failed.first()?;
    let why = first.error.clone().unwrap_or_default();
    // A difference from the expected answer is named by itself; otherwise the body says why.
    let body = if why.contains("differs from the expected") || first.body.is_empty() {
        String::new()
    } else {
        format!("; body: {}", first.body)
    };
    Some(Error::SmokeFailed {
        name: name.to_owned(),
        predictor: first.predictor.clone(),
        pod: first.pod.clone(),
        detail: format!("{} {}: {why}{body}", first.method, first.path),
        others: failed.len() - 1,
    })
}

/// The predictors of `after` that a change from `before` touched: all of them when the spec
/// outside `predictors` changed (protocol, transport, annotations, …, rendered into every
/// executor), else those that are new or whose own spec differs (`traffic` included: a
/// traffic shift to a canary is what the smoke test should prove).
#[must_use]
pub fn touched_predictors(before: &Value, after: &Value) -> Vec<String> {
    let rest = |o: &Value| {
        let mut s = o.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = s.as_object_mut() {
            m.remove("predictors");
        }
        s
    };
    let all = rest(before) != rest(after);
    let before_preds = predictors(before);
    predictors(after)
        .into_iter()
        .filter(|(name, p)| all || before_preds.iter().all(|(n, q)| n != name || q != p))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// `(name, predictor)` of each of `spec.predictors`, in order.
fn predictors(o: &Value) -> Vec<(&str, &Value)> {
    o.pointer("/spec/predictors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?, p)))
        .collect()
}

impl Deployer {
    /// Asks the API server (SelfSubjectAccessReviews) whether this identity may port-forward
    /// to pods in the namespace (`get` and `create` on `pods/portforward`), so `--smoke` can
    /// refuse before anything is created or updated.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] naming the verb and `pods/portforward` when a review says no
    /// (exit 3); an access error when a review cannot be sent. A cluster that refuses the
    /// reviews themselves (403, or no authorization API: 404) is not judged here: the
    /// port-forward will tell.
    pub async fn check_smoke_rights(&self, deadline: Instant) -> Result<()> {
        crate::model::manifest::check_namespace_name("namespace", &self.namespace)?;
        let reviews: kube::Api<SelfSubjectAccessReview> = kube::Api::all(self.client.clone());
        for verb in ["get", "create"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(self.namespace.clone()),
                        verb: Some(verb.to_owned()),
                        resource: Some("pods".to_owned()),
                        subresource: Some("portforward".to_owned()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let pp = PostParams::default();
            let answer = self
                .retrying(deadline, true, || reviews.create(&pp, &review))
                .await;
            let status = match answer {
                Ok(r) => r.status,
                Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => {
                    tracing::debug!(
                        "cannot ask whether port-forwards are allowed: {}",
                        s.message
                    );
                    return Ok(());
                }
                Err(e) => {
                    return Err(Error::from_kube(
                        e,
                        &Op::other(
                            "create",
                            "selfsubjectaccessreviews.authorization.k8s.io",
                            &self.namespace,
                        ),
                    ));
                }
            };
            if !status.as_ref().is_some_and(|s| s.allowed) {
                let why = status
                    .and_then(|s| s.reason.filter(|r| !r.is_empty()))
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                return Err(Error::Forbidden {
                    verb: verb.to_owned(),
                    resource: "pods/portforward".to_owned(),
                    namespace: self.namespace.clone(),
                    name: None,
                    message: format!(
                        "--smoke sends its request through a port-forward and needs get and create on pods/portforward{why}; nothing was created or changed"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Sends the smoke request once to each predictor of `h`'s object (those named in
    /// `only`, when given, in the spec's order), and judges each answer. Every request is
    /// bounded by `deadline`.
    ///
    /// A predictor that does not answer as it should is a failed [`SmokeResult`], not an
    /// error: see [`failure`].
    ///
    /// # Errors
    ///
    /// Access errors reading the object, its Deployments and pods, or a port-forward the
    /// API server refuses (403); [`Error::Gone`] if the object was replaced;
    /// [`Error::Timeout`] when the deadline passes before an answer.
    pub async fn smoke(
        &self,
        h: &Handle,
        only: Option<&[String]>,
        opts: &SmokeOptions,
        deadline: Instant,
    ) -> Result<Vec<SmokeResult>> {
        // The phase's time, for a timeout's message.
        let budget = deadline.saturating_duration_since(Instant::now());
        let sdep = self.get(&h.name, deadline).await?;
        if !h.is(&sdep) {
            return Err(h.gone("replaced"));
        }
        let protocol = Protocol::of(&sdep)?;
        let wanted: Option<BTreeSet<&str>> = only.map(|o| o.iter().map(String::as_str).collect());
        let names: Vec<&str> = predictors(&sdep)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| wanted.as_ref().is_none_or(|w| w.contains(n)))
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let owned = self.owned_deployments(h, deadline).await?;
        let mut results = Vec::with_capacity(names.len());
        for predictor in names {
            let model = protocol::graph_root(&sdep, predictor).unwrap_or(predictor);
            let r = self
                .smoke_one(predictor, protocol, model, &owned, opts, deadline)
                .await
                .map_err(|e| match e {
                    Error::Timeout { phase, detail, .. } => Error::Timeout {
                        phase,
                        after: budget,
                        detail,
                    },
                    other => other,
                })?;
            results.push(r);
        }
        Ok(results)
    }

    /// The Deployments `h`'s object owns, read now (the cache keeps no executor arguments).
    async fn owned_deployments(&self, h: &Handle, deadline: Instant) -> Result<Vec<Deployment>> {
        let lp = match crate::cluster::cache::seldon_id(&h.name) {
            Some(id) => {
                ListParams::default().labels(&format!("{}={id}", crate::names::SELDON_ID_LABEL))
            }
            None => ListParams::default(),
        };
        let list = self
            .retrying(deadline, true, || self.deployments.list(&lp))
            .await
            .map_err(|e| {
                Error::from_kube(e, &Op::other("list", "deployments.apps", &self.namespace))
            })?;
        Ok(list
            .items
            .into_iter()
            .filter(|d| {
                d.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == h.uid)
            })
            .collect())
    }

    async fn smoke_one(
        &self,
        predictor: &str,
        protocol: Protocol,
        model: &str,
        owned: &[Deployment],
        opts: &SmokeOptions,
        deadline: Instant,
    ) -> Result<SmokeResult> {
        let ask = opts.ask();
        let (method, path) = protocol.request(ask, model);
        let mut r = SmokeResult {
            predictor: predictor.to_owned(),
            deployment: None,
            pod: None,
            port: None,
            method: method.to_owned(),
            path: path.clone(),
            status: None,
            latency_ms: None,
            body: String::new(),
            outcome: "failed".to_owned(),
            error: None,
        };
        let Some(exec) = target::executor(predictor, owned) else {
            r.error = Some(format!(
                "no Deployment of predictor {predictor:?} holds the executor (container {})",
                target::EXECUTOR_CONTAINER
            ));
            return Ok(r);
        };
        r.deployment = Some(exec.deployment.clone());
        r.port = Some(exec.port);
        let Some(d) = owned
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(exec.deployment.as_str()))
        else {
            return Ok(r);
        };
        let selector = d
            .spec
            .selector
            .match_labels
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let pods_api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&selector);
        let pods = self
            .retrying(deadline, true, || pods_api.list(&lp))
            .await
            .map_err(|e| Error::from_kube(e, &Op::other("list", "pods", &self.namespace)))?
            .items;
        let pod = match target::choose_pod(d, &pods) {
            Ok(p) => p.metadata.name.clone().unwrap_or_default(),
            Err(target::NoPod::NoneReady { pods }) => {
                r.error = Some(format!(
                    "no ready pod in the newest ReplicaSet of Deployment {} ({pods} pod(s) in it)",
                    exec.deployment
                ));
                return Ok(r);
            }
        };
        r.pod = Some(pod.clone());
        let body = opts
            .request
            .as_ref()
            .map(|f| hyper::body::Bytes::copy_from_slice(&f.bytes));
        let sent = tokio::time::timeout_at(
            deadline,
            forward::request(
                &self.client,
                &self.namespace,
                &pod,
                exec.port,
                method,
                &path,
                body,
            ),
        )
        .await;
        let answer = match sent {
            Err(_) => {
                return Err(Error::Timeout {
                    phase: "smoke".to_owned(),
                    after: std::time::Duration::ZERO,
                    detail: format!(
                        "predictor {predictor:?}: no answer from pod {pod} to {method} {path} before the deadline"
                    ),
                });
            }
            Ok(Err(forward::NoAnswer::Denied(e))) => {
                // A WebSocket port-forward is a GET: the API server authorizes `get` first.
                return Err(Error::from_kube(
                    e,
                    &Op::other("get", "pods/portforward", &self.namespace),
                ));
            }
            Ok(Err(forward::NoAnswer::Failed(why))) => {
                r.error = Some(why);
                return Ok(r);
            }
            Ok(Ok(a)) => a,
        };
        r.status = Some(answer.status);
        r.latency_ms = Some(u64::try_from(answer.latency.as_millis()).unwrap_or(u64::MAX));
        r.body = verdict::excerpt(&answer.body);
        let expected = opts.expected.as_ref().map(|f| &f.value);
        match verdict::judge(
            protocol,
            ask,
            answer.status,
            &answer.body,
            expected,
            opts.tolerance,
        ) {
            Ok(()) => r.outcome = "ok".to_owned(),
            Err(why) => r.error = Some(why),
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sdep(spec: Value) -> Value {
        json!({"spec": spec})
    }

    #[test]
    fn an_apply_touches_the_predictors_it_changed_or_all_for_a_spec_wide_change() {
        let before = sdep(json!({"predictors": [
            {"name": "main", "traffic": 100, "graph": {"name": "m", "modelUri": "v1"}},
            {"name": "canary", "traffic": 0, "graph": {"name": "m", "modelUri": "v1"}}]}));
        let canary = sdep(json!({"predictors": [
            {"name": "main", "traffic": 100, "graph": {"name": "m", "modelUri": "v1"}},
            {"name": "canary", "traffic": 0, "graph": {"name": "m", "modelUri": "v2"}}]}));
        assert_eq!(touched_predictors(&before, &canary), ["canary"]);
        let shifted = sdep(json!({"predictors": [
            {"name": "main", "traffic": 90, "graph": {"name": "m", "modelUri": "v1"}},
            {"name": "canary", "traffic": 10, "graph": {"name": "m", "modelUri": "v1"}}]}));
        assert_eq!(touched_predictors(&before, &shifted), ["main", "canary"]);
        let added = sdep(json!({"predictors": [
            {"name": "main", "traffic": 100, "graph": {"name": "m", "modelUri": "v1"}},
            {"name": "canary", "traffic": 0, "graph": {"name": "m", "modelUri": "v1"}},
            {"name": "shadow", "shadow": true, "graph": {"name": "m", "modelUri": "v3"}}]}));
        assert_eq!(touched_predictors(&before, &added), ["shadow"]);
        let mut protocol = before.clone();
        protocol["spec"]["protocol"] = json!("v2");
        assert_eq!(touched_predictors(&before, &protocol), ["main", "canary"]);
        assert!(touched_predictors(&before, &before).is_empty());
    }

    fn result(predictor: &str, error: Option<&str>, body: &str) -> SmokeResult {
        SmokeResult {
            predictor: predictor.into(),
            deployment: Some("d".into()),
            pod: Some(format!("{predictor}-pod")),
            port: Some(8000),
            method: "POST".into(),
            path: "/api/v1.0/predictions".into(),
            status: Some(if error.is_some() { 500 } else { 200 }),
            latency_ms: Some(3),
            body: body.into(),
            outcome: if error.is_some() { "failed" } else { "ok" }.into(),
            error: error.map(Into::into),
        }
    }

    #[test]
    fn a_failure_names_predictor_pod_status_and_body_or_the_difference() {
        let ok = result("main", None, "{}");
        assert!(failure("iris", std::slice::from_ref(&ok)).is_none());
        let e = failure(
            "iris",
            &[
                ok.clone(),
                result(
                    "canary",
                    Some("HTTP 500"),
                    "{\"status\":{\"status\":\"FAILURE\"}}",
                ),
                result("b", Some("HTTP 500"), ""),
            ],
        )
        .unwrap();
        assert_eq!(e.exit_code(), 1);
        let msg = e.to_string();
        assert!(msg.contains("smoke test failed"), "{msg}");
        assert!(
            msg.contains("predictor \"canary\" (pod canary-pod)"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "POST /api/v1.0/predictions: HTTP 500; body: {\"status\":{\"status\":\"FAILURE\"}}"
            ),
            "{msg}"
        );
        assert!(msg.contains("and 1 more predictor"), "{msg}");
        let diff = result(
            "main",
            Some(
                "the answer differs from the expected one: outputs[0].shape[0]: expected 2, got 1",
            ),
            "{\"outputs\":[]}",
        );
        let msg = failure("iris", &[diff]).unwrap().to_string();
        assert!(
            msg.ends_with("expected 2, got 1"),
            "the difference, not the body: {msg}"
        );
    }

    #[test]
    fn options_refuse_bad_files_and_combinations_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let body = dir.path().join("body.json");
        std::fs::write(&body, "{\"data\": {\"ndarray\": [[1, 2]]}}").unwrap();
        let bad = dir.path().join("expect.json");
        std::fs::write(&bad, "{\"data\": \n  [1,}").unwrap();
        let e = SmokeOptions::load(Some(&body), Some(&bad), 1e-6, false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("expect.json: not JSON: line 2 column"),
            "{e}"
        );
        let not_answer = dir.path().join("na.json");
        std::fs::write(&not_answer, "[1, 2]").unwrap();
        let e = SmokeOptions::load(Some(&body), Some(&not_answer), 1e-6, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: an expected answer", not_answer.display())),
            "{e}"
        );
        let good = dir.path().join("good.json");
        std::fs::write(&good, "{\"data\": {\"ndarray\": [[3]]}}").unwrap();
        let e = SmokeOptions::load(None, Some(&good), 1e-6, false).unwrap_err();
        assert!(e.to_string().contains("--smoke-expect needs"), "{e}");
        assert!(SmokeOptions::load(Some(&body), Some(&good), -1.0, false).is_err());
        assert!(SmokeOptions::load(Some(&body), Some(&good), f64::NAN, false).is_err());
        let o = SmokeOptions::load(Some(&body), Some(&good), 0.01, true).unwrap();
        assert_eq!(o.ask(), Ask::Predict);
        assert_eq!(
            SmokeOptions::load(None, None, 0.0, false).unwrap().ask(),
            Ask::Ready
        );
    }
}
