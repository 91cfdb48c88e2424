//! Pure verdicts on observed state, no I/O.
//!
//! - [`wait`]: the wait's decision, a state machine fed with observations and times that
//!   says whether to keep waiting (and until when), or how the wait ends.

pub(crate) mod wait;
