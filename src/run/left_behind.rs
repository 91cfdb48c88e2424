//! What a hard exit would leave behind: objects created and not yet deleted, creates in
//! flight, `apply --atomic` updates not yet settled.

use std::sync::{Arc, Mutex};

use crate::names::APPLY_ID_ANNOTATION;
use crate::ops::Handle;

/// What a hard exit would leave behind, for its message: objects this run created and has not
/// deleted, creates still in flight, and `apply --atomic` updates not yet settled. Shared by
/// every clone of a [`Context`](super::Context).
#[derive(Debug, Clone, Default)]
pub struct LeftBehind(Arc<Mutex<Entries>>);

#[derive(Debug, Default)]
struct Entries {
    created: Vec<Handle>,
    /// `(namespace, name)` of creates sent whose answer has not arrived yet.
    /// `(namespace, name, verb)` of writes that may create it (`create`, `apply`) whose answer
    /// has not arrived yet.
    creating: Vec<(String, String, &'static str)>,
    /// `apply --atomic` updates that are live and not yet confirmed good or undone.
    updates: Vec<LiveUpdate>,
}

/// An `apply --atomic` update that may still have to be undone.
#[derive(Debug, Clone)]
pub(super) struct LiveUpdate {
    handle: Handle,
    /// Its `seldon-deploy.io/apply-id`.
    apply_id: String,
    state: UpdateState,
}

/// Where an `apply --atomic` update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpdateState {
    /// Live; no restore sent.
    Live,
    /// The restore is being sent (or its answer awaited): either may be live.
    RestoreSent,
    /// The restore is stored (at this resourceVersion, if it needed a write); its rollout has
    /// not been confirmed ready.
    Restored(Option<u64>),
}

impl LiveUpdate {
    fn describe(&self) -> String {
        let (n, ns, id) = (&self.handle.name, &self.handle.namespace, &self.apply_id);
        let marker = APPLY_ID_ANNOTATION;
        match self.state {
            UpdateState::Live => format!(
                "seldondeployment/{n} -n {ns}: the update is live and was not rolled back \
                 (annotation {marker}={id}); re-apply the previous manifest to roll back"
            ),
            UpdateState::RestoreSent => format!(
                "seldondeployment/{n} -n {ns}: the restore was sent but not confirmed; the update \
                 is still live while annotation {marker}={id} is there (check with: kubectl get sdep {n} -n {ns} -o yaml)"
            ),
            UpdateState::Restored(rv) => format!(
                "seldondeployment/{n} -n {ns}: the restore is complete{}, but its rollout was not \
                 confirmed ready (check with: seldon-deploy wait {n} -n {ns})",
                rv.map(|rv| format!(" (resourceVersion {rv})"))
                    .unwrap_or_default()
            ),
        }
    }
}

impl LeftBehind {
    pub(super) fn remove(&self, h: &Handle) {
        if let Ok(mut e) = self.0.lock() {
            e.created.retain(|x| x.uid != h.uid);
        }
    }

    /// Records a write about to be sent that may create the object (`verb`: `create`, or
    /// `apply`, which creates it when it is absent); [`LeftBehind::create_settled`] clears it.
    pub(super) fn creating(&self, namespace: &str, name: &str, verb: &'static str) {
        if let Ok(mut e) = self.0.lock() {
            e.creating
                .push((namespace.to_owned(), name.to_owned(), verb));
        }
    }

    /// Clears a create recorded by [`LeftBehind::creating`], recording the object if it was made
    /// (under one lock, so a concurrent [`LeftBehind::describe`] never misses it).
    pub(super) fn create_settled(&self, namespace: &str, name: &str, created: Option<&Handle>) {
        if let Ok(mut e) = self.0.lock() {
            e.creating
                .retain(|(ns, n, _)| !(ns == namespace && n == name));
            e.created.extend(created.cloned());
        }
    }

    /// Records where an `apply --atomic` update of `h` stands (`None`: settled, nothing to
    /// say on a hard exit).
    pub(super) fn update_state(&self, h: &Handle, apply_id: &str, state: Option<UpdateState>) {
        if let Ok(mut e) = self.0.lock() {
            e.updates.retain(|u| u.handle.uid != h.uid);
            if let Some(state) = state {
                e.updates.push(LiveUpdate {
                    handle: h.clone(),
                    apply_id: apply_id.to_owned(),
                    state,
                });
            }
        }
    }

    /// What may be left behind: `seldondeployment/NAME -n NAMESPACE (uid …)` for each object
    /// created and not yet deleted, then one line for each create whose answer has not
    /// arrived yet (it may have gone through), then one for each `apply --atomic` update not
    /// yet settled: live, its restore sent, or its restore complete but not yet ready.
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|e| {
                e.created
                    .iter()
                    .map(describe)
                    .chain(e.creating.iter().map(|(ns, n, verb)| {
                        format!(
                            "seldondeployment/{n} -n {ns} ({verb} request in flight: it may have gone through; \
                             check with: kubectl get sdep {n} -n {ns})"
                        )
                    }))
                    .chain(e.updates.iter().map(LiveUpdate::describe))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The message for an exit that skips clean-up (a second Ctrl-C): what may be left behind,
    /// or that nothing is.
    #[must_use]
    pub fn exit_message(&self) -> String {
        let left = self.describe();
        if left.is_empty() {
            return "exiting at once; nothing created by this run is left behind".to_owned();
        }
        let only_updates = self
            .0
            .lock()
            .is_ok_and(|e| e.created.is_empty() && e.creating.is_empty());
        let mut msg = String::from(if only_updates {
            "exiting at once, with an --atomic rollback unfinished:"
        } else {
            "exiting at once; left behind:"
        });
        for l in left {
            msg.push_str("\n  ");
            msg.push_str(&l);
        }
        msg
    }
}

pub(super) fn describe(h: &Handle) -> String {
    format!(
        "seldondeployment/{} -n {} (uid {})",
        h.name, h.namespace, h.uid
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_in_flight_is_named_as_possibly_left_behind() {
        let left_behind = LeftBehind::default();
        assert_eq!(
            left_behind.exit_message(),
            "exiting at once; nothing created by this run is left behind"
        );
        left_behind.creating("team-a", "iris", "create");
        let msg = left_behind.exit_message();
        assert!(!msg.contains("nothing created"), "{msg}");
        assert!(msg.contains("seldondeployment/iris -n team-a"), "{msg}");
        assert!(msg.contains("may have gone through"), "{msg}");

        let h = Handle {
            namespace: "team-a".into(),
            name: "iris".into(),
            uid: "u-1".into(),
            created_at: None,
        };
        left_behind.create_settled("team-a", "iris", Some(&h));
        assert_eq!(
            left_behind.describe(),
            ["seldondeployment/iris -n team-a (uid u-1)"],
            "once answered, the object itself is named"
        );
        left_behind.remove(&h);
        left_behind.creating("team-a", "other", "apply");
        left_behind.create_settled("team-a", "other", None);
        assert!(
            left_behind.describe().is_empty(),
            "a failed create leaves nothing"
        );
    }

    #[test]
    fn a_hard_exit_during_an_atomic_rollback_says_where_the_update_stands() {
        let left_behind = LeftBehind::default();
        let h = Handle {
            namespace: "team-a".into(),
            name: "iris".into(),
            uid: "u-1".into(),
            created_at: None,
        };
        let says = |state, words: &[&str]| {
            left_behind.update_state(&h, "abc", Some(state));
            let msg = left_behind.exit_message();
            assert!(!msg.contains("nothing created"), "{msg}");
            assert!(msg.contains("seldondeployment/iris -n team-a"), "{msg}");
            for w in words {
                assert!(msg.contains(w), "{w:?} not in {msg}");
            }
        };
        says(
            UpdateState::Live,
            &["the update is live", "seldon-deploy.io/apply-id=abc"],
        );
        says(
            UpdateState::RestoreSent,
            &["the restore was sent", "seldon-deploy.io/apply-id=abc"],
        );
        says(
            UpdateState::Restored(Some(42)),
            &["the restore is complete", "resourceVersion 42"],
        );
        left_behind.update_state(&h, "abc", None);
        assert!(left_behind.describe().is_empty(), "settled: nothing to say");
    }
}
