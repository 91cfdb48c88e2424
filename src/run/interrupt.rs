//! Cancelling a run, remembering which signal did it.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::error::Signal;

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
