//! The waits: readiness at a count, a rollout's completion, and deletion. Each reads the
//! namespace cache and feeds `judge`'s state machine, sleeping until its next deadline or the
//! next change of what it reads.

use super::*;

impl Deployer {
    /// One-shot readiness: reads the SeldonDeployment and its Deployments once.
    /// `replicas` overrides the counts from the object's own spec.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or an access error.
    pub async fn status(
        &self,
        name: &str,
        replicas: Option<i32>,
        deadline: Instant,
    ) -> Result<(Handle, Readiness)> {
        self.check_path(name)?;
        let obj = self.get(name, deadline).await?;
        let handle = Handle::from_object(&obj, &self.namespace)?;
        let lp = kube::api::ListParams::default().labels(SELDON_ID_LABEL);
        let deps = self
            .retrying(deadline, true, || self.deployments.list(&lp))
            .await
            .map_err(|e| {
                Error::from_kube(e, &Op::other("list", "deployments.apps", &self.namespace))
            })?;
        let target = replicas.map_or(Target::Initial, Target::Replicas);
        let r = readiness::evaluate(
            Some(&obj),
            &handle.uid,
            &deps.items,
            &components::components(&obj),
            target,
        );
        Ok((handle, r))
    }

    /// Waits until the predicate in [`crate::judge::readiness`] holds for `target`, watching the
    /// SeldonDeployment and the namespace's Seldon Deployments.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] at `deadline` (with the last readiness summary);
    /// [`Error::DeploymentFailed`] when `Failed` persists past the grace period;
    /// [`Error::PodsFailing`] when the pods of a Deployment's newest ReplicaSet cannot come up
    /// (see [`crate::judge::pods`]) for longer than the same grace period, kept per pod and cause;
    /// [`Error::Gone`] when the object is deleted or replaced; a fatal watch error (403, …).
    pub async fn wait_ready(
        &self,
        handle: &Handle,
        target: Target,
        deadline: Instant,
        observer: Observer<'_>,
    ) -> Result<Readiness> {
        // An update whose change is not known: some Deployment must get a new pod template.
        let update = match target {
            Target::Rollout {
                status_after: Some(revision),
            } => Some(SpecUpdate {
                revision,
                renders: Renders::UNKNOWN,
                status: None,
            }),
            _ => None,
        };
        self.wait(handle, target, update, deadline, observer).await
    }

    /// Waits until the rollout of `update` is complete: [`Deployer::wait_ready`] for
    /// [`Target::Rollout`], with the proof that the operator has acted on the update that
    /// [`crate::judge::freshness`] defines (which needs to know what the update changed).
    ///
    /// # Errors
    ///
    /// As [`Deployer::wait_ready`].
    pub async fn wait_rollout(
        &self,
        handle: &Handle,
        update: SpecUpdate,
        deadline: Instant,
        observer: Observer<'_>,
    ) -> Result<Readiness> {
        let target = Target::Rollout {
            status_after: Some(update.revision),
        };
        self.wait(handle, target, Some(update), deadline, observer)
            .await
    }

    async fn wait(
        &self,
        handle: &Handle,
        target: Target,
        update: Option<SpecUpdate>,
        deadline: Instant,
        observer: Observer<'_>,
    ) -> Result<Readiness> {
        let started = Instant::now();
        let phase = match target {
            Target::Initial => "readiness at the manifest's replica counts".to_owned(),
            Target::Replicas(n) => format!("readiness at {n} replicas"),
            Target::Rollout { .. } => "the rollout of the manifest's spec".to_owned(),
        };
        let baseline = match &update {
            Some(u) if u.renders != Renders::Nothing => {
                self.baseline(handle, u.revision, deadline).await
            }
            _ => None,
        };
        let mut observed = Observed::new(self, handle, true, update, baseline);
        let mut wait = Wait::new(
            deadline,
            self.options.failed_grace,
            started + self.options.status_hint_after,
        );
        let mut wake = wait.wake_at();

        loop {
            let step = tokio::select! {
                () = tokio::time::sleep_until(wake) => wait.tick(Instant::now()),
                changed = observed.next() => {
                    changed?;
                    if !observed.synced() {
                        continue;
                    }
                    let sdep = observed.sdep_json();
                    let comps = sdep.as_deref().map(components::components).unwrap_or_default();
                    let deps = observed.owned_deployments();
                    // Once the operator has acted on the update, its status is as fresh as
                    // it will get (it writes none when nothing changed).
                    let not_yet = observed.not_acted(sdep.as_deref(), &handle.uid, &deps, &comps);
                    let target = if not_yet.is_none() && observed.update.is_some() {
                        Target::Rollout { status_after: None }
                    } else {
                        target
                    };
                    let mut r = readiness::evaluate(sdep.as_deref(), &handle.uid, &deps, &comps, target);
                    if let Some(why) = not_yet
                        && matches!(r.verdict, Verdict::NotReady | Verdict::Ready)
                        && r.components.iter().all(|c| c.ready)
                    {
                        // Whatever the status says, the rollout is not complete before the
                        // operator has acted on the update.
                        r.verdict = Verdict::NotReady;
                        r.reason = Some(why);
                    }
                    if r.verdict == Verdict::Gone
                        && r.reason.as_deref() != Some("marked for deletion")
                        && self.still_ours(handle, false, deadline).await?
                    {
                        // A shared store that has not caught up with our create yet.
                        continue;
                    }
                    wait.observe(Instant::now(), r, observed.assess(&deps))
                }
            };
            if let Some(hint) = step.hint {
                observer(WaitEvent::Hint(hint));
            }
            if let Some(r) = &step.readiness {
                observer(WaitEvent::Readiness(r));
            }
            wake = match step.next {
                Next::Wait(at) => at,
                Next::Ready(r) => return Ok(r),
                Next::Gone(r) => {
                    return Err(handle.gone(gone_how(r.reason.as_deref())));
                }
                Next::Failed { description } => {
                    return Err(Error::DeploymentFailed {
                        name: handle.name.clone(),
                        description,
                    });
                }
                Next::PodsFailing(pods) => {
                    return Err(Error::PodsFailing {
                        name: handle.name.clone(),
                        pods,
                    });
                }
                Next::TimedOut { detail } => {
                    return Err(Error::Timeout {
                        phase,
                        after: deadline - started,
                        detail,
                    });
                }
            };
        }
    }

    /// Deletes the object with foreground propagation and a UID precondition (a namesake
    /// with another UID is never touched), then waits until it and its Deployments are gone.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] at `deadline` naming what remains; access errors (403 names the verb).
    pub async fn delete(
        &self,
        handle: &Handle,
        deadline: Instant,
        observer: Observer<'_>,
    ) -> Result<()> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: Some(handle.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self
            .retrying(deadline, true, || self.sdeps.delete(&handle.name, &dp))
            .await
        {
            Ok(_) => {}
            // Already gone, or the name now belongs to another object: ours is gone either way.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                tracing::debug!("delete: {}", s.message);
            }
            Err(e) => return Err(Error::from_kube(e, &self.op("delete", &handle.name))),
        }
        self.wait_gone(handle, deadline, observer).await
    }

    /// Waits until the object (by UID) and the Deployments it owned are gone.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] naming what remains, or a fatal watch error.
    pub async fn wait_gone(
        &self,
        handle: &Handle,
        deadline: Instant,
        observer: Observer<'_>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut observed = Observed::new(self, handle, false, None, None);
        let mut remaining = String::from("no data from the API server yet");
        let mut last: Option<(bool, Vec<String>)> = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout {
                        phase: "deletion".into(),
                        after: deadline - started,
                        detail: remaining,
                    });
                }
                changed = observed.next() => {
                    changed?;
                    if !observed.synced() {
                        continue;
                    }
                    let present = observed.sdep_json().is_some_and(|o| handle.is(&o));
                    let left: Vec<String> = observed
                        .owned_deployments()
                        .iter()
                        .filter_map(|d| d.metadata.name.clone())
                        .collect();
                    if !present && left.is_empty() && !self.still_ours(handle, true, deadline).await? {
                        return Ok(());
                    }
                    remaining = format!(
                        "{}{} Deployment(s) left{}",
                        if present { "SeldonDeployment still present; " } else { "" },
                        left.len(),
                        if left.is_empty() { String::new() } else { format!(": {}", left.join(", ")) }
                    );
                    let now = (present, left);
                    if last.as_ref() != Some(&now) {
                        observer(WaitEvent::Deleting { sdep_present: now.0, deployments: &now.1 });
                        last = Some(now);
                    }
                }
            }
        }
    }

    /// The Deployments `handle` owned at resourceVersion `revision` (an update's), listed at
    /// exactly that revision, so that no later change is taken for the state at the update
    /// (see [`crate::judge::freshness`]). `None` if the server cannot answer that (then only a
    /// status written after the update proves the operator's work).
    async fn baseline(
        &self,
        handle: &Handle,
        revision: u64,
        deadline: Instant,
    ) -> Option<Baseline> {
        // The operator labels every Deployment it makes with the Seldon id.
        let lp = kube::api::ListParams {
            resource_version: Some(revision.to_string()),
            version_match: Some(kube::api::VersionMatch::Exact),
            ..kube::api::ListParams::default().labels(SELDON_ID_LABEL)
        };
        match self
            .retrying(deadline, true, || self.deployments.list(&lp))
            .await
        {
            Ok(list) => {
                let b = Baseline::new(&list.items, &handle.uid);
                tracing::debug!(
                    "{} owned Deployments at resourceVersion {revision}",
                    b.len()
                );
                Some(b)
            }
            Err(e) => {
                tracing::debug!(
                    "cannot list the Deployments at the update's resourceVersion {revision}: {e}"
                );
                None
            }
        }
    }

    /// With shared watches, whether the object still exists with our UID according to a GET
    /// (also while being deleted, if `deleting`): the shared store can lag behind this
    /// process's own requests. Unshared watches listed after them, so their absence is
    /// trusted as is (`false`).
    async fn still_ours(&self, handle: &Handle, deleting: bool, deadline: Instant) -> Result<bool> {
        if !self.cache.is_shared() {
            return Ok(false);
        }
        match self.get(&handle.name, deadline).await {
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
            Ok(o) => Ok(handle.is(&o)
                && (deleting
                    || o.pointer("/metadata/deletionTimestamp")
                        .is_none_or(Value::is_null))),
        }
    }
}

fn gone_how(reason: Option<&str>) -> &'static str {
    match reason {
        Some("replaced") => "replaced",
        Some("marked for deletion") => "marked for deletion",
        _ => "deleted",
    }
}

/// What a wait reads: the SeldonDeployment and its children, from the cache.
///
/// Pods never hold readiness up; they only tell a broken rollout early (see [`crate::judge::pods`]).
/// Events are a view, not the job: a wait never reads them (see [`crate::judge::freshness`] for how
/// it knows that the operator has acted on an update).
struct Observed {
    watch: ObjectWatch,
    /// The update the wait follows, if any.
    update: Option<SpecUpdate>,
    /// The owned Deployments at the update, if they could be listed.
    baseline: Option<Baseline>,
    /// The operator has acted on the update (once proven, it stays so).
    acted: bool,
}

impl Observed {
    fn new(
        d: &Deployer,
        handle: &Handle,
        with_pods: bool,
        update: Option<SpecUpdate>,
        baseline: Option<Baseline>,
    ) -> Self {
        let parts = ReaderNeeds {
            sdep: true,
            pods: with_pods,
            events: false,
        };
        Observed {
            watch: d.cache.watch_object(&handle.name, &handle.uid, parts),
            update,
            baseline,
            acted: false,
        }
    }

    /// Waits until something the wait reads may have changed (at once the first time).
    async fn next(&mut self) -> Result<()> {
        self.watch.changed().await
    }

    /// Why the operator has not acted on the update yet, or `None` once it has (or when the
    /// wait follows no update).
    fn not_acted(
        &mut self,
        sdep: Option<&Value>,
        uid: &str,
        deps: &[Arc<Deployment>],
        comps: &[components::Component],
    ) -> Option<String> {
        let (Some(update), Some(sdep)) = (&self.update, sdep) else {
            return None;
        };
        if !self.acted {
            match freshness::operator_acted(update, self.baseline.as_ref(), sdep, uid, deps, comps)
            {
                Ok(()) => self.acted = true,
                Err(why) => return Some(why),
            }
        }
        None
    }

    fn synced(&self) -> bool {
        self.watch.synced()
    }

    fn sdep_json(&self) -> Option<Arc<Value>> {
        self.watch.sdep()
    }

    fn owned_deployments(&self) -> Vec<Arc<Deployment>> {
        self.watch.deployments()
    }

    /// The broken and blocked pods of the owned Deployments' newest ReplicaSets.
    fn assess(&mut self, deployments: &[Arc<Deployment>]) -> Assessment {
        let issues = self.watch.pod_issues(deployments);
        pods::assess(issues.iter(), deployments)
    }
}
