//! The report as text for people and for CI: the phase and summary tables, durations, and
//! the JUnit document. The library keeps the report as data; how it is shown is the binary's.

use seldon_deploy::report::{Report, Summary};

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

/// The smoke test's table (`--smoke`): one row per predictor, or nothing without one.
#[must_use]
pub fn smoke_table(report: &Report) -> String {
    if report.smoke.is_empty() {
        return String::new();
    }
    let width = report
        .smoke
        .iter()
        .map(|s| s.predictor.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let request = |s: &seldon_deploy::ops::smoke::SmokeResult| format!("{} {}", s.method, s.path);
    let rwidth = report
        .smoke
        .iter()
        .map(|s| request(s).len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!(
        "\n{:<width$} {:<8} {:>6} {:>8}  {:<rwidth$}  {}\n",
        "PREDICTOR", "OUTCOME", "STATUS", "LATENCY", "REQUEST", "POD"
    );
    for s in &report.smoke {
        out.push_str(&format!(
            "{:<width$} {:<8} {:>6} {:>8}  {:<rwidth$}  {}\n",
            s.predictor,
            s.outcome,
            s.status.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            s.latency_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms}ms")),
            request(s),
            s.pod.as_deref().unwrap_or("-"),
        ));
    }
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

/// The reports as a JUnit XML document, which GitLab, Jenkins and GitHub test reporters read:
/// one test suite per SeldonDeployment, one test case per phase (a failed phase is a
/// `<failure>` with the error's message), and one `run` case for a deployment that failed
/// before its first phase (an `<error>`: the test could not run). A report with no name is
/// named by its `source` (a file refused before it loaded).
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
            // The smoke test is one case per predictor, each failing on its own.
            if p.name == "smoke" && !r.smoke.is_empty() {
                for s in &r.smoke {
                    let why = s.error.clone().map(|e| {
                        if s.body.is_empty() {
                            e
                        } else {
                            format!("{e}; body: {}", s.body)
                        }
                    });
                    case(
                        &format!("smoke/{}", s.predictor),
                        s.latency_ms.unwrap_or(0),
                        why.as_deref().map(|w| ("failure", "failed", w)),
                    );
                }
                continue;
            }
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
mod tests {
    use super::*;
    use seldon_deploy::ops::smoke::SmokeResult;
    use seldon_deploy::report::{PhaseRecord, PhaseTimer};

    #[test]
    fn tables_show_each_phase_and_the_total() {
        let mut r = Report::new("iris", "seldon");
        r.phases.push(PhaseRecord {
            name: "create".into(),
            start: "2026-01-01T00:00:00Z".into(),
            duration_ms: 1234,
            outcome: "ok".into(),
            detail: None,
        });
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

    fn smoke_result(predictor: &str, error: Option<&str>) -> SmokeResult {
        SmokeResult {
            predictor: predictor.into(),
            deployment: Some(format!("iris-{predictor}-0-classifier")),
            pod: Some(format!("iris-{predictor}-0-classifier-abc")),
            port: Some(8000),
            method: "POST".into(),
            path: "/api/v1.0/predictions".into(),
            status: Some(if error.is_some() { 500 } else { 200 }),
            latency_ms: Some(7),
            body: if error.is_some() { "oops <b>" } else { "{}" }.into(),
            outcome: if error.is_some() { "failed" } else { "ok" }.into(),
            error: error.map(Into::into),
        }
    }

    #[test]
    fn the_smoke_test_is_one_case_and_one_row_per_predictor() {
        let mut r = Report::new("iris", "ns");
        r.phases
            .push(PhaseTimer::start("wait-rollout").finish("ok", None));
        r.phases
            .push(PhaseTimer::start("smoke").finish("failed", Some("smoke test failed".into())));
        r.smoke = vec![
            smoke_result("main", None),
            smoke_result("canary", Some("HTTP 500")),
        ];
        let xml = junit("seldon-deploy apply", &[r.clone()]);
        assert!(
            xml.contains(r#"tests="3" failures="1" errors="0""#),
            "{xml}"
        );
        assert!(xml.contains(r#"name="smoke/main" time="0.007"/>"#), "{xml}");
        assert!(
            xml.contains(r#"name="smoke/canary" time="0.007">"#)
                && xml.contains(r#"message="HTTP 500; body: oops &lt;b&gt;""#),
            "{xml}"
        );
        assert!(
            !xml.contains(r#"name="smoke" "#),
            "no case for the phase itself: {xml}"
        );
        let t = smoke_table(&r);
        let rows: Vec<&str> = t.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), 3, "{t}");
        assert!(
            rows[2].starts_with("canary") && rows[2].contains("500") && rows[2].contains("failed"),
            "{t}"
        );
        assert!(
            rows[2].ends_with("POST /api/v1.0/predictions  iris-canary-0-classifier-abc"),
            "{t}"
        );
        assert_eq!(smoke_table(&Report::new("x", "ns")), "");
    }

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
}
