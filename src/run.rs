//! The lifecycle driver: runs steps as timed phases, streams events and progress, and cleans
//! up what it created on failure, timeout or interruption.
//!
//! Clean-up rules:
//! - only an object this run created is ever deleted, and only by its UID;
//! - if the create fails (including "already exists"), nothing is deleted;
//! - with `keep`, nothing is deleted and the report says how to delete later;
//! - if the object was removed by someone else, there is nothing to clean up;
//! - the clean-up delete gets its own bounded deadline and is not cancelled by the first
//!   interrupt (the CLI exits at once on a second one, printing the [`Ledger`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, Signal};
use crate::events::{self, EventFilter, EventRecord};
use crate::judge::freshness::{Renders, SpecUpdate};
use crate::judge::readiness::Readiness;
use crate::model::components::Target;
use crate::model::manifest::Manifest;
use crate::ops::{Deployer, Handle, WaitEvent};
use crate::report::{PhaseRecord, PhaseTimer, Report, Rollback, Summary};

mod drain;

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Replica count to scale to (default 2).
    pub replicas: i32,
    /// Bound on each phase (default 5 minutes).
    pub timeout: Duration,
    /// Skip the final delete and any clean-up.
    pub keep: bool,
    /// Bound on the clean-up delete after a failure or interrupt (default 30 s).
    pub cleanup_timeout: Duration,
    /// `apply --atomic`: when the rollout fails, times out or is interrupted, undo what the
    /// update changed, unless another writer changed the spec since (or delete the object
    /// `apply` created).
    pub atomic: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            replicas: 2,
            timeout: Duration::from_secs(300),
            keep: false,
            cleanup_timeout: Duration::from_secs(30),
            atomic: false,
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create from the manifest (`create`).
    Create,
    /// Wait for readiness (`wait-ready` for the manifest's counts, `wait-scaled` for N).
    Wait(Target),
    /// Scale every component to N (`scale`).
    Scale(i32),
    /// Delete and wait until gone (`delete`).
    Delete,
    /// Create, or update the live object to the manifest (`apply`). A following
    /// `Wait(Target::Rollout { .. })` waits for that update's rollout.
    Apply,
}

impl Step {
    /// The phase name used in output and reports.
    #[must_use]
    pub fn phase_name(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Wait(Target::Initial) => "wait-ready",
            Step::Wait(Target::Replicas(_)) => "wait-scaled",
            Step::Wait(Target::Rollout { .. }) => "wait-rollout",
            Step::Scale(_) => "scale",
            Step::Delete => "delete",
            Step::Apply => "apply",
        }
    }
}

/// The full lifecycle: create, wait, scale to `n`, wait, delete.
#[must_use]
pub fn lifecycle_steps(n: i32, keep: bool) -> Vec<Step> {
    let mut s = vec![
        Step::Create,
        Step::Wait(Target::Initial),
        Step::Scale(n),
        Step::Wait(Target::Replicas(n)),
    ];
    if !keep {
        s.push(Step::Delete);
    }
    s
}

/// `apply`: create or update, then wait until the rollout is complete.
#[must_use]
pub fn apply_steps() -> Vec<Step> {
    vec![
        Step::Apply,
        Step::Wait(Target::Rollout { status_after: None }),
    ]
}

/// What the steps act on.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A manifest to create (plans starting with [`Step::Create`]).
    Manifest(&'a Manifest),
    /// An existing object, by name.
    Existing(&'a str),
}

/// Cancels a run and remembers which signal did it.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    token: CancellationToken,
    signal: Arc<OnceLock<Signal>>,
}

impl Interrupt {
    /// A fresh, untriggered interrupt.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers it (the first signal wins).
    pub fn trigger(&self, signal: Signal) {
        let _ = self.signal.set(signal);
        self.token.cancel();
    }

    /// The signal, once triggered.
    #[must_use]
    pub fn signal(&self) -> Option<Signal> {
        self.signal.get().copied()
    }

    /// Completes when triggered.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }
}

/// Objects created and not yet deleted, and creates still in flight, for the "left behind"
/// message on a hard exit.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Entries>>);

#[derive(Debug, Default)]
struct Entries {
    created: Vec<Handle>,
    /// `(namespace, name)` of creates sent whose answer has not arrived yet.
    creating: Vec<(String, String)>,
    /// `apply --atomic` updates that are live and not yet confirmed good or undone.
    updates: Vec<LiveUpdate>,
}

/// An `apply --atomic` update that may still have to be undone.
#[derive(Debug, Clone)]
struct LiveUpdate {
    handle: Handle,
    /// Its `seldon-deploy.io/apply-id`.
    apply_id: String,
    state: UpdateState,
}

/// Where an `apply --atomic` update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateState {
    /// Live; no restore sent.
    Live,
    /// The restore is being sent (or its answer awaited): either may be live.
    RestoreSent,
    /// The restore is stored (at this resourceVersion, if it needed a write); its rollout has
    /// not been confirmed ready.
    Restored(Option<u64>),
}

impl LiveUpdate {
    fn describe(&self) -> String {
        let (n, ns, id) = (&self.handle.name, &self.handle.namespace, &self.apply_id);
        let marker = crate::ops::APPLY_ID_ANNOTATION;
        match self.state {
            UpdateState::Live => format!(
                "seldondeployment/{n} -n {ns}: the update is live and was not rolled back \
                 (annotation {marker}={id}); re-apply the previous manifest to roll back"
            ),
            UpdateState::RestoreSent => format!(
                "seldondeployment/{n} -n {ns}: the restore was sent but not confirmed; the update \
                 is still live while annotation {marker}={id} is there (check with: kubectl get sdep {n} -n {ns} -o yaml)"
            ),
            UpdateState::Restored(rv) => format!(
                "seldondeployment/{n} -n {ns}: the restore is complete{}, but its rollout was not \
                 confirmed ready (check with: seldon-deploy wait {n} -n {ns})",
                rv.map(|rv| format!(" (resourceVersion {rv})"))
                    .unwrap_or_default()
            ),
        }
    }
}

impl Ledger {
    fn add(&self, h: &Handle) {
        if let Ok(mut e) = self.0.lock() {
            e.created.push(h.clone());
        }
    }

    fn remove(&self, h: &Handle) {
        if let Ok(mut e) = self.0.lock() {
            e.created.retain(|x| x.uid != h.uid);
        }
    }

    /// Records a create about to be sent; [`Ledger::create_settled`] clears it.
    fn creating(&self, namespace: &str, name: &str) {
        if let Ok(mut e) = self.0.lock() {
            e.creating.push((namespace.to_owned(), name.to_owned()));
        }
    }

    /// Clears a create recorded by [`Ledger::creating`], recording the object if it was made
    /// (under one lock, so a concurrent [`Ledger::describe`] never misses it).
    fn create_settled(&self, namespace: &str, name: &str, created: Option<&Handle>) {
        if let Ok(mut e) = self.0.lock() {
            e.creating.retain(|(ns, n)| !(ns == namespace && n == name));
            e.created.extend(created.cloned());
        }
    }

    /// Records where an `apply --atomic` update of `h` stands (`None`: settled, nothing to
    /// say on a hard exit).
    fn update_state(&self, h: &Handle, apply_id: &str, state: Option<UpdateState>) {
        if let Ok(mut e) = self.0.lock() {
            e.updates.retain(|u| u.handle.uid != h.uid);
            if let Some(state) = state {
                e.updates.push(LiveUpdate {
                    handle: h.clone(),
                    apply_id: apply_id.to_owned(),
                    state,
                });
            }
        }
    }

    /// What may be left behind: `seldondeployment/NAME -n NAMESPACE (uid …)` for each object
    /// created and not yet deleted, then one line for each create whose answer has not
    /// arrived yet (it may have gone through), then one for each `apply --atomic` update not
    /// yet settled: live, its restore sent, or its restore complete but not yet ready.
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|e| {
                e.created
                    .iter()
                    .map(describe)
                    .chain(e.creating.iter().map(|(ns, n)| {
                        format!(
                            "seldondeployment/{n} -n {ns} (create request in flight: it may have gone through; \
                             check with: kubectl get sdep {n} -n {ns})"
                        )
                    }))
                    .chain(e.updates.iter().map(LiveUpdate::describe))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The message for an exit that skips clean-up (a second Ctrl-C): what may be left behind,
    /// or that nothing is.
    #[must_use]
    pub fn exit_message(&self) -> String {
        let left = self.describe();
        if left.is_empty() {
            return "exiting at once; nothing created by this run is left behind".to_owned();
        }
        let only_updates = self
            .0
            .lock()
            .is_ok_and(|e| e.created.is_empty() && e.creating.is_empty());
        let mut msg = String::from(if only_updates {
            "exiting at once, with an --atomic rollback unfinished:"
        } else {
            "exiting at once; left behind:"
        });
        for l in left {
            msg.push_str("\n  ");
            msg.push_str(&l);
        }
        msg
    }
}

fn describe(h: &Handle) -> String {
    format!(
        "seldondeployment/{} -n {} (uid {})",
        h.name, h.namespace, h.uid
    )
}

/// A progress message from a run, tagged with the SeldonDeployment's name.
#[derive(Debug, Clone)]
pub struct Update {
    /// SeldonDeployment name.
    pub deployment: String,
    /// What happened.
    pub kind: UpdateKind,
}

/// Kinds of [`Update`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub enum UpdateKind {
    /// A phase began.
    PhaseStarted(String),
    /// New readiness evaluation during a wait.
    Readiness {
        /// Phase name.
        phase: String,
        /// The evaluation.
        readiness: Readiness,
    },
    /// Deletion progress.
    Deleting {
        /// Phase name.
        phase: String,
        /// The object itself still exists.
        sdep_present: bool,
        /// Owned Deployments left.
        deployments: Vec<String>,
    },
    /// Advice for the user.
    Hint(String),
    /// Something the run goes on without (sent once per process), e.g. Events it may not
    /// read.
    Warning(String),
    /// An Event.
    Event(EventRecord),
    /// A phase ended.
    PhaseFinished(PhaseRecord),
    /// The run of this deployment ended (its report is complete).
    Finished {
        /// The report's outcome (`success`, `failed`, …).
        outcome: String,
        /// The report's exit code.
        exit_code: u8,
    },
}

/// Everything a run needs besides its subject and options.
#[derive(Clone)]
pub struct Context {
    /// The deployer (client + namespace).
    pub deployer: Deployer,
    /// Cancellation.
    pub interrupt: Interrupt,
    /// Objects created and not yet deleted.
    pub ledger: Ledger,
    /// Where progress goes (`None`: nowhere).
    pub updates: Option<UnboundedSender<Update>>,
    /// Warnings already sent, so each is shown once however many lifecycles hit it.
    warned: Arc<Mutex<Vec<String>>>,
}

impl Context {
    /// A context without progress output.
    #[must_use]
    pub fn new(deployer: Deployer) -> Self {
        Context {
            deployer,
            interrupt: Interrupt::new(),
            ledger: Ledger::default(),
            updates: None,
            warned: Arc::default(),
        }
    }

    /// Sends a [`UpdateKind::Warning`] unless the same text was sent before.
    fn warn_once(&self, deployment: &str, text: String) {
        let first = self.warned.lock().is_ok_and(|mut seen| {
            let new = !seen.contains(&text);
            if new {
                seen.push(text.clone());
            }
            new
        });
        if first {
            self.send(deployment, UpdateKind::Warning(text));
        }
    }

    fn send(&self, deployment: &str, kind: UpdateKind) {
        if let Some(tx) = &self.updates {
            let _ = tx.send(Update {
                deployment: deployment.to_owned(),
                kind,
            });
        }
    }
}

/// Runs the full lifecycle of one manifest.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// use seldon_deploy::{cluster::connect, model::manifest, run, Deployer};
///
/// let conn = connect::connect(&Default::default()).await?;
/// let ctx = run::Context::new(Deployer::new(conn.client, &conn.namespace));
/// let m = &manifest::load("examples/spec-replicas.yaml")?[0];
/// let report = run::run(&ctx, m, &run::RunOptions::default()).await;
/// println!("{}", serde_json::to_string_pretty(&report).unwrap());
/// # Ok(()) }
/// ```
pub async fn run(ctx: &Context, manifest: &Manifest, opts: &RunOptions) -> Report {
    let steps = lifecycle_steps(opts.replicas, opts.keep);
    execute(ctx, Subject::Manifest(manifest), &steps, opts).await
}

/// Runs `steps` (e.g. [`lifecycle_steps`]) on each of several manifests, at most
/// `concurrency` at a time, and returns their reports in input order. Each is isolated: one
/// failing does not stop the others, and a slow one does not keep the next from starting
/// (they finish in any order). They share one watch per resource in the namespace (see
/// [`crate::cluster::cache`]), held for the whole call, so the API load grows neither with their
/// number nor when they run one after another.
pub async fn run_many(
    ctx: &Context,
    manifests: &[Manifest],
    steps: &[Step],
    opts: &RunOptions,
    concurrency: usize,
) -> Summary {
    let mut ctx = ctx.clone();
    let cache = ctx.deployer.cache();
    let narrowed_to_one = cache.only().is_some_and(|only| {
        manifests.len() != 1 || manifests.first().is_some_and(|m| m.name != only)
    });
    if !cache.is_shared() || narrowed_to_one {
        ctx.deployer = ctx.deployer.with_shared_watches();
    }
    let _retained = ctx.deployer.cache().retain();
    let ctx = &ctx;
    // `buffer_unordered`, not `buffered`: a finished lifecycle frees its slot at once, even
    // while one started before it is still running.
    let mut reports: Vec<(usize, Report)> = futures::stream::iter(manifests.iter().enumerate())
        .map(|(i, m)| async move { (i, execute(ctx, Subject::Manifest(m), steps, opts).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    reports.sort_by_key(|(i, _)| *i);
    Summary::new(reports.into_iter().map(|(_, r)| r).collect())
}

/// Background event collection for one run.
struct EventTask {
    collected: Arc<Mutex<Vec<EventRecord>>>,
    failed: CancellationToken,
    error: Arc<Mutex<Option<Error>>>,
    /// Set when the run goes on without Events (not allowed to read them).
    warning: Arc<Mutex<Option<String>>>,
    /// When the last Event arrived (for [`drain`]).
    last_event: tokio::sync::watch::Receiver<Option<Instant>>,
    /// Set once the run has seen its object gone: Events from then on are marked
    /// [`EventRecord::after_delete`].
    after_delete: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

/// The warning for a run that may not read Events, or `None` when `e` must stop the run.
/// Events are a view of the run, not its job: only missing rights on them are forgiven.
fn events_denied(e: &Error) -> Option<String> {
    match e {
        Error::Forbidden {
            verb,
            resource,
            namespace,
            ..
        } if resource == "events" => Some(format!(
            "not allowed to {verb} events in namespace {namespace:?}: going on without events \
             (grant list and watch on events to see them)"
        )),
        _ => None,
    }
}

impl EventTask {
    /// Follows the Events of `handle`'s object. With `replay`, those already there are shown
    /// too; either way none older than `since` (server clock).
    fn start(
        ctx: &Context,
        handle: &Handle,
        predicted: Vec<String>,
        replay: bool,
        since: Option<Timestamp>,
    ) -> Self {
        let filter = EventFilter {
            name: handle.name.clone(),
            uid: handle.uid.clone(),
            since,
            replay_existing: replay,
            deployment_names: predicted,
        };
        let mut stream = events::follow_in(ctx.deployer.cache(), filter);
        let collected = Arc::new(Mutex::new(Vec::new()));
        let failed = CancellationToken::new();
        let error = Arc::new(Mutex::new(None));
        let warning = Arc::new(Mutex::new(None));
        let (arrived, last_event) = tokio::sync::watch::channel(None);
        let after_delete = Arc::new(AtomicBool::new(false));
        let (c2, f2, e2, w2, d2, ctx2, name) = (
            collected.clone(),
            failed.clone(),
            error.clone(),
            warning.clone(),
            after_delete.clone(),
            ctx.clone(),
            handle.name.clone(),
        );
        let handle = tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(mut ev) => {
                        ev.after_delete = d2.load(Ordering::Relaxed);
                        ctx2.send(&name, UpdateKind::Event(ev.clone()));
                        if let Ok(mut v) = c2.lock() {
                            v.push(ev);
                        }
                        arrived.send_replace(Some(Instant::now()));
                    }
                    Err(e) => {
                        if let Some(w) = events_denied(&e) {
                            ctx2.warn_once(&name, w.clone());
                            if let Ok(mut slot) = w2.lock() {
                                *slot = Some(w);
                            }
                            return;
                        }
                        if let Ok(mut slot) = e2.lock() {
                            *slot = Some(e);
                        }
                        f2.cancel();
                        return;
                    }
                }
            }
        });
        EventTask {
            collected,
            failed,
            error,
            warning,
            last_event,
            after_delete,
            handle,
        }
    }

    /// The run has seen its object gone: what arrives from now on is marked as after the
    /// delete.
    fn seen_gone(&self) {
        self.after_delete.store(true, Ordering::Relaxed);
    }

    fn take_error(&self) -> Error {
        self.error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| Error::EventWatch {
                reason: "it ended without reporting why".into(),
            })
    }

    /// Stops following, after listening as [`drain::listen`] says when `listen` holds the run's
    /// context (with the object the run `deleted`, if it did, and the clean-up timeout);
    /// returns the Events seen, the warning (if the run went on without them), and the error
    /// of a late child that outlived the wait for it.
    async fn stop(
        mut self,
        listen: Option<(&Context, Option<&Handle>, Duration)>,
    ) -> (Vec<EventRecord>, Option<String>, Result<()>) {
        let mut result = Ok(());
        if let Some((ctx, deleted, cleanup_timeout)) = listen {
            if deleted.is_some() {
                self.seen_gone();
            }
            result = drain::listen_in(ctx, &mut self.last_event, deleted, cleanup_timeout).await;
        }
        self.handle.abort();
        let _ = self.handle.await;
        let events = self.collected.lock().map(|v| v.clone()).unwrap_or_default();
        let warning = self.warning.lock().ok().and_then(|mut w| w.take());
        (events, warning, result)
    }
}

/// Runs `steps` on `subject` as timed phases, with events, clean-up and a report.
///
/// A plan on an [`Subject::Existing`] object never deletes anything unless it contains
/// [`Step::Delete`]; a plan with [`Step::Create`] cleans up on failure unless `opts.keep`.
pub async fn execute(
    ctx: &Context,
    subject: Subject<'_>,
    steps: &[Step],
    opts: &RunOptions,
) -> Report {
    let d = &ctx.deployer;
    let name = match subject {
        Subject::Manifest(m) => m.name.clone(),
        Subject::Existing(n) => n.to_owned(),
    };
    let mut report = Report::new(&name, d.namespace());
    if let Subject::Manifest(m) = subject {
        report.source = Some(m.origin());
    }
    let predicted: Vec<String> = match subject {
        Subject::Manifest(m) => m
            .components
            .iter()
            .filter_map(|c| c.deployment_name.clone())
            .collect(),
        Subject::Existing(_) => Vec::new(),
    };

    let mut handle: Option<Handle> = None;
    let mut events: Option<EventTask> = None;
    // Taken once there is an object: shared watches then stay up between phases.
    let mut watches = None;
    // What this run made or changed, so what its aftermath may clean up or undo.
    let mut owned = Owned::Nothing;
    let mut failure: Option<Error> = None;
    // After an `apply` that changed the object: the update's resourceVersion (for the
    // rollout wait).
    let mut update_revision: Option<u64> = None;
    // The update, as the rollout wait follows it.
    let mut update: Option<SpecUpdate> = None;
    let applying = steps.contains(&Step::Apply);
    // The Delete step saw the object gone.
    let mut deleted = false;

    if let Subject::Existing(n) = subject {
        match d
            .handle_and_server_time(n, Instant::now() + opts.timeout)
            .await
        {
            Ok((h, server_now)) => {
                watches = Some(d.keep_watches_running());
                // Events from now on, "now" on the server's clock (Event times are the
                // server's). Without a Date header the watch's first list is the only
                // boundary: what it holds is not shown.
                events = Some(EventTask::start(
                    ctx,
                    &h,
                    predicted.clone(),
                    false,
                    server_now,
                ));
                handle = Some(h);
            }
            Err(e) => failure = Some(e),
        }
    }

    for step in steps {
        if failure.is_some() {
            break;
        }
        if let Some(sig) = ctx.interrupt.signal() {
            failure = Some(Error::Interrupted { signal: sig });
            break;
        }
        let phase = step.phase_name();
        ctx.send(&name, UpdateKind::PhaseStarted(phase.into()));
        let timer = PhaseTimer::start(phase);
        let deadline = Instant::now() + opts.timeout;
        let result: Result<Option<String>> = match (step, subject, handle.clone()) {
            (Step::Create, Subject::Manifest(m), _) => {
                // Not cancellable: dropping an in-flight POST could leave an object we do not
                // know about. The interrupt is honoured right after it returns.
                ctx.ledger.creating(d.namespace(), &m.name);
                let created_now = d.create(m, deadline).await;
                ctx.ledger
                    .create_settled(d.namespace(), &m.name, created_now.as_ref().ok());
                match created_now {
                    Ok(h) => {
                        owned = Owned::Created;
                        report.uid = Some(h.uid.clone());
                        watches = Some(d.keep_watches_running());
                        // Everything since the object was created (server clock).
                        let since = h.created_at.as_deref().and_then(|t| t.parse().ok());
                        events = Some(EventTask::start(ctx, &h, predicted.clone(), true, since));
                        let detail = format!("uid {}", h.uid);
                        handle = Some(h);
                        Ok(Some(detail))
                    }
                    Err(e) => Err(e),
                }
            }
            (Step::Apply, Subject::Manifest(m), _) => match d.apply(m, deadline).await {
                Ok(a) => {
                    report.change = Some(a.change);
                    report.images = crate::model::merge::image_changes(a.before.as_ref(), &a.after);
                    report.uid = Some(a.handle.uid.clone());
                    if a.change == crate::model::merge::Change::Created {
                        ctx.ledger.add(&a.handle);
                        owned = Owned::Created;
                    } else {
                        update_revision = a.revision;
                        if a.change == crate::model::merge::Change::Updated
                            && let Some(before) = a.before
                        {
                            update = a.revision.map(|revision| SpecUpdate {
                                revision,
                                renders: Renders::between(&before, &a.after),
                                status: a.after.get("status").cloned(),
                            });
                            let apply_id = a.apply_id.clone().unwrap_or_default();
                            if opts.atomic {
                                ctx.ledger.update_state(
                                    &a.handle,
                                    &apply_id,
                                    Some(UpdateState::Live),
                                );
                            }
                            owned = Owned::Updated(Updated {
                                before,
                                wrote: a.after.clone(),
                                apply_id,
                            });
                        }
                    }
                    watches = Some(d.keep_watches_running());
                    // Created: everything since its creation. Updated or unchanged: from now
                    // on, where the watch's first list is the boundary (no client clock).
                    let created = matches!(owned, Owned::Created);
                    let since = if created {
                        a.handle.created_at.as_deref().and_then(|t| t.parse().ok())
                    } else {
                        None
                    };
                    events = Some(EventTask::start(
                        ctx,
                        &a.handle,
                        predicted.clone(),
                        created,
                        since,
                    ));
                    let detail = match a.revision {
                        Some(rv) => format!("{} (resourceVersion {rv})", a.change),
                        None => a.change.to_string(),
                    };
                    handle = Some(a.handle);
                    Ok(Some(detail))
                }
                Err(e) => Err(e),
            },
            (Step::Create | Step::Apply, Subject::Existing(_), _) => {
                Err(Error::Usage(format!("{phase} needs a manifest")))
            }
            (_, _, None) => Err(Error::Usage("no object to act on".into())),
            (Step::Wait(target), _, Some(h)) => {
                let target = match target {
                    Target::Rollout { .. } => &Target::Rollout {
                        status_after: update_revision,
                    },
                    other => other,
                };
                let mut last: Option<Readiness> = None;
                let mut obs = |ev: WaitEvent<'_>| forward(ctx, &name, phase, ev, &mut last);
                let waited = async {
                    match (target, &update) {
                        (Target::Rollout { .. }, Some(u)) => {
                            d.wait_rollout(&h, u.clone(), deadline, &mut obs).await
                        }
                        _ => d.wait_ready(&h, *target, deadline, &mut obs).await,
                    }
                };
                let r = cancellable(ctx, events.as_ref(), waited).await;
                report.final_status = match &r {
                    Ok(r) => Some(r.clone()),
                    Err(_) => last.or(report.final_status.take()),
                };
                r.map(|_| None)
            }
            (Step::Scale(n), _, Some(h)) => {
                cancellable(ctx, events.as_ref(), d.scale(&h, *n, deadline))
                    .await
                    .map(|plan| Some(format!("set {}", plan.paths.join(", "))))
            }
            (Step::Delete, _, Some(h)) => {
                let mut last = None;
                let following = events.as_ref();
                let mut obs = |ev: WaitEvent<'_>| {
                    if let (
                        WaitEvent::Deleting {
                            sdep_present: false,
                            ..
                        },
                        Some(t),
                    ) = (&ev, following)
                    {
                        t.seen_gone();
                    }
                    forward(ctx, &name, phase, ev, &mut last);
                };
                let r = cancellable(ctx, following, d.delete(&h, deadline, &mut obs)).await;
                if r.is_ok() {
                    deleted = true;
                    if let Owned::Created = owned {
                        owned = Owned::Deleted;
                    }
                    ctx.ledger.remove(&h);
                }
                r.map(|()| None)
            }
        };
        let record = match result {
            Ok(detail) => timer.finish("ok", detail),
            Err(e) => {
                let rec = timer.finish(e.outcome(), Some(e.to_string()));
                failure = Some(e);
                rec
            }
        };
        ctx.send(&name, UpdateKind::PhaseFinished(record.clone()));
        report.phases.push(record);
    }

    match (aftermath(&owned, failure.as_ref(), opts, applying), &handle) {
        (Aftermath::Forget, Some(h)) => ctx.ledger.remove(h),
        (Aftermath::Keep, _) => report.kept = true,
        (Aftermath::CleanUp, Some(h)) => {
            cleanup(ctx, h, opts, &mut report).await;
            if applying {
                report.rollback = Some(Rollback {
                    outcome: if report.left_behind.is_empty() {
                        "deleted"
                    } else {
                        "failed"
                    }
                    .into(),
                    error: report
                        .left_behind
                        .first()
                        .map(|l| format!("could not delete {l}")),
                });
            }
        }
        (Aftermath::RollBack, Some(h)) => {
            if let (Owned::Updated(upd), Some(cause)) = (&owned, failure.take()) {
                failure = Some(rollback(ctx, h, upd, cause, opts, &mut report).await);
            }
        }
        (Aftermath::LeaveUpdate, _) => {
            failure = failure.take().map(|cause| Error::Rollout {
                aftermath: format!(
                    "the update stays in place{}: re-apply the previous manifest to roll back, or use --atomic to roll back automatically",
                    if opts.atomic { "" } else { " (no --atomic)" }
                ),
                cause: Box::new(cause),
            });
        }
        _ => {}
    }
    if let (Owned::Updated(upd), Some(h)) = (&owned, &handle) {
        ctx.ledger.update_state(h, &upd.apply_id, None);
    }
    if report.kept
        && let Some(h) = &handle
    {
        ctx.ledger.remove(h);
        ctx.send(
                &name,
                UpdateKind::Hint(format!(
                    "kept seldondeployment/{} in namespace {}; delete it later with: seldon-deploy delete {} -n {} (or kubectl delete sdep {} -n {})",
                    h.name, h.namespace, h.name, h.namespace, h.name, h.namespace
                )),
            );
    }

    if let Some(t) = events {
        // Controllers' event recorders write asynchronously: after a success the run listens
        // until the Events are in, and until a child recreated after its delete is gone (see
        // `drain`). It delays the exit, not the phase timings.
        let deleted = handle.as_ref().filter(|_| deleted);
        let listen = failure
            .is_none()
            .then_some((ctx, deleted, opts.cleanup_timeout));
        let (seen, warning, late) = t.stop(listen).await;
        report.events = seen;
        report.warnings.extend(warning);
        if let Err(e) = late {
            failure = Some(e);
        }
    }
    if let Some(e) = &failure {
        report.fail(e);
    }
    drop(watches);
    report.watch = d.stats().snapshot();
    ctx.send(
        &name,
        UpdateKind::Finished {
            outcome: report.outcome.clone(),
            exit_code: report.exit_code,
        },
    );
    report
}

/// What a run has made or changed, and so what its aftermath may clean up or undo: never
/// anything else.
enum Owned {
    /// Nothing: it acts on an object it found (or has not got that far).
    Nothing,
    /// The object it created, still there.
    Created,
    /// The object it created, which it has deleted.
    Deleted,
    /// An update `apply` made to an object that was there.
    Updated(Updated),
}

/// What happens after the steps, decided in one place: [`aftermath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aftermath {
    /// Nothing to do.
    Nothing,
    /// The created object stays, and is not this run's to clean up any more (an `apply`'s
    /// creation that succeeded; an object someone else deleted or replaced).
    Forget,
    /// The created object stays, and the report says how to delete it later.
    Keep,
    /// Delete the created object.
    CleanUp,
    /// Undo the update (`--atomic`).
    RollBack,
    /// The update stays in place; the error says how to roll it back.
    LeaveUpdate,
}

/// The one decision of what follows a run: `failure` is how it ended, if it failed.
fn aftermath(
    owned: &Owned,
    failure: Option<&Error>,
    opts: &RunOptions,
    applying: bool,
) -> Aftermath {
    let gone = matches!(failure, Some(Error::Gone { .. }));
    match (owned, failure) {
        (Owned::Nothing | Owned::Deleted, _) => Aftermath::Nothing,
        (Owned::Created, Some(_)) if gone => Aftermath::Forget,
        // `apply` without --atomic keeps what it created: it is what the user asked for.
        (Owned::Created, Some(_)) if opts.keep || (applying && !opts.atomic) => Aftermath::Keep,
        (Owned::Created, Some(_)) => Aftermath::CleanUp,
        // What `apply` creates is meant to stay; what `create` makes without a delete step is
        // kept on purpose.
        (Owned::Created, None) if applying => Aftermath::Forget,
        (Owned::Created, None) => Aftermath::Keep,
        (Owned::Updated(_), Some(_)) if opts.atomic && !gone => Aftermath::RollBack,
        (Owned::Updated(_), Some(_)) => Aftermath::LeaveUpdate,
        (Owned::Updated(_), None) => Aftermath::Nothing,
    }
}

/// An update `apply` made, for `--atomic`.
struct Updated {
    /// The object before the update.
    before: serde_json::Value,
    /// The object the update stored (the server's answer).
    wrote: serde_json::Value,
    /// The update's `seldon-deploy.io/apply-id`.
    apply_id: String,
}

/// `apply --atomic` after a failed rollout: undoes what the update changed (see
/// [`Deployer::restore`]) and waits until that is ready again, as phases `rollback` and
/// `wait-rollback`, each bounded by `--timeout`. Not cancelled by an interrupt, but bounded
/// by it: once a signal has come (before or during the rollback), both phases together end
/// within `--cleanup-timeout` of it, saying where they stopped. Returns the error that ends
/// the run: the first cause, saying what became of the update.
async fn rollback(
    ctx: &Context,
    h: &Handle,
    upd: &Updated,
    cause: Error,
    opts: &RunOptions,
    report: &mut Report,
) -> Error {
    let d = &ctx.deployer;
    let cleanup = opts.cleanup_timeout;
    // Completes `--cleanup-timeout` after the first signal (at once counting from now, if
    // the signal came before).
    let cut = async {
        ctx.interrupt.triggered().await;
        tokio::time::sleep(cleanup).await;
    };
    tokio::pin!(cut);
    let cut_off = |what: &str| Error::Timeout {
        phase: what.to_owned(),
        after: cleanup,
        detail: "--cleanup-timeout had passed since the signal".to_owned(),
    };
    let state = |s| ctx.ledger.update_state(h, &upd.apply_id, Some(s));

    ctx.send(&h.name, UpdateKind::PhaseStarted("rollback".into()));
    let timer = PhaseTimer::start("rollback");
    state(UpdateState::RestoreSent);
    let restored = tokio::select! {
        r = d.restore(h, &upd.before, &upd.wrote, Instant::now() + opts.timeout) => r,
        () = &mut cut => Err(cut_off("the rollback")),
    };
    let rec = match &restored {
        Ok(rv) => timer.finish(
            "ok",
            Some(match rv {
                Some(rv) => format!("restored what the update changed (resourceVersion {rv})"),
                None => "the previous spec was still live".to_owned(),
            }),
        ),
        Err(e) => timer.finish(e.outcome(), Some(e.to_string())),
    };
    ctx.send(&h.name, UpdateKind::PhaseFinished(rec.clone()));
    report.phases.push(rec);
    let (outcome, error, aftermath) = match restored {
        Ok(rv) => {
            state(UpdateState::Restored(rv));
            let phase = "wait-rollback";
            ctx.send(&h.name, UpdateKind::PhaseStarted(phase.into()));
            let timer = PhaseTimer::start(phase);
            let mut last = None;
            let mut obs = |ev: WaitEvent<'_>| forward(ctx, &h.name, phase, ev, &mut last);
            let deadline = Instant::now() + opts.timeout;
            let waited = async {
                match rv {
                    Some(revision) => {
                        // The rollback's own rollout: what it changes is the update undone.
                        let renders = Renders::between(&upd.wrote, &upd.before);
                        let update = SpecUpdate {
                            revision,
                            renders,
                            status: None,
                        };
                        d.wait_rollout(h, update, deadline, &mut obs).await
                    }
                    None => {
                        let target = Target::Rollout { status_after: None };
                        d.wait_ready(h, target, deadline, &mut obs).await
                    }
                }
            };
            let r = tokio::select! {
                r = waited => r,
                () = &mut cut => Err(cut_off("the rollback's rollout")),
            };
            let rec = match &r {
                Ok(_) => timer.finish("ok", None),
                Err(e) => timer.finish(e.outcome(), Some(e.to_string())),
            };
            ctx.send(&h.name, UpdateKind::PhaseFinished(rec.clone()));
            report.phases.push(rec);
            match r {
                Ok(r) => {
                    report.final_status = Some(r);
                    (
                        "restored",
                        None,
                        "rolled back to the spec that was live before the update, which is ready again"
                            .to_owned(),
                    )
                }
                Err(e) => (
                    "incomplete",
                    Some(e.to_string()),
                    format!(
                        "the restore is complete (the previous spec is live again), but its rollout was not confirmed ready: {e}"
                    ),
                ),
            }
        }
        Err(e @ Error::ChangedByOthers { .. }) => (
            "refused",
            Some(e.to_string()),
            format!("{e}; the update and their change stay in place"),
        ),
        Err(e @ Error::Timeout { .. }) => (
            "failed",
            Some(e.to_string()),
            format!(
                "the restore was sent but not confirmed within --cleanup-timeout after the signal: the update is still live while annotation {}={} is there (check with: kubectl get sdep {} -n {} -o yaml)",
                crate::ops::APPLY_ID_ANNOTATION,
                upd.apply_id,
                h.name,
                h.namespace
            ),
        ),
        Err(e) => (
            "failed",
            Some(e.to_string()),
            format!("the rollback failed too: {e}"),
        ),
    };
    report.rollback = Some(Rollback {
        outcome: outcome.into(),
        error,
    });
    Error::Rollout {
        cause: Box::new(cause),
        aftermath,
    }
}

/// Deletes what this run created after a failure, bounded by `cleanup_timeout`.
async fn cleanup(ctx: &Context, h: &Handle, opts: &RunOptions, report: &mut Report) {
    let phase = "cleanup";
    ctx.send(&h.name, UpdateKind::PhaseStarted(phase.into()));
    let timer = PhaseTimer::start(phase);
    let mut last = None;
    let mut obs = |ev: WaitEvent<'_>| forward(ctx, &h.name, phase, ev, &mut last);
    let deadline = Instant::now() + opts.cleanup_timeout;
    let rec = match ctx.deployer.delete(h, deadline, &mut obs).await {
        Ok(()) => {
            ctx.ledger.remove(h);
            timer.finish("ok", None)
        }
        Err(e) => {
            report.left_behind.push(describe(h));
            timer.finish(
                e.outcome(),
                Some(format!("could not delete {}: {e}", describe(h))),
            )
        }
    };
    ctx.send(&h.name, UpdateKind::PhaseFinished(rec.clone()));
    report.phases.push(rec);
}

/// Runs `fut` unless the run is interrupted or the event watch fails first.
async fn cancellable<T>(
    ctx: &Context,
    events: Option<&EventTask>,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let events_failed = async {
        match events {
            Some(t) => t.failed.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = fut => r,
        () = ctx.interrupt.triggered() => Err(Error::Interrupted {
            signal: ctx.interrupt.signal().unwrap_or(Signal::Int),
        }),
        () = events_failed => Err(events.map_or_else(
            || Error::EventWatch { reason: "no event watch was running".into() },
            EventTask::take_error,
        )),
    }
}

fn forward(
    ctx: &Context,
    name: &str,
    phase: &str,
    ev: WaitEvent<'_>,
    last: &mut Option<Readiness>,
) {
    let kind = match ev {
        WaitEvent::Readiness(r) => {
            *last = Some(r.clone());
            UpdateKind::Readiness {
                phase: phase.into(),
                readiness: r.clone(),
            }
        }
        WaitEvent::Deleting {
            sdep_present,
            deployments,
        } => UpdateKind::Deleting {
            phase: phase.into(),
            sdep_present,
            deployments: deployments.to_vec(),
        },
        WaitEvent::Hint(h) => UpdateKind::Hint(h.into()),
    };
    ctx.send(name, kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aftermath is one decision: each kind of ownership, ending and option, and what
    /// follows. Never anything for what the run did not make or change.
    #[test]
    fn the_aftermath_cleans_up_keeps_or_rolls_back_only_what_the_run_owns() {
        let updated = || {
            Owned::Updated(Updated {
                before: serde_json::json!({}),
                wrote: serde_json::json!({}),
                apply_id: "a".into(),
            })
        };
        let failed = Error::Timeout {
            phase: "p".into(),
            after: Duration::from_secs(1),
            detail: String::new(),
        };
        let gone = Error::Gone {
            name: "n".into(),
            uid: "u".into(),
            how: "deleted",
        };
        let plain = RunOptions::default();
        let keep = RunOptions {
            keep: true,
            ..RunOptions::default()
        };
        let atomic = RunOptions {
            atomic: true,
            ..RunOptions::default()
        };
        use Aftermath as A;
        let cases: [(Owned, Option<&Error>, &RunOptions, bool, Aftermath); 14] = [
            (Owned::Nothing, Some(&failed), &plain, false, A::Nothing),
            (Owned::Nothing, None, &atomic, true, A::Nothing),
            (Owned::Deleted, Some(&failed), &plain, false, A::Nothing),
            (Owned::Created, Some(&failed), &plain, false, A::CleanUp),
            (Owned::Created, Some(&failed), &keep, false, A::Keep),
            (Owned::Created, Some(&gone), &plain, false, A::Forget),
            (Owned::Created, None, &plain, false, A::Keep),
            (Owned::Created, None, &plain, true, A::Forget),
            (Owned::Created, Some(&failed), &plain, true, A::Keep),
            (Owned::Created, Some(&failed), &atomic, true, A::CleanUp),
            (updated(), Some(&failed), &atomic, true, A::RollBack),
            (updated(), Some(&gone), &atomic, true, A::LeaveUpdate),
            (updated(), Some(&failed), &plain, true, A::LeaveUpdate),
            (updated(), None, &atomic, true, A::Nothing),
        ];
        for (i, (owned, failure, opts, applying, want)) in cases.iter().enumerate() {
            assert_eq!(
                aftermath(owned, *failure, opts, *applying),
                *want,
                "case {i}"
            );
        }
    }

    #[test]
    fn a_create_in_flight_is_named_as_possibly_left_behind() {
        let ledger = Ledger::default();
        assert_eq!(
            ledger.exit_message(),
            "exiting at once; nothing created by this run is left behind"
        );
        ledger.creating("team-a", "iris");
        let msg = ledger.exit_message();
        assert!(!msg.contains("nothing created"), "{msg}");
        assert!(msg.contains("seldondeployment/iris -n team-a"), "{msg}");
        assert!(msg.contains("may have gone through"), "{msg}");

        let h = Handle {
            namespace: "team-a".into(),
            name: "iris".into(),
            uid: "u-1".into(),
            created_at: None,
        };
        ledger.create_settled("team-a", "iris", Some(&h));
        assert_eq!(
            ledger.describe(),
            ["seldondeployment/iris -n team-a (uid u-1)"],
            "once answered, the object itself is named"
        );
        ledger.remove(&h);
        ledger.creating("team-a", "other");
        ledger.create_settled("team-a", "other", None);
        assert!(
            ledger.describe().is_empty(),
            "a failed create leaves nothing"
        );
    }

    #[test]
    fn a_hard_exit_during_an_atomic_rollback_says_where_the_update_stands() {
        let ledger = Ledger::default();
        let h = Handle {
            namespace: "team-a".into(),
            name: "iris".into(),
            uid: "u-1".into(),
            created_at: None,
        };
        let says = |state, words: &[&str]| {
            ledger.update_state(&h, "abc", Some(state));
            let msg = ledger.exit_message();
            assert!(!msg.contains("nothing created"), "{msg}");
            assert!(msg.contains("seldondeployment/iris -n team-a"), "{msg}");
            for w in words {
                assert!(msg.contains(w), "{w:?} not in {msg}");
            }
        };
        says(
            UpdateState::Live,
            &["the update is live", "seldon-deploy.io/apply-id=abc"],
        );
        says(
            UpdateState::RestoreSent,
            &["the restore was sent", "seldon-deploy.io/apply-id=abc"],
        );
        says(
            UpdateState::Restored(Some(42)),
            &["the restore is complete", "resourceVersion 42"],
        );
        ledger.update_state(&h, "abc", None);
        assert!(ledger.describe().is_empty(), "settled: nothing to say");
    }

    #[tokio::test]
    async fn a_warning_is_sent_once_however_many_lifecycles_hit_it() {
        let (svc, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let mut ctx = Context::new(Deployer::new(kube::Client::new(svc, "ns"), "ns"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        ctx.updates = Some(tx);
        let denied = Error::Forbidden {
            verb: "watch".into(),
            resource: "events".into(),
            namespace: "ns".into(),
            name: None,
            message: "m".into(),
        };
        let text = events_denied(&denied).expect("events are optional");
        assert!(text.contains("watch events in namespace \"ns\""), "{text}");
        // Two lifecycles of one run (clones of its context) hit it.
        for (ctx, name) in [(ctx.clone(), "a"), (ctx.clone(), "b")] {
            ctx.warn_once(name, text.clone());
        }
        drop(ctx);
        let mut warnings = 0;
        while let Some(u) = rx.recv().await {
            if matches!(u.kind, UpdateKind::Warning(_)) {
                warnings += 1;
            }
        }
        assert_eq!(warnings, 1);
        // Rights on what the run acts on stay fatal.
        let deps = Error::Forbidden {
            verb: "watch".into(),
            resource: "deployments.apps".into(),
            namespace: "ns".into(),
            name: None,
            message: "m".into(),
        };
        assert!(events_denied(&deps).is_none());
    }
}
