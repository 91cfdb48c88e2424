//! The run's Events, followed in the background while its phases go.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{Context, UpdateKind};
use crate::error::Error;
use crate::events::{self, EventFilter, EventRecord};
use crate::ops::Handle;

/// How long events are still collected after the last step.
const EVENT_DRAIN: Duration = Duration::from_millis(300);

/// Background event collection for one run.
pub(super) struct EventTask {
    collected: Arc<Mutex<Vec<EventRecord>>>,
    pub(super) failed: CancellationToken,
    error: Arc<Mutex<Option<Error>>>,
    /// Set when the run goes on without Events (not allowed to read them).
    warning: Arc<Mutex<Option<String>>>,
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
        let mut stream = events::follow_in(ctx.deployer.cache(), filter);
        let collected = Arc::new(Mutex::new(Vec::new()));
        let failed = CancellationToken::new();
        let error = Arc::new(Mutex::new(None));
        let warning = Arc::new(Mutex::new(None));
        let (c2, f2, e2, w2, ctx2, name) = (
            collected.clone(),
            failed.clone(),
            error.clone(),
            warning.clone(),
            ctx.clone(),
            handle.name.clone(),
        );
        let handle = tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ev) => {
                        ctx2.send(&name, UpdateKind::Event(ev.clone()));
                        if let Ok(mut v) = c2.lock() {
                            v.push(ev);
                        }
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
            handle,
        }
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

    /// Stops following; returns the Events seen and the warning, if the run went on without
    /// them.
    pub(super) async fn stop(self, drain: bool) -> (Vec<EventRecord>, Option<String>) {
        if drain {
            tokio::time::sleep(EVENT_DRAIN).await;
        }
        self.handle.abort();
        let _ = self.handle.await;
        let events = self.collected.lock().map(|v| v.clone()).unwrap_or_default();
        let warning = self.warning.lock().ok().and_then(|mut w| w.take());
        (events, warning)
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
