//! What a run needs besides what it acts on and its options.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::{Interrupt, LeftBehind, Update, UpdateKind};
use crate::ops::Deployer;

/// Everything a run needs besides what it acts on and its options.
#[derive(Clone)]
pub struct Context {
    /// The deployer (client + namespace).
    pub deployer: Deployer,
    /// Cancellation.
    pub interrupt: Interrupt,
    /// What a hard exit would leave behind.
    pub left_behind: LeftBehind,
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
            left_behind: LeftBehind::default(),
            updates: None,
            warned: Arc::default(),
        }
    }

    /// Sends a [`UpdateKind::Warning`] unless the same text was sent before.
    pub(super) fn warn_once(&self, deployment: &str, text: String) {
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

    pub(super) fn send(&self, deployment: &str, kind: UpdateKind) {
        if let Some(tx) = &self.updates {
            let _ = tx.send(Update {
                deployment: deployment.to_owned(),
                kind,
            });
        }
    }
}
