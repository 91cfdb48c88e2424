//! What follows a run's steps: keep, clean up or roll back what the run owns, decided in
//! one place.

use tokio::time::Instant;

use super::left_behind::{UpdateState, describe};
use super::progress::forward;
use super::{Context, RunOptions, UpdateKind};
use crate::error::Error;
use crate::model::components::Target;
use crate::names::APPLY_ID_ANNOTATION;
use crate::ops::{Handle, WaitEvent};
use crate::report::{PhaseTimer, Report, Rollback};

/// What a run has made or changed, and so what its aftermath may clean up or undo: never
/// anything else.
pub(super) enum Owned {
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
pub(super) enum Aftermath {
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
pub(super) fn aftermath(
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
pub(super) struct Updated {
    /// The object before the update.
    pub(super) before: serde_json::Value,
    /// The object the update stored (the server's answer).
    pub(super) wrote: serde_json::Value,
    /// The update's `seldon-deploy.io/apply-id`.
    pub(super) apply_id: String,
}

/// `apply --atomic` after a failed rollout: undoes what the update changed (see
/// [`Deployer::restore`]) and waits until that is ready again, as phases `rollback` and
/// `wait-rollback`, each bounded by `--timeout`. Not cancelled by an interrupt, but bounded
/// by it: once a signal has come (before or during the rollback), both phases together end
/// within `--cleanup-timeout` of it, saying where they stopped. Returns the error that ends
/// the run: the first cause, saying what became of the update.
pub(super) async fn rollback(
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
    let state = |s| ctx.left_behind.update_state(h, &upd.apply_id, Some(s));

    ctx.send(&h.name, UpdateKind::PhaseStarted("rollback".into()));
    let timer = PhaseTimer::start("rollback");
    state(UpdateState::RestoreSent);
    let restored = tokio::select! {
        r = d.restore(h, &upd.before, &upd.wrote, Instant::now() + opts.timeout) => r,
        () = &mut cut => Err(cut_off("the rollback")),
    };
    let rec = match &restored {
        Ok(restore) => timer.finish(
            "ok",
            Some(match restore {
                Some(u) => format!(
                    "restored what the update changed (resourceVersion {})",
                    u.revision
                ),
                None => "the previous spec was still live".to_owned(),
            }),
        ),
        Err(e) => timer.finish(e.outcome(), Some(e.to_string())),
    };
    ctx.send(&h.name, UpdateKind::PhaseFinished(rec.clone()));
    report.phases.push(rec);
    let (outcome, error, aftermath) = match restored {
        Ok(restore) => {
            state(UpdateState::Restored(restore.as_ref().map(|u| u.revision)));
            let phase = "wait-rollback";
            ctx.send(&h.name, UpdateKind::PhaseStarted(phase.into()));
            let timer = PhaseTimer::start(phase);
            let mut last = None;
            let mut obs = |ev: WaitEvent<'_>| forward(ctx, &h.name, phase, ev, &mut last);
            let deadline = Instant::now() + opts.timeout;
            let waited = async {
                match restore {
                    // The rollback's own rollout: what the restore changed.
                    Some(update) => d.wait_rollout(h, update, deadline, &mut obs).await,
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
                APPLY_ID_ANNOTATION, upd.apply_id, h.name, h.namespace
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
pub(super) async fn cleanup(ctx: &Context, h: &Handle, opts: &RunOptions, report: &mut Report) {
    let phase = "cleanup";
    ctx.send(&h.name, UpdateKind::PhaseStarted(phase.into()));
    let timer = PhaseTimer::start(phase);
    let mut last = None;
    let mut obs = |ev: WaitEvent<'_>| forward(ctx, &h.name, phase, ev, &mut last);
    let deadline = Instant::now() + opts.cleanup_timeout;
    let rec = match ctx.deployer.delete(h, deadline, &mut obs).await {
        Ok(()) => {
            ctx.left_behind.remove(h);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
