//! The lifecycle steps as an async API: create, wait, scale, delete, status.
//!
//! Every step takes a deadline ([`tokio::time::Instant`]) and returns an [`Error`] whose
//! [`Error::exit_code`] matches the CLI's documented codes. Reads and waits use the storage
//! version `v1`; the create is sent to the version the manifest names.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::params::Preconditions;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;

use crate::apply::{self, Change};
use crate::cache::{NamespaceCache, ObjectWatch, Parts, WatchesRunning};
use crate::error::{Error, Op, Result, is_transient, is_unserved_resource, retry_after};
use crate::freshness::{self, Baseline, Renders, SpecUpdate};
use crate::judge::wait::{Next, Wait};
use crate::manifest::{GROUP, Manifest};
use crate::pods::{self, Assessment};
use crate::readiness::{self, Readiness, Verdict};
use crate::replicas::{self, Target};
use crate::scale::{ScalePlan, scale_patch};
use crate::watch::{SELDON_ID_LABEL, Stats};

pub use crate::model::names::{FIELD_MANAGER, RUN_ID_ANNOTATION};
/// [`RUN_ID_ANNOTATION`] as a JSON Pointer segment (`/` escaped as `~1`).
const RUN_ID_POINTER: &str = "seldon-deploy.io~1run-id";
pub use crate::model::names::APPLY_ID_ANNOTATION;
/// [`APPLY_ID_ANNOTATION`] as a JSON Pointer segment.
const APPLY_ID_POINTER: &str = "seldon-deploy.io~1apply-id";
/// The least time the read after a lost create answer gets, even past the phase deadline.
const OWNERSHIP_CHECK: Duration = Duration::from_secs(10);
/// How many times a write (scale, update, restore) is re-read and re-sent after a conflict.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// Tuning for the wait steps.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// How long `status.state == Failed` must persist before a wait gives up (transient
    /// `Failed` happens during reconciles). Default 30 s.
    pub failed_grace: Duration,
    /// After this long without any status from the operator, a hint is emitted. Default 30 s.
    pub status_hint_after: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            failed_grace: Duration::from_secs(30),
            status_hint_after: Duration::from_secs(30),
        }
    }
}

/// Identifies the object a run created: name plus UID, so a re-created namesake is never
/// mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handle {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID assigned by the API server.
    pub uid: String,
    /// `metadata.creationTimestamp` (server clock), used to skip older events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Handle {
    fn from_object(obj: &Value, namespace: &str) -> Result<Self> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Ok(Handle {
            namespace: s("/metadata/namespace").unwrap_or_else(|| namespace.to_owned()),
            name: s("/metadata/name").unwrap_or_default(),
            uid: s("/metadata/uid").ok_or_else(|| Error::UnexpectedResponse {
                what: "an object without metadata.uid".into(),
                source: None,
            })?,
            created_at: s("/metadata/creationTimestamp"),
        })
    }
}

/// The result of [`Deployer::apply`].
#[derive(Debug, Clone)]
pub struct Applied {
    /// The object (for a dry-run creation, without a UID).
    pub handle: Handle,
    /// What was done.
    pub change: Change,
    /// The live object before the update (`None` when created).
    pub before: Option<Value>,
    /// The object after the write, as the server returned it (the manifest for a creation;
    /// the live object when unchanged).
    pub after: Value,
    /// The update's resourceVersion, which a status must be newer than to describe it
    /// (see [`Target::Rollout`]); `None` when nothing was updated. After a lost answer, the
    /// one a watch found the update stored at, else that of the read that found it (which
    /// may be later).
    pub revision: Option<u64>,
    /// The value of [`APPLY_ID_ANNOTATION`] the update set (`None` when nothing was updated).
    pub apply_id: Option<String>,
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

/// A JSON request. Names in `url` were checked ([`Deployer::check_path`]), so building it
/// does not fail; if it ever did, that is an error, not a panic.
fn json_request(
    method: http::Method,
    url: &str,
    body: &Value,
) -> Result<http::Request<Vec<u8>>, kube::Error> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .map_err(kube::Error::HttpError)
}

/// What a wait reports while it runs.
#[derive(Debug)]
#[non_exhaustive]
pub enum WaitEvent<'a> {
    /// The predicate's latest evaluation (sent when it changes).
    Readiness(&'a Readiness),
    /// Deletion progress: whether the SeldonDeployment still exists and which owned
    /// Deployments remain.
    Deleting {
        /// The SeldonDeployment (this UID) still exists.
        sdep_present: bool,
        /// Owned Deployments not yet gone.
        deployments: &'a [String],
    },
    /// Advice for the user, e.g. that the operator has not written any status.
    Hint(&'a str),
}

/// A callback receiving [`WaitEvent`]s.
pub type Observer<'o> = &'o mut (dyn FnMut(WaitEvent<'_>) + Send);

/// The client-side handle for one namespace: creates, waits, scales and deletes.
#[derive(Clone)]
pub struct Deployer {
    client: Client,
    namespace: String,
    sdeps: Api<DynamicObject>,
    deployments: Api<Deployment>,
    options: WaitOptions,
    stats: Stats,
    cache: NamespaceCache,
    /// Whether the API server has answered at least once. Transport errors are retried only
    /// after that: a server that was up is restarting, one never reached is misconfigured,
    /// and saying so at once beats waiting out the deadline.
    contacted: Arc<AtomicBool>,
    /// A request has succeeded (so the SeldonDeployment resource type is served).
    served: Arc<AtomicBool>,
}

pub use crate::manifest::sdep_resource;

impl Deployer {
    /// A deployer for `namespace` with default [`WaitOptions`].
    ///
    /// Any [`Client`] works, also one with kube's default retry layer (which re-sends a POST
    /// answered 504): [`Deployer::create`] resolves every 409 by reading the object and checking
    /// this create's [`RUN_ID_ANNOTATION`], so its object is never taken for someone else's and
    /// left behind. [`crate::connect::connect`] switches that layer off all the same, since its
    /// delays (up to 1000 s) are not bounded by a phase deadline.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// use seldon_deploy::{Deployer, manifest, replicas::Target};
    /// use tokio::time::{Duration, Instant};
    ///
    /// let conn = seldon_deploy::connect::connect(&Default::default()).await?;
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let m = &manifest::load("examples/iris-v1alpha2.yaml")?[0];
    /// let deadline = || Instant::now() + Duration::from_secs(300);
    /// let h = deployer.create(m, deadline()).await?;
    /// deployer.wait_ready(&h, Target::Initial, deadline(), &mut |_| {}).await?;
    /// deployer.scale(&h, 2, deadline()).await?;
    /// deployer.wait_ready(&h, Target::Replicas(2), deadline(), &mut |_| {}).await?;
    /// deployer.delete(&h, deadline(), &mut |_| {}).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(client: Client, namespace: &str) -> Self {
        let stats = Stats::default();
        Deployer {
            sdeps: Api::namespaced_with(client.clone(), namespace, &sdep_resource("v1")),
            deployments: Api::namespaced(client.clone(), namespace),
            namespace: namespace.to_owned(),
            cache: NamespaceCache::new(client.clone(), namespace, false, stats.clone()),
            client,
            options: WaitOptions::default(),
            stats,
            contacted: Arc::default(),
            served: Arc::default(),
        }
    }

    /// Shares one watch per resource across everything this deployer (and its clones) does in
    /// the namespace, instead of opening watches per wait; see [`crate::cache`]. Use it to
    /// drive many deployments at once: the API load then stays flat as their number grows.
    #[must_use]
    pub fn with_shared_watches(mut self, shared: bool) -> Self {
        self.cache = NamespaceCache::new(
            self.client.clone(),
            &self.namespace,
            shared,
            self.stats.clone(),
        );
        self
    }

    /// As [`Deployer::with_shared_watches`]`(true)` for a deployer that handles only `name`:
    /// the shared SeldonDeployment watch is narrowed to it (see [`NamespaceCache::for_one`]).
    #[must_use]
    pub fn with_shared_watches_for(mut self, name: &str) -> Self {
        self.cache = NamespaceCache::for_one(
            self.client.clone(),
            &self.namespace,
            name,
            self.stats.clone(),
        );
        self
    }

    /// The cache of this deployer's namespace.
    #[must_use]
    pub fn cache(&self) -> &NamespaceCache {
        &self.cache
    }

    /// Keeps the shared watches running while the returned value lives (a no-op when
    /// unshared).
    #[must_use]
    pub fn keep_watches_running(&self) -> WatchesRunning {
        self.cache.keep_running()
    }

    /// Replaces the wait tuning.
    #[must_use]
    pub fn with_options(mut self, options: WaitOptions) -> Self {
        self.options = options;
        self
    }

    /// The namespace this deployer works in.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The underlying client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Watch and retry counters of this deployer (shared by its clones).
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Refuses a name or namespace Kubernetes would never accept before it goes into a
    /// request path, so no input can change the path a request is sent to.
    fn check_path(&self, name: &str) -> Result<()> {
        crate::manifest::check_namespace_name("namespace", &self.namespace)?;
        crate::manifest::check_name("name", name)
    }

    fn op(&self, verb: &'static str, name: &str) -> Op {
        Op::sdep(verb, &self.namespace, Some(name))
    }

    /// Creates the SeldonDeployment as written, plus one annotation, [`RUN_ID_ANNOTATION`],
    /// posting to the version the manifest names with `fieldValidation=Strict` (unknown fields
    /// are rejected, not pruned).
    ///
    /// The request is sent again only when the server's answer proves it was not stored
    /// (429/503). When the answer is lost (another 5xx, a dropped connection, no answer before
    /// the deadline), or the server answers 409 (which a client layer's own re-send of a stored
    /// create also gets), a read decides: an object carrying this create's marker is this run's own
    /// and the create succeeded; one without it was someone else's (name taken); no object
    /// means nothing was stored, and the create is sent again (a late arrival of the first one
    /// then makes it answer 409, which the same read resolves to our own object).
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] if `metadata.namespace` conflicts; [`Error::Invalid`] (exit 2) with
    /// the server's message for 400/422; [`Error::AlreadyExists`] (exit 3) if the name is
    /// taken; [`Error::CreateUncertain`] if the answer was lost and a read could not settle
    /// whether it was stored; [`Error::MissingCrd`] / [`Error::MissingNamespace`] /
    /// [`Error::Forbidden`] / [`Error::Access`] for cluster problems.
    pub async fn create(&self, manifest: &Manifest, deadline: Instant) -> Result<Handle> {
        self.check_path(&manifest.name)?;
        manifest.check_namespace(&self.namespace)?;
        let url = format!(
            "/apis/{GROUP}/{}/namespaces/{}/seldondeployments?fieldValidation=Strict&fieldManager={FIELD_MANAGER}",
            manifest.version, self.namespace
        );
        let run_id = new_run_id();
        let body = serde_json::to_vec(&with_annotation(
            &manifest.object,
            RUN_ID_ANNOTATION,
            &run_id,
        ))
        .map_err(|e| Error::Manifest {
            source_name: manifest.origin(),
            message: format!("cannot encode as JSON: {e}"),
        })?;
        let op = self.op("create", &manifest.name);
        let map_err = |e| match Error::from_kube(e, &op) {
            Error::MissingCrd { message, .. } => Error::MissingCrd {
                version: manifest.version.clone(),
                message,
            },
            other => other,
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            // 429/503 prove the request was not stored: `retrying` repeats only those.
            let attempt = self
                .retrying(deadline, false, || async {
                    let req = http::Request::post(url.as_str())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                        .map_err(kube::Error::HttpError)?;
                    self.client.request::<Value>(req).await
                })
                .await;
            let err = match attempt {
                Ok(created) => return Handle::from_object(&created, &self.namespace),
                // "Already exists" may be our own earlier attempt, whose answer was lost: to
                // this loop, or to a client layer that re-sent the POST (kube's retry layer
                // does on 504 unless switched off, as `connect` does). The read decides.
                Err(kube::Error::Api(s)) if s.is_already_exists() => kube::Error::Api(s),
                Err(e) if answer_lost(&e) => e,
                Err(e) => return Err(map_err(e)),
            };
            tracing::debug!("the answer to the create was lost or ambiguous, reading: {err}");
            // The deadline may be what cut the answer off: the read gets a short grace so a
            // stored object is still found (and then cleaned up by its run).
            let check_deadline = deadline.max(Instant::now() + OWNERSHIP_CHECK);
            match self.get(&manifest.name, check_deadline).await {
                Ok(live) => {
                    if live
                        .pointer(&format!("/metadata/annotations/{RUN_ID_POINTER}"))
                        .and_then(Value::as_str)
                        == Some(run_id.as_str())
                    {
                        return Handle::from_object(&live, &self.namespace);
                    }
                    return Err(Error::AlreadyExists {
                        namespace: self.namespace.clone(),
                        name: manifest.name.clone(),
                    });
                }
                Err(Error::NotFound { .. }) if Instant::now() + backoff < deadline => {
                    self.stats.retry();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                // Nothing has ever answered: an unreachable or misconfigured server, which the
                // original error describes best.
                Err(_) if !self.contacted.load(Ordering::Relaxed) => return Err(map_err(err)),
                Err(other) => {
                    tracing::debug!("could not settle whether the create was stored: {other}");
                    return Err(Error::CreateUncertain {
                        namespace: self.namespace.clone(),
                        name: manifest.name.clone(),
                        run_id,
                        source: Box::new(err),
                    });
                }
            }
        }
    }

    /// Brings the live object to the manifest: creates it when it does not exist, else
    /// replaces its spec and merges its labels and annotations (see [`crate::apply`]) with a
    /// resourceVersion precondition; a concurrent write makes it re-read and merge again.
    /// Nothing is written when the live object already matches. With `dry_run` the write is
    /// sent with `dryRun=All`: validated and defaulted by the server, stored nowhere.
    ///
    /// # Errors
    ///
    /// As [`Deployer::create`]; [`Error::Gone`] when the object is being deleted; an access
    /// error after repeated conflicts.
    pub async fn apply(
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
                        return Err(Error::Gone {
                            name: h.name,
                            uid: h.uid,
                            how: "marked for deletion",
                        });
                    }
                    Ok(Some(apply::desired_object(live, manifest)))
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
            if !dry_run && !apply::differs(&without_apply_id(&live), &without_apply_id(&after)) {
                Change::Unchanged
            } else {
                Change::Updated
            };
        let revision = (change == Change::Updated && !dry_run)
            .then(|| {
                apply::revision(
                    after
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str),
                )
            })
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
    /// is still as the update left it (see [`apply::restored_object`]); re-reads on conflicts.
    /// Returns the resourceVersion of the write (`None`: nothing needed restoring), for the
    /// rollout wait.
    ///
    /// # Errors
    ///
    /// [`Error::ChangedByOthers`] if another writer changed the spec since the update;
    /// [`Error::Gone`] if the object was deleted or replaced; [`Error::WriteUncertain`] if
    /// the restore's answer was lost and a read could not settle it; access errors.
    pub async fn restore(
        &self,
        handle: &Handle,
        previous: &Value,
        wrote: &Value,
        deadline: Instant,
    ) -> Result<Option<u64>> {
        let gone = |how| Error::Gone {
            name: handle.name.clone(),
            uid: handle.uid.clone(),
            how,
        };
        let url = format!(
            "/apis/{GROUP}/v1/namespaces/{}/seldondeployments/{}?fieldManager={FIELD_MANAGER}",
            self.namespace, handle.name
        );
        let written = self
            .put_guarded(&handle.name, &url, deadline, None, |live| {
                if live.pointer("/metadata/uid").and_then(Value::as_str) != Some(&handle.uid) {
                    return Err(gone("replaced"));
                }
                match apply::restored_object(live, previous, wrote) {
                    apply::Restore::Send(v) => Ok(Some(v)),
                    apply::Restore::ChangedByOthers(changes) => Err(Error::ChangedByOthers {
                        name: handle.name.clone(),
                        changes,
                    }),
                }
            })
            .await;
        match written {
            Ok((_, after)) => Ok(after.and_then(|a| {
                apply::revision(
                    a.pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str),
                )
            })),
            Err(WriteError::Read(Error::NotFound { .. })) => Err(gone("deleted")),
            Err(WriteError::Read(e)) => Err(e),
            Err(WriteError::Put(e)) => Err(Error::from_kube(e, &self.op("update", &handle.name))),
            Err(WriteError::Lost { write, read }) => {
                tracing::debug!("could not settle whether the restore was stored: {read:?}");
                Err(Error::WriteUncertain {
                    namespace: self.namespace.clone(),
                    name: handle.name.clone(),
                    apply_id: wrote
                        .pointer(&format!("/metadata/annotations/{APPLY_ID_POINTER}"))
                        .and_then(Value::as_str)
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
                Some(m) => {
                    live.pointer(&format!("/metadata/annotations/{APPLY_ID_POINTER}"))
                        .and_then(Value::as_str)
                        == Some(m)
                }
                None => build(live)?.is_none_or(|d| !apply::differs(live, &d)),
            })
        };
        let mut delay = Duration::from_millis(10);
        let mut live = self.get(name, deadline).await.map_err(WriteError::Read)?;
        // After a lost answer: the object that write was built from.
        let mut lost_from: Option<Value> = None;
        for attempt in 1..=MAX_WRITE_ATTEMPTS {
            if let Some(from) = lost_from.take() {
                if landed(&live).map_err(WriteError::Read)? {
                    let stored = self.as_stored(name, &from, marker, live).await;
                    return Ok((from, Some(stored)));
                }
                lost_from = Some(from);
            }
            let desired = match build(&live).map_err(WriteError::Read)? {
                Some(d) if apply::differs(&live, &d) => d,
                _ => return Ok((live, None)),
            };
            let desired = match marker {
                Some(m) => with_annotation(&desired, APPLY_ID_ANNOTATION, m),
                None => desired,
            };
            let retry = attempt < MAX_WRITE_ATTEMPTS;
            match self
                .retrying(deadline, false, || async {
                    let req = json_request(http::Method::PUT, url, &desired)?;
                    self.client.request::<Value>(req).await
                })
                .await
            {
                Ok(after) => return Ok((live, Some(after))),
                Err(kube::Error::Api(s))
                    if s.code == 409 && retry && Instant::now() + delay < deadline =>
                {
                    tracing::debug!(attempt, "update conflict, re-reading: {}", s.message);
                    self.stats.retry();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 5).min(Duration::from_secs(2));
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
                    if !retry {
                        // Not stored yet, and no attempts left: it may still arrive.
                        return Err(WriteError::Lost {
                            write: e,
                            read: None,
                        });
                    }
                    lost_from = Some(std::mem::replace(&mut live, now));
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
        let carries = |o: &Value| {
            o.pointer(&format!("/metadata/annotations/{APPLY_ID_POINTER}"))
                .and_then(Value::as_str)
                == Some(marker)
        };
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

    fn collection_url(&self, version: &str, extra: &str) -> String {
        format!(
            "/apis/{GROUP}/{version}/namespaces/{}/seldondeployments?fieldValidation=Strict&fieldManager={FIELD_MANAGER}{extra}",
            self.namespace
        )
    }

    /// Maps a write's error, naming the manifest's version when the CRD does not serve it.
    fn classify_write(&self, e: kube::Error, op: &Op, manifest: &Manifest) -> Error {
        match Error::from_kube(e, op) {
            Error::MissingCrd { message, .. } => Error::MissingCrd {
                version: manifest.version.clone(),
                message,
            },
            other => other,
        }
    }

    /// Reads the SeldonDeployment as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it does not exist, or an access error.
    pub async fn get(&self, name: &str, deadline: Instant) -> Result<Value> {
        self.check_path(name)?;
        let obj = self
            .retrying(deadline, true, || self.sdeps.get(name))
            .await
            .map_err(|e| Error::from_kube(e, &self.op("get", name)))?;
        serde_json::to_value(obj).map_err(|e| Error::UnexpectedResponse {
            what: format!("SeldonDeployment {name:?} cannot be re-encoded as JSON"),
            source: Some(Box::new(e)),
        })
    }

    /// Reads the SeldonDeployment and returns its [`Handle`].
    ///
    /// # Errors
    ///
    /// As [`Deployer::get`].
    pub async fn handle(&self, name: &str, deadline: Instant) -> Result<Handle> {
        let obj = self.get(name, deadline).await?;
        Handle::from_object(&obj, &self.namespace)
    }

    /// As [`Deployer::handle`], with the API server's clock when it answered (its `Date`
    /// header, if it sent one). Events carry the server's times, so "from now on" must be
    /// measured on that clock, not on this machine's.
    ///
    /// # Errors
    ///
    /// As [`Deployer::get`].
    pub async fn handle_and_server_time(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<(Handle, Option<Timestamp>)> {
        self.check_path(name)?;
        let url = format!(
            "/apis/{GROUP}/v1/namespaces/{}/seldondeployments/{name}",
            self.namespace
        );
        let (obj, date) = self
            .retrying(deadline, true, || get_with_date(&self.client, &url))
            .await
            .map_err(|e| Error::from_kube(e, &self.op("get", name)))?;
        Ok((Handle::from_object(&obj, &self.namespace)?, date))
    }

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
            &replicas::components(&obj),
            target,
        );
        Ok((handle, r))
    }

    /// Waits until the predicate in [`crate::readiness`] holds for `target`, watching the
    /// SeldonDeployment and the namespace's Seldon Deployments.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] at `deadline` (with the last readiness summary);
    /// [`Error::DeploymentFailed`] when `Failed` persists past the grace period;
    /// [`Error::PodsFailing`] when the pods of a Deployment's newest ReplicaSet cannot come up
    /// (see [`crate::pods`]) for longer than the same grace period, kept per pod and cause;
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
            }),
            _ => None,
        };
        self.wait(handle, target, update, deadline, observer).await
    }

    /// Waits until the rollout of `update` is complete: [`Deployer::wait_ready`] for
    /// [`Target::Rollout`], with the proof that the operator has acted on the update that
    /// [`crate::freshness`] defines (which needs to know what the update changed).
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
        let mut views = Views::new(self, handle, true, update, baseline);
        let mut wait = Wait::new(
            deadline,
            self.options.failed_grace,
            started + self.options.status_hint_after,
        );
        let mut wake = wait.wake_at();

        loop {
            let step = tokio::select! {
                () = tokio::time::sleep_until(wake) => wait.tick(Instant::now()),
                changed = views.next() => {
                    changed?;
                    if !views.synced() {
                        continue;
                    }
                    let sdep = views.sdep_json();
                    let comps = sdep.as_deref().map(replicas::components).unwrap_or_default();
                    let deps = views.owned_deployments();
                    // Once the operator has acted on the update, its status is as fresh as
                    // it will get (it writes none when nothing changed).
                    let not_yet = views.not_acted(sdep.as_deref(), &handle.uid, &deps, &comps);
                    let target = if not_yet.is_none() && views.update.is_some() {
                        Target::Rollout { status_after: None }
                    } else {
                        target
                    };
                    let mut r = readiness::evaluate(sdep.as_deref(), &handle.uid, &deps, &comps, target);
                    if let Some(why) = not_yet
                        && r.verdict == Verdict::NotReady
                        && r.components.iter().all(|c| c.ready)
                    {
                        r.reason = Some(why);
                    }
                    if r.verdict == Verdict::Gone
                        && r.reason.as_deref() != Some("marked for deletion")
                        && self.still_ours(handle, false, deadline).await?
                    {
                        // A shared store that has not caught up with our create yet.
                        continue;
                    }
                    wait.observe(Instant::now(), r, views.assess(&deps))
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
                    return Err(Error::Gone {
                        name: handle.name.clone(),
                        uid: handle.uid.clone(),
                        how: gone_how(r.reason.as_deref()),
                    });
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

    /// Scales every component to `n` with a JSON Patch computed from a fresh read (see
    /// [`crate::scale`]); on a conflict or a failed `test` it re-reads and retries with
    /// bounded backoff.
    ///
    /// # Errors
    ///
    /// [`Error::Autoscaled`] for hpaSpec/kedaSpec components; [`Error::Gone`] if the object
    /// was deleted or replaced; [`Error::Forbidden`] and other access errors.
    pub async fn scale(&self, handle: &Handle, n: i32, deadline: Instant) -> Result<ScalePlan> {
        let op = self.op("patch", &handle.name);
        let mut delay = Duration::from_millis(10);
        let gone = |how| Error::Gone {
            name: handle.name.clone(),
            uid: handle.uid.clone(),
            how,
        };
        for attempt in 1..=MAX_WRITE_ATTEMPTS {
            let live = match self.get(&handle.name, deadline).await {
                Err(Error::NotFound { .. }) => return Err(gone("deleted")),
                other => other?,
            };
            if live.pointer("/metadata/uid").and_then(Value::as_str) != Some(&handle.uid) {
                return Err(gone("replaced"));
            }
            let plan = scale_patch(&live, n)?;
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
                Err(kube::Error::Api(s)) if s.code == 404 => return Err(gone("deleted")),
                Err(kube::Error::Api(s))
                    if (s.code == 409 || patch_did_not_apply(&s))
                        && attempt < MAX_WRITE_ATTEMPTS
                        && Instant::now() + delay < deadline =>
                {
                    tracing::debug!(
                        attempt,
                        code = s.code,
                        "scale conflict, re-reading: {}",
                        s.message
                    );
                    self.stats.retry();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 5).min(Duration::from_secs(2));
                }
                Err(e) => return Err(Error::from_kube(e, &op)),
            }
        }
        Err(Error::from_kube(conflict(GAVE_UP), &op))
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
        let mut views = Views::new(self, handle, false, None, None);
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
                changed = views.next() => {
                    changed?;
                    if !views.synced() {
                        continue;
                    }
                    let present = views.sdep_json().is_some_and(|o| {
                        o.pointer("/metadata/uid").and_then(Value::as_str) == Some(handle.uid.as_str())
                    });
                    let left: Vec<String> = views
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
    /// (see [`crate::freshness`]). `None` if the server cannot answer that (then only a
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
            Ok(o) => Ok(o.pointer("/metadata/uid").and_then(Value::as_str)
                == Some(handle.uid.as_str())
                && (deleting
                    || o.pointer("/metadata/deletionTimestamp")
                        .is_none_or(Value::is_null))),
        }
    }

    /// Runs `f` again after transient errors (429, 503, transport errors when `idempotent`),
    /// sleeping the server's `retryAfterSeconds` if given, else an exponential backoff, while
    /// the deadline allows.
    async fn retrying<T, F, Fut>(
        &self,
        deadline: Instant,
        idempotent: bool,
        mut f: F,
    ) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut backoff = Duration::from_millis(200);
        loop {
            // The client has no read timeout (watches need none), so a hung request is
            // bounded here by the phase deadline.
            let attempt = match tokio::time::timeout_at(deadline, f()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(kube::Error::Service(
                        "no answer from the API server before the phase deadline".into(),
                    ));
                }
            };
            let transport = matches!(
                attempt,
                Err(kube::Error::HyperError(_) | kube::Error::Service(_))
            );
            if !transport {
                self.contacted.store(true, Ordering::Relaxed);
            }
            if attempt.is_ok() {
                self.served.store(true, Ordering::Relaxed);
            }
            // Once this resource type has been served, a router 404 is an API server restart
            // in progress (CRDs are served only after its informer syncs), not a missing CRD.
            let restarting = self.served.load(Ordering::Relaxed)
                && attempt.as_ref().is_err_and(is_unserved_resource);
            match attempt {
                Err(e) if transport && !self.contacted.load(Ordering::Relaxed) => return Err(e),
                Err(e) if is_transient(&e, idempotent) || restarting => {
                    let wait = retry_after(&e).unwrap_or(backoff);
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "transient API error, retrying: {e}"
                    );
                    self.stats.retry();
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }
}

/// Whether a JSON Patch was refused because it does not apply to the live object: a `test`
/// operation failed, or a path it names is gone (both mean the object changed since it was
/// read). The API server answers every such failure alike (`NewGenericServerResponse(422)`
/// in apiserver's `patch.go`): 422, reason `Invalid`, its generic message and empty details,
/// whereas a patched object failing validation gets details naming its kind and the causes.
fn patch_did_not_apply(s: &kube::core::Status) -> bool {
    s.code == 422
        && s.reason == "Invalid"
        && s.details
            .as_ref()
            .is_none_or(|d| d.kind.is_empty() && d.name.is_empty() && d.causes.is_empty())
}

/// Whether a create's answer leaves open whether it was stored: a server error other than
/// 503 (which proves it was not), a transport failure, or a response that could not be read.
fn answer_lost(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 && s.code != 503 && s.code != 501,
        kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::ReadEvents(_)
        | kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_) => true,
        _ => false,
    }
}

/// A fresh random marker for one create (128 bits, hex).
fn new_run_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness (practically never): a per-process random hash of time and pid
        // still differs between runs, which is all the marker needs.
        use std::hash::{BuildHasher, RandomState};
        let seed = (std::time::SystemTime::now(), std::process::id());
        let state = RandomState::new();
        bytes[..8].copy_from_slice(&state.hash_one(seed).to_le_bytes());
        bytes[8..].copy_from_slice(&state.hash_one((seed, 1u8)).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `object` with annotation `key` set to `value`; every other field unchanged.
fn with_annotation(object: &Value, key: &str, value: &str) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if annotations.is_null() {
            *annotations = Value::Object(serde_json::Map::new());
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
    object
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

fn gone_how(reason: Option<&str>) -> &'static str {
    match reason {
        Some("replaced") => "replaced",
        Some("marked for deletion") => "marked for deletion",
        _ => "deleted",
    }
}

/// What a wait reads: the SeldonDeployment and its children, from the cache.
///
/// Pods never hold readiness up; they only tell a broken rollout early (see [`crate::pods`]).
/// Events are a view, not the job: a wait never reads them (see [`crate::freshness`] for how
/// it knows that the operator has acted on an update).
struct Views {
    watch: ObjectWatch,
    /// The update the wait follows, if any.
    update: Option<SpecUpdate>,
    /// The owned Deployments at the update, if they could be listed.
    baseline: Option<Baseline>,
    /// The operator has acted on the update (once proven, it stays so).
    acted: bool,
}

impl Views {
    fn new(
        d: &Deployer,
        handle: &Handle,
        with_pods: bool,
        update: Option<SpecUpdate>,
        baseline: Option<Baseline>,
    ) -> Self {
        let parts = Parts {
            sdep: true,
            pods: with_pods,
            events: false,
        };
        Views {
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
        comps: &[replicas::Component],
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

/// GETs `url` as JSON, with the answer's `Date` header. kube's typed calls drop the headers, so
/// this sends the request itself and turns error answers into [`kube::Error::Api`] as kube does.
async fn get_with_date(
    client: &Client,
    url: &str,
) -> Result<(Value, Option<Timestamp>), kube::Error> {
    let req = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(kube::client::Body::from(Vec::new()))
        .map_err(kube::Error::HttpError)?;
    let res = client.send(req).await?;
    let code = res.status();
    let date = res
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new()
                .parse_timestamp(v)
                .ok()
        });
    let body = res.into_body().collect_bytes().await?;
    if code.is_client_error() || code.is_server_error() {
        let status = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&body);
            kube::core::Status::failure(text.trim(), "Failed to parse error data")
                .with_code(code.as_u16())
        });
        return Err(kube::Error::Api(status.boxed()));
    }
    let obj = serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
    Ok((obj, date))
}
