//! Rendering progress updates. In a pipe (or with `-o json`/`junit`, on stderr): timestamped
//! lines, one per update, tagged with the deployment's name when several run: a log. On a
//! terminal: a calm live view (see [`live`]): one row per running deployment, and above the
//! rows only what a person must not miss scrolls (phase results, Warnings, failures).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seldon_deploy::report::{self, Report, Summary};

use crate::live::LiveView;
use crate::render::fmt_ms;
use seldon_deploy::run::{Update, UpdateKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How many Events a failure's summary shows (more when several objects have Warnings).
const LAST_EVENTS: usize = 5;

/// `-v` was given: the live view also prints every Normal Event in full.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// While the live view is on screen, lines for stderr written elsewhere (tracing's at `-v`,
/// the signal handler's notice) are queued to the renderer, which prints them above the rows:
/// written straight, they would land inside the region and leave stale rows behind. Queuing
/// never blocks the writer.
static STDERR_ROUTE: Mutex<Option<UnboundedSender<String>>> = Mutex::new(None);

/// Writes `text` to stderr, above the live view when one is on screen.
pub fn eprint(text: &str) {
    let route = STDERR_ROUTE.lock().ok().and_then(|r| r.clone());
    if let Some(tx) = route
        && tx.send(text.to_owned()).is_ok()
    {
        return;
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// tracing's writer: each event is collected, then written with [`eprint`].
pub struct Stderr(Vec<u8>);

impl Stderr {
    /// A writer for one event (tracing's `MakeWriter`).
    pub fn make() -> Self {
        Stderr(Vec::new())
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Stderr {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            eprint(&String::from_utf8_lossy(&self.0));
        }
    }
}

/// Sets whether the live view prints Normal Events in full (`-v`), once, before rendering.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Where and how progress is written.
pub struct Renderer {
    /// On a terminal: the live view (`None`: the log).
    live: Option<LiveView>,
    /// Write to stderr (JSON mode keeps stdout for the document).
    to_stderr: bool,
    /// Prefix lines with the deployment name (several run at once).
    tagged: bool,
    /// Tests capture the output here instead of the terminal.
    sink: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Renderer {
    /// `live`: stdout is a terminal and the output is text; `tagged`: several deployments.
    /// A terminal that cannot move its cursor (`TERM=dumb`, e.g. an editor's shell) gets the
    /// log.
    pub fn new(live: bool, to_stderr: bool, tagged: bool) -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Renderer {
            live: (live && !dumb)
                .then(|| LiveView::stdout(tagged, VERBOSE.load(Ordering::Relaxed))),
            to_stderr,
            tagged,
            sink: None,
        }
    }

    /// Sets the number of deployments, shown in the live view's summary line.
    pub fn with_total(mut self, total: usize) -> Self {
        if let Some(live) = &mut self.live {
            live.set_total(total);
        }
        self
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

    /// A line of the log.
    fn line(&mut self, deployment: &str, text: &str) {
        let ts = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
        let line = if self.tagged {
            format!("{ts} [{deployment}] {text}\n")
        } else {
            format!("{ts} {text}\n")
        };
        self.write(&line);
    }

    /// Takes one update.
    pub fn handle(&mut self, u: &Update) {
        if let Some(live) = &mut self.live {
            live.handle(u);
            return;
        }
        let d = u.deployment.as_str();
        match &u.kind {
            UpdateKind::PhaseStarted(p) => self.line(d, &format!("{p}: started")),
            UpdateKind::Readiness { phase, readiness } => {
                self.line(d, &format!("{phase}: {}", readiness.summary()));
            }
            UpdateKind::Deleting {
                phase,
                sdep_present,
                deployments,
            } => {
                let status = deleting_status(*sdep_present, deployments.len());
                self.line(d, &format!("{phase}: {status}"));
            }
            UpdateKind::Hint(h) => self.line(d, &format!("note: {h}")),
            // Always on stderr, where warnings are looked for, whatever the output mode.
            UpdateKind::Warning(w) => eprintln!("warning: {w}"),
            UpdateKind::Event(e) => self.line(d, &format!("  event: {e}")),
            UpdateKind::PhaseFinished(rec) => {
                let text = phase_result(rec);
                self.line(d, &text);
            }
            _ => {}
        }
    }

    /// A line for stderr from elsewhere (see [`STDERR_ROUTE`]).
    fn stderr(&mut self, text: &str) {
        match &mut self.live {
            Some(live) => live.eprint(text),
            None => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
        }
    }

    /// Refreshes the elapsed times in the live view.
    pub fn tick(&mut self) {
        if let Some(live) = &mut self.live {
            live.tick();
        }
    }

    /// Clears the live view, before the closing table is printed.
    pub fn finish(&mut self) {
        if let Some(live) = &mut self.live {
            live.finish();
        }
    }
}

/// `create: ok in 1.234s (detail)`.
pub fn phase_result(rec: &seldon_deploy::report::PhaseRecord) -> String {
    let detail = rec
        .detail
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    format!(
        "{}: {} in {}{detail}",
        rec.name,
        rec.outcome,
        fmt_ms(rec.duration_ms)
    )
}

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

/// A line for [`spawn_line_writer`].
pub enum Line {
    Stdout(String),
    Stderr(String),
}

/// Writes `-o jsonl`'s lines on a thread of its own (see [`spawn`]): each [`Line::Stdout`]
/// with a newline, each [`Line::Stderr`] as it is. The handle ends once the sender is dropped
/// and every line is written.
pub fn spawn_line_writer() -> (std::sync::mpsc::Sender<Line>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<Line>();
    let writer = tokio::task::spawn_blocking(move || {
        for line in rx {
            match line {
                Line::Stdout(s) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{s}");
                    let _ = out.flush();
                }
                Line::Stderr(s) => eprint(&s),
            }
        }
    });
    (tx, writer)
}

async fn render(mut rx: UnboundedReceiver<Update>, mut r: Renderer) {
    let (tx, mut stderr) = tokio::sync::mpsc::unbounded_channel::<String>();
    let routed = r.live.is_some();
    if routed && let Ok(mut route) = STDERR_ROUTE.lock() {
        *route = Some(tx);
    }
    // Elapsed times count in seconds; a quarter second keeps them current without churn.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            u = rx.recv() => match u {
                Some(u) => r.handle(&u),
                None => break,
            },
            Some(text) = stderr.recv() => r.stderr(&text),
            _ = tick.tick() => r.tick(),
        }
    }
    if routed && let Ok(mut route) = STDERR_ROUTE.lock() {
        *route = None;
    }
    while let Ok(text) = stderr.try_recv() {
        r.stderr(&text);
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
pub fn deleting_status(sdep_present: bool, deployments_left: usize) -> String {
    let sdep = if sdep_present { "present" } else { "gone" };
    format!("SeldonDeployment {sdep}; {deployments_left} Deployment(s) left")
}

#[cfg(test)]
mod tests {
    use super::*;
    use seldon_deploy::events::EventRecord;

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
                after_delete: false,
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
                after_delete: false,
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
}
