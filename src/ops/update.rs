//! Guarded writes: `apply` and `restore` (whole-object replaces with a resourceVersion
//! precondition, marked with this apply's id) and `scale` (a JSON Patch with `test`
//! operations), each re-read and re-sent after a conflict.

use super::create::{new_run_id, with_annotation};
use super::transport::{Backoff, answer_lost, json_request, patch_did_not_apply};
use super::*;

/// How many times a write (scale, update, restore) is sent at most, re-read after each
/// conflict.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// The one conflict policy of the guarded writes (`apply`, `restore`, `scale`): at most
/// [`MAX_WRITE_ATTEMPTS`] writes, the next one only after a [`Backoff::conflict`] delay that
/// ends before the deadline.
struct Attempts {
    made: u32,
    delay: Backoff,
}

impl Attempts {
    fn new() -> Self {
        Attempts {
            made: 0,
            delay: Backoff::conflict(),
        }
    }

    /// Counts a write about to be sent; `false` once the bound is reached.
    fn start(&mut self) -> bool {
        self.made += 1;
        self.made <= MAX_WRITE_ATTEMPTS
    }

    /// Whether another write may follow this one.
    fn left(&self) -> bool {
        self.made < MAX_WRITE_ATTEMPTS
    }

    /// Whether another write may follow a conflict: one is left, and its delay ends before
    /// `deadline`.
    fn may_follow_conflict(&self, deadline: Instant) -> bool {
        self.left() && self.delay.fits(deadline)
    }

    /// Waits the delay before the write that follows a conflict (counted as a retry).
    async fn wait(&mut self, stats: &Stats) {
        stats.retry();
        tokio::time::sleep(self.delay.take()).await;
    }
}

const GAVE_UP: &str = "the object kept changing; gave up after repeated conflicts";

/// Why [`Deployer::put_guarded`] stopped: its read (or the caller's check of it) failed, or
/// the write did, with the server's answer for the caller to word; or the write's answer was
/// lost and the read that was to settle it failed too.
enum WriteError {
    Read(Error),
    Put(kube::Error),
    Lost {
        write: kube::Error,
        read: Option<Error>,
    },
}

/// A 409 of our own making, for "gave up after repeated conflicts".
fn conflict(message: &str) -> kube::Error {
    kube::Error::Api(Box::new(
        kube::core::Status::failure(message, "Conflict").with_code(409),
    ))
}

impl Deployer {
    /// Brings the live object to the manifest: creates it when it does not exist, else
    /// replaces its spec and merges its labels and annotations (see [`crate::model::merge`]) with a
    /// resourceVersion precondition; a concurrent write makes it re-read and merge again.
    /// Nothing is written when the live object already matches.
    ///
    /// # Errors
    ///
    /// As [`Deployer::create`]; [`Error::Gone`] when the object is being deleted; an access
    /// error after repeated conflicts.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::model::merge::image_changes;
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// let m = &seldon_deploy::model::manifest::load("examples/iris-v1alpha2.yaml")?[0];
    /// let applied = deployer.apply(m, deadline).await?;
    /// println!("{} {}", applied.handle.name, applied.change); // created, updated or unchanged
    /// for c in image_changes(applied.before.as_ref(), &applied.after) {
    ///     println!("{} {}: {:?} -> {:?}", c.component, c.container, c.old, c.new);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn apply(&self, manifest: &Manifest, deadline: Instant) -> Result<Applied> {
        self.apply_as(manifest, false, deadline).await
    }

    /// What [`Deployer::apply`] would do, sent with `dryRun=All`: validated and defaulted by
    /// the server, stored nowhere. [`Applied::after`] is the result, for a diff.
    ///
    /// # Errors
    ///
    /// As [`Deployer::apply`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::model::merge::diff;
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// let m = &seldon_deploy::model::manifest::load("examples/iris-v1alpha2.yaml")?[0];
    /// let preview = deployer.apply_dry_run(m, deadline).await?;
    /// print!("{}", diff(&m.name, preview.before.as_ref(), &preview.after));
    /// # Ok(()) }
    /// ```
    pub async fn apply_dry_run(&self, manifest: &Manifest, deadline: Instant) -> Result<Applied> {
        self.apply_as(manifest, true, deadline).await
    }

    async fn apply_as(
        &self,
        manifest: &Manifest,
        dry_run: bool,
        deadline: Instant,
    ) -> Result<Applied> {
        manifest.check_namespace(&self.namespace)?;
        self.check_path(&manifest.name)?;
        let url = format!(
            "/apis/{GROUP}/{}/namespaces/{}/seldondeployments/{}?fieldValidation=Strict&fieldManager={FIELD_MANAGER}{}",
            manifest.version,
            self.namespace,
            manifest.name,
            if dry_run { "&dryRun=All" } else { "" }
        );
        let op = self.op("update", &manifest.name);
        // A dry run stores nothing, so it needs no marker (and its diff shows none).
        let apply_id = (!dry_run).then(new_run_id);
        let written = self
            .put_guarded(
                &manifest.name,
                &url,
                deadline,
                apply_id.as_deref(),
                |live| {
                    if live
                        .pointer("/metadata/deletionTimestamp")
                        .is_some_and(|v| !v.is_null())
                    {
                        let h = Handle::from_object(live, &self.namespace)?;
                        return Err(h.gone("marked for deletion"));
                    }
                    Ok(Some(merge::desired_object(live, manifest)))
                },
            )
            .await;
        let (live, after) = match written {
            Err(WriteError::Read(Error::NotFound { .. })) => {
                return self.apply_create(manifest, dry_run, deadline).await;
            }
            Err(WriteError::Read(e)) => return Err(e),
            Err(WriteError::Put(e)) => return Err(self.classify_write(e, &op, manifest)),
            Err(WriteError::Lost { write, read }) => {
                tracing::debug!("could not settle whether the update was stored: {read:?}");
                if !self.contacted.load(Ordering::Relaxed) {
                    return Err(self.classify_write(write, &op, manifest));
                }
                return Err(Error::WriteUncertain {
                    namespace: self.namespace.clone(),
                    name: manifest.name.clone(),
                    apply_id: apply_id.unwrap_or_default(),
                    restore: false,
                    source: Box::new(write),
                });
            }
            Ok(done) => done,
        };
        let handle = Handle::from_object(&live, &self.namespace)?;
        let Some(after) = after else {
            return Ok(Applied {
                handle,
                change: Change::Unchanged,
                after: live.clone(),
                before: Some(live),
                revision: None,
                apply_id: None,
            });
        };
        // The server found nothing to store but the marker (e.g. a number written
        // differently): the live spec stands, and there is nothing to roll back.
        let change =
            if !dry_run && !merge::differs(&without_apply_id(&live), &without_apply_id(&after)) {
                Change::Unchanged
            } else {
                Change::Updated
            };
        let revision = (change == Change::Updated && !dry_run)
            .then(|| crate::names::revision_of(&after))
            .flatten();
        Ok(Applied {
            handle,
            change,
            before: Some(live),
            after,
            revision,
            apply_id: apply_id.filter(|_| change == Change::Updated),
        })
    }

    async fn apply_create(
        &self,
        manifest: &Manifest,
        dry_run: bool,
        deadline: Instant,
    ) -> Result<Applied> {
        if !dry_run {
            let handle = self.create(manifest, deadline).await?;
            return Ok(Applied {
                handle,
                change: Change::Created,
                before: None,
                after: manifest.object.clone(),
                revision: None,
                apply_id: None,
            });
        }
        let url = self.collection_url(&manifest.version, "&dryRun=All");
        let op = self.op("create", &manifest.name);
        let after: Value = self
            .retrying(deadline, false, || async {
                let req = json_request(http::Method::POST, &url, &manifest.object)?;
                self.client.request::<Value>(req).await
            })
            .await
            .map_err(|e| self.classify_write(e, &op, manifest))?;
        Ok(Applied {
            handle: Handle {
                namespace: self.namespace.clone(),
                name: manifest.name.clone(),
                uid: String::new(),
                created_at: None,
            },
            change: Change::Created,
            before: None,
            after,
            revision: None,
            apply_id: None,
        })
    }

    /// Undoes an update: `previous` is the object as it was before it, `wrote` the object the
    /// update stored. Only what the update changed is restored, and only while the live object
    /// is still as the update left it: the spec only if the live spec is still the one the
    /// update wrote, each label and annotation only if no one changed it since; re-reads on
    /// conflicts.
    /// Returns the restore as an update for [`Deployer::wait_rollout`] (`None`: nothing needed
    /// restoring). What it renders is judged from what the restore itself changed, not from
    /// the update it undoes: when another writer already put the previous spec back, the
    /// restore writes only metadata, and no new pod template is to be waited for.
    ///
    /// # Errors
    ///
    /// [`Error::ChangedByOthers`] if another writer changed the spec since the update;
    /// [`Error::Gone`] if the object was deleted or replaced; [`Error::WriteUncertain`] if
    /// the restore's answer was lost and a read could not settle it; access errors.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// let m = &seldon_deploy::model::manifest::load("examples/iris-v1alpha2.yaml")?[0];
    /// let applied = deployer.apply(m, deadline).await?;
    /// if let Some(before) = &applied.before {
    ///     // Undo the update (as `apply --atomic` does when its rollout fails), then wait for that.
    ///     if let Some(restore) = deployer.restore(&applied.handle, before, &applied.after, deadline).await? {
    ///         deployer.wait_rollout(&applied.handle, restore, deadline, &mut |_| {}).await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn restore(
        &self,
        handle: &Handle,
        previous: &Value,
        wrote: &Value,
        deadline: Instant,
    ) -> Result<Option<SpecUpdate>> {
        let url = format!(
            "/apis/{GROUP}/v1/namespaces/{}/seldondeployments/{}?fieldManager={FIELD_MANAGER}",
            self.namespace, handle.name
        );
        let written = self
            .put_guarded(&handle.name, &url, deadline, None, |live| {
                if !handle.is(live) {
                    return Err(handle.gone("replaced"));
                }
                match merge::restored_object(live, previous, wrote) {
                    merge::Restore::Send(v) => Ok(Some(v)),
                    merge::Restore::ChangedByOthers(changes) => Err(Error::ChangedByOthers {
                        name: handle.name.clone(),
                        changes,
                    }),
                }
            })
            .await;
        match written {
            Ok((from, after)) => Ok(after.and_then(|after| {
                Some(SpecUpdate {
                    revision: crate::names::revision_of(&after)?,
                    renders: Renders::between(&from, &after),
                    status: after.get("status").cloned(),
                })
            })),
            Err(WriteError::Read(Error::NotFound { .. })) => Err(handle.gone("deleted")),
            Err(WriteError::Read(e)) => Err(e),
            Err(WriteError::Put(e)) => Err(Error::from_kube(e, &self.op("update", &handle.name))),
            Err(WriteError::Lost { write, read }) => {
                tracing::debug!("could not settle whether the restore was stored: {read:?}");
                Err(Error::WriteUncertain {
                    namespace: self.namespace.clone(),
                    name: handle.name.clone(),
                    apply_id: crate::names::apply_id_of(wrote)
                        .unwrap_or_default()
                        .to_owned(),
                    restore: true,
                    source: Box::new(write),
                })
            }
        }
    }

    /// The one read-modify-write loop for whole objects (`apply`, `restore`): reads `name`,
    /// lets `build` make the object to send from it, and PUTs that to `url` with the read's
    /// resourceVersion as precondition, so a concurrent write is a 409, after which it reads
    /// and builds again (bounded). Nothing is sent when the built object does not differ from
    /// the live one; what is sent carries `marker` as [`APPLY_ID_ANNOTATION`], if given.
    ///
    /// A PUT is sent again only when the answer proves it was not applied (429/503) or, after
    /// a lost answer (another 5xx, a dropped connection, the deadline), a read shows it was not:
    /// the object does not carry `marker` (without a marker: something is still left to send).
    /// The same precondition then guards the re-sent write against a late arrival of the first,
    /// and a write by someone else in between makes it build again from their object. Once an
    /// answer was lost, every later read is checked the same way, so a late arrival that makes
    /// a re-sent write answer 409 is recognised as this write.
    ///
    /// Returns the object the write was built from and, if something was written, the server's
    /// answer (after a lost answer, the object read that carries the write).
    async fn put_guarded(
        &self,
        name: &str,
        url: &str,
        deadline: Instant,
        marker: Option<&str>,
        build: impl Fn(&Value) -> Result<Option<Value>>,
    ) -> Result<(Value, Option<Value>), WriteError> {
        // Whether `live` already has the write (checked only after a lost answer).
        let landed = |live: &Value| -> Result<bool> {
            Ok(match marker {
                Some(m) => crate::names::apply_id_of(live) == Some(m),
                None => build(live)?.is_none_or(|d| !merge::differs(live, &d)),
            })
        };
        let mut attempts = Attempts::new();
        let mut live = self.get(name, deadline).await.map_err(WriteError::Read)?;
        // After a lost answer: the object that write was built from.
        let mut lost_from: Option<Value> = None;
        while attempts.start() {
            if let Some(from) = lost_from.take() {
                if landed(&live).map_err(WriteError::Read)? {
                    let stored = self.as_stored(name, &from, marker, live).await;
                    return Ok((from, Some(stored)));
                }
                lost_from = Some(from);
            }
            let desired = match build(&live).map_err(WriteError::Read)? {
                Some(d) if merge::differs(&live, &d) => d,
                _ => return Ok((live, None)),
            };
            let desired = match marker {
                Some(m) => with_annotation(&desired, APPLY_ID_ANNOTATION, m),
                None => desired,
            };
            match self
                .retrying(deadline, false, || async {
                    let req = json_request(http::Method::PUT, url, &desired)?;
                    self.client.request::<Value>(req).await
                })
                .await
            {
                Ok(after) => return Ok((live, Some(after))),
                Err(kube::Error::Api(s))
                    if s.code == 409 && attempts.may_follow_conflict(deadline) =>
                {
                    tracing::debug!(attempts.made, "update conflict, re-reading: {}", s.message);
                    attempts.wait(&self.stats).await;
                    live = self.get(name, deadline).await.map_err(WriteError::Read)?;
                }
                Err(e) if answer_lost(&e) => {
                    tracing::debug!("the answer to the update was lost or ambiguous, reading: {e}");
                    self.stats.retry();
                    // As for a create: the deadline may be what cut the answer off.
                    let check_deadline = deadline.max(Instant::now() + OWNERSHIP_CHECK);
                    let now = match self.get(name, check_deadline).await {
                        Ok(now) => now,
                        Err(read) => {
                            return Err(WriteError::Lost {
                                write: e,
                                read: Some(read),
                            });
                        }
                    };
                    if landed(&now).map_err(WriteError::Read)? {
                        let stored = self.as_stored(name, &live, marker, now).await;
                        return Ok((live, Some(stored)));
                    }
                    if !attempts.left() || Instant::now() >= deadline {
                        // Not stored yet, and no attempts or time left: it may still arrive.
                        return Err(WriteError::Lost {
                            write: e,
                            read: None,
                        });
                    }
                    lost_from = Some(std::mem::replace(&mut live, now));
                }
                // A conflict that ends the loop after a lost answer may be that write's own
                // late arrival: one more read tells.
                Err(e @ kube::Error::Api(_)) if lost_from.is_some() => {
                    let check_deadline = deadline.max(Instant::now() + OWNERSHIP_CHECK);
                    return match (self.get(name, check_deadline).await, lost_from.take()) {
                        (Ok(now), Some(from)) if landed(&now).map_err(WriteError::Read)? => {
                            let stored = self.as_stored(name, &from, marker, now).await;
                            Ok((from, Some(stored)))
                        }
                        (Ok(_), _) => Err(WriteError::Lost {
                            write: e,
                            read: None,
                        }),
                        (Err(read), _) => Err(WriteError::Lost {
                            write: e,
                            read: Some(read),
                        }),
                    };
                }
                Err(e) => return Err(WriteError::Put(e)),
            }
        }
        Err(WriteError::Put(conflict(GAVE_UP)))
    }

    /// The object as this write stored it, found after a lost answer: `read` carries the
    /// write, but later writes (the operator's status) may have moved its resourceVersion on,
    /// and the rollout wait needs the write's own. A watch from `from`'s resourceVersion
    /// replays the changes since in order; the first one that carries `marker` is the write.
    /// Without a marker, or if the watch cannot tell within a few seconds (the history was
    /// compacted, say), `read` itself, whose resourceVersion is no earlier.
    async fn as_stored(
        &self,
        name: &str,
        from: &Value,
        marker: Option<&str>,
        read: Value,
    ) -> Value {
        use futures::StreamExt;
        use kube::api::{WatchEvent, WatchParams};
        let (Some(marker), Some(from_rv)) = (
            marker,
            from.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
        ) else {
            return read;
        };
        let carries = |o: &Value| crate::names::apply_id_of(o) == Some(marker);
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(OWNERSHIP_CHECK.as_secs() as u32);
        let found = async {
            let mut events = self.sdeps.watch(&wp, from_rv).await.ok()?.boxed();
            while let Some(Ok(ev)) = events.next().await {
                if let WatchEvent::Added(o) | WatchEvent::Modified(o) = ev {
                    let o = serde_json::to_value(o).ok()?;
                    if carries(&o) {
                        return Some(o);
                    }
                }
            }
            None
        };
        match tokio::time::timeout(OWNERSHIP_CHECK, found).await {
            Ok(Some(stored)) => stored,
            _ => {
                tracing::debug!("the update's own resourceVersion is unknown; using the read's");
                read
            }
        }
    }

    /// Scales every component to `n` with a JSON Patch computed from a fresh read: every
    /// replica field the live object sets (componentSpec, predictor, spec) is set to `n`, and
    /// `spec.replicas` is added when some component has none; `test` operations on the UID and
    /// the predictor names guard it. On a conflict or a failed `test` it re-reads and retries
    /// with bounded backoff.
    ///
    /// # Errors
    ///
    /// [`Error::Autoscaled`] for hpaSpec/kedaSpec components; [`Error::Gone`] if the object
    /// was deleted or replaced; [`Error::Forbidden`] and other access errors.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// # let h = seldon_deploy::Deployer::new(conn.client.clone(), &conn.namespace).handle("iris", tokio::time::Instant::now()).await?;
    /// use seldon_deploy::model::components::Target;
    /// use seldon_deploy::Deployer;
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// let plan = deployer.scale(&h, 3, deadline).await?;
    /// println!("set {}", plan.paths.join(", ")); // e.g. /spec/predictors/0/replicas
    /// deployer.wait_ready(&h, Target::Replicas(3), deadline, &mut |_| {}).await?;
    /// # Ok(()) }
    /// ```
    pub async fn scale(&self, handle: &Handle, n: i32, deadline: Instant) -> Result<ScalePlan> {
        let op = self.op("patch", &handle.name);
        let mut attempts = Attempts::new();
        // The first attempt starts from the copy the last wait read, if the shared watch holds
        // one: a GET here is a quorum read, slowest exactly when the pods turn Ready and etcd is
        // busy with the controllers' writes. Pinned to that copy's resourceVersion, a stale copy
        // is refused (422) and only then read fresh.
        let mut cached = self
            .cache()
            .last_seen_sdep(&handle.name)
            .filter(|live| handle.is(live));
        while attempts.start() {
            let from_cache = cached.is_some();
            let plan = if let Some(live) = cached.take() {
                scale_patch(&live, n)?.only_at_version_of(&live)
            } else {
                let live = match self.get(&handle.name, deadline).await {
                    Err(Error::NotFound { .. }) => return Err(handle.gone("deleted")),
                    other => other?,
                };
                if !handle.is(&live) {
                    return Err(handle.gone("replaced"));
                }
                scale_patch(&live, n)?
            };
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            let patch: Patch<()> = Patch::Json(plan.patch.clone());
            match self
                .retrying(deadline, true, || {
                    self.sdeps.patch(&handle.name, &pp, &patch)
                })
                .await
            {
                Ok(_) => return Ok(plan),
                // An object's own 404, not a router's (an API server restarting that does not
                // serve the CRD yet, which `retrying` waited out until the deadline).
                Err(e @ kube::Error::Api(_)) if !is_unserved_resource(&e) && is_404(&e) => {
                    return Err(handle.gone("deleted"));
                }
                Err(kube::Error::Api(s))
                    if (s.code == 409 || patch_did_not_apply(&s))
                        && attempts.may_follow_conflict(deadline) =>
                {
                    tracing::debug!(
                        attempts.made,
                        code = s.code,
                        from_cache,
                        "scale conflict, re-reading: {}",
                        s.message
                    );
                    // A stale cached copy is no contention: read fresh at once.
                    if !from_cache {
                        attempts.wait(&self.stats).await;
                    }
                }
                Err(e) => return Err(Error::from_kube(e, &op)),
            }
        }
        Err(Error::from_kube(conflict(GAVE_UP), &op))
    }
}

/// `object` without [`APPLY_ID_ANNOTATION`], to compare what an update changed besides it.
fn without_apply_id(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        map.remove(APPLY_ID_ANNOTATION);
    }
    object
}

fn is_404(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
