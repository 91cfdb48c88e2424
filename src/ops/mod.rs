//! The operations on one namespace's SeldonDeployments, as an async API: [`Deployer`] creates
//! (at most once), updates (`apply`, `restore`: guarded writes), scales, waits and deletes.
//!
//! Every operation takes a deadline ([`tokio::time::Instant`]) and returns an [`Error`] whose
//! [`Error::exit_code`] matches the CLI's documented codes. Reads and waits use the storage
//! version `v1`; a create or an update is sent to the version the manifest names.
//!
//! One concern per file: `transport` (requests, the one retry policy and backoff), `create`
//! (the create-once protocol), `update` (guarded writes: apply, restore, scale), `wait`
//! (readiness, rollout and deletion waits, which drive `judge` with the cache), `smoke` (one
//! request to each predictor through a port-forward, and a verdict on the answer).

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

use crate::cluster::cache::{NamespaceCache, ObjectWatch, ReaderNeeds};
use crate::cluster::watch::Stats;
use crate::error::{Error, Op, Result, is_transient, is_unserved_resource, retry_after};
use crate::judge::freshness::{self, Baseline, Renders, SpecUpdate};
use crate::judge::pods::{self, Assessment};
use crate::judge::readiness::{self, Readiness, Verdict};
use crate::judge::wait::{Next, Wait};
use crate::model::components::{self, Target};
use crate::model::manifest::Manifest;
use crate::model::merge::{self, Change};
use crate::model::scale::scale_patch;
use crate::names::GROUP;
use crate::names::SELDON_ID_LABEL;

mod create;
pub mod smoke;
mod transport;
mod update;
mod wait;
pub(crate) use wait::recreated_after_delete;

pub use crate::cluster::cache::WatchesRunning;
pub use crate::cluster::watch::WatchStats;
use crate::model::manifest::sdep_resource;
pub use crate::model::scale::ScalePlan;
use crate::names::APPLY_ID_ANNOTATION;
use crate::names::{FIELD_MANAGER, RUN_ID_ANNOTATION};
/// The least time the read after a lost create answer gets, even past the phase deadline.
const OWNERSHIP_CHECK: Duration = Duration::from_secs(10);

/// Tuning for the wait steps.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use seldon_deploy::ops::WaitOptions;
///
/// let patient = WaitOptions { failed_grace: Duration::from_secs(120), ..WaitOptions::default() };
/// assert_eq!(patient.status_hint_after, Duration::from_secs(30));
/// assert_eq!(WaitOptions::default().failed_grace, Duration::from_secs(30));
/// ```
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
///
/// # Examples
///
/// ```
/// use seldon_deploy::Handle;
///
/// let h = Handle { namespace: "seldon".into(), name: "iris".into(), uid: "0b5e".into(), created_at: None };
/// assert_eq!(
///     serde_json::to_value(&h)?,
///     serde_json::json!({"namespace": "seldon", "name": "iris", "uid": "0b5e"})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
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

    /// Whether `object` is this object, not a namesake made after it was deleted.
    fn is(&self, object: &Value) -> bool {
        object.pointer("/metadata/uid").and_then(Value::as_str) == Some(self.uid.as_str())
    }

    /// The error for this object having been deleted or replaced (`how`).
    fn gone(&self, how: &'static str) -> Error {
        Error::Gone {
            name: self.name.clone(),
            uid: self.uid.clone(),
            how,
        }
    }
}

/// The result of [`Deployer::apply`] (and of [`Deployer::apply_dry_run`]).
///
/// # Examples
///
/// What an apply would change, as `seldon-deploy apply --dry-run` shows it:
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// use seldon_deploy::{Deployer, model::{manifest, merge}};
/// use tokio::time::{Duration, Instant};
///
/// let deployer = Deployer::new(conn.client, &conn.namespace);
/// let m = &manifest::load("examples/iris-v1alpha2.yaml")?[0];
/// let preview = deployer.apply_dry_run(m, Instant::now() + Duration::from_secs(60)).await?;
/// println!("{} would be {}", preview.handle.name, preview.change);
/// print!("{}", merge::diff(&m.name, preview.before.as_ref(), &preview.after));
/// # Ok(()) }
/// ```
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

/// What a wait reports while it runs.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// # let h = seldon_deploy::Deployer::new(conn.client.clone(), &conn.namespace).handle("iris", tokio::time::Instant::now()).await?;
/// use seldon_deploy::{Deployer, model::components::Target, ops::WaitEvent};
/// use tokio::time::{Duration, Instant};
///
/// let deployer = Deployer::new(conn.client, &conn.namespace);
/// let mut show = |ev: WaitEvent<'_>| match ev {
///     WaitEvent::Readiness(r) => println!("{}", r.summary()),
///     WaitEvent::Hint(hint) => eprintln!("hint: {hint}"),
///     _ => {}
/// };
/// deployer.wait_ready(&h, Target::Initial, Instant::now() + Duration::from_secs(300), &mut show).await?;
/// # Ok(()) }
/// ```
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
///
/// # Examples
///
/// ```
/// use seldon_deploy::ops::{Observer, WaitEvent};
///
/// let mut hints = Vec::new();
/// let observer: Observer<'_> = &mut |ev| {
///     if let WaitEvent::Hint(h) = ev {
///         hints.push(h.to_owned());
///     }
/// };
/// observer(WaitEvent::Hint("the operator has not reported a status yet"));
/// assert_eq!(hints, ["the operator has not reported a status yet"]);
/// ```
pub type Observer<'o> = &'o mut (dyn FnMut(WaitEvent<'_>) + Send);

/// The client-side handle for one namespace: creates, waits, scales and deletes.
///
/// Clones are cheap and share the client, the watches and the counters. See [`Deployer::new`]
/// for a whole lifecycle.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), seldon_deploy::Error> {
/// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
/// use seldon_deploy::{Deployer, model::{components::Target, manifest}};
/// use tokio::time::{Duration, Instant};
///
/// let deployer = Deployer::new(conn.client, &conn.namespace);
/// let deadline = Instant::now() + Duration::from_secs(600);
/// for m in &manifest::load("examples")? {
///     let h = deployer.create(m, deadline).await?;
///     deployer.wait_ready(&h, Target::Initial, deadline, &mut |_| {}).await?;
/// }
/// # Ok(()) }
/// ```
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

impl Deployer {
    /// A deployer for `namespace` with default [`WaitOptions`].
    ///
    /// Any [`Client`] works, also one with kube's default retry layer (which re-sends a POST
    /// answered 504): [`Deployer::create`] resolves every 409 by reading the object and checking
    /// this create's [`RUN_ID_ANNOTATION`], so its object is never taken for someone else's and
    /// left behind. [`crate::cluster::connect::connect`] switches that layer off all the same, since its
    /// delays (up to 1000 s) are not bounded by a phase deadline.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// use seldon_deploy::{Deployer, model::manifest, model::components::Target};
    /// use tokio::time::{Duration, Instant};
    ///
    /// let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
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
            cache: NamespaceCache::per_reader(client.clone(), namespace, stats.clone()),
            client,
            options: WaitOptions::default(),
            stats,
            contacted: Arc::default(),
            served: Arc::default(),
        }
    }

    /// Shares one watch per resource across everything this deployer (and its clones) does in
    /// the namespace, instead of opening watches per wait. Use it to
    /// drive many deployments at once: the API load then stays flat as their number grows.
    ///
    /// # Examples
    ///
    /// Several lifecycles at once on one set of watches (as [`crate::run::run_many`] does):
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::{Deployer, model::manifest, run};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace).with_shared_watches();
    /// let ctx = run::Context::new(deployer);
    /// let manifests = manifest::load("examples")?;
    /// let opts = run::RunOptions::default();
    /// let reports = futures::future::join_all(manifests.iter().map(|m| run::run(&ctx, m, &opts))).await;
    /// assert!(reports.iter().all(|r| r.succeeded()));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_shared_watches(mut self) -> Self {
        self.cache =
            NamespaceCache::shared(self.client.clone(), &self.namespace, self.stats.clone());
        self
    }

    /// As [`Deployer::with_shared_watches`] for a deployer that handles only `name`:
    /// the shared SeldonDeployment watch is narrowed to it (one watch of one object).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// use seldon_deploy::{Deployer, run};
    ///
    /// // One SeldonDeployment: its shared watch lists and watches that one object only.
    /// let deployer = Deployer::new(conn.client, &conn.namespace).with_shared_watches_for("iris");
    /// let ctx = run::Context::new(deployer);
    /// # Ok(()) }
    /// ```
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
    pub(crate) fn cache(&self) -> &NamespaceCache {
        &self.cache
    }

    /// Keeps the shared watches running while the returned value lives (a no-op when
    /// unshared).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// # let h = seldon_deploy::Deployer::new(conn.client.clone(), &conn.namespace).handle("iris", tokio::time::Instant::now()).await?;
    /// use seldon_deploy::{Deployer, model::components::Target};
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace).with_shared_watches();
    /// let _running = deployer.keep_watches_running(); // both waits read the same watches
    /// let deadline = || Instant::now() + Duration::from_secs(300);
    /// deployer.wait_ready(&h, Target::Initial, deadline(), &mut |_| {}).await?;
    /// deployer.scale(&h, 2, deadline()).await?;
    /// deployer.wait_ready(&h, Target::Replicas(2), deadline(), &mut |_| {}).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn keep_watches_running(&self) -> WatchesRunning {
        self.cache.keep_running()
    }

    /// Replaces the wait tuning.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = kube::Client::try_from(kube::Config::new("https://127.0.0.1:6443".parse()?))?;
    /// use std::time::Duration;
    /// use seldon_deploy::{Deployer, ops::{WaitOptions, WatchStats}};
    ///
    /// let patient = WaitOptions { failed_grace: Duration::from_secs(120), ..WaitOptions::default() };
    /// let deployer = Deployer::new(client, "seldon").with_options(patient);
    /// assert_eq!(deployer.namespace(), "seldon");
    /// assert_eq!(deployer.watch_stats(), WatchStats::default()); // nothing watched yet
    /// # Ok(()) }
    /// ```
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

    /// Watch and retry counters of this deployer (shared by its clones), as they are now.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), seldon_deploy::Error> {
    /// # let conn = seldon_deploy::cluster::connect::connect(&Default::default()).await?;
    /// # let h = seldon_deploy::Deployer::new(conn.client.clone(), &conn.namespace).handle("iris", tokio::time::Instant::now()).await?;
    /// use seldon_deploy::{Deployer, model::components::Target};
    /// use tokio::time::{Duration, Instant};
    ///
    /// let deployer = Deployer::new(conn.client, &conn.namespace);
    /// let deadline = Instant::now() + Duration::from_secs(300);
    /// deployer.wait_ready(&h, Target::Initial, deadline, &mut |_| {}).await?;
    /// let stats = deployer.watch_stats();
    /// println!("{} relists, {} retried requests", stats.relists, stats.retries);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn watch_stats(&self) -> WatchStats {
        self.stats.snapshot()
    }

    /// Refuses a name or namespace Kubernetes would never accept before it goes into a
    /// request path, so no input can change the path a request is sent to.
    fn check_path(&self, name: &str) -> Result<()> {
        crate::model::manifest::check_namespace_name("namespace", &self.namespace)?;
        crate::model::manifest::check_name("name", name)
    }

    fn op(&self, verb: &'static str, name: &str) -> Op {
        Op::sdep(verb, &self.namespace, Some(name))
    }
}
