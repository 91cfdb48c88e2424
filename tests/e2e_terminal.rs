//! The live view as a person sees it: the binary runs six SeldonDeployments on the local
//! control plane inside a real pseudo-terminal, and a terminal emulator (`vt100`) renders what
//! it writes. The screen is checked at points in time, each reached by waiting (bounded) for
//! the output that makes it, never by sleeping: one deployment's Warning is on screen while
//! the others run, no deployment's row is lost, the rows follow a resize, and the end is the
//! usual table and `FAILED` block, with no colour under `NO_COLOR`.

mod support;

use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::Value;
use support::Cluster;

/// Rows and columns of the pseudo-terminal: tall enough that nothing scrolls off, so the last
/// screen shows everything the run printed above its rows.
const ROWS: u16 = 120;
const COLS: u16 = 160;

/// Bounds each wait for a screen state, only so a broken view fails instead of hanging.
const WAIT: Duration = Duration::from_secs(150);

/// The emulator fed by the binary's output, as it arrives.
struct Screen {
    parser: vt100::Parser,
    /// A second, blank emulator fed only what comes after a resize: what the binary draws
    /// at the new size, without the old lines the emulator merely cut to it.
    fresh: Option<vt100::Parser>,
    chunks: Receiver<Vec<u8>>,
}

/// A screen's text, one line per terminal row (printed lines that fill the whole width count
/// as wrapped in the emulator's own `contents`).
fn text_of(parser: &vt100::Parser) -> String {
    let scr = parser.screen();
    let cols = scr.size().1;
    let rows: Vec<String> = scr.rows(0, cols).map(|r| r.trim_end().to_owned()).collect();
    rows.join("\n").trim_end().to_owned()
}

impl Screen {
    /// The screen's text (the fresh one's after a resize).
    fn text(&self) -> String {
        text_of(self.fresh.as_ref().unwrap_or(&self.parser))
    }

    fn process(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
        if let Some(fresh) = &mut self.fresh {
            fresh.process(bytes);
        }
    }

    /// The terminal is now `rows`×`cols`: the screen cuts its lines to it, and a fresh one
    /// starts.
    fn resize(&mut self, rows: u16, cols: u16) {
        self.parser.screen_mut().set_size(rows, cols);
        self.fresh = Some(vt100::Parser::new(rows, cols, 0));
    }

    /// Feeds output until `state` holds on the rendered screen; returns that screen's text.
    /// Panics with the screen when the output ends or the bound passes first.
    fn wait_for(&mut self, what: &str, state: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if state(&text) {
                return text;
            }
            match self
                .chunks
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(bytes) => self.process(&bytes),
                Err(RecvTimeoutError::Timeout) => panic!("no screen with {what}:\n{text}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the output ended before a screen with {what}:\n{text}")
                }
            }
        }
    }

    /// Feeds the rest of the output (the binary has exited) and returns the whole screen's
    /// text (the one that has seen all of it).
    fn rest(&mut self) -> String {
        while let Ok(bytes) = self.chunks.recv_timeout(WAIT) {
            self.process(&bytes);
        }
        self.fresh = None;
        self.text()
    }
}

/// The live block: the summary line `D/6 done, F failed, R running` and the rows under it
/// (each starting with a deployment's name), when the screen shows a whole one: the summary's
/// running count equals the rows, and every row is one line (a row wider than the terminal
/// would wrap onto a line that starts with no name).
fn block<'s>(screen: &'s str, names: &[&str]) -> Option<(usize, Vec<&'s str>)> {
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines.iter().position(|l| l.ends_with(" running"))?;
    let (done, rest) = lines[at].split_once("/6 done, ")?;
    let running: usize = rest
        .split(", ")
        .nth(1)?
        .strip_suffix(" running")?
        .parse()
        .ok()?;
    let rows: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .copied()
        .collect();
    let well_formed = rows.len() == running
        && rows.iter().all(|r| {
            names
                .iter()
                .any(|n| r.strip_prefix(n).is_some_and(|t| t.starts_with("  ")))
        });
    well_formed
        .then(|| (done.parse().ok(), rows))
        .and_then(|(d, r)| Some((d?, r)))
}

/// Every deployment is on screen: a row in the block, or its `finished` line above it, and
/// the block counts the finished ones as done.
fn none_lost(screen: &str, names: &[&str]) -> bool {
    let Some((done, rows)) = block(screen, names) else {
        return false;
    };
    let finished = |n: &str| screen.contains(&format!("[{n}] finished: "));
    let row = |n: &str| rows.iter().any(|r| r.starts_with(&format!("{n}  ")));
    names.iter().all(|n| row(n) != finished(n))
        && done == names.iter().filter(|n| finished(n)).count()
}

/// The binary running in a pseudo-terminal of [`ROWS`]×[`COLS`], its output read as it comes.
struct Running {
    screen: Screen,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    pty: Box<dyn portable_pty::MasterPty + Send>,
    read: std::thread::JoinHandle<()>,
}

/// Starts `seldon-deploy ARGS` in a fresh pseudo-terminal, under `NO_COLOR`.
fn start(args: &[&str]) -> Running {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_seldon-deploy"));
    cmd.env_remove("KUBECONFIG");
    cmd.env_remove("COLUMNS");
    cmd.env_remove("LINES");
    cmd.env("TERM", "xterm-256color");
    cmd.env("NO_COLOR", "1");
    cmd.args(args);
    let child = pty.slave.spawn_command(cmd).expect("spawn in the pty");
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().expect("pty reader");
    let (tx, chunks) = std::sync::mpsc::channel();
    let read = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // Ends with EOF or EIO once the binary has exited and the pty is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Running {
        screen: Screen {
            parser: vt100::Parser::new(ROWS, COLS, 0),
            fresh: None,
            chunks,
        },
        child,
        pty: pty.master,
        read,
    }
}

#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn six_deployments_on_a_terminal_one_warning_on_screen_and_no_row_lost() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("terminal").await;
    let dir = tempfile::tempdir().unwrap();
    let slow = ["t-0", "t-1", "t-2", "t-3", "t-4"];
    // Pods Ready after 8 s: every row stays on screen while the Warning arrives.
    let mut manifests: Vec<Value> = slow
        .iter()
        .map(|n| support::slow_manifest(n, "8s"))
        .collect();
    // The operator cannot reconcile it: a Warning `InternalError` Event, then state Failed.
    manifests.push(support::failing_manifest("t-bad"));
    for (i, m) in manifests.iter().enumerate() {
        support::write_json(dir.path(), &format!("{i}.json"), m);
    }
    let names: Vec<&str> = slow.iter().copied().chain(["t-bad"]).collect();

    let args = [
        "run",
        "-n",
        &ns.name,
        "-f",
        dir.path().to_str().unwrap(),
        "--concurrency",
        "6",
        "--timeout",
        "2m",
        // t-bad's Failed state ends its run after this grace, before the others finish.
        "--failed-grace",
        "10s",
        "--kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
    ];
    let Running {
        mut screen,
        mut child,
        pty,
        read,
    } = start(&args);

    // While they run: the Warning scrolled above the rows, every deployment accounted for.
    let warning = "[t-bad]   event: Warning InternalError seldon-controller-manager";
    let s = screen.wait_for("the Warning and every deployment", |s| {
        s.contains(warning) && none_lost(s, &names)
    });
    assert!(
        !s.contains("event: Normal"),
        "Normal Events go into their row, they do not scroll:\n{s}"
    );

    // Narrower: the binary draws its rows again, cut to the new width, each one line (rows
    // drawn for 160 columns would wrap onto lines that start with no name).
    let narrow = 72;
    pty.resize(PtySize {
        rows: ROWS,
        cols: narrow,
        pixel_width: 0,
        pixel_height: 0,
    })
    .expect("resize");
    screen.resize(ROWS, narrow);
    let s = screen.wait_for("rows redrawn at the new width", |s| {
        block(s, &names).is_some_and(|(_, rows)| rows.len() >= 2)
    });
    let (_, rows) = block(&s, &names).unwrap();
    assert!(
        rows.iter().all(|r| r.contains(" │ ")),
        "rows show phase, status and event:\n{s}"
    );

    // The end: the block is gone; the table and the FAILED block as in a pipe.
    let status = child.wait().expect("wait for the binary");
    drop(pty);
    let s = screen.rest();
    read.join().unwrap();
    assert_eq!(status.exit_code(), 1, "{s}");
    assert!(
        block(&s, &names).is_none(),
        "the live block is cleared:\n{s}"
    );
    let lines: Vec<&str> = s.lines().collect();
    let table = lines
        .iter()
        .position(|l| l.starts_with("DEPLOYMENT "))
        .unwrap_or_else(|| panic!("no summary table:\n{s}"));
    for n in &names {
        assert!(
            lines[table..]
                .iter()
                .any(|l| l.starts_with(&format!("{n} "))),
            "{n} in the table:\n{s}"
        );
    }
    assert!(s.contains("[t-bad] FAILED (exit "), "{s}");
    assert!(s.contains("FAILED: 6 deployment(s), exit 1"), "{s}");
    // Above the table only what must not be missed: phase results, Warnings, notes, the
    // finished lines. No Normal Event, no row left behind.
    let allowed = |l: &str| {
        let Some((name, text)) = l.strip_prefix('[').and_then(|l| l.split_once("] ")) else {
            return l.starts_with("warning: ");
        };
        names.contains(&name)
            && (text.starts_with("  event: Warning ")
                || text.starts_with("finished: ")
                || text.starts_with("note: ")
                || text
                    .split_once(": ")
                    .is_some_and(|(_, r)| r.contains(" in ")))
    };
    // Lines printed after the resize wrap at 72 columns: a row that starts no line of its
    // own (no `[name] ` or `warning: `) continues the one above.
    let mut logical: Vec<String> = Vec::new();
    for l in lines[..table].iter().filter(|l| !l.trim().is_empty()) {
        let starts =
            l.starts_with("warning: ") || names.iter().any(|n| l.starts_with(&format!("[{n}] ")));
        match logical.last_mut() {
            Some(last) if !starts => last.push_str(l),
            _ => logical.push((*l).to_owned()),
        }
    }
    for l in &logical {
        assert!(allowed(l), "{l:?} scrolled above the rows:\n{s}");
    }
    assert!(
        logical.iter().any(|l| l.contains(warning)),
        "the Warning stays on screen:\n{s}"
    );
    // NO_COLOR: nothing styled.
    let scr = screen.parser.screen();
    for r in 0..ROWS {
        for c in 0..narrow {
            let cell = scr.cell(r, c).unwrap();
            assert!(
                cell.fgcolor() == vt100::Color::Default && !cell.bold(),
                "styled text at {r},{c} under NO_COLOR:\n{s}"
            );
        }
    }
    for n in &names {
        ns.assert_nothing_left(n).await;
    }
    ns.cleanup().await;
}

/// `-vv`: every Normal Event printed in full, once, and the trace log too, all above the row:
/// lines for stderr from the runtime's thread go through the live view, so none lands inside
/// its region and leaves a stale copy of the row behind.
#[tokio::test]
#[ignore = "needs the local control plane: run scripts/test.sh"]
async fn with_verbose_the_events_and_the_debug_log_print_above_the_row_and_leave_no_stale_row() {
    let cluster = Cluster::get();
    let ns = cluster.namespace("terminal-v").await;
    let (_dir, file) = support::manifest_file(&support::sdep_manifest(
        "tv",
        serde_json::json!({}),
        serde_json::json!({}),
    ));
    let Running {
        mut screen,
        mut child,
        pty,
        read,
    } = start(&[
        "run",
        "-vv",
        "-n",
        &ns.name,
        "-f",
        &file,
        "--kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
    ]);
    let status = child.wait().expect("wait for the binary");
    drop(pty);
    let s = screen.rest();
    read.join().unwrap();
    assert_eq!(status.exit_code(), 0, "{s}");
    let lines: Vec<&str> = s.lines().collect();
    let table = lines
        .iter()
        .position(|l| l.starts_with("PHASE "))
        .unwrap_or_else(|| panic!("no phase table:\n{s}"));
    let above = &lines[..table];
    assert!(
        above.iter().any(|l| l.starts_with("  event: Normal ")),
        "Normal Events in full:\n{s}"
    );
    assert!(
        above
            .iter()
            .any(|l| l.contains("DEBUG") || l.contains("TRACE")),
        "the log:\n{s}"
    );
    // A row is `PHASE Ns  │ …`; once the run has ended none may be left on screen.
    let stale: Vec<&&str> = above
        .iter()
        .filter(|l| {
            let mut words = l.split(' ');
            let phase = words.next().unwrap_or_default();
            let secs = words.next().unwrap_or_default();
            ["create", "wait-ready", "scale", "wait-scaled", "delete"].contains(&phase)
                && secs.ends_with('s')
                && l.contains("  │ ")
        })
        .collect();
    assert!(stale.is_empty(), "stale rows {stale:?}:\n{s}");
    // Each Event once (a repeat updates the row).
    let events: Vec<&&str> = above
        .iter()
        .filter(|l| l.starts_with("  event: "))
        .collect();
    let mut unique = events.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(events.len(), unique.len(), "{s}");
    ns.assert_nothing_left("tv").await;
    ns.cleanup().await;
}
