//! The live view on a terminal: one row per running deployment (its phase, the time in it,
//! ready/desired per component and its latest Event, cut to the terminal's width), under a
//! summary line when several run. Above the rows only what a person must not miss scrolls:
//! phase results, Warnings (each once; a repeat updates its row), notes and failures. Normal
//! Events go into their row only (`-v` also prints each one in full, once).
//!
//! The region is `indicatif`'s `MultiProgress`: it redraws the rows in place, prints lines
//! above them, cuts rows to the terminal's width and their number to its height, reads the
//! size at each draw (so it follows a resize), and leaves colour to `console`, which honours
//! `NO_COLOR`. It draws on the calling thread, the renderer's own (see `output::spawn`), so
//! a terminal that stops reading never stops the run's runtime.

use std::collections::HashSet;
use std::time::Instant;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use seldon_deploy::events::EventRecord;
use seldon_deploy::judge::readiness::Readiness;
use seldon_deploy::run::{Update, UpdateKind};

use crate::output::{deleting_status, phase_result};

/// Longest name column; longer names are cut in the rows (the scrolled lines keep them).
const NAME_WIDTH: usize = 30;

/// The live region and what its rows show.
pub struct LiveView {
    mp: MultiProgress,
    /// Several deployments: rows carry names, lines are tagged, and a summary line leads.
    tagged: bool,
    /// `-v`: Normal Events are printed in full too.
    verbose: bool,
    /// Deployments in first-seen order (finished ones keep their entry for the counts).
    rows: Vec<Row>,
    /// `done/total done, F failed, R running`, above the rows (several deployments only),
    /// so it stays on screen when the rows outnumber the terminal's lines.
    summary: Option<ProgressBar>,
    total: usize,
    /// Width of the name column.
    name_width: usize,
    /// The terminal's height now, to count the rows it cannot show.
    height: Box<dyn Fn() -> usize + Send>,
}

/// One deployment.
struct Row {
    name: String,
    /// Its line in the region, while it runs.
    bar: Option<ProgressBar>,
    /// Current phase and when it started.
    phase: Option<(String, Instant)>,
    /// Readiness or deletion progress.
    status: String,
    /// Its latest Event, short.
    event: String,
    /// Events already printed above the rows (by object, reason, message): a repeat only
    /// updates the row.
    printed: HashSet<(String, String, String)>,
    /// Exit code, once finished.
    exit_code: Option<u8>,
}

impl LiveView {
    /// A live view on stdout.
    pub fn stdout(tagged: bool, verbose: bool) -> Self {
        let height = || usize::from(console::Term::stdout().size().0);
        Self::with_target(
            ProgressDrawTarget::stdout(),
            Box::new(height),
            tagged,
            verbose,
        )
    }

    /// A live view drawing to `target`, whose height `height` tells (tests draw into an
    /// in-memory terminal).
    pub fn with_target(
        target: ProgressDrawTarget,
        height: Box<dyn Fn() -> usize + Send>,
        tagged: bool,
        verbose: bool,
    ) -> Self {
        let mp = MultiProgress::with_draw_target(target);
        let summary = tagged.then(|| {
            let bar = mp.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("{wide_msg}").expect("valid template"));
            bar
        });
        LiveView {
            mp,
            tagged,
            verbose,
            rows: Vec::new(),
            summary,
            total: 0,
            name_width: 0,
            height,
        }
    }

    /// Sets the number of deployments, for the summary line.
    pub fn set_total(&mut self, total: usize) {
        self.total = total;
        self.draw_summary();
    }

    /// Takes one update.
    pub fn handle(&mut self, u: &Update) {
        let d = u.deployment.as_str();
        match &u.kind {
            UpdateKind::PhaseStarted(p) => {
                let row = self.row(d);
                row.phase = Some((p.clone(), Instant::now()));
                row.status = "started".into();
                self.draw(d);
            }
            UpdateKind::Readiness { readiness, .. } => {
                self.row(d).status = compact(d, readiness);
                self.draw(d);
            }
            UpdateKind::Deleting {
                sdep_present,
                deployments,
                ..
            } => {
                self.row(d).status = deleting_status(*sdep_present, deployments.len());
                self.draw(d);
            }
            UpdateKind::Event(e) => self.event(d, e),
            UpdateKind::Hint(h) => self.println(d, &format!("note: {h}")),
            UpdateKind::Warning(w) => {
                // On stderr, where warnings are looked for, as in the log.
                let text = style(format!("warning: {w}")).yellow().to_string();
                self.mp.suspend(|| eprintln!("{text}"));
            }
            UpdateKind::PhaseFinished(rec) => {
                let text = phase_result(rec);
                let text = if rec.outcome == "ok" {
                    text
                } else {
                    style(text).red().to_string()
                };
                self.row(d).phase = None;
                self.println(d, &text);
                self.draw(d);
            }
            UpdateKind::Finished { outcome, exit_code } => {
                let row = self.row(d);
                row.exit_code = Some(*exit_code);
                if let Some(bar) = row.bar.take() {
                    bar.finish_and_clear();
                    self.mp.remove(&bar);
                }
                if self.tagged {
                    let text = format!("finished: {outcome} (exit {exit_code})");
                    let text = if *exit_code == 0 {
                        text
                    } else {
                        style(text).red().bold().to_string()
                    };
                    self.println(d, &text);
                }
                self.draw_summary();
            }
            // `UpdateKind` is non-exhaustive: what this view does not know yet, it leaves out.
            _ => {}
        }
    }

    /// An Event: into its row; above the rows too when it is a Warning (or with `-v`), the
    /// first time it is seen.
    fn event(&mut self, d: &str, e: &EventRecord) {
        let warning = e.type_ != "Normal";
        let short = format!("{} {}: {}", e.reason, e.object, e.message);
        let short = match (warning, e.count > 1) {
            (true, true) => format!("{} {short} (x{})", e.type_, e.count),
            (true, false) => format!("{} {short}", e.type_),
            (false, true) => format!("{short} (x{})", e.count),
            (false, false) => short,
        };
        let verbose = self.verbose;
        let row = self.row(d);
        row.event = short;
        let key = (e.object.clone(), e.reason.clone(), e.message.clone());
        let first = !row.printed.contains(&key);
        if first && (warning || verbose) {
            row.printed.insert(key);
            let text = format!("  event: {e}");
            let text = if warning {
                style(text).yellow().to_string()
            } else {
                text
            };
            self.println(d, &text);
        }
        self.draw(d);
    }

    /// Text for stderr (with its newlines), above the rows.
    pub fn eprint(&self, text: &str) {
        self.mp.suspend(|| {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
        });
    }

    /// A line above the rows, tagged with the deployment when several run.
    fn println(&self, d: &str, text: &str) {
        let line = if self.tagged {
            format!("[{d}] {text}")
        } else {
            text.to_owned()
        };
        // Only fails when the terminal is gone; there is nobody left to tell.
        let _ = self.mp.println(line);
    }

    /// The row of deployment `d`, created (at the end) when first seen.
    fn row(&mut self, d: &str) -> &mut Row {
        let i = match self.rows.iter().position(|r| r.name == d) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    name: d.to_owned(),
                    bar: None,
                    phase: None,
                    status: String::new(),
                    event: String::new(),
                    printed: HashSet::new(),
                    exit_code: None,
                });
                if self.tagged {
                    self.name_width = self.name_width.max(d.chars().count().min(NAME_WIDTH));
                }
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// Redraws the row of `d` (adding its line when it runs a phase and has none yet).
    fn draw(&mut self, d: &str) {
        let name_width = self.name_width;
        let tagged = self.tagged;
        let Some(row) = self.rows.iter_mut().find(|r| r.name == d) else {
            return;
        };
        if row.exit_code.is_none() && row.bar.is_none() && row.phase.is_some() {
            let bar = self.mp.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{prefix:.bold}{wide_msg}").expect("valid template"),
            );
            row.bar = Some(bar);
        }
        if let Some(bar) = &row.bar {
            if tagged {
                let name: String = row.name.chars().take(name_width).collect();
                bar.set_prefix(format!("{name:<name_width$}  "));
            }
            bar.set_message(row.text());
        }
        self.draw_summary();
    }

    fn draw_summary(&self) {
        let Some(summary) = &self.summary else {
            return;
        };
        let done = self.rows.iter().filter(|r| r.exit_code.is_some()).count();
        let failed = self
            .rows
            .iter()
            .filter(|r| r.exit_code.is_some_and(|c| c != 0))
            .count();
        let running = self.rows.iter().filter(|r| r.bar.is_some()).count();
        // The region stops at the terminal's last line: one for this summary, one a row each.
        let hidden = running.saturating_sub((self.height)().saturating_sub(1));
        let hidden = if hidden > 0 {
            format!(" ({hidden} not shown)")
        } else {
            String::new()
        };
        summary.set_message(format!(
            "{done}/{} done, {failed} failed, {running} running{hidden}",
            self.total.max(self.rows.len())
        ));
    }

    /// Refreshes the elapsed times.
    pub fn tick(&mut self) {
        for row in &self.rows {
            if let Some(bar) = &row.bar {
                bar.set_message(row.text());
            }
        }
    }

    /// Clears the region: the closing table follows.
    pub fn finish(&mut self) {
        for row in &mut self.rows {
            if let Some(bar) = row.bar.take() {
                bar.finish_and_clear();
            }
        }
        if let Some(summary) = self.summary.take() {
            summary.finish_and_clear();
        }
        let _ = self.mp.clear();
    }
}

impl Row {
    /// `create 12s  Creating default-0-classifier 1/2  │ Scheduled Pod/x: assigned`.
    fn text(&self) -> String {
        let mut s = match &self.phase {
            Some((phase, started)) => format!("{phase} {}", seconds(started.elapsed())),
            None => String::new(),
        };
        for part in [&self.status, &self.event] {
            if !part.is_empty() {
                if !s.is_empty() {
                    s.push_str("  │ ");
                }
                s.push_str(part);
            }
        }
        s
    }
}

/// Whole seconds: `7s`, `2m05s`.
fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Readiness in a row's room: the state, then ready/desired per component (with `U updated,
/// O old` in a rollout), each named without the deployment's own name in front.
fn compact(deployment: &str, r: &Readiness) -> String {
    let mut s = r.state.clone().unwrap_or_else(|| "no state yet".into());
    let prefix = format!("{deployment}-");
    for c in &r.components {
        let name = c.name.strip_prefix(&prefix).unwrap_or(&c.name);
        s.push_str(&format!(" {name} {}", c.progress()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;
    use seldon_deploy::report::PhaseTimer;

    fn update(d: &str, kind: UpdateKind) -> Update {
        Update {
            deployment: d.into(),
            kind,
        }
    }

    fn event(d: &str, type_: &str, reason: &str, message: &str, count: i32) -> Update {
        update(
            d,
            UpdateKind::Event(EventRecord {
                time: None,
                type_: type_.into(),
                reason: reason.into(),
                source: "seldon-controller-manager".into(),
                object: format!("SeldonDeployment/{d}"),
                message: message.into(),
                count,
                after_delete: false,
            }),
        )
    }

    /// Renders `updates` on an in-memory terminal of `rows` lines and 100 columns; returns the
    /// screen, with each elapsed time (`create Ns`) shown as `create Ns`.
    fn screen_of(rows: u16, tagged: bool, verbose: bool, updates: &[Update]) -> String {
        let term = InMemoryTerm::new(rows, 100);
        let mut view = LiveView::with_target(
            ProgressDrawTarget::term_like(Box::new(term.clone())),
            Box::new(move || usize::from(rows)),
            tagged,
            verbose,
        );
        view.set_total(2);
        for u in updates {
            view.handle(u);
        }
        view.tick();
        let mut out = String::new();
        for line in term.contents().lines() {
            let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
            for i in 1..words.len() {
                let seconds = words[i]
                    .strip_suffix('s')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
                if seconds && words[i - 1] == "create" {
                    words[i] = "Ns".into();
                }
            }
            out.push_str(&words.join(" "));
            out.push('\n');
        }
        out
    }

    fn screen(tagged: bool, verbose: bool, updates: &[Update]) -> String {
        screen_of(20, tagged, verbose, updates)
    }

    #[test]
    fn normal_events_go_into_their_row_and_warnings_scroll_once() {
        let s = screen(
            true,
            false,
            &[
                update("a", UpdateKind::PhaseStarted("create".into())),
                update("b", UpdateKind::PhaseStarted("create".into())),
                event(
                    "a",
                    "Normal",
                    "Updated",
                    "Updated SeldonDeployment \"a\"",
                    1,
                ),
                event("b", "Warning", "InternalError", "no such server", 1),
                event(
                    "a",
                    "Normal",
                    "Updated",
                    "Updated SeldonDeployment \"a\"",
                    2,
                ),
                event("b", "Warning", "InternalError", "no such server", 2),
            ],
        );
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "[b]   event: Warning InternalError seldon-controller-manager SeldonDeployment/b: no such server",
                "0/2 done, 0 failed, 2 running",
                "a  create Ns  │ started  │ Updated SeldonDeployment/a: Updated SeldonDeployment \"a\" (x2)",
                "b  create Ns  │ started  │ Warning InternalError SeldonDeployment/b: no such server (x2)",
            ],
            "{s}"
        );
    }

    #[test]
    fn with_verbose_normal_events_are_printed_in_full_once() {
        let s = screen(
            false,
            true,
            &[
                update("a", UpdateKind::PhaseStarted("create".into())),
                event("a", "Normal", "Updated", "Updated", 1),
                event("a", "Normal", "Updated", "Updated", 2),
            ],
        );
        assert_eq!(
            s.lines().collect::<Vec<_>>(),
            [
                "  event: Normal Updated seldon-controller-manager SeldonDeployment/a: Updated",
                "create Ns  │ started  │ Updated SeldonDeployment/a: Updated (x2)",
            ],
            "{s}"
        );
    }

    #[test]
    fn a_finished_deployment_leaves_its_row_and_its_results_scroll() {
        let s = screen(
            true,
            false,
            &[
                update("a", UpdateKind::PhaseStarted("create".into())),
                update("b", UpdateKind::PhaseStarted("create".into())),
                update(
                    "a",
                    UpdateKind::PhaseFinished(PhaseTimer::start("create").finish("ok", None)),
                ),
                update(
                    "a",
                    UpdateKind::Finished {
                        outcome: "success".into(),
                        exit_code: 0,
                    },
                ),
            ],
        );
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with("[a] create: ok in "), "{s}");
        assert_eq!(
            lines[1..],
            [
                "[a] finished: success (exit 0)",
                "1/2 done, 0 failed, 1 running",
                "b  create Ns  │ started",
            ],
            "{s}"
        );
    }

    #[test]
    fn the_summary_counts_the_rows_the_terminal_cannot_show() {
        let starts: Vec<Update> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|d| update(d, UpdateKind::PhaseStarted("create".into())))
            .collect();
        let s = screen_of(4, true, false, &starts);
        assert_eq!(
            s.lines().collect::<Vec<_>>(),
            [
                "0/5 done, 0 failed, 5 running (2 not shown)",
                "a  create Ns  │ started",
                "b  create Ns  │ started",
                "c  create Ns  │ started",
            ],
            "{s}"
        );
    }

    #[test]
    fn rows_are_cut_to_the_terminal_width() {
        let long = "x".repeat(300);
        let s = screen(
            false,
            false,
            &[
                update("a", UpdateKind::PhaseStarted("create".into())),
                event("a", "Normal", "Updated", &long, 1),
            ],
        );
        assert_eq!(s.lines().count(), 1, "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 100), "{s}");
    }
}
