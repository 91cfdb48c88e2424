//! Progress messages a run sends while it goes.

use serde::Serialize;

use super::Context;
use crate::events::EventRecord;
use crate::judge::readiness::Readiness;
use crate::ops::WaitEvent;
use crate::report::PhaseRecord;

/// A progress message from a run, tagged with the SeldonDeployment's name.
///
/// # Examples
///
/// ```
/// use seldon_deploy::run::{Update, UpdateKind};
///
/// fn line(u: &Update) -> Option<String> {
///     match &u.kind {
///         UpdateKind::PhaseStarted(phase) => Some(format!("{}: {phase}", u.deployment)),
///         UpdateKind::Finished { outcome, exit_code } => Some(format!("{}: {outcome} ({exit_code})", u.deployment)),
///         _ => None,
///     }
/// }
/// let started = Update { deployment: "iris".into(), kind: UpdateKind::PhaseStarted("create".into()) };
/// assert_eq!(line(&started).as_deref(), Some("iris: create"));
/// ```
#[derive(Debug, Clone)]
pub struct Update {
    /// SeldonDeployment name.
    pub deployment: String,
    /// What happened.
    pub kind: UpdateKind,
}

/// Kinds of [`Update`].
///
/// # Examples
///
/// ```
/// use seldon_deploy::run::UpdateKind;
///
/// let hint = UpdateKind::Hint("the operator has not reported a status yet".into());
/// assert_eq!(serde_json::to_value(&hint)?, serde_json::json!({"Hint": "the operator has not reported a status yet"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
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

/// Sends what a wait observed as progress of `phase`, remembering the last readiness in `last`.
pub(super) fn forward(
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
