//! When a run stops listening after its last phase, and what "gone" means at its exit.
//!
//! Controllers write Events asynchronously, so a run keeps listening a little after its last
//! phase. How little was measured (bench/README.md, "Events after the last phase"): in the
//! normal case every Event of a lifecycle or of an update's rollout has arrived before the last
//! phase ends (the scale-down and deletion Events too, tens of milliseconds before: the waits
//! end on states the controllers reach after writing them). What does arrive later is a burst
//! from a child the operator recreates after the delete, its Events at most a few tens of
//! milliseconds apart. So the run listens until [`QUIET`] has passed since the last Event about
//! its object (at once if that is already past when the last phase ends), and never longer
//! than [`LIMIT`] after it, unless a late child must be waited for. "No Event yet" counts only
//! once the Event store has listed: a run quicker than that first list (a traffic change that
//! rolls nothing out) listens until it has, or until following has ended (a 403 on Events,
//! whose warning that end sends), again up to [`LIMIT`].
//!
//! A late child: a reconcile that began before the delete can create a Deployment after the
//! SeldonDeployment is gone. It names the deleted UID, and the garbage collector removes it.
//! If the run sees one while it listens, it says so and waits, bounded by `--cleanup-timeout`,
//! until the collector has removed it, so that "gone" holds when it exits 0.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use std::future::Future;

use super::{Context, UpdateKind};
use crate::cluster::cache::{ObjectWatch, ReaderNeeds};
use crate::error::Result;
use crate::ops::{Handle, WaitEvent, recreated_after_delete};

/// How long after the last Event about its object a run still listens: longer than the gaps
/// measured inside one controller's burst.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// The most the listening adds after the last phase, however chatty the object (the fixed
/// drain it replaced).
pub(crate) const LIMIT: Duration = Duration::from_millis(300);

/// When to stop listening: [`QUIET`] after the last Event (when the last phase `ended`, if
/// that is later), but no later than [`LIMIT`] after it.
pub(crate) fn listen_until(ended: Instant, last_event: Option<Instant>) -> Instant {
    let quiet = last_event.map_or(ended, |at| (at + QUIET).max(ended));
    quiet.min(ended + LIMIT)
}

/// Listens after the last phase: until the rule above says the Events are in (`last_event`
/// holds when the last one arrived), but not before `listed` says the Event store has listed or
/// the following has ended (a run too quick for the first list, or one that may not read
/// Events, whose warning comes from that end), up to [`LIMIT`]. With `children` (a reader of the deleted object's
/// children, when the run deleted it), each child that appears meanwhile is handed to
/// `collect` (which reports it and waits until the garbage collector has removed it), and the
/// listening goes on after it.
///
/// # Errors
///
/// `collect`'s, or the children reader's that retrying cannot fix.
pub(super) async fn listen<F, Fut>(
    last_event: &mut watch::Receiver<Option<Instant>>,
    listed: &mut watch::Receiver<bool>,
    children: Option<ObjectWatch>,
    mut collect: F,
) -> Result<()>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let ended = Instant::now();
    let mut events_open = true;
    let mut following = true;
    loop {
        if let Some(w) = &children
            && w.synced()
        {
            let late: Vec<String> = w
                .deployments()
                .iter()
                .filter_map(|d| d.metadata.name.clone())
                .collect();
            if !late.is_empty() {
                collect(late).await?;
            }
        }
        let last = *last_event.borrow_and_update();
        let answered = *listed.borrow_and_update() || !following;
        let until = if answered {
            listen_until(ended, last)
        } else {
            ended + LIMIT
        };
        if Instant::now() >= until {
            // `-v` shows it: how bench/README.md measured the Events after the last phase.
            tracing::debug!(
                "listened {:?} after the last phase; the last Event arrived {}",
                ended.elapsed(),
                last.map_or("never".into(), |at| if at < ended {
                    format!("{:?} before its end", ended - at)
                } else {
                    format!("{:?} after its end", at - ended)
                })
            );
            return Ok(());
        }
        let child_changed = async {
            match &children {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            r = last_event.changed(), if events_open => events_open = r.is_ok(),
            r = listed.changed(), if following => following = r.is_ok(),
            r = child_changed => r?,
        }
    }
}

/// [`listen`] for a run on `ctx`: after a run that `deleted` its object, a late child is
/// reported in one line and waited for, bounded by `cleanup_timeout`.
///
/// # Errors
///
/// A late child still there after `cleanup_timeout` ([`crate::Error::Timeout`] naming it).
pub(super) async fn listen_in(
    ctx: &Context,
    last_event: &mut watch::Receiver<Option<Instant>>,
    listed: &mut watch::Receiver<bool>,
    deleted: Option<&Handle>,
    cleanup_timeout: Duration,
) -> Result<()> {
    let d = &ctx.deployer;
    let children = deleted.map(|h| {
        d.cache()
            .watch_object(&h.name, &h.uid, ReaderNeeds::default())
    });
    listen(last_event, listed, children, |late| async move {
        let Some(h) = deleted else { return Ok(()) };
        for name in &late {
            ctx.send(&h.name, UpdateKind::Hint(recreated_after_delete(name)));
        }
        let mut obs = |ev: WaitEvent<'_>| {
            if let WaitEvent::Hint(text) = ev {
                ctx.send(&h.name, UpdateKind::Hint(text.to_owned()));
            }
        };
        let started = Instant::now();
        d.wait_gone(h, started + cleanup_timeout, &mut obs).await?;
        let names: Vec<String> = late.iter().map(|n| format!("deployment/{n}")).collect();
        ctx.send(
            &h.name,
            UpdateKind::Hint(format!(
                "the garbage collector removed {} after {:.3}s",
                names.join(", "),
                started.elapsed().as_secs_f64()
            )),
        );
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::cache::{HandFedStores, WatchedDeployment};
    use kube::runtime::watcher;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// A Deployment `name` owned by the SeldonDeployment with `owner_uid`.
    fn dep(name: &str, owner_uid: &str) -> WatchedDeployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("{name}-uid"), "resourceVersion": "1",
                "ownerReferences": [{"apiVersion": "machinelearning.seldon.io/v1",
                    "kind": "SeldonDeployment", "name": "iris", "uid": owner_uid}]},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap()
    }

    async fn no_late_child(_: Vec<String>) -> Result<()> {
        panic!("no child is late here")
    }

    /// An Event store that has listed.
    fn listed() -> watch::Receiver<bool> {
        watch::channel(true).1
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_ends_before_the_event_store_has_listed_listens_until_it_has() {
        let (_tx, mut rx) = watch::channel(None);
        let (listed_tx, mut listed) = watch::channel(false);
        let start = Instant::now();
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            listed_tx.send_replace(true);
            listed_tx
        });
        listen(&mut rx, &mut listed, None, no_late_child)
            .await
            .unwrap();
        let _listed_tx = later.await.unwrap();
        assert_eq!(Instant::now(), start + Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_whose_event_following_ends_unlisted_stops_listening_then() {
        // A 403 on Events: the follower warns and ends, closing `listed`.
        let (_tx, mut rx) = watch::channel(None);
        let (listed_tx, mut listed) = watch::channel(false);
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(15)).await;
            drop(listed_tx);
        });
        listen(&mut rx, &mut listed, None, no_late_child)
            .await
            .unwrap();
        assert_eq!(Instant::now(), start + Duration::from_millis(15));
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_store_that_never_lists_holds_the_run_no_longer_than_the_limit() {
        let (_tx, mut rx) = watch::channel(None);
        let (_listed_tx, mut listed) = watch::channel(false);
        let start = Instant::now();
        listen(&mut rx, &mut listed, None, no_late_child)
            .await
            .unwrap();
        assert_eq!(Instant::now(), start + LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_whose_events_are_in_stops_listening_at_once_not_after_a_fixed_delay() {
        let (_tx, mut rx) = watch::channel(Some(Instant::now() - Duration::from_secs(1)));
        let start = Instant::now();
        listen(&mut rx, &mut listed(), None, no_late_child)
            .await
            .unwrap();
        assert_eq!(Instant::now(), start, "the paused clock did not move");
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_arriving_while_listening_keeps_the_run_listening_until_it_is_in() {
        let (tx, mut rx) = watch::channel(Some(Instant::now()));
        let start = Instant::now();
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send_replace(Some(Instant::now()));
            tx
        });
        listen(&mut rx, &mut listed(), None, no_late_child)
            .await
            .unwrap();
        let _tx = later.await.unwrap();
        assert_eq!(Instant::now(), start + Duration::from_millis(30) + QUIET);
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_recreated_after_the_delete_is_waited_for_until_the_collector_removes_it() {
        let stores = HandFedStores::new();
        let children = stores.watch_object("iris", "sdep-uid");
        let (_tx, mut rx) = watch::channel(Some(Instant::now()));
        let deployments = stores.deployments.clone();
        // The operator's late reconcile, while the run listens.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            deployments.apply(watcher::Event::Apply(dep("iris-default-0-c", "sdep-uid")));
        });
        let collected = Arc::new(Mutex::new(Vec::new()));
        let store = stores.deployments.clone();
        listen(&mut rx, &mut listed(), Some(children), |late| {
            let collected = collected.clone();
            let store = store.clone();
            async move {
                collected.lock().unwrap().extend(late);
                // The garbage collector's delete.
                store.apply(watcher::Event::Delete(dep("iris-default-0-c", "sdep-uid")));
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(*collected.lock().unwrap(), ["iris-default-0-c"]);
    }

    #[test]
    fn listening_ends_at_once_when_the_last_event_is_older_than_the_quiet_period() {
        let ended = Instant::now();
        assert_eq!(listen_until(ended, None), ended);
        let long_ago = ended.checked_sub(Duration::from_secs(1)).unwrap();
        assert_eq!(listen_until(ended, Some(long_ago)), ended);
    }

    #[test]
    fn an_event_just_before_or_after_the_end_keeps_the_run_listening_for_the_quiet_period() {
        let ended = Instant::now();
        let just_before = ended.checked_sub(Duration::from_millis(10)).unwrap();
        assert_eq!(listen_until(ended, Some(just_before)), just_before + QUIET);
        let after = ended + Duration::from_millis(100);
        assert_eq!(listen_until(ended, Some(after)), after + QUIET);
    }

    #[test]
    fn a_chatty_object_keeps_the_run_listening_no_longer_than_the_limit() {
        let ended = Instant::now();
        let late = ended + LIMIT;
        assert_eq!(listen_until(ended, Some(late)), ended + LIMIT);
    }
}
