//! Rendering progress updates: on a terminal, a live line (one per deployment when several
//! run) rewritten in place under the scrolling events; otherwise timestamped lines, tagged
//! with the deployment's name when several run.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seldon_deploy::events::EventRecord;

use seldon_deploy::report::{self, Report, Summary};

use crate::render::fmt_ms;
use seldon_deploy::run::{Update, UpdateKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// How many Events a failure's summary shows (more when several objects have Warnings).
const LAST_EVENTS: usize = 5;

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
    /// On a terminal: rows of permanent output written so far, and where each Event's line
    /// (by deployment, object, reason, message) starts and how many rows it takes, while it
    /// is still on screen, so a repeat updates its count in place.
    rows_printed: usize,
    event_lines: HashMap<EventKey, EventLine>,
    /// Tests capture the output here instead of the terminal.
    sink: Option<Arc<Mutex<Vec<u8>>>>,
}

type EventKey = (String, String, String, String);

/// Where an Event's line is on screen.
#[derive(Clone, Copy)]
struct EventLine {
    /// Value of `rows_printed` before it was written.
    row: usize,
    /// Rows it takes (long lines wrap).
    rows: usize,
}

/// Rows `text` takes on a terminal `width` columns wide.
fn rows_of(text: &str, width: usize) -> usize {
    text.chars().count().div_ceil(width.max(1)).max(1)
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
            rows_printed: 0,
            event_lines: HashMap::new(),
            sink: None,
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
        if let Some(sink) = &self.sink {
            if let Ok(mut v) = sink.lock() {
                v.extend_from_slice(s.as_bytes());
            }
        } else if self.to_stderr {
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
        let line = if self.live {
            let shown = self.on_terminal(deployment, text);
            self.rows_printed += rows_of(&shown, terminal_dims().0);
            format!("{shown}\n")
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

    /// A permanent line as a terminal shows it (without the newline).
    fn on_terminal(&self, deployment: &str, text: &str) -> String {
        if self.multi() {
            format!("[{deployment}] {text}")
        } else {
            text.to_owned()
        }
    }

    /// A warning: always on stderr, where warnings are looked for, whatever the output mode.
    fn warning(&mut self, text: &str) {
        self.clear_live();
        let text = format!("warning: {text}");
        if self.live && std::io::stderr().is_terminal() {
            // The same screen: the rows count for the in-place updates.
            self.rows_printed += rows_of(&text, terminal_dims().0);
        }
        eprintln!("{text}");
        self.draw_live();
    }

    /// An Event. In a pipe every one gets its line (a log); on a terminal a repeat of one
    /// (object, reason, message) updates the count on the line it already has, while that
    /// line is on screen, as `kubectl events` aggregates.
    fn event(&mut self, deployment: &str, e: &EventRecord) {
        let text = format!("  event: {e}");
        if !self.live {
            self.line(deployment, &text);
            return;
        }
        let key = (
            deployment.to_owned(),
            e.object.clone(),
            e.reason.clone(),
            e.message.clone(),
        );
        let (width, height) = terminal_dims();
        let shown = self.on_terminal(deployment, &text);
        let rows = rows_of(&shown, width);
        let live_rows = self.block.max(1);
        if let Some(prev) = self.event_lines.get(&key).copied() {
            let up = self.rows_printed - prev.row;
            // Same height (the text only grew by a digit or so) and still on screen.
            if prev.rows == rows && up + live_rows < height {
                self.clear_live();
                // To the start of its line, clear its rows, write it again, and back.
                let mut s = format!("\x1b[{up}F");
                for r in 0..rows {
                    s.push_str("\x1b[2K");
                    if r + 1 < rows {
                        s.push_str("\x1b[1E");
                    }
                }
                if rows > 1 {
                    s.push_str(&format!("\x1b[{}F", rows - 1));
                }
                s.push_str(&shown);
                s.push_str(&format!("\x1b[{}E", up - (rows - 1)));
                self.write(&s);
                self.draw_live();
                return;
            }
        }
        let row = self.rows_printed;
        self.line(deployment, &text);
        self.event_lines.insert(key, EventLine { row, rows });
        // Forget the lines that have scrolled away: memory stays bounded by the screen.
        let printed = self.rows_printed;
        self.event_lines.retain(|_, l| printed - l.row < height);
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
            UpdateKind::Event(e) => self.event(d, e),
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
/// Starts rendering `rx` with `r` on a thread of its own, with its own small runtime for the
/// live line's tick. Writes to stdout and stderr block when their reader stops reading (a full
/// pipe); on the process's single runtime thread that would stop every watch and timer, so
/// they happen here instead, and the run only queues updates. The handle ends once every
/// sender is dropped and the rest is written.
pub fn spawn(rx: UnboundedReceiver<Update>, r: Renderer) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt.block_on(render(rx, r)),
            Err(e) => eprintln!("warning: no progress output: cannot start its runtime: {e}"),
        }
    })
}

async fn render(mut rx: UnboundedReceiver<Update>, mut r: Renderer) {
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
    let table = format!(
        "\n{}{}",
        crate::render::phase_table(rep),
        crate::render::smoke_table(rep)
    );
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
            match (rep.change, rep.kept) {
                (Some(change), _) => format!(" ({change}, rollout complete)"),
                (None, true) => " (kept)".to_owned(),
                (None, false) => String::new(),
            }
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
            let tail = report::last_events(&rep.events, LAST_EVENTS);
            if !tail.is_empty() {
                s.push_str("last events:\n");
                for e in tail {
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
    let table = format!("\n{}", crate::render::summary_table(sum));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn updated(count: i32) -> Update {
        Update {
            deployment: "x".into(),
            kind: UpdateKind::Event(EventRecord {
                time: None,
                type_: "Normal".into(),
                reason: "Updated".into(),
                source: "seldon-controller-manager".into(),
                object: "SeldonDeployment/x".into(),
                message: "Updated SeldonDeployment \"x\"".into(),
                count,
            }),
        }
    }

    fn scheduled() -> Update {
        Update {
            deployment: "x".into(),
            kind: UpdateKind::Event(EventRecord {
                time: None,
                type_: "Normal".into(),
                reason: "Scheduled".into(),
                source: "default-scheduler".into(),
                object: "Pod/x-p-0-c-5d-a".into(),
                message: "assigned".into(),
                count: 1,
            }),
        }
    }

    /// Renders `updates` with `r` and returns what it wrote.
    fn render(mut r: Renderer, updates: &[Update]) -> String {
        let sink = Arc::new(Mutex::new(Vec::new()));
        r.sink = Some(sink.clone());
        for u in updates {
            r.handle(u);
        }
        r.finish();
        let out = sink.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    /// A reader that stops reading stdout blocks the renderer's writes, never the runtime
    /// the run's watches and timers share.
    #[test]
    fn a_stalled_output_does_not_stop_the_runtime() {
        let sink = Arc::new(Mutex::new(Vec::new()));
        // Held: every write of the renderer blocks, as on a full pipe nobody reads.
        let stalled = sink.lock().unwrap();
        let mut r = Renderer::new(false, false, false);
        r.sink = Some(sink.clone());
        let (timer_fired, fired) = std::sync::mpsc::channel();
        let run = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let render = spawn(rx, r);
                tx.send(scheduled()).unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                timer_fired.send(()).unwrap();
                drop(tx);
                render.await.unwrap();
            });
        });
        // Only a guard against hanging the suite: the timer fires at once when the runtime is free.
        let free = fired.recv_timeout(Duration::from_secs(60));
        drop(stalled);
        run.join().unwrap();
        assert!(
            free.is_ok(),
            "the runtime stopped while the output was stalled"
        );
        let out = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("Scheduled"),
            "written once the reader read again: {out:?}"
        );
    }

    #[test]
    fn in_a_pipe_every_event_is_a_line_of_the_log() {
        let out = render(
            Renderer::new(false, false, false),
            &[updated(1), scheduled(), updated(2), updated(3)],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out:?}");
        assert!(
            !out.contains('\x1b'),
            "no cursor movement in a pipe: {out:?}"
        );
        for (line, end) in lines.iter().zip([
            "event: Normal Updated seldon-controller-manager SeldonDeployment/x: Updated SeldonDeployment \"x\"",
            "event: Normal Scheduled default-scheduler Pod/x-p-0-c-5d-a: assigned",
            "Updated SeldonDeployment \"x\" (x2)",
            "Updated SeldonDeployment \"x\" (x3)",
        ]) {
            // Each line is timestamped, as a log.
            assert!(line.ends_with(end), "{line:?} ends with {end:?}");
            assert!(line.starts_with("20"), "{line:?}");
        }
    }

    #[test]
    fn on_a_terminal_a_repeat_updates_the_count_on_its_line() {
        let out = render(
            Renderer::new(true, false, false),
            &[updated(1), scheduled(), updated(2), updated(3)],
        );
        // Two lines were written; each repeat rewrote the first one (99 characters: two rows
        // of the 80-column default), three rows up, and came back.
        assert_eq!(out.matches('\n').count(), 2, "{out:?}");
        let rewrite = |n: u32| {
            format!(
                "\x1b[3F\x1b[2K\x1b[1E\x1b[2K\x1b[1F  event: Normal Updated seldon-controller-manager \
                 SeldonDeployment/x: Updated SeldonDeployment \"x\" (x{n})\x1b[2E"
            )
        };
        assert!(out.ends_with(&rewrite(3)), "{out:?}");
        assert!(out.contains(&rewrite(2)), "{out:?}");
    }

    #[test]
    fn on_a_terminal_a_line_scrolled_away_is_not_rewritten() {
        let mut updates = vec![updated(1)];
        // More lines than the screen (24 rows without a terminal) push it off.
        for i in 0..30 {
            let mut u = scheduled();
            if let UpdateKind::Event(e) = &mut u.kind {
                e.object = format!("Pod/x-{i}");
            }
            updates.push(u);
        }
        updates.push(updated(2));
        let out = render(Renderer::new(true, false, false), &updates);
        assert_eq!(out.matches('\n').count(), 32, "{out:?}");
        assert!(!out.contains("F\x1b[2K"), "{out:?}");
    }
}
