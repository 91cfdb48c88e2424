//! Cancelling a run, remembering which signal did it.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::error::Signal;

/// Cancels a run and remembers which signal did it.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{error::Signal, run::Interrupt};
///
/// let interrupt = Interrupt::new();
/// let seen_by_the_run = interrupt.clone();
/// assert_eq!(seen_by_the_run.signal(), None);
/// interrupt.trigger(Signal::Term);
/// futures::executor::block_on(seen_by_the_run.triggered()); // completes at once
/// assert_eq!(seen_by_the_run.signal(), Some(Signal::Term));
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use seldon_deploy::{error::Signal, run::Interrupt};
    ///
    /// let interrupt = Interrupt::new();
    /// interrupt.trigger(Signal::Term);
    /// interrupt.trigger(Signal::Int);
    /// assert_eq!(interrupt.signal().map(Signal::exit_code), Some(143));
    /// ```
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
