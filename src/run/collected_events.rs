//! The run's Events, followed in the background while its phases go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Context, UpdateKind, drain};
use crate::error::{Error, Result};
use crate::events::{self, EventFilter, EventRecord};
use crate::ops::Handle;

/// Background event collection for one run.
pub(super) struct EventTask {
    collected: Arc<Mutex<Vec<EventRecord>>>,
    pub(super) failed: CancellationToken,
    error: Arc<Mutex<Option<Error>>>,
    /// Set when the run goes on without Events (not allowed to read them).
    warning: Arc<Mutex<Option<String>>>,
    /// When the last Event arrived (for [`drain`]).
    last_event: tokio::sync::watch::Receiver<Option<Instant>>,
    /// `true` once the Event store has listed; closed once following has ended (for
    /// [`drain`]: until one of the two, "no Event yet" proves nothing).
    listed: tokio::sync::watch::Receiver<bool>,
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
    pub(super) fn start(
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
        let (mut stream, listed) = events::follow_in_telling_listed(ctx.deployer.cache(), filter);
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
            listed,
            after_delete,
            handle,
        }
    }

    /// The run has seen its object gone: what arrives from now on is marked as after the
    /// delete.
    pub(super) fn seen_gone(&self) {
        self.after_delete.store(true, Ordering::Relaxed);
    }

    pub(super) fn take_error(&self) -> Error {
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
    pub(super) async fn stop(
        mut self,
        listen: Option<(&Context, Option<&Handle>, Duration)>,
    ) -> (Vec<EventRecord>, Option<String>, Result<()>) {
        let mut result = Ok(());
        if let Some((ctx, deleted, cleanup_timeout)) = listen {
            if deleted.is_some() {
                self.seen_gone();
            }
            result = drain::listen_in(
                ctx,
                &mut self.last_event,
                &mut self.listed,
                deleted,
                cleanup_timeout,
            )
            .await;
        }
        self.handle.abort();
        let _ = self.handle.await;
        let events = self.collected.lock().map(|v| v.clone()).unwrap_or_default();
        let warning = self.warning.lock().ok().and_then(|mut w| w.take());
        (events, warning, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Deployer;

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
