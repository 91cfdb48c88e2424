//! Progress messages a run sends while it goes.

use serde::Serialize;

use super::Context;
use crate::events::EventRecord;
use crate::judge::readiness::Readiness;
use crate::ops::WaitEvent;
use crate::report::PhaseRecord;

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
