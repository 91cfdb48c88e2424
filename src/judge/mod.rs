//! Pure verdicts on observed state, no I/O: is it ready, which pods cannot come up, has the
//! operator acted on an update, and how a wait ends.
//!
//! - [`readiness`]: the "ready at N" predicate and a rollout's completion, per component;
//! - [`pods`]: the broken pods of the newest ReplicaSets, and why;
//! - [`freshness`]: after an update, the proof that the operator has acted on it;
//! - `wait`: the wait's decision, a state machine fed with observations and times that says
//!   whether to keep waiting (and until when), or how the wait ends.

pub mod freshness;
pub(crate) mod pods;
pub mod readiness;
pub(crate) mod wait;
