//! The wait's decision, as a state machine: observations (a readiness evaluation and the pod
//! assessment) and times in; "keep waiting until T" or how the wait ends out. No I/O and no
//! clock of its own: every call is given `now`, so the same inputs give the same answers.
//!
//! The rules:
//! - `Ready` ends the wait; so does `Gone` (the caller has ruled out a cache that lags).
//! - The operator's `Failed` must last the grace period (it is transient during reconciles);
//!   any other state resets it.
//! - Broken pods have a grace period each, per Deployment, pod, container and kind of cause
//!   (`ErrImagePull` and `ImagePullBackOff` are one kind, as are `CrashLoopBackOff` and a
//!   growing restart count): short problems on different pods do not add up, and a problem
//!   that clears resets its own timer only.
//! - A container that restarted and is not ready is broken only while its restart count
//!   keeps growing: from a growth seen after the container was first seen restarted, until a
//!   grace period passes without another. So it fails the wait only when it restarts again
//!   within the grace of its previous restart; a model killed once that then loads for
//!   minutes never does.
//! - The status hint is given once, when no status has been written by its time.
//! - Deadlines that passed before an observation arrived are judged before it: the
//!   observation came too late. Of several endings due, the earliest wins; at the same
//!   instant, a restart cause that lapses is cleared first, then failing pods come before
//!   `Failed`, and both before the timeout.
//!
//! Interrupts are not this machine's: the caller races the whole wait against the run's
//! interrupt (see `run.rs`), which drops the wait wherever it is.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::judge::pods::{self, Assessment, Broken};
use crate::judge::readiness::{Readiness, Verdict};

/// The advice given when the operator has written no status by the hint's time.
pub(crate) const NO_STATUS_HINT: &str = "the operator has not written any status yet: is it running, watching this \
     namespace, and does its CONTROLLER_ID match the seldon.io/controller-id label?";

/// The state of one wait.
#[derive(Debug)]
pub(crate) struct Wait {
    deadline: Instant,
    grace: Duration,
    /// When to give the status hint; `None` once given (or judged unneeded).
    hint_at: Option<Instant>,
    /// The last readiness shown.
    last: Option<Readiness>,
    failed_since: Option<Instant>,
    /// Broken causes present in the last observation, each with its own timer.
    broken: BTreeMap<CauseKey, Timer>,
    /// Restart counts of the containers seen restarted and not ready.
    restarts: BTreeMap<ContainerKey, Restarts>,
}

/// Deployment, pod, container.
type ContainerKey = (String, String, String);

/// What one grace period is kept for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CauseKey {
    deployment: String,
    pod: Option<String>,
    container: Option<String>,
    kind: String,
}

impl CauseKey {
    fn of(cause: &Broken, restarting: bool) -> Self {
        let kind = match cause.reason.as_str() {
            _ if restarting => "crash",
            "CrashLoopBackOff" => "crash",
            "ErrImagePull" | "ImagePullBackOff" => "image pull",
            other => other,
        };
        CauseKey {
            deployment: cause.deployment.clone(),
            pod: cause.pod.clone(),
            container: cause.container.clone(),
            kind: kind.to_owned(),
        }
    }
}

#[derive(Debug)]
struct Timer {
    since: Instant,
    /// For a growing restart count: when it stops counting unless the count grows again.
    until: Option<Instant>,
    /// The cause as last seen.
    cause: Broken,
}

#[derive(Debug)]
struct Restarts {
    count: i32,
    /// When the count was last seen to grow (`None`: not since first seen).
    grew_at: Option<Instant>,
}

/// What to do after a call.
#[derive(Debug)]
pub(crate) struct Step {
    /// Advice to show first.
    pub(crate) hint: Option<&'static str>,
    /// The readiness to show, when it changed.
    pub(crate) readiness: Option<Readiness>,
    /// Whether the wait goes on, and if not, how it ends.
    pub(crate) next: Next,
}

/// Whether the wait goes on, and if not, how it ends.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    /// Keep waiting; call [`Wait::tick`] at this time unless an observation comes first.
    Wait(Instant),
    /// Ready.
    Ready(Readiness),
    /// The object was deleted or replaced (this readiness says how).
    Gone(Readiness),
    /// The operator's `Failed` outlasted the grace period.
    Failed {
        /// Its `status.description`.
        description: String,
    },
    /// Pods could not come up for longer than the grace period: the causes past their grace
    /// first, then the others present.
    PodsFailing(Vec<Broken>),
    /// The deadline passed.
    TimedOut {
        /// The last readiness, naming what held it up.
        detail: String,
    },
}

impl Wait {
    /// A wait that ends at `deadline`, forgives `Failed` and broken pods for `grace`, and
    /// gives the status hint at `hint_at`.
    pub(crate) fn new(deadline: Instant, grace: Duration, hint_at: Instant) -> Self {
        Wait {
            deadline,
            grace,
            hint_at: Some(hint_at),
            last: None,
            failed_since: None,
            broken: BTreeMap::new(),
            restarts: BTreeMap::new(),
        }
    }

    /// When to call [`Wait::tick`] if nothing is observed before.
    pub(crate) fn wake_at(&self) -> Instant {
        let pods = self.broken.values().map(|t| t.since + self.grace).min();
        let failed = self.failed_since.map(|t| t + self.grace);
        [pods, failed, self.hint_at]
            .into_iter()
            .flatten()
            .fold(self.deadline, Instant::min)
    }

    /// Time has passed with nothing new observed.
    pub(crate) fn tick(&mut self, now: Instant) -> Step {
        let mut hint = None;
        if self.hint_at.is_some_and(|t| t <= now) {
            self.hint_at = None;
            if self.last.as_ref().is_none_or(|r| r.state.is_none()) {
                hint = Some(NO_STATUS_HINT);
            }
        }
        self.broken.retain(|_, t| t.until.is_none_or(|u| u > now));
        let pods = self.broken.values().map(|t| t.since + self.grace).min();
        let failed = self.failed_since.map(|t| t + self.grace);
        let due = [(pods, 0), (failed, 1), (Some(self.deadline), 2)]
            .into_iter()
            .filter_map(|(at, rank)| at.filter(|at| *at <= now).map(|at| (at, rank)))
            .min();
        let next = match due {
            None => Next::Wait(self.wake_at()),
            Some((_, 0)) => {
                let mut timers: Vec<&Timer> = self.broken.values().collect();
                timers.sort_by_key(|t| t.since);
                Next::PodsFailing(timers.into_iter().map(|t| t.cause.clone()).collect())
            }
            Some((_, 1)) => Next::Failed {
                description: self
                    .last
                    .as_ref()
                    .and_then(|r| r.description.clone())
                    .unwrap_or_else(|| "no description".into()),
            },
            Some(_) => Next::TimedOut {
                detail: self.last.as_ref().map_or_else(
                    || "no data from the API server yet".to_owned(),
                    Readiness::summary,
                ),
            },
        };
        Step {
            hint,
            readiness: None,
            next,
        }
    }

    /// A fresh look at the object (`r`, as evaluated) and its pods (`a`).
    pub(crate) fn observe(&mut self, now: Instant, mut r: Readiness, a: Assessment) -> Step {
        let mut step = self.tick(now);
        if !matches!(step.next, Next::Wait(_)) {
            return step;
        }
        let shown = self.judge_pods(now, a);
        if r.verdict != Verdict::Ready {
            pods::annotate(&mut r, &shown);
        }
        if self.last.as_ref() != Some(&r) {
            step.readiness = Some(r.clone());
        }
        match r.verdict {
            Verdict::Ready => {
                step.next = Next::Ready(r);
                return step;
            }
            Verdict::Gone => {
                step.next = Next::Gone(r);
                return step;
            }
            Verdict::Failed => {
                self.failed_since.get_or_insert(now);
            }
            Verdict::NotReady => self.failed_since = None,
        }
        self.last = Some(r);
        step.next = Next::Wait(self.wake_at());
        step
    }

    /// Updates the restart counts and the broken causes' timers from `a`; returns `a` with
    /// the containers whose restart count keeps growing moved from `restarted` to `broken`.
    fn judge_pods(&mut self, now: Instant, a: Assessment) -> Assessment {
        // Containers not seen restarted now are forgotten: they are ready, or gone.
        let mut restarts = BTreeMap::new();
        for c in a.broken.iter().chain(&a.restarted) {
            let (Some(pod), Some(container), Some(count)) = (&c.pod, &c.container, c.restarts)
            else {
                continue;
            };
            let key = (c.deployment.clone(), pod.clone(), container.clone());
            let seen = match self.restarts.remove(&key) {
                Some(r) if count > r.count => Restarts {
                    count,
                    grew_at: Some(now),
                },
                Some(r) => r,
                None => Restarts {
                    count,
                    grew_at: None,
                },
            };
            restarts.insert(key, seen);
        }
        self.restarts = restarts;

        let mut present: Vec<(CauseKey, Broken, Option<Instant>)> = a
            .broken
            .iter()
            .map(|c| (CauseKey::of(c, false), c.clone(), None))
            .collect();
        let mut shown = Assessment {
            broken: a.broken,
            blocked: a.blocked,
            restarted: Vec::new(),
        };
        for c in a.restarted {
            let grew_at = match (&c.pod, &c.container) {
                (Some(pod), Some(container)) => {
                    let key = (c.deployment.clone(), pod.clone(), container.clone());
                    self.restarts.get(&key).and_then(|r| r.grew_at)
                }
                _ => None,
            };
            match grew_at.map(|t| t + self.grace).filter(|until| *until > now) {
                Some(until) => {
                    present.push((CauseKey::of(&c, true), c.clone(), Some(until)));
                    shown.broken.push(c);
                }
                None => shown.restarted.push(c),
            }
        }

        let mut timers = BTreeMap::new();
        for (key, cause, until) in present {
            let since = self.broken.remove(&key).map_or(now, |t| t.since);
            timers.entry(key).or_insert(Timer {
                since,
                until,
                cause,
            });
        }
        self.broken = timers;
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A wait started at `t0`, with a 300 s deadline, a 30 s grace and the hint at 60 s.
    fn wait(t0: Instant) -> Wait {
        Wait::new(t0 + secs(300), GRACE, t0 + secs(60))
    }

    use crate::judge::readiness::one_component as readiness;

    fn creating() -> Readiness {
        readiness(Verdict::NotReady, "Creating")
    }

    fn cause(pod: &str, reason: &str, restarts: Option<i32>) -> Broken {
        Broken {
            deployment: "d".into(),
            pod: Some(pod.into()),
            container: Some("model".into()),
            reason: reason.into(),
            message: format!("{reason} on {pod}"),
            exit_code: restarts.map(|_| 137),
            restarts,
        }
    }

    fn broken(causes: &[Broken]) -> Assessment {
        Assessment {
            broken: causes.to_vec(),
            ..Assessment::default()
        }
    }

    fn restarted(pod: &str, count: i32) -> Assessment {
        Assessment {
            restarted: vec![cause(pod, "OOMKilled", Some(count))],
            ..Assessment::default()
        }
    }

    fn pods_failing(step: &Step) -> Vec<String> {
        match &step.next {
            Next::PodsFailing(pods) => pods.iter().map(ToString::to_string).collect(),
            other => panic!("not failing pods: {other:?}"),
        }
    }

    #[test]
    fn failed_within_the_grace_is_forgiven_and_after_it_fails_with_the_description() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        let failed = || readiness(Verdict::Failed, "Failed");
        assert_eq!(
            w.observe(t0, failed(), Assessment::default()).next,
            Next::Wait(t0 + GRACE)
        );
        // Back to Creating after 20 s: forgiven, the next wake-up is the hint.
        assert_eq!(
            w.observe(t0 + secs(20), creating(), Assessment::default())
                .next,
            Next::Wait(t0 + secs(60))
        );
        assert_eq!(w.tick(t0 + secs(30)).next, Next::Wait(t0 + secs(60)));
        // Failed again: a grace of its own, from now.
        let at = t0 + secs(40);
        assert_eq!(
            w.observe(at, failed(), Assessment::default()).next,
            Next::Wait(t0 + secs(60)),
            "the hint's time comes first"
        );
        // Still Failed, seen again: the timer is not restarted.
        let step = w.observe(at + secs(10), failed(), Assessment::default());
        assert!(step.readiness.is_none(), "unchanged: nothing to show");
        assert_eq!(w.tick(t0 + secs(60)).next, Next::Wait(at + GRACE));
        assert!(matches!(w.tick(at + GRACE - secs(1)).next, Next::Wait(_)));
        assert_eq!(
            w.tick(at + GRACE).next,
            Next::Failed {
                description: "the model is broken".into()
            }
        );
    }

    #[test]
    fn broken_pods_have_a_grace_each_so_short_problems_on_different_pods_do_not_add_up() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        let a = cause("a", "ErrImagePull", None);
        let b = cause("b", "ErrImagePull", None);
        assert_eq!(
            w.observe(t0, creating(), broken(std::slice::from_ref(&a)))
                .next,
            Next::Wait(t0 + GRACE)
        );
        // Pod a recovers after 20 s as pod b starts failing: b's grace starts now.
        let step = w.observe(t0 + secs(20), creating(), broken(std::slice::from_ref(&b)));
        assert_eq!(step.next, Next::Wait(t0 + secs(50)));
        assert!(matches!(w.tick(t0 + secs(30)).next, Next::Wait(_)));
        // Overlapping: a fails again at 35 s, while b still does; b recovers at 40 s.
        w.observe(t0 + secs(35), creating(), broken(&[a.clone(), b.clone()]));
        w.observe(t0 + secs(40), creating(), broken(std::slice::from_ref(&a)));
        assert!(matches!(w.tick(t0 + secs(50)).next, Next::Wait(_)));
        // a, the same pod and cause for 30 s since 35 s: failed, naming it.
        assert!(matches!(w.tick(t0 + secs(64)).next, Next::Wait(_)));
        let step = w.tick(t0 + secs(65));
        assert_eq!(pods_failing(&step), [a.to_string()]);
    }

    #[test]
    fn image_pull_back_off_after_err_image_pull_is_the_same_cause_and_keeps_its_timer() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.observe(t0, creating(), broken(&[cause("a", "ErrImagePull", None)]));
        let back_off = cause("a", "ImagePullBackOff", None);
        let step = w.observe(
            t0 + secs(1),
            creating(),
            broken(std::slice::from_ref(&back_off)),
        );
        assert_eq!(step.next, Next::Wait(t0 + GRACE));
        // The newest form of the cause is the one reported.
        assert_eq!(pods_failing(&w.tick(t0 + GRACE)), [back_off.to_string()]);
    }

    #[test]
    fn of_several_broken_pods_the_one_past_its_grace_is_named_first() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        let a = cause("a", "CrashLoopBackOff", Some(3));
        let b = cause("b", "ErrImagePull", None);
        w.observe(t0, creating(), broken(std::slice::from_ref(&b)));
        w.observe(t0 + secs(10), creating(), broken(&[a.clone(), b.clone()]));
        assert_eq!(
            pods_failing(&w.tick(t0 + GRACE)),
            [b.to_string(), a.to_string()]
        );
    }

    #[test]
    fn a_container_restarted_once_that_turns_ready_after_the_grace_is_not_broken() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        // Killed once (OOM), then loading its model for 45 s, grace 30 s.
        let step = w.observe(t0, creating(), restarted("a", 1));
        assert_eq!(step.next, Next::Wait(t0 + secs(60)), "no grace runs");
        // The timeout names it as what holds the wait up.
        let shown = step.readiness.unwrap();
        assert!(
            shown.summary().contains("OOMKilled on a"),
            "{}",
            shown.summary()
        );
        w.observe(t0 + secs(20), creating(), restarted("a", 1));
        assert!(matches!(w.tick(t0 + secs(40)).next, Next::Wait(_)));
        let ready = readiness(Verdict::Ready, "Available");
        assert!(matches!(
            w.observe(t0 + secs(45), ready, Assessment::default()).next,
            Next::Ready(_)
        ));
    }

    #[test]
    fn a_restart_count_that_keeps_growing_within_the_grace_fails() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.observe(t0, creating(), restarted("a", 1));
        // It restarts again 10 s later: broken from now on.
        let step = w.observe(t0 + secs(10), creating(), restarted("a", 2));
        assert_eq!(step.next, Next::Wait(t0 + secs(40)));
        // And again within the grace of that restart: still broken at 40 s, so it fails.
        w.observe(t0 + secs(30), creating(), restarted("a", 3));
        let step = w.tick(t0 + secs(40));
        let pods = pods_failing(&step);
        assert_eq!(pods.len(), 1);
        assert!(pods[0].contains("OOMKilled on a"), "{pods:?}");
    }

    #[test]
    fn a_restart_count_that_grows_once_more_and_then_holds_is_forgiven() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.observe(t0, creating(), restarted("a", 1));
        w.observe(t0 + secs(10), creating(), restarted("a", 2));
        // No restart within 30 s of the last one: no longer broken when its grace ends.
        assert!(matches!(w.tick(t0 + secs(40)).next, Next::Wait(_)));
        // Seen again later, still at 2: not broken, and no timer left.
        let step = w.observe(t0 + secs(50), creating(), restarted("a", 2));
        assert_eq!(step.next, Next::Wait(t0 + secs(60)));
    }

    #[test]
    fn a_crash_loop_running_between_back_offs_keeps_one_timer() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        // Kubelet: CrashLoopBackOff, then the restarted container runs (not ready), crashes…
        w.observe(
            t0,
            creating(),
            broken(&[cause("a", "CrashLoopBackOff", Some(1))]),
        );
        let step = w.observe(t0 + secs(10), creating(), restarted("a", 2));
        assert_eq!(step.next, Next::Wait(t0 + GRACE), "the timer runs on");
        w.observe(
            t0 + secs(12),
            creating(),
            broken(&[cause("a", "CrashLoopBackOff", Some(2))]),
        );
        let pods = pods_failing(&w.tick(t0 + GRACE));
        assert!(pods[0].contains("CrashLoopBackOff"), "{pods:?}");
    }

    #[test]
    fn a_problem_that_clears_and_comes_back_starts_a_new_grace() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        let a = || broken(&[cause("a", "CrashLoopBackOff", Some(1))]);
        w.observe(t0, creating(), a());
        w.observe(t0 + secs(25), creating(), Assessment::default());
        let step = w.observe(t0 + secs(26), creating(), a());
        assert_eq!(step.next, Next::Wait(t0 + secs(56)));
    }

    #[test]
    fn no_status_by_the_hint_time_gives_the_hint_once() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        let no_status = readiness(Verdict::NotReady, "");
        w.observe(t0, no_status.clone(), Assessment::default());
        assert_eq!(w.wake_at(), t0 + secs(60));
        let step = w.tick(t0 + secs(60));
        assert_eq!(step.hint, Some(NO_STATUS_HINT));
        assert_eq!(step.next, Next::Wait(t0 + secs(300)));
        assert_eq!(
            w.observe(t0 + secs(61), no_status, Assessment::default())
                .hint,
            None
        );

        // With a status written, no hint.
        let mut w = wait(t0);
        w.observe(t0, creating(), Assessment::default());
        assert_eq!(w.tick(t0 + secs(60)).hint, None);
    }

    #[test]
    fn a_stale_failed_status_from_before_an_update_is_not_a_failure() {
        use crate::judge::readiness::evaluate;
        use crate::model::components::Target;
        // The operator's Failed describes the previous spec (its resourceVersion is older
        // than the update's): the evaluation says not ready, and the wait runs on.
        let sdep = serde_json::json!({
            "metadata": {"name": "x", "uid": "u", "resourceVersion": "90"},
            "status": {"state": "Failed", "description": "old spec"}
        });
        let stale = |rv: u64| {
            evaluate(
                Some(&sdep),
                "u",
                &[] as &[k8s_openapi::api::apps::v1::Deployment],
                &[],
                Target::Rollout {
                    status_after: Some(rv),
                },
            )
        };
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.observe(t0, stale(100), Assessment::default());
        assert!(matches!(w.tick(t0 + secs(100)).next, Next::Wait(_)));
        let Next::TimedOut { detail } = w.tick(t0 + secs(300)).next else {
            panic!("not a timeout");
        };
        assert!(
            detail.contains("not written a status since the update"),
            "{detail}"
        );

        // The same status written after the update is a Failed that runs its grace.
        let mut w = wait(t0);
        w.observe(t0, stale(80), Assessment::default());
        assert!(matches!(w.tick(t0 + GRACE).next, Next::Failed { .. }));
    }

    #[test]
    fn the_timeout_names_the_blocker() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        let unschedulable = Broken {
            pod: Some("a".into()),
            container: None,
            reason: "Unschedulable".into(),
            message: "0/1 nodes are available".into(),
            ..cause("a", "", None)
        };
        let a = Assessment {
            blocked: vec![unschedulable],
            ..Assessment::default()
        };
        w.observe(t0, creating(), a);
        assert!(matches!(w.tick(t0 + secs(299)).next, Next::Wait(_)));
        let Next::TimedOut { detail } = w.tick(t0 + secs(300)).next else {
            panic!("not a timeout");
        };
        assert!(
            detail.contains("pod a: Unschedulable: 0/1 nodes are available"),
            "{detail}"
        );

        // With nothing ever observed, it says so.
        let mut w = wait(t0);
        assert_eq!(
            w.tick(t0 + secs(300)).next,
            Next::TimedOut {
                detail: "no data from the API server yet".into()
            }
        );
    }

    #[test]
    fn a_deadline_that_passed_before_an_observation_is_judged_first() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.observe(t0, creating(), broken(&[cause("a", "ErrImagePull", None)]));
        // Ready, but seen after the pod's grace ended: the failure stands.
        let late = w.observe(
            t0 + secs(31),
            readiness(Verdict::Ready, "Available"),
            Assessment::default(),
        );
        assert!(matches!(late.next, Next::PodsFailing(_)));

        // Both the pods' grace and the deadline passed: the earlier one wins.
        let mut w = Wait::new(t0 + secs(40), GRACE, t0 + secs(60));
        w.observe(t0, creating(), broken(&[cause("a", "ErrImagePull", None)]));
        assert!(matches!(w.tick(t0 + secs(45)).next, Next::PodsFailing(_)));
        let mut w = Wait::new(t0 + secs(20), GRACE, t0 + secs(60));
        w.observe(t0, creating(), broken(&[cause("a", "ErrImagePull", None)]));
        assert!(matches!(w.tick(t0 + secs(45)).next, Next::TimedOut { .. }));
    }

    #[test]
    fn readiness_is_shown_when_it_changes_and_gone_ends_the_wait() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        assert!(
            w.observe(t0, creating(), Assessment::default())
                .readiness
                .is_some()
        );
        assert!(
            w.observe(t0 + secs(1), creating(), Assessment::default())
                .readiness
                .is_none()
        );
        let gone = readiness(Verdict::Gone, "");
        assert!(matches!(
            w.observe(t0 + secs(2), gone, Assessment::default()).next,
            Next::Gone(_)
        ));
    }
}
