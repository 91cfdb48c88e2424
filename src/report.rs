//! The run report (`-o json`) and its text rendering.
//!
//! One lifecycle produces a [`Report`]; a run over several manifests produces a [`Summary`]
//! holding one report per SeldonDeployment.

use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::watch::StatsSnapshot;
use crate::error::{Error, Outcome};
use crate::events::EventRecord;
use crate::judge::pods::Broken;
use crate::judge::readiness::Readiness;
use crate::model::merge::{Change, ImageChange};

/// One phase of a run.
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
    /// ended a wait (see [`crate::judge::pods`]).
    pub failing_pods: Vec<Broken>,
    /// Whether the object was deliberately kept (`--keep`).
    pub kept: bool,
    /// Objects this run created and could not delete (`kind/namespace/name (uid)`).
    pub left_behind: Vec<String>,
    /// Watch and retry counters.
    pub watch: StatsSnapshot,
    /// What `apply` did: `created`, `updated` or `unchanged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The images `apply` changed, per component and container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageChange>,
    /// Whether `apply --atomic` tried to roll back, and how that went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
}

/// The rollback of a failed `apply --atomic`.
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
            watch: StatsSnapshot::default(),
            change: None,
            images: Vec::new(),
            rollback: None,
        }
    }

    /// Records the error that ended the run (and the failing pods it names).
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
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The worst outcome.
    pub outcome: String,
    /// The worst exit code (see [`worst_exit_code`]).
    pub exit_code: u8,
    /// One report per SeldonDeployment, in input order.
    pub deployments: Vec<Report>,
}

impl Summary {
    /// Summarises reports.
    #[must_use]
    pub fn new(deployments: Vec<Report>) -> Self {
        let exit_code = worst_exit_code(deployments.iter().map(|r| r.exit_code));
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

/// The worst of several exit codes: interrupted > access (3) > invalid (2) > failed (1) >
/// timeout (4) > success (0); see [`Outcome::worst_code`].
#[must_use]
pub fn worst_exit_code(codes: impl IntoIterator<Item = u8>) -> u8 {
    Outcome::worst_code(codes)
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

/// Formats milliseconds as `1.234s` or `2m03.4s`.
#[must_use]
pub fn fmt_ms(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.3}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:04.1}s", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
    }
}

/// The phase table printed at the end of a run.
#[must_use]
pub fn phase_table(report: &Report) -> String {
    let mut out = format!("{:<13} {:<12} {:>10}\n", "PHASE", "OUTCOME", "DURATION");
    for p in &report.phases {
        out.push_str(&format!(
            "{:<13} {:<12} {:>10}\n",
            p.name,
            p.outcome,
            fmt_ms(p.duration_ms)
        ));
    }
    let total: u64 = report.phases.iter().map(|p| p.duration_ms).sum();
    out.push_str(&format!(
        "{:<13} {:<12} {:>10}\n",
        "total",
        report.outcome,
        fmt_ms(total)
    ));
    out
}

/// One row per deployment with each phase's duration, for multi-deployment runs.
#[must_use]
pub fn summary_table(summary: &Summary) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in &summary.deployments {
        for p in &r.phases {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
    }
    let width = summary
        .deployments
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(10);
    let mut out = format!("{:<width$} {:<12}", "DEPLOYMENT", "OUTCOME");
    for n in &names {
        out.push_str(&format!(" {n:>12}"));
    }
    out.push('\n');
    for r in &summary.deployments {
        out.push_str(&format!("{:<width$} {:<12}", r.name, r.outcome));
        for n in &names {
            let cell = r
                .phases
                .iter()
                .find(|p| p.name == *n)
                .map_or_else(|| "-".to_owned(), |p| fmt_ms(p.duration_ms));
            out.push_str(&format!(" {cell:>12}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_code_ordering() {
        assert_eq!(worst_exit_code([0, 4, 1]), 1);
        assert_eq!(worst_exit_code([0, 3, 2]), 3);
        assert_eq!(worst_exit_code([3, 130]), 130);
        assert_eq!(worst_exit_code([0, 4]), 4);
        assert_eq!(worst_exit_code([]), 0);
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
    fn json_shape_and_tables() {
        let mut r = Report::new("iris", "seldon");
        r.phases.push(PhaseRecord {
            name: "create".into(),
            start: "2026-01-01T00:00:00Z".into(),
            duration_ms: 1234,
            outcome: "ok".into(),
            detail: None,
        });
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
        assert_eq!(j["phases"][0]["duration_ms"], 1234);
        let t = phase_table(&r);
        assert!(
            t.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("create") && l.ends_with("1.234s")),
            "{t}"
        );
        let s = Summary::new(vec![r]);
        assert!(summary_table(&s).contains("iris"));
        assert_eq!(fmt_ms(125_400), "2m05.4s");
    }
}

/// The reports as a JUnit XML document, which GitLab, Jenkins and GitHub test reporters read:
/// one test suite per SeldonDeployment, one test case per phase (a failed phase is a
/// `<failure>` with the error's message), and one `run` case for a deployment that failed
/// before its first phase (an `<error>`: the test could not run). A report with no name is
/// named by its `source` (a file refused before it loaded).
///
/// # Examples
///
/// ```
/// use seldon_deploy::report::{Report, junit};
/// let xml = junit("seldon-deploy apply", &[Report::new("iris", "models")]);
/// assert!(xml.contains(r#"<testsuite name="models/iris""#));
/// ```
#[must_use]
pub fn junit(command: &str, reports: &[Report]) -> String {
    let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for r in reports {
        // A report refused before it had a name (a file that does not load) is named by its file.
        let name = match (&r.name, &r.source) {
            (n, Some(source)) if n.is_empty() => source.as_str(),
            (n, _) => n.as_str(),
        };
        let suite = format!("{}/{}", r.namespace, name);
        let mut cases = String::new();
        let (mut count, mut failed, mut errored) = (0, 0, 0);
        // `element` is `failure` (a phase failed) or `error` (refused before any phase).
        let mut case = |name: &str, ms: u64, failure: Option<(&str, &str, &str)>| {
            count += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                xml_escape(&suite),
                xml_escape(name),
                seconds(ms)
            ));
            match failure {
                None => cases.push_str("/>\n"),
                Some((element, kind, message)) => {
                    if element == "error" {
                        errored += 1;
                    } else {
                        failed += 1;
                    }
                    cases.push_str(&format!(
                        ">\n      <{element} type=\"{}\" message=\"{}\">{}</{element}>\n    </testcase>\n",
                        xml_escape(kind),
                        xml_escape(message),
                        xml_escape(message)
                    ));
                }
            }
        };
        for p in &r.phases {
            let failure = (p.outcome != "ok").then(|| {
                (
                    "failure",
                    p.outcome.as_str(),
                    p.detail.as_deref().unwrap_or(p.outcome.as_str()),
                )
            });
            case(&p.name, p.duration_ms, failure);
        }
        if r.phases.is_empty() {
            case(
                "run",
                0,
                r.error.as_deref().map(|e| ("error", r.outcome.as_str(), e)),
            );
        }
        let total_ms: u64 = r.phases.iter().map(|p| p.duration_ms).sum();
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{count}\" failures=\"{failed}\" errors=\"{errored}\" time=\"{}\">\n{cases}  </testsuite>\n",
            xml_escape(&suite),
            seconds(total_ms)
        ));
        tests += count;
        failures += failed;
        errors += errored;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n{suites}</testsuites>\n",
        xml_escape(command)
    )
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod junit_tests {
    use super::*;

    #[test]
    fn one_case_per_phase_with_failures_escaped() {
        let mut ok = Report::new("a", "ns");
        ok.phases
            .push(PhaseTimer::start("apply").finish("ok", None));
        let mut bad = Report::new("b<&>", "ns");
        bad.phases
            .push(PhaseTimer::start("apply").finish("ok", None));
        bad.phases.push(
            PhaseTimer::start("wait-rollout")
                .finish("failed", Some("pod \"x\" CrashLoopBackOff <exit 1>".into())),
        );
        let mut early = Report::new("c", "ns");
        early.outcome = "access".into();
        early.error = Some("forbidden".into());
        let xml = junit("seldon-deploy apply", &[ok, bad, early]);
        assert!(
            xml.contains(
                r#"<testsuites name="seldon-deploy apply" tests="4" failures="1" errors="1">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="ns/b&lt;&amp;&gt;" tests="2" failures="1""#),
            "{xml}"
        );
        assert!(xml.contains(r#"<failure type="failed" message="pod &quot;x&quot; CrashLoopBackOff &lt;exit 1&gt;">"#), "{xml}");
        assert!(xml.contains(r#"name="run" time="0.000">"#), "{xml}");
        assert!(
            xml.contains(r#"<error type="access" message="forbidden">forbidden</error>"#),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 4);
        assert!(!xml.contains('\u{1}'));
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
