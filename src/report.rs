//! The run report (`-o json`) and its text rendering.
//!
//! One lifecycle produces a [`Report`]; a run over several manifests produces a [`Summary`]
//! holding one report per SeldonDeployment.

use serde::Serialize;
use tokio::time::Instant;

use crate::error::Error;
use crate::events::EventRecord;
use crate::pods::Broken;
use crate::readiness::Readiness;
use crate::watch::StatsSnapshot;

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
    /// The last readiness evaluation.
    pub final_status: Option<Readiness>,
    /// The pods (or Deployments) that could not come up, with their reasons, when that
    /// ended a wait (see [`crate::pods`]).
    pub failing_pods: Vec<Broken>,
    /// Whether the object was deliberately kept (`--keep`).
    pub kept: bool,
    /// Objects this run created and could not delete (`kind/namespace/name (uid)`).
    pub left_behind: Vec<String>,
    /// Watch and retry counters.
    pub watch: StatsSnapshot,
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
            outcome: "success".into(),
            exit_code: 0,
            error: None,
            phases: Vec::new(),
            events: Vec::new(),
            final_status: None,
            failing_pods: Vec::new(),
            kept: false,
            left_behind: Vec::new(),
            watch: StatsSnapshot::default(),
        }
    }

    /// Records the error that ended the run (and the failing pods it names).
    pub fn fail(&mut self, e: &Error) {
        if let Error::PodsFailing { pods, .. } = e {
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
            .map_or_else(|| "success".to_owned(), |r| r.outcome.clone());
        Summary {
            outcome,
            exit_code,
            deployments,
        }
    }
}

/// The worst of several exit codes: interrupted > access (3) > invalid (2) > failed (1) >
/// timeout (4) > success (0).
#[must_use]
pub fn worst_exit_code(codes: impl IntoIterator<Item = u8>) -> u8 {
    let rank = |c: u8| match c {
        0 => 0,
        4 => 1,
        1 => 2,
        2 => 3,
        3 => 4,
        _ => 5,
    };
    codes.into_iter().max_by_key(|c| rank(*c)).unwrap_or(0)
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
