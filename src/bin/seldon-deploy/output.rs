//! Rendering progress updates: a live line on a terminal, timestamped lines otherwise.

use std::io::Write;
use std::time::Duration;

use seldon_deploy::report::{self, Report, Summary, fmt_ms};
use seldon_deploy::run::{Update, UpdateKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// Where and how progress is written.
pub struct Renderer {
    /// Rewrite a live line in place (stdout is a terminal and one deployment runs).
    live: bool,
    /// Write to stderr (JSON mode keeps stdout for the document).
    to_stderr: bool,
    /// Prefix lines with the deployment name (several run at once).
    tagged: bool,
    phase: Option<(String, Instant)>,
    status: String,
    live_shown: bool,
}

impl Renderer {
    pub fn new(live: bool, to_stderr: bool, tagged: bool) -> Self {
        Renderer {
            live: live && !tagged,
            to_stderr,
            tagged,
            phase: None,
            status: String::new(),
            live_shown: false,
        }
    }

    fn write(&mut self, s: &str) {
        if self.to_stderr {
            let _ = std::io::stderr().write_all(s.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
    }

    fn clear_live(&mut self) {
        if self.live_shown {
            self.write("\r\x1b[2K");
            self.live_shown = false;
        }
    }

    /// A permanent line (above the live line on a terminal).
    fn line(&mut self, deployment: &str, text: &str) {
        self.clear_live();
        let line = if self.live {
            format!("{text}\n")
        } else {
            let ts = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
            if self.tagged {
                format!("{ts} [{deployment}] {text}\n")
            } else {
                format!("{ts} {text}\n")
            }
        };
        self.write(&line);
        self.draw_live();
    }

    fn draw_live(&mut self) {
        if !self.live {
            return;
        }
        let Some((phase, started)) = &self.phase else {
            return;
        };
        let elapsed = fmt_ms(u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
        let text = format!("[{phase} {elapsed}] {}", self.status);
        let width = terminal_width();
        let text: String = text.chars().take(width.saturating_sub(1)).collect();
        self.write(&format!("\r\x1b[2K{text}"));
        self.live_shown = true;
    }

    pub fn handle(&mut self, u: &Update) {
        let d = u.deployment.as_str();
        match &u.kind {
            UpdateKind::PhaseStarted(p) => {
                self.phase = Some((p.clone(), Instant::now()));
                self.status = "started".into();
                if self.live {
                    self.draw_live();
                } else {
                    self.line(d, &format!("{p}: started"));
                }
            }
            UpdateKind::Readiness { phase, readiness } => {
                self.status = readiness.summary();
                if self.live {
                    self.draw_live();
                } else {
                    self.line(d, &format!("{phase}: {}", self.status.clone()));
                }
            }
            UpdateKind::Deleting {
                phase,
                sdep_present,
                deployments,
            } => {
                self.status = format!(
                    "{}{} Deployment(s) left",
                    if *sdep_present {
                        "SeldonDeployment present; "
                    } else {
                        "SeldonDeployment gone; "
                    },
                    deployments.len()
                );
                if self.live {
                    self.draw_live();
                } else {
                    self.line(d, &format!("{phase}: {}", self.status.clone()));
                }
            }
            UpdateKind::Hint(h) => self.line(d, &format!("note: {h}")),
            UpdateKind::Event(e) => self.line(d, &format!("  event: {e}")),
            UpdateKind::PhaseFinished(rec) => {
                let detail = rec
                    .detail
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                self.phase = None;
                self.line(
                    d,
                    &format!(
                        "{}: {} in {}{detail}",
                        rec.name,
                        rec.outcome,
                        fmt_ms(rec.duration_ms)
                    ),
                );
            }
            _ => {}
        }
    }

    /// Refreshes the elapsed time on the live line.
    pub fn tick(&mut self) {
        if self.live && self.phase.is_some() {
            self.draw_live();
        }
    }

    pub fn finish(&mut self) {
        self.clear_live();
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// Consumes updates until the channel closes.
pub async fn render(mut rx: UnboundedReceiver<Update>, mut r: Renderer) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            u = rx.recv() => match u {
                Some(u) => r.handle(&u),
                None => break,
            },
            _ = tick.tick() => r.tick(),
        }
    }
    r.finish();
}

/// The closing text for one report: the phase table (stdout) and the result (stdout on
/// success, stderr on failure, so pipelines capture it where they look for errors).
pub fn closing_text(rep: &Report) -> (String, String) {
    let table = format!("\n{}", report::phase_table(rep));
    let result = result_line(rep);
    if rep.succeeded() && rep.left_behind.is_empty() {
        (format!("{table}{result}"), String::new())
    } else {
        (table, result)
    }
}

pub fn result_line(rep: &Report) -> String {
    let mut s = String::new();
    match &rep.error {
        None => s.push_str(&format!(
            "OK: seldondeployment/{} in namespace {}{}\n",
            rep.name,
            rep.namespace,
            if rep.kept { " (kept)" } else { "" }
        )),
        Some(e) => {
            s.push_str(&format!("FAILED (exit {}): {e}\n", rep.exit_code));
            if let Some(st) = &rep.final_status {
                s.push_str(&format!("last status: {}\n", st.summary()));
            }
            let tail: Vec<_> = rep.events.iter().rev().take(5).collect();
            if !tail.is_empty() {
                s.push_str("last events:\n");
                for e in tail.into_iter().rev() {
                    s.push_str(&format!("  {e}\n"));
                }
            }
        }
    }
    for l in &rep.left_behind {
        s.push_str(&format!("left behind: {l}\n"));
    }
    s
}

/// The closing text for several reports: table (stdout) and per-deployment failures (stderr).
pub fn closing_summary(sum: &Summary) -> (String, String) {
    let table = format!("\n{}", report::summary_table(sum));
    let mut s = String::new();
    for r in &sum.deployments {
        if r.error.is_some() || !r.left_behind.is_empty() {
            s.push_str(&format!("[{}] ", r.name));
            s.push_str(&result_line(r));
        }
    }
    s.push_str(&format!(
        "{}: {} deployment(s), exit {}\n",
        if sum.exit_code == 0 { "OK" } else { "FAILED" },
        sum.deployments.len(),
        sum.exit_code
    ));
    if sum.exit_code == 0 {
        (format!("{table}{s}"), String::new())
    } else {
        (table, s)
    }
}
