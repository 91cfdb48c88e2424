//! The run report (`-o json`) and its text rendering.
//!
//! One lifecycle produces a [`Report`]; a run over several manifests produces a [`Summary`]
//! holding one report per SeldonDeployment.

use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::watch::WatchStats;
use crate::error::{Error, Outcome};
use crate::events::EventRecord;
use crate::judge::pods::Broken;
use crate::judge::readiness::Readiness;
use crate::model::merge::{Change, ImageChange};
use crate::ops::smoke::SmokeResult;

/// One phase of a run.
///
/// # Examples
///
/// ```
/// use seldon_deploy::report::PhaseTimer;
///
/// let record = PhaseTimer::start("scale").finish("ok", Some("set /spec/replicas".into()));
/// assert_eq!((record.name.as_str(), record.outcome.as_str()), ("scale", "ok"));
/// assert_eq!(serde_json::to_value(&record)?["detail"], "set /spec/replicas");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseRecord {
    /// `create`, `wait-ready`, `scale`, `wait-scaled`, `delete`, `cleanup`, `wait`.
    pub name: String,
    /// Start time, RFC 3339 (client clock).
    pub start: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// `ok`, or the error's outcome (`failed`, `invalid`, `access`, `timeout`, `interrupted`).
    pub outcome: String,
    /// Extra information (the error message, the scale paths, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Measures a phase: wall-clock start for the record, monotonic clock for the duration.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{Error, report::{PhaseTimer, Report}};
///
/// let mut report = Report::new("iris", "seldon");
/// let timer = PhaseTimer::start("create");
/// let result: Result<(), Error> = Err(Error::Usage("no manifest given".into()));
/// let record = match &result {
///     Ok(()) => timer.finish("ok", None),
///     Err(e) => timer.finish(e.outcome(), Some(e.to_string())),
/// };
/// report.phases.push(record);
/// assert_eq!(report.phases[0].outcome, "invalid");
/// ```
#[derive(Debug)]
pub struct PhaseTimer {
    name: String,
    start: String,
    started: Instant,
}

impl PhaseTimer {
    /// Starts timing `name` now.
    #[must_use]
    pub fn start(name: &str) -> Self {
        PhaseTimer {
            name: name.to_owned(),
            start: k8s_openapi::jiff::Timestamp::now().to_string(),
            started: Instant::now(),
        }
    }

    /// Ends the phase.
    #[must_use]
    pub fn finish(self, outcome: &str, detail: Option<String>) -> PhaseRecord {
        PhaseRecord {
            name: self.name,
            start: self.start,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome: outcome.to_owned(),
            detail,
        }
    }
}

/// The result of one lifecycle (or one standalone step) on one SeldonDeployment.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use seldon_deploy::{Error, report::Report};
///
/// let mut report = Report::new("iris", "seldon");
/// assert!(report.succeeded());
/// report.fail(&Error::Timeout { phase: "wait-ready".into(), after: Duration::from_secs(300), detail: "0/1".into() });
/// assert_eq!((report.outcome.as_str(), report.exit_code), ("timeout", 4));
/// assert!(!report.succeeded());
/// let json = serde_json::to_value(&report)?; // the `-o json` document
/// assert_eq!(json["exit_code"], 4);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// SeldonDeployment name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Manifest origin (file name), when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// UID of the object, once known.
    pub uid: Option<String>,
    /// `success`, `failed`, `invalid`, `access`, `timeout` or `interrupted`.
    pub outcome: String,
    /// The process exit code this outcome maps to.
    pub exit_code: u8,
    /// The error message, if the run did not succeed.
    pub error: Option<String>,
    /// Phases in order.
    pub phases: Vec<PhaseRecord>,
    /// Events seen during the run, in arrival order.
    pub events: Vec<EventRecord>,
    /// What the run went on without, e.g. Events it was not allowed to read.
    pub warnings: Vec<String>,
    /// The last readiness evaluation.
    pub final_status: Option<Readiness>,
    /// The pods (or Deployments) that could not come up, with their reasons, when that
    /// ended a wait (from [`Error::PodsFailing`]).
    pub failing_pods: Vec<Broken>,
    /// Whether the object was deliberately kept (`--keep`).
    pub kept: bool,
    /// Objects this run created and could not delete (`kind/namespace/name (uid)`).
    pub left_behind: Vec<String>,
    /// Watch and retry counters.
    pub watch: WatchStats,
    /// What `apply` did: `created`, `updated` or `unchanged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The images `apply` changed, per component and container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageChange>,
    /// Whether `apply --atomic` tried to roll back, and how that went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// The smoke test (`--smoke`): one request and answer per predictor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<SmokeResult>,
}

/// The rollback of a failed `apply --atomic`.
///
/// # Examples
///
/// ```
/// use seldon_deploy::report::Rollback;
///
/// let restored = Rollback { outcome: "restored".into(), error: None };
/// assert_eq!(serde_json::to_value(&restored)?, serde_json::json!({"outcome": "restored"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollback {
    /// `restored` (the previous spec is ready again), `deleted` (the object `apply`
    /// created was removed) or `failed`.
    pub outcome: String,
    /// Why the rollback failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// An empty report for `name` in `namespace`.
    ///
    /// # Examples
    ///
    /// ```
    /// use seldon_deploy::report::Report;
    ///
    /// let report = Report::new("iris", "seldon");
    /// assert_eq!((report.outcome.as_str(), report.exit_code), ("success", 0));
    /// assert!(report.phases.is_empty() && report.uid.is_none());
    /// ```
    #[must_use]
    pub fn new(name: &str, namespace: &str) -> Self {
        Report {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            source: None,
            uid: None,
            outcome: Outcome::Success.word().into(),
            exit_code: Outcome::Success.code(),
            error: None,
            phases: Vec::new(),
            events: Vec::new(),
            warnings: Vec::new(),
            final_status: None,
            failing_pods: Vec::new(),
            kept: false,
            left_behind: Vec::new(),
            watch: WatchStats::default(),
            change: None,
            images: Vec::new(),
            rollback: None,
            smoke: Vec::new(),
        }
    }

    /// Records the error that ended the run (and the failing pods it names).
    ///
    /// # Examples
    ///
    /// An `apply` that could not roll out keeps the pods that failed it:
    ///
    /// ```
    /// use seldon_deploy::{Error, error::Broken, report::Report};
    ///
    /// let broken = Broken { deployment: "iris-default-0-classifier".into(), pod: None, container: None,
    ///     reason: "FailedCreate".into(), message: "exceeded quota".into(), exit_code: None, restarts: None };
    /// let cause = Error::PodsFailing { name: "iris".into(), pods: vec![broken] };
    /// let mut report = Report::new("iris", "seldon");
    /// report.fail(&Error::Rollout { cause: Box::new(cause), aftermath: "the update stays in place".into() });
    /// assert_eq!((report.exit_code, report.failing_pods.len()), (1, 1));
    /// ```
    pub fn fail(&mut self, e: &Error) {
        // An `apply` wraps the cause in what became of the update.
        let mut cause = e;
        while let Error::Rollout { cause: inner, .. } = cause {
            cause = inner;
        }
        if let Error::PodsFailing { pods, .. } = cause {
            self.failing_pods.clone_from(pods);
        }
        self.outcome = e.outcome().to_owned();
        self.exit_code = e.exit_code();
        self.error = Some(e.to_string());
    }

    /// Whether the run succeeded.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }
}

/// Several lifecycles in one run.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{Error, report::{Report, Summary}};
///
/// let ok = Report::new("a", "seldon");
/// let mut failed = Report::new("b", "seldon");
/// failed.fail(&Error::DeploymentFailed { name: "b".into(), description: "bad graph".into() });
/// let summary = Summary::new(vec![ok, failed]);
/// assert_eq!((summary.outcome.as_str(), summary.exit_code), ("failed", 1));
/// assert_eq!(summary.deployments.len(), 2);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The worst outcome.
    pub outcome: String,
    /// The worst exit code (see [`Outcome::worst_code`]).
    pub exit_code: u8,
    /// One report per SeldonDeployment, in input order.
    pub deployments: Vec<Report>,
}

impl Summary {
    /// Summarises reports.
    #[must_use]
    pub fn new(deployments: Vec<Report>) -> Self {
        let exit_code = Outcome::worst_code(deployments.iter().map(|r| r.exit_code));
        let outcome = deployments
            .iter()
            .find(|r| r.exit_code == exit_code)
            .map_or_else(|| Outcome::Success.word().to_owned(), |r| r.outcome.clone());
        Summary {
            outcome,
            exit_code,
            deployments,
        }
    }
}

/// Most Warnings kept by [`last_events`] beyond its `limit` (the latest per object always
/// stays, up to this many objects).
const MAX_KEPT_WARNINGS: usize = 10;

/// The Events that explain how a run ended, for the "last events" of a failure, in the order
/// they last happened:
/// - repeats of one (object, reason, message) are collapsed into their latest record, whose
///   count is at least the number of repeats seen (the operator's `Updated SeldonDeployment`
///   alone would otherwise fill the list);
/// - the latest Warning of each object is always kept (up to `MAX_KEPT_WARNINGS` (10) objects,
///   the most recent), since a `FailedScheduling` streamed early is often the cause;
/// - the most recent of the rest fill up to `limit`.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{events::EventRecord, report::last_events};
///
/// let event = |type_: &str, reason: &str| EventRecord {
///     time: None, type_: type_.into(), reason: reason.into(), source: "c".into(),
///     object: "Pod/p".into(), message: "m".into(), count: 1, after_delete: false,
/// };
/// let seen = [event("Warning", "FailedScheduling"), event("Normal", "Updated"),
///             event("Normal", "Updated"), event("Normal", "Pulled")];
/// let last = last_events(&seen, 3);
/// let reasons: Vec<_> = last.iter().map(|e| e.reason.as_str()).collect();
/// assert_eq!(reasons, ["FailedScheduling", "Updated", "Pulled"]);
/// assert_eq!(last[1].count, 2); // the two repeats, collapsed
/// // The early Warning stays even when the limit is 1.
/// assert_eq!(last_events(&seen, 1)[0].reason, "FailedScheduling");
/// ```
#[must_use]
pub fn last_events(events: &[EventRecord], limit: usize) -> Vec<EventRecord> {
    // Collapse: one entry per key, at the position of its last occurrence.
    let mut latest: std::collections::HashMap<(&str, &str, &str), (usize, usize)> =
        std::collections::HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let entry = latest
            .entry((e.object.as_str(), e.reason.as_str(), e.message.as_str()))
            .or_insert((i, 0));
        *entry = (i, entry.1 + 1);
    }
    let mut groups: Vec<(usize, usize)> = latest.into_values().collect();
    groups.sort_unstable();
    // Newest first: the latest Warning of each object, then the rest up to the limit.
    let mut warned: Vec<&str> = Vec::new();
    let mut keep = vec![false; groups.len()];
    for (g, &(i, _)) in groups.iter().enumerate().rev() {
        let e = &events[i];
        if e.type_ == "Warning"
            && !warned.contains(&e.object.as_str())
            && warned.len() < MAX_KEPT_WARNINGS
        {
            warned.push(&e.object);
            keep[g] = true;
        }
    }
    let mut kept = keep.iter().filter(|k| **k).count();
    for k in keep.iter_mut().rev() {
        if kept >= limit {
            break;
        }
        if !*k {
            *k = true;
            kept += 1;
        }
    }
    groups
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(&(i, repeats), _)| {
            let mut e = events[i].clone();
            e.count = e.count.max(i32::try_from(repeats).unwrap_or(i32::MAX));
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_code_ordering() {
        assert_eq!(Outcome::worst_code([0, 4, 1]), 1);
        assert_eq!(Outcome::worst_code([0, 3, 2]), 3);
        assert_eq!(Outcome::worst_code([3, 130]), 130);
        assert_eq!(Outcome::worst_code([0, 4]), 4);
        assert_eq!(Outcome::worst_code([]), 0);
    }

    fn rec(type_: &str, reason: &str, object: &str, message: &str, count: i32) -> EventRecord {
        EventRecord {
            time: None,
            type_: type_.into(),
            reason: reason.into(),
            source: "c".into(),
            object: object.into(),
            message: message.into(),
            count,
            after_delete: false,
        }
    }

    fn lines(events: &[EventRecord]) -> Vec<String> {
        events.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn last_events_collapse_repeats_and_keep_the_cause() {
        let sdep = "SeldonDeployment/x";
        let mut events = vec![
            rec(
                "Normal",
                "CreateDeployment",
                sdep,
                "Created Deployment \"x-p-0-c\"",
                1,
            ),
            rec("Normal", "Scheduled", "Pod/x-p-0-c-5d-a", "assigned", 1),
            rec(
                "Warning",
                "FailedScheduling",
                "Pod/x-p-0-c-5d-b",
                "0/3 nodes: Insufficient nvidia.com/gpu",
                1,
            ),
            rec(
                "Warning",
                "FailedScheduling",
                "Pod/x-p-0-c-5d-b",
                "0/3 nodes: Insufficient nvidia.com/gpu",
                2,
            ),
        ];
        for n in 1..=12 {
            events.push(rec(
                "Normal",
                "Updated",
                sdep,
                "Updated SeldonDeployment \"x\"",
                n,
            ));
        }
        assert_eq!(
            lines(&last_events(&events, 5)),
            [
                "Normal CreateDeployment c SeldonDeployment/x: Created Deployment \"x-p-0-c\"",
                "Normal Scheduled c Pod/x-p-0-c-5d-a: assigned",
                "Warning FailedScheduling c Pod/x-p-0-c-5d-b: 0/3 nodes: Insufficient nvidia.com/gpu (x2)",
                "Normal Updated c SeldonDeployment/x: Updated SeldonDeployment \"x\" (x12)",
            ]
        );
        // With more history than the limit, the early Warning still stays; the oldest
        // Normal ones go.
        for i in 0..10 {
            events.push(rec(
                "Normal",
                "Pulled",
                &format!("Pod/x-p-0-c-5d-{i}"),
                "pulled",
                1,
            ));
        }
        let last = last_events(&events, 5);
        assert_eq!(last.len(), 5);
        assert!(last[0].reason == "FailedScheduling", "{:?}", lines(&last));
        assert!(
            last[1..].iter().all(|e| e.reason == "Pulled"),
            "{:?}",
            lines(&last)
        );
        // Separate Events with one key (the recorder's aggregation restarted) count as repeats.
        let separate = vec![rec("Normal", "Killing", "Pod/a", "stop", 1); 3];
        assert_eq!(last_events(&separate, 5)[0].count, 3);
        assert!(last_events(&[], 5).is_empty());
    }

    #[test]
    fn last_events_keep_the_latest_warning_of_each_object() {
        let events = vec![
            rec("Warning", "BackOff", "Pod/a", "restarting", 1),
            rec(
                "Warning",
                "FailedScheduling",
                "Pod/b",
                "Insufficient cpu",
                1,
            ),
            rec("Warning", "Unhealthy", "Pod/a", "probe failed", 1),
        ];
        let mut all = events.clone();
        all.extend((0..8).map(|i| {
            rec(
                "Normal",
                "Updated",
                "SeldonDeployment/x",
                &format!("u{i}"),
                1,
            )
        }));
        let last = last_events(&all, 2);
        assert_eq!(
            lines(&last),
            [
                "Warning FailedScheduling c Pod/b: Insufficient cpu",
                "Warning Unhealthy c Pod/a: probe failed",
            ]
        );
    }

    #[test]
    fn json_shape() {
        let mut r = Report::new("iris", "seldon");
        r.phases
            .push(PhaseTimer::start("create").finish("ok", None));
        let j = serde_json::to_value(&r).unwrap();
        for k in [
            "outcome",
            "exit_code",
            "phases",
            "events",
            "final_status",
            "failing_pods",
            "error",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        assert_eq!(j["phases"][0]["name"], "create");
        assert!(j["phases"][0]["duration_ms"].is_u64());
    }

    #[test]
    fn failing_pods_are_recorded_also_under_an_applys_aftermath() {
        let broken = crate::judge::pods::Broken {
            deployment: "d".into(),
            pod: Some("p".into()),
            container: Some("c".into()),
            reason: "CrashLoopBackOff".into(),
            message: "back-off".into(),
            exit_code: Some(1),
            restarts: Some(4),
        };
        let cause = Error::PodsFailing {
            name: "iris".into(),
            pods: vec![broken.clone()],
        };
        let mut r = Report::new("iris", "seldon");
        r.fail(&Error::Rollout {
            cause: Box::new(cause),
            aftermath: "the update stays in place".into(),
        });
        assert_eq!(r.exit_code, 1);
        assert_eq!(r.failing_pods, vec![broken]);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["failing_pods"][0]["reason"], "CrashLoopBackOff");
    }
}
