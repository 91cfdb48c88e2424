//! The lifecycle driver: runs steps as timed phases, streams events and progress, and cleans
//! up what it created on failure, timeout or interruption.
//!
//! Clean-up rules:
//! - only an object this run created is ever deleted, and only by its UID;
//! - if the create fails (including "already exists"), nothing is deleted;
//! - with `keep`, nothing is deleted and the report says how to delete later;
//! - if the object was removed by someone else, there is nothing to clean up;
//! - the clean-up delete gets its own bounded deadline and is not cancelled by the first
//!   interrupt (the CLI exits at once on a second one, printing the [`LeftBehind`]).

mod aftermath;
mod collected_events;
mod context;
mod drain;
mod interrupt;
mod left_behind;
mod progress;

pub use context::Context;
pub use interrupt::Interrupt;
pub use left_behind::LeftBehind;
pub use progress::{Update, UpdateKind};

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::error::{Error, Result, Signal};

use crate::judge::freshness::{Renders, SpecUpdate};
use crate::judge::readiness::Readiness;
use crate::model::components::Target;
use crate::model::manifest::Manifest;
use crate::ops::smoke::{self, SmokeOptions};
use crate::ops::{Handle, WaitEvent};
use crate::report::{PhaseTimer, Report, Rollback, Summary};
use aftermath::{Aftermath, Owned, Updated, aftermath, cleanup, rollback};
use collected_events::EventTask;
use left_behind::UpdateState;
use progress::forward;

/// Options of a run.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use seldon_deploy::run::RunOptions;
///
/// let defaults = RunOptions::default();
/// assert_eq!((defaults.replicas, defaults.timeout), (2, Duration::from_secs(300)));
/// assert_eq!(defaults.cleanup_timeout, Duration::from_secs(30));
/// assert!(!defaults.keep && !defaults.atomic);
/// let quick = RunOptions { replicas: 3, timeout: Duration::from_secs(60), ..RunOptions::default() };
/// # let _ = quick;
/// ```
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
    /// `--smoke`: what a [`Step::Smoke`] sends and how it judges the answers. With it, a run
    /// whose plan has that step first asks whether it may port-forward to pods, and refuses
    /// (exit 3) before it creates or changes anything if not.
    pub smoke: Option<SmokeOptions>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            replicas: 2,
            timeout: Duration::from_secs(300),
            keep: false,
            cleanup_timeout: Duration::from_secs(30),
            atomic: false,
            smoke: None,
        }
    }
}

/// One step of a plan.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{model::components::Target, run::Step};
///
/// assert_eq!(Step::Wait(Target::Initial).phase_name(), "wait-ready");
/// assert_eq!(Step::Wait(Target::Replicas(3)).phase_name(), "wait-scaled");
/// assert_eq!(Step::Scale(3).phase_name(), "scale");
/// ```
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
    /// Send the smoke request ([`RunOptions::smoke`]) once to each predictor (after an
    /// `apply`, to those the update touched, unless [`SmokeOptions::all`]) and judge the
    /// answers (`smoke`); see [`crate::ops::smoke`].
    Smoke,
}

impl Step {
    /// The phase name used in output and reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use seldon_deploy::{model::components::Target, run::Step};
    ///
    /// let rollout = Step::Wait(Target::Rollout { status_after: None });
    /// assert_eq!(rollout.phase_name(), "wait-rollout");
    /// assert_eq!(Step::Apply.phase_name(), "apply");
    /// ```
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
            Step::Smoke => "smoke",
        }
    }
}

/// The full lifecycle: create, wait, scale to `n`, wait, delete.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{model::components::Target, run::{Step, lifecycle_steps}};
///
/// let phases: Vec<_> = lifecycle_steps(3, false).into_iter().map(Step::phase_name).collect();
/// assert_eq!(phases, ["create", "wait-ready", "scale", "wait-scaled", "delete"]);
/// // With `keep`, the object stays at the scaled count.
/// assert_eq!(lifecycle_steps(3, true).last(), Some(&Step::Wait(Target::Replicas(3))));
/// ```
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
///
/// # Examples
///
/// ```
/// use seldon_deploy::run::{Step, apply_steps};
///
/// let phases: Vec<_> = apply_steps().into_iter().map(Step::phase_name).collect();
/// assert_eq!(phases, ["apply", "wait-rollout"]);
/// ```
#[must_use]
pub fn apply_steps() -> Vec<Step> {
    vec![
        Step::Apply,
        Step::Wait(Target::Rollout { status_after: None }),
    ]
}

/// `steps` with a [`Step::Smoke`] after the first wait (at the end if there is none): the
/// smoke test runs once the object is ready, before anything else changes it.
#[must_use]
pub fn with_smoke(mut steps: Vec<Step>) -> Vec<Step> {
    let at = steps
        .iter()
        .position(|s| matches!(s, Step::Wait(_)))
        .map_or(steps.len(), |i| i + 1);
    steps.insert(at, Step::Smoke);
    steps
}

/// What the steps act on.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// use seldon_deploy::{Deployer, model::{components::Target, manifest}, run::{self, RunOn, Step}};
///
/// let ctx = run::Context::new(Deployer::new(conn.client, &conn.namespace));
/// let opts = run::RunOptions::default();
/// let m = &manifest::load("examples/iris-v1alpha2.yaml")?[0];
/// let created = run::execute(&ctx, RunOn::Manifest(m), &[Step::Create], &opts).await;
/// let wait = [Step::Wait(Target::Initial)];
/// let waited = run::execute(&ctx, RunOn::Existing(&m.name), &wait, &opts).await;
/// println!("{} then {}", created.outcome, waited.outcome);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub enum RunOn<'a> {
    /// A manifest to create (plans starting with [`Step::Create`]).
    Manifest(&'a Manifest),
    /// An existing object, by name.
    Existing(&'a str),
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
    execute(ctx, RunOn::Manifest(manifest), &steps, opts).await
}

/// Runs `steps` (e.g. [`lifecycle_steps`]) on each of several manifests, at most
/// `concurrency` at a time, and returns their reports in input order. Each is isolated: one
/// failing does not stop the others, and a slow one does not keep the next from starting
/// (they finish in any order). They share one watch per resource in the namespace (as
/// [`Deployer::with_shared_watches`](crate::Deployer::with_shared_watches) sets up), held for
/// the whole call, so the API load grows neither with their number nor when they run one
/// after another.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// use seldon_deploy::{Deployer, model::manifest, run};
///
/// let ctx = run::Context::new(Deployer::new(conn.client, &conn.namespace));
/// let manifests = manifest::load_all(&["examples"])?;
/// let opts = run::RunOptions::default();
/// let steps = run::lifecycle_steps(opts.replicas, opts.keep);
/// let summary = run::run_many(&ctx, &manifests, &steps, &opts, 4).await;
/// println!("{}: {} deployments", summary.outcome, summary.deployments.len());
/// std::process::exit(summary.exit_code.into());
/// # }
/// ```
pub async fn run_many(
    ctx: &Context,
    manifests: &[Manifest],
    steps: &[Step],
    opts: &RunOptions,
    concurrency: usize,
) -> Summary {
    let mut reports: Vec<(usize, Report)> = Vec::with_capacity(manifests.len());
    run_each(ctx, manifests, steps, opts, concurrency, |i, r| {
        reports.push((i, r));
    })
    .await;
    reports.sort_by_key(|(i, _)| *i);
    Summary::new(reports.into_iter().map(|(_, r)| r).collect())
}

/// As [`run_many`], but hands each report to `done` (with the manifest's index) the moment
/// its deployment ends, and keeps none: memory stays flat however many manifests run, for
/// long runs that write each result out as they go (`-o jsonl`).
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// use seldon_deploy::{Deployer, error::Outcome, model::manifest, run};
///
/// let ctx = run::Context::new(Deployer::new(conn.client, &conn.namespace));
/// let manifests = manifest::load_all(&["examples"])?;
/// let opts = run::RunOptions::default();
/// let steps = run::lifecycle_steps(opts.replicas, opts.keep);
/// let mut worst = 0;
/// run::run_each(&ctx, &manifests, &steps, &opts, 4, |i, report| {
///     println!("{}: {}", manifests[i].name, report.outcome);
///     worst = Outcome::worst_code([worst, report.exit_code]);
/// })
/// .await;
/// std::process::exit(worst.into());
/// # }
/// ```
pub async fn run_each(
    ctx: &Context,
    manifests: &[Manifest],
    steps: &[Step],
    opts: &RunOptions,
    concurrency: usize,
    mut done: impl FnMut(usize, Report),
) {
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
    let mut finished = futures::stream::iter(manifests.iter().enumerate())
        .map(|(i, m)| async move { (i, execute(ctx, RunOn::Manifest(m), steps, opts).await) })
        .buffer_unordered(concurrency.max(1));
    while let Some((i, report)) = finished.next().await {
        done(i, report);
    }
}

/// Runs `steps` on `on` as timed phases, with events, clean-up and a report.
///
/// A plan on a [`RunOn::Existing`] object never deletes anything unless it contains
/// [`Step::Delete`]; a plan with [`Step::Create`] cleans up on failure unless `opts.keep`.
///
/// # Examples
///
/// Scale an existing object and wait, as `seldon-deploy scale iris --replicas 3` does:
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// use seldon_deploy::{Deployer, model::components::Target, run::{self, RunOn, Step}};
///
/// let ctx = run::Context::new(Deployer::new(conn.client, &conn.namespace));
/// let plan = [Step::Scale(3), Step::Wait(Target::Replicas(3))];
/// let report = run::execute(&ctx, RunOn::Existing("iris"), &plan, &run::RunOptions::default()).await;
/// // A plan without `Step::Delete` on an existing object never deletes it, even on failure.
/// std::process::exit(report.exit_code.into());
/// # }
/// ```
pub async fn execute(ctx: &Context, on: RunOn<'_>, steps: &[Step], opts: &RunOptions) -> Report {
    let d = &ctx.deployer;
    let name = match on {
        RunOn::Manifest(m) => m.name.clone(),
        RunOn::Existing(n) => n.to_owned(),
    };
    let mut report = Report::new(&name, d.namespace());
    if let RunOn::Manifest(m) = on {
        report.source = Some(m.origin());
    }
    let predicted: Vec<String> = match on {
        RunOn::Manifest(m) => m
            .components
            .iter()
            .filter_map(|c| c.deployment_name.clone())
            .collect(),
        RunOn::Existing(_) => Vec::new(),
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

    // The smoke test's rights, before anything is created or changed.
    if steps.contains(&Step::Smoke)
        && opts.smoke.is_some()
        && let Err(e) = d.check_smoke_rights(Instant::now() + opts.timeout).await
    {
        failure = Some(e);
    }

    if let (RunOn::Existing(n), None) = (on, &failure) {
        match d
            .handle_and_server_time(n, Instant::now() + opts.timeout)
            .await
        {
            // A plan of only the smoke test (`seldon-deploy smoke`) changes nothing and waits
            // for nothing: no watches, no Events (nor their drain before the exit).
            Ok((h, _)) if steps.iter().all(|s| *s == Step::Smoke) => handle = Some(h),
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
        let result: Result<Option<String>> = match (step, on, handle.clone()) {
            (Step::Create, RunOn::Manifest(m), _) => {
                // Not cancellable: dropping an in-flight POST could leave an object we do not
                // know about. The interrupt is honoured right after it returns.
                ctx.left_behind.creating(d.namespace(), &m.name, "create");
                let created_now = d.create(m, deadline).await;
                ctx.left_behind
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
            (Step::Apply, RunOn::Manifest(m), _) => {
                // An apply creates the object when it is absent: until the answer, a hard
                // exit names it as possibly made.
                ctx.left_behind.creating(d.namespace(), &m.name, "apply");
                let applied = d.apply(m, deadline).await;
                let created = applied
                    .as_ref()
                    .ok()
                    .filter(|a| a.change == crate::model::merge::Change::Created)
                    .map(|a| &a.handle);
                ctx.left_behind
                    .create_settled(d.namespace(), &m.name, created);
                match applied {
                    Ok(a) => {
                        report.change = Some(a.change);
                        report.images =
                            crate::model::merge::image_changes(a.before.as_ref(), &a.after);
                        report.uid = Some(a.handle.uid.clone());
                        if a.change == crate::model::merge::Change::Created {
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
                                    ctx.left_behind.update_state(
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
                }
            }
            (Step::Create | Step::Apply, RunOn::Existing(_), _) => {
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
            (Step::Smoke, _, Some(h)) => match &opts.smoke {
                None => Err(Error::Usage("a smoke step needs RunOptions::smoke".into())),
                Some(s) => {
                    // After an update, the predictors it touched; after an unchanged apply,
                    // none; otherwise (a creation, an existing object) every one.
                    let only = match (&owned, applying && !s.all) {
                        (Owned::Updated(u), true) => {
                            Some(smoke::touched_predictors(&u.before, &u.wrote))
                        }
                        (Owned::Nothing, true) => Some(Vec::new()),
                        _ => None,
                    };
                    let r = cancellable(
                        ctx,
                        events.as_ref(),
                        d.smoke(&h, only.as_deref(), s, deadline),
                    )
                    .await;
                    match r {
                        Ok(results) => {
                            let detail = if results.is_empty() {
                                "no predictor changed, so none was tested (--smoke-all tests every one)"
                                    .to_owned()
                            } else {
                                results
                                    .iter()
                                    .map(smoke::SmokeResult::summary)
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            };
                            let failed = smoke::failure(&name, &results);
                            report.smoke = results;
                            match failed {
                                Some(e) => Err(e),
                                None => Ok(Some(detail)),
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
            },
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
                    ctx.left_behind.remove(&h);
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
        (Aftermath::Forget, Some(h)) => ctx.left_behind.remove(h),
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
        ctx.left_behind.update_state(h, &upd.apply_id, None);
    }
    if report.kept
        && let Some(h) = &handle
    {
        ctx.left_behind.remove(h);
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
    report.watch = d.watch_stats();
    ctx.send(
        &name,
        UpdateKind::Finished {
            outcome: report.outcome.clone(),
            exit_code: report.exit_code,
        },
    );
    report
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smoke_test_runs_after_the_first_wait_before_anything_changes_the_object() {
        let names = |steps: Vec<Step>| steps.into_iter().map(Step::phase_name).collect::<Vec<_>>();
        assert_eq!(
            names(with_smoke(lifecycle_steps(2, false))),
            [
                "create",
                "wait-ready",
                "smoke",
                "scale",
                "wait-scaled",
                "delete"
            ]
        );
        assert_eq!(
            names(with_smoke(apply_steps())),
            ["apply", "wait-rollout", "smoke"]
        );
        assert_eq!(names(with_smoke(vec![])), ["smoke"]);
    }
}
