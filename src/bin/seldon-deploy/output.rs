//! Rendering progress updates: on a terminal, a live line (one per deployment when several
//! run) rewritten in place under the scrolling events; otherwise timestamped lines, tagged
//! with the deployment's name when several run.

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
    /// Several deployments on a terminal: one live row each, in first-seen order.
    rows: Vec<Row>,
    /// How many deployments the run has (for the footer).
    total: usize,
    /// Lines of the live block currently on screen.
    block: usize,
}

/// One deployment's live row.
struct Row {
    name: String,
    phase: Option<(String, Instant)>,
    status: String,
    /// The final outcome, once finished (the row then leaves the live block).
    outcome: Option<(String, u8)>,
}

impl Renderer {
    pub fn new(live: bool, to_stderr: bool, tagged: bool) -> Self {
        Renderer {
            live,
            to_stderr,
            tagged,
            phase: None,
            status: String::new(),
            live_shown: false,
            rows: Vec::new(),
            total: 0,
            block: 0,
        }
    }

    /// Sets the number of deployments, shown in the footer of the live block.
    pub fn with_total(mut self, total: usize) -> Self {
        self.total = total;
        self
    }

    /// Several deployments on a terminal.
    fn multi(&self) -> bool {
        self.live && self.tagged
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
        if self.block > 0 {
            // Up to the first line of the block, then clear to the end of the screen.
            let up = format!("\x1b[{}F\x1b[J", self.block);
            self.write(&up);
            self.block = 0;
        }
        if self.live_shown {
            self.write("\r\x1b[2K");
            self.live_shown = false;
        }
    }

    /// A permanent line (above the live line on a terminal).
    fn line(&mut self, deployment: &str, text: &str) {
        self.clear_live();
        let line = if self.multi() {
            format!("[{deployment}] {text}\n")
        } else if self.live {
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

    /// A warning: always on stderr, where warnings are looked for, whatever the output mode.
    fn warning(&mut self, text: &str) {
        self.clear_live();
        eprintln!("warning: {text}");
        self.draw_live();
    }

    fn draw_live(&mut self) {
        if self.multi() {
            self.draw_block();
            return;
        }
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

    /// Redraws the block of live rows: running deployments, then a footer with the counts.
    /// Rows are cut to the terminal's width and their number to its height, so the cursor
    /// arithmetic stays exact.
    fn draw_block(&mut self) {
        self.clear_live();
        let (width, height) = terminal_dims();
        let max_rows = height.saturating_sub(3).max(1);
        let name_w = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .min(30);
        let mut lines: Vec<String> = Vec::new();
        let running: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.outcome.is_none() && r.phase.is_some())
            .collect();
        for r in running.iter().take(max_rows) {
            let (phase, started) = r.phase.as_ref().expect("filtered on phase");
            let elapsed = fmt_ms(u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
            lines.push(format!(
                "{:<name_w$}  [{phase} {elapsed}] {}",
                r.name, r.status
            ));
        }
        let done = self.rows.iter().filter(|r| r.outcome.is_some()).count();
        let failed = self
            .rows
            .iter()
            .filter(|r| r.outcome.as_ref().is_some_and(|(_, c)| *c != 0))
            .count();
        let hidden = running.len().saturating_sub(max_rows);
        lines.push(format!(
            "{done}/{} done, {failed} failed, {} running{}",
            self.total.max(self.rows.len()),
            running.len(),
            if hidden > 0 {
                format!(" ({hidden} not shown)")
            } else {
                String::new()
            }
        ));
        let mut out = String::new();
        for l in &lines {
            let l: String = l.chars().take(width.saturating_sub(1)).collect();
            out.push_str(&l);
            out.push('\n');
        }
        self.write(&out);
        self.block = lines.len();
    }

    fn row(&mut self, name: &str) -> &mut Row {
        let i = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    name: name.to_owned(),
                    phase: None,
                    status: String::new(),
                    outcome: None,
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// Several deployments on a terminal: row updates redraw the block, the rest scrolls
    /// above it.
    fn handle_multi(&mut self, u: &Update) {
        let d = u.deployment.as_str();
        match &u.kind {
            UpdateKind::PhaseStarted(p) => {
                let row = self.row(d);
                row.phase = Some((p.clone(), Instant::now()));
                row.status = "started".into();
                self.draw_block();
            }
            UpdateKind::Readiness { readiness, .. } => {
                self.row(d).status = readiness.summary();
                self.draw_block();
            }
            UpdateKind::Deleting {
                sdep_present,
                deployments,
                ..
            } => {
                self.row(d).status = deleting_status(*sdep_present, deployments.len());
                self.draw_block();
            }
            UpdateKind::Finished { outcome, exit_code } => {
                self.row(d).outcome = Some((outcome.clone(), *exit_code));
                self.line(d, &format!("finished: {outcome} (exit {exit_code})"));
            }
            _ => self.handle_line(u),
        }
    }

    pub fn handle(&mut self, u: &Update) {
        if self.multi() {
            self.handle_multi(u);
        } else {
            self.handle_line(u);
        }
    }

    fn handle_line(&mut self, u: &Update) {
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
                self.status = deleting_status(*sdep_present, deployments.len());
                if self.live {
                    self.draw_live();
                } else {
                    self.line(d, &format!("{phase}: {}", self.status.clone()));
                }
            }
            UpdateKind::Hint(h) => self.line(d, &format!("note: {h}")),
            UpdateKind::Warning(w) => self.warning(w),
            UpdateKind::Event(e) => self.line(d, &format!("  event: {e}")),
            UpdateKind::PhaseFinished(rec) => {
                let detail = rec
                    .detail
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                self.phase = None;
                if self.multi() {
                    self.row(d).phase = None;
                }
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
        if self.multi() {
            if self.block > 0 {
                self.draw_block();
            }
        } else if self.live && self.phase.is_some() {
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

/// Width and height of the terminal on stdout: `$COLUMNS`/`$LINES`, else the terminal's own
/// size, else 80×24.
fn terminal_dims() -> (usize, usize) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let tty = terminal_size::terminal_size().map(|(w, h)| (usize::from(w.0), usize::from(h.0)));
    (
        env("COLUMNS").or(tty.map(|t| t.0)).unwrap_or(80),
        env("LINES").or(tty.map(|t| t.1)).unwrap_or(24),
    )
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
            // Invalid input names its file, also when the server is the one that found it.
            let file = match &rep.source {
                Some(src) if rep.exit_code == 2 && !e.contains(src.as_str()) => format!("{src}: "),
                _ => String::new(),
            };
            s.push_str(&format!("FAILED (exit {}): {file}{e}\n", rep.exit_code));
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

/// Progress of a deletion, for the live line.
fn deleting_status(sdep_present: bool, deployments_left: usize) -> String {
    let sdep = if sdep_present { "present" } else { "gone" };
    format!("SeldonDeployment {sdep}; {deployments_left} Deployment(s) left")
}
