//! The crate's error type and its mapping to process exit codes ([`EXIT_CODES`]).

use std::time::Duration;

/// Every exit code and what it means, in order: the one table the CLI's `--help` is generated
/// from and the README's table is checked against (`tests/cli_input.rs`).
///
/// # Examples
///
/// Every single code in the table is an [`Outcome`]'s:
///
/// ```
/// use seldon_deploy::error::{EXIT_CODES, Outcome};
///
/// for (code, _meaning) in EXIT_CODES.iter().filter(|(c, _)| !c.contains('/')) {
///     let code: u8 = code.parse()?;
///     assert_eq!(Outcome::from_code(code).code(), code);
/// }
/// # Ok::<(), std::num::ParseIntError>(())
/// ```
pub const EXIT_CODES: &[(&str, &str)] = &[
    ("0", "success"),
    (
        "1",
        "the deployment failed: the operator's Failed state outlasted --failed-grace; or the pods of \
         its newest ReplicaSets cannot come up (crash loop, image pull error, quota or admission \
         webhook refusing them, progress deadline exceeded) for longer than --failed-grace, and the \
         message names the pod, container, reason and message; or a predictor did not answer the \
         smoke test (--smoke) as it should, and the message names the predictor, pod, HTTP status, \
         and the body or the first difference from the expected answer; or someone else deleted or \
         replaced the object (also: the named object does not exist)",
    ),
    (
        "2",
        "invalid usage or input: a file that does not parse (the message names the file, line and \
         column; also a --smoke request or --smoke-expect answer that is not JSON), the wrong kind, group or version, a bad name, a namespace that conflicts with -n, \
         bad replica counts, no predictors, two predictors with one name (Seldon's webhook denies it; \
         without the webhook the operator fights over one Deployment), an autoscaled \
         (hpaSpec/kedaSpec) component given to run \
         or scale, or a manifest the API server rejects as invalid (400/422, e.g. an unknown field \
         under strict validation)",
    ),
    (
        "3",
        "cluster access: unreachable, TLS, authentication, authorization (the message names the \
         verb, resource and namespace; --smoke without get and create on pods/portforward is refused \
         before anything is created or changed), missing CRD or namespace, or the name is already taken (the \
         existing object is left untouched)",
    ),
    (
        "4",
        "timed out waiting: the message names the phase and each component as available/desired, \
         with the last events",
    ),
    (
        "130 / 143",
        "interrupted by SIGINT / SIGTERM, after clean-up; a second Ctrl-C exits at once and lists \
         what is left",
    ),
];

/// How a run or a command ends: the one table of exit codes, their words in reports, and
/// which is worse when several deployments end differently.
///
/// # Examples
///
/// ```
/// use seldon_deploy::error::{Outcome, Signal};
///
/// assert_eq!(Outcome::Timeout.code(), 4);
/// assert_eq!(Outcome::from_code(143), Outcome::Interrupted(Signal::Term));
/// assert_eq!(Outcome::from_code(1).word(), "failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the deployment failed or was removed by someone else.
    Failed,
    /// Exit 2: invalid usage or input.
    Invalid,
    /// Exit 3: a cluster access problem (includes "name already taken").
    Access,
    /// Exit 4: timed out waiting.
    Timeout,
    /// Exit 130 (SIGINT) or 143 (SIGTERM).
    Interrupted(Signal),
}

impl Outcome {
    /// The process exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            Outcome::Invalid => 2,
            Outcome::Access => 3,
            Outcome::Timeout => 4,
            Outcome::Interrupted(Signal::Int) => 130,
            Outcome::Interrupted(Signal::Term) => 143,
        }
    }

    /// The outcome of an exit code (an unknown code counts as an interruption, the worst).
    #[must_use]
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Outcome::Success,
            1 => Outcome::Failed,
            2 => Outcome::Invalid,
            3 => Outcome::Access,
            4 => Outcome::Timeout,
            143 => Outcome::Interrupted(Signal::Term),
            _ => Outcome::Interrupted(Signal::Int),
        }
    }

    /// The stable word for reports: `success`, `failed`, `invalid`, `access`, `timeout`,
    /// `interrupted`.
    #[must_use]
    pub const fn word(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
            Outcome::Access => "access",
            Outcome::Timeout => "timeout",
            Outcome::Interrupted(_) => "interrupted",
        }
    }

    /// How bad, for the worst of several: interrupted > access > invalid > failed > timeout
    /// > success (a timeout may be a slow cluster; a failure is certain).
    const fn severity(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Timeout => 1,
            Outcome::Failed => 2,
            Outcome::Invalid => 3,
            Outcome::Access => 4,
            Outcome::Interrupted(_) => 5,
        }
    }

    /// The worst exit code of several (0 when there is none).
    ///
    /// # Examples
    ///
    /// ```
    /// use seldon_deploy::error::Outcome;
    ///
    /// // A failure is certain, a timeout may be a slow cluster: the failure wins.
    /// assert_eq!(Outcome::worst_code([0, 4, 1]), 1);
    /// assert_eq!(Outcome::worst_code([4, 130, 3]), 130);
    /// assert_eq!(Outcome::worst_code([]), 0);
    /// ```
    #[must_use]
    pub fn worst_code(codes: impl IntoIterator<Item = u8>) -> u8 {
        codes
            .into_iter()
            .map(Outcome::from_code)
            .max_by_key(|o| o.severity())
            .unwrap_or(Outcome::Success)
            .code()
    }
}

/// Which signal interrupted a run.
///
/// # Examples
///
/// ```
/// use seldon_deploy::error::Signal;
///
/// assert_eq!(Signal::Int.exit_code(), 130);
/// assert_eq!(Signal::Term.exit_code(), 143);
/// assert_eq!(Signal::Term.to_string(), "SIGTERM");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM.
    Term,
}

impl Signal {
    /// The conventional exit code (128 + signal number).
    #[must_use]
    pub fn exit_code(self) -> u8 {
        Outcome::Interrupted(self).code()
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        })
    }
}

/// What a request was trying to do; used to word API errors (a 403 names verb, resource, namespace).
///
/// # Examples
///
/// ```
/// use seldon_deploy::error::{Error, Op};
///
/// let op = Op {
///     verb: "get",
///     resource: "seldondeployments.machinelearning.seldon.io",
///     namespace: "seldon".into(),
///     name: Some("iris".into()),
/// };
/// let status = kube::core::Status::failure("try again", "ServiceUnavailable").with_code(503);
/// let err = Error::Access { op, source: Box::new(kube::Error::Api(Box::new(status))) };
/// assert!(err.to_string().starts_with(r#"cannot get seldondeployments.machinelearning.seldon.io "iris" in namespace "seldon": "#));
/// assert_eq!(err.exit_code(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Kubernetes verb: create, get, list, watch, patch, delete.
    pub verb: &'static str,
    /// Resource, e.g. `seldondeployments.machinelearning.seldon.io`.
    pub resource: &'static str,
    /// Namespace of the request.
    pub namespace: String,
    /// Object name, when the request targets one object.
    pub name: Option<String>,
}

impl Op {
    /// Describes a request on SeldonDeployments.
    #[must_use]
    pub(crate) fn sdep(verb: &'static str, namespace: &str, name: Option<&str>) -> Self {
        Op {
            verb,
            resource: "seldondeployments.machinelearning.seldon.io",
            namespace: namespace.to_owned(),
            name: name.map(str::to_owned),
        }
    }

    /// Describes a request on another resource.
    #[must_use]
    pub(crate) fn other(verb: &'static str, resource: &'static str, namespace: &str) -> Self {
        Op {
            verb,
            resource,
            namespace: namespace.to_owned(),
            name: None,
        }
    }

    fn target(&self) -> String {
        match &self.name {
            Some(n) => format!("{} {n:?}", self.resource),
            None => self.resource.to_owned(),
        }
    }
}

/// Every failure the library reports. [`Error::exit_code`] maps it to the documented exit codes.
///
/// # Examples
///
/// ```
/// use seldon_deploy::Error;
///
/// let err = Error::NotFound { namespace: "seldon".into(), name: "iris".into() };
/// assert_eq!(err.to_string(), r#"SeldonDeployment "iris" not found in namespace "seldon""#);
/// assert_eq!((err.exit_code(), err.outcome()), (1, "failed"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest could not be read or is not a valid SeldonDeployment (exit 2).
    #[error("{source_name}: {message}")]
    Manifest {
        /// File name (or `<stdin>`).
        source_name: String,
        /// What is wrong, with line/column where known.
        message: String,
    },

    /// Invalid usage or arguments (exit 2).
    #[error("{0}")]
    Usage(String),

    /// A name or namespace that Kubernetes would never accept, refused before any request so
    /// that no input can change the path a request goes to (exit 2).
    #[error("invalid {argument} {value:?}: {rule}")]
    InvalidName {
        /// Where the value came from: `NAME`, `-n/--namespace`, the kubeconfig context, ….
        argument: String,
        /// The value as given.
        value: String,
        /// The rule it breaks, and how.
        rule: String,
    },

    /// The API server rejected the object as invalid (400/422, exit 2).
    #[error("the API server rejected {what} as invalid: {message}")]
    Invalid {
        /// What was sent.
        what: String,
        /// The server's message, naming the offending field.
        message: String,
    },

    /// The name is already taken by an object this run did not create (exit 3).
    #[error(
        "SeldonDeployment {name:?} already exists in namespace {namespace:?}; it was left untouched (choose another name or delete it first)"
    )]
    AlreadyExists {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },

    /// 403 from the API server (exit 3).
    #[error(
        "forbidden: cannot {verb} {resource} in namespace {namespace:?}{obj}: {message}",
        obj = name.as_ref().map(|n| format!(" (object {n:?})")).unwrap_or_default()
    )]
    Forbidden {
        /// Verb that was refused.
        verb: String,
        /// Resource.
        resource: String,
        /// Namespace.
        namespace: String,
        /// Object name, if any.
        name: Option<String>,
        /// Server message.
        message: String,
    },

    /// 401 from the API server (exit 3).
    #[error(
        "unauthorized: the cluster rejected the credentials ({message}); check the kubeconfig user or refresh the token"
    )]
    Unauthorized {
        /// Server message.
        message: String,
    },

    /// The SeldonDeployment CRD (or the requested version) is not installed (exit 3).
    #[error(
        "the API server does not serve seldondeployments.machinelearning.seldon.io/{version}: is Seldon Core v1 (its CRD) installed? ({message})"
    )]
    MissingCrd {
        /// API version requested.
        version: String,
        /// Server message.
        message: String,
    },

    /// The namespace does not exist (exit 3).
    #[error("namespace {namespace:?} not found: {message}")]
    MissingNamespace {
        /// Namespace.
        namespace: String,
        /// Server message.
        message: String,
    },

    /// The named SeldonDeployment does not exist (exit 1).
    #[error("SeldonDeployment {name:?} not found in namespace {namespace:?}")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },

    /// The cluster could not be reached or the request failed at transport level (exit 3).
    #[error("cannot {verb} {target} in namespace {namespace:?}: {cause}", verb = op.verb, target = op.target(), namespace = op.namespace, cause = root_cause(source))]
    Access {
        /// The request.
        op: Op,
        /// Underlying client error.
        #[source]
        source: Box<kube::Error>,
    },

    /// Loading the kubeconfig or building the client failed (exit 3).
    #[error("cluster configuration: {message}{}", suffix(source.as_deref()))]
    Config {
        /// What went wrong (never includes credentials).
        message: String,
        /// The underlying error, if any (kube's configuration errors name files and fields,
        /// never credential values).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The API server answered with something this client cannot use (exit 3).
    #[error("unexpected answer from the API server: {what}{}", suffix(source.as_deref()))]
    UnexpectedResponse {
        /// What was wrong with it.
        what: String,
        /// The underlying decoding error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The answer to a create was lost (a 5xx, a dropped connection, the deadline) and a
    /// read could not settle whether the object was stored (exit 3). If it exists and carries
    /// this run's marker annotation, this run created it.
    #[error(
        "the answer to creating SeldonDeployment {name:?} in namespace {namespace:?} was lost ({cause}); \
         it may have been created: if it exists with annotation {annotation}={run_id}, it is this run's \
         (delete it with: seldon-deploy delete {name} -n {namespace})",
        cause = root_cause(source),
        annotation = crate::names::RUN_ID_ANNOTATION
    )]
    CreateUncertain {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The value of this run's marker annotation.
        run_id: String,
        /// Why the answer was lost.
        #[source]
        source: Box<kube::Error>,
    },

    /// The answer to an update (or to its `--atomic` restore) was lost and a read could not
    /// settle whether it was stored (exit 3). The update is live while the object carries
    /// `apply_id` in its `seldon-deploy.io/apply-id` annotation.
    #[error(
        "the answer to {what} SeldonDeployment {name:?} in namespace {namespace:?} was lost ({cause}); {state} \
         (check with: kubectl get sdep {name} -n {namespace} -o jsonpath='{{.metadata.annotations}}')",
        what = if *restore { "restoring" } else { "updating" },
        cause = root_cause(source),
        state = if *restore {
            format!("the restore may or may not have been stored: the update is still live while annotation {}={apply_id} is there", crate::names::APPLY_ID_ANNOTATION)
        } else {
            format!("the update may be live: it is if the object carries annotation {}={apply_id}", crate::names::APPLY_ID_ANNOTATION)
        }
    )]
    WriteUncertain {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The value of the update's marker annotation.
        apply_id: String,
        /// The lost answer was the restore's (`--atomic`), not the update's.
        restore: bool,
        /// Why the answer was lost.
        #[source]
        source: Box<kube::Error>,
    },

    /// `--atomic` did not roll back because another writer changed the spec since the update
    /// (exit 1): restoring would overwrite their change.
    #[error(
        "not rolled back: the object was changed by another writer since this apply ({})",
        changes.join("; ")
    )]
    ChangedByOthers {
        /// Name.
        name: String,
        /// What changed: `spec.path: ours → theirs`.
        changes: Vec<String>,
    },

    /// The stream of Events failed, stopping the lifecycle it accompanied (exit 3).
    #[error("the event watch failed: {reason}")]
    EventWatch {
        /// What is known about the failure.
        reason: String,
    },

    /// The operator reported `Failed` for longer than the grace period (exit 1).
    #[error("SeldonDeployment {name:?} failed: {description}")]
    DeploymentFailed {
        /// Name.
        name: String,
        /// The operator's `status.description`.
        description: String,
    },

    /// The pods of the newest ReplicaSet cannot come up (crash loop, image pull, quota, …),
    /// and have not for longer than the grace period (exit 1). The message names the first
    /// cause: pod, container, reason and message.
    #[error(
        "SeldonDeployment {name:?} failed: its pods cannot come up: {first}{more}",
        first = pods.first().map(ToString::to_string).unwrap_or_default(),
        more = match pods.len() { 0 | 1 => String::new(), n => format!(" (and {} more)", n - 1) }
    )]
    PodsFailing {
        /// Name.
        name: String,
        /// Every cause seen, the first one named in the message.
        pods: Vec<Broken>,
    },

    /// A predictor did not answer the smoke test (`--smoke`) as it should (exit 1). The
    /// message names the first such predictor, its pod, the request, and the HTTP status with
    /// the body excerpt or the first difference from the expected answer.
    #[error(
        "smoke test failed: SeldonDeployment {name:?} predictor {predictor:?}{}: {detail}{}",
        pod.as_ref().map(|p| format!(" (pod {p})")).unwrap_or_default(),
        match others { 0 => String::new(), n => format!(" (and {n} more predictor(s) failed)") }
    )]
    SmokeFailed {
        /// Name.
        name: String,
        /// The first predictor that failed.
        predictor: String,
        /// The pod its request went to, if one was chosen.
        pod: Option<String>,
        /// The request, and the status with the body excerpt or the first difference.
        detail: String,
        /// How many other predictors failed.
        others: usize,
    },

    /// The object was deleted or replaced by someone else (exit 1).
    #[error("SeldonDeployment {name:?} (uid {uid}) was {how} by someone else")]
    Gone {
        /// Name.
        name: String,
        /// UID this run was tracking.
        uid: String,
        /// "deleted", "replaced" or "marked for deletion".
        how: &'static str,
    },

    /// A wait phase ran out of time (exit 4).
    #[error("timed out after {} waiting for {phase}: {detail}", humantime::format_duration(whole_seconds(*.after)))]
    Timeout {
        /// Phase name.
        phase: String,
        /// The timeout that expired.
        after: Duration,
        /// What was still missing (components ready/desired, state).
        detail: String,
    },

    /// The run was interrupted by a signal (exit 130/143).
    #[error("interrupted by {signal}")]
    Interrupted {
        /// The signal.
        signal: Signal,
    },

    /// The request was refused because a component is autoscaled (exit 2).
    #[error("{0}")]
    Autoscaled(String),

    /// An `apply`'s rollout did not complete; says what became of the update. The exit code
    /// is the cause's.
    #[error("{cause}; {aftermath}")]
    Rollout {
        /// Why the rollout did not complete.
        #[source]
        cause: Box<Error>,
        /// What became of the update: rolled back, the rollback failed, or left in place.
        aftermath: String,
    },
}

/// Rounds up to whole seconds (deadlines are measured a moment after they are set).
fn whole_seconds(d: Duration) -> Duration {
    if d < Duration::from_secs(1) {
        return d;
    }
    Duration::from_secs(u64::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u64::MAX))
}

/// `": source"`, or nothing.
fn suffix(source: Option<&(dyn std::error::Error + Send + Sync)>) -> String {
    source.map(|s| format!(": {s}")).unwrap_or_default()
}

/// Shorthand result type.
///
/// # Examples
///
/// ```
/// use seldon_deploy::{Result, model::manifest::check_name};
///
/// fn checked(name: &str) -> Result<&str> {
///     check_name("NAME", name)?;
///     Ok(name)
/// }
/// assert_eq!(checked("iris")?, "iris");
/// assert_eq!(checked("Iris").unwrap_err().exit_code(), 2);
/// # Ok::<(), seldon_deploy::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this error, per [`EXIT_CODES`].
    ///
    /// # Examples
    ///
    /// An `apply` whose rollout timed out exits as a timeout, whatever became of the update:
    ///
    /// ```
    /// use std::time::Duration;
    /// use seldon_deploy::Error;
    ///
    /// let cause = Error::Timeout {
    ///     phase: "wait-rollout".into(),
    ///     after: Duration::from_secs(300),
    ///     detail: "iris-default-0-classifier 1/2".into(),
    /// };
    /// assert_eq!(cause.to_string(), "timed out after 5m waiting for wait-rollout: iris-default-0-classifier 1/2");
    /// let err = Error::Rollout { cause: Box::new(cause), aftermath: "rolled back".into() };
    /// assert_eq!((err.exit_code(), err.outcome()), (4, "timeout"));
    /// ```
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Manifest { .. }
            | Error::Usage(_)
            | Error::InvalidName { .. }
            | Error::Invalid { .. }
            | Error::Autoscaled(_) => Outcome::Invalid.code(),
            Error::AlreadyExists { .. }
            | Error::Forbidden { .. }
            | Error::Unauthorized { .. }
            | Error::MissingCrd { .. }
            | Error::MissingNamespace { .. }
            | Error::Access { .. }
            | Error::Config { .. }
            | Error::UnexpectedResponse { .. }
            | Error::CreateUncertain { .. }
            | Error::WriteUncertain { .. }
            | Error::EventWatch { .. } => Outcome::Access.code(),
            Error::NotFound { .. }
            | Error::ChangedByOthers { .. }
            | Error::DeploymentFailed { .. }
            | Error::PodsFailing { .. }
            | Error::SmokeFailed { .. }
            | Error::Gone { .. } => Outcome::Failed.code(),
            Error::Timeout { .. } => Outcome::Timeout.code(),
            Error::Interrupted { signal } => signal.exit_code(),
            Error::Rollout { cause, .. } => cause.exit_code(),
        }
    }

    /// A stable one-word outcome for reports (`failed`, `invalid`, `access`, `timeout`, `interrupted`).
    #[must_use]
    pub fn outcome(&self) -> &'static str {
        Outcome::from_code(self.exit_code()).word()
    }

    /// Classifies a client error from request `op` into the matching variant.
    ///
    /// Status codes the caller handles itself (404 on an object, 409) still map to something
    /// sensible here: 404 → [`Error::NotFound`] / [`Error::MissingCrd`] / [`Error::MissingNamespace`],
    /// 409 AlreadyExists → [`Error::AlreadyExists`].
    #[must_use]
    pub(crate) fn from_kube(err: kube::Error, op: &Op) -> Self {
        let kube::Error::Api(status) = &err else {
            return Error::Access {
                op: op.clone(),
                source: Box::new(err),
            };
        };
        let message = status.message.clone();
        match status.code {
            401 => Error::Unauthorized { message },
            403 => Error::Forbidden {
                verb: op.verb.to_owned(),
                resource: op.resource.to_owned(),
                namespace: op.namespace.clone(),
                name: op.name.clone(),
                message,
            },
            400 | 422 if op.verb == "create" || op.verb == "patch" || op.verb == "update" => {
                Error::Invalid {
                    what: op.target(),
                    message: invalid_message(status),
                }
            }
            404 => {
                let details_kind = status.details.as_ref().map(|d| d.kind.as_str());
                match (details_kind, &op.name) {
                    (Some("namespaces"), _) => Error::MissingNamespace {
                        namespace: op.namespace.clone(),
                        message,
                    },
                    (Some("seldondeployments"), Some(name)) => Error::NotFound {
                        namespace: op.namespace.clone(),
                        name: name.clone(),
                    },
                    // A 404 without details is the router saying the resource type is unknown.
                    _ if op.resource.contains("seldon") => Error::MissingCrd {
                        version: "v1".to_owned(),
                        message,
                    },
                    _ => Error::Access {
                        op: op.clone(),
                        source: Box::new(err),
                    },
                }
            }
            409 if status.is_already_exists() && op.verb == "create" => Error::AlreadyExists {
                namespace: op.namespace.clone(),
                name: op.name.clone().unwrap_or_default(),
            },
            _ => Error::Access {
                op: op.clone(),
                source: Box::new(err),
            },
        }
    }
}

/// The client error plus its innermost cause ("connection refused", a TLS verification
/// failure, …), which is what a user can act on.
fn root_cause(e: &kube::Error) -> String {
    let mut msg = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut last = None;
    while let Some(c) = cur {
        last = Some(c.to_string());
        cur = c.source();
    }
    if let Some(l) = last.filter(|l| !msg.contains(l.as_str())) {
        msg.push_str(": ");
        msg.push_str(&l);
    }
    if matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_)) {
        msg.push_str(
            " (is the API server reachable, and is the kubeconfig's server URL and CA right?)",
        );
    }
    msg
}

/// The server's message plus any per-field causes it listed.
fn invalid_message(status: &kube::core::Status) -> String {
    let mut msg = status.message.clone();
    if let Some(details) = &status.details {
        for cause in &details.causes {
            if !cause.message.is_empty() && !msg.contains(&cause.message) {
                msg.push_str("; ");
                if !cause.field.is_empty() {
                    msg.push_str(&cause.field);
                    msg.push_str(": ");
                }
                msg.push_str(&cause.message);
            }
        }
    }
    msg
}

/// Whether a client error is worth retrying: throttling, unavailability, or a transport failure.
///
/// `idempotent` must be false for requests that might have taken effect even though the
/// response was lost (a POST); then only answers that prove the server did not act count.
#[must_use]
pub(crate) fn is_transient(err: &kube::Error, idempotent: bool) -> bool {
    match err {
        kube::Error::Api(s) => match s.code {
            429 | 503 => true,
            504 => idempotent,
            // A 500 on a read or a precondition-guarded write is worth another try within the
            // deadline; on a create it may have been applied, so it is not retried.
            500 => idempotent,
            _ => false,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => idempotent,
        _ => false,
    }
}

/// Whether `err` is the API server's router saying it serves no such resource type (a 404
/// without details), rather than that an object does not exist. Right after an API server
/// (re)start this is transient for custom resources, until its CRD informer has synced.
#[must_use]
pub(crate) fn is_unserved_resource(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s)
        if s.code == 404 && s.details.as_ref().is_none_or(|d| d.name.is_empty() && d.kind.is_empty()))
}

/// The server's suggested delay (`details.retryAfterSeconds`), if any.
#[must_use]
pub(crate) fn retry_after(err: &kube::Error) -> Option<Duration> {
    match err {
        kube::Error::Api(s) => s
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::{Status, response::StatusDetails};

    fn api(code: u16, reason: &str, kind: &str) -> kube::Error {
        let mut s = Status::failure("boom", reason).with_code(code);
        if !kind.is_empty() {
            s = s.with_details(StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: kind.into(),
                uid: String::new(),
                causes: vec![],
                retry_after_seconds: 0,
            });
        }
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn forbidden_names_verb_resource_namespace() {
        let op = Op::sdep("patch", "team-a", Some("iris"));
        let e = Error::from_kube(api(403, "Forbidden", ""), &op);
        let text = e.to_string();
        assert_eq!(e.exit_code(), Outcome::Access.code());
        assert!(text.contains("patch"), "{text}");
        assert!(text.contains("seldondeployments.machinelearning.seldon.io"));
        assert!(text.contains("team-a"));
    }

    #[test]
    fn status_codes_map_to_exit_codes() {
        let create = Op::sdep("create", "ns", Some("x"));
        let get = Op::sdep("get", "ns", Some("x"));
        assert_eq!(
            Error::from_kube(api(422, "Invalid", ""), &create).exit_code(),
            2
        );
        assert_eq!(
            Error::from_kube(api(400, "BadRequest", ""), &create).exit_code(),
            2
        );
        assert_eq!(
            Error::from_kube(api(409, "AlreadyExists", ""), &create).exit_code(),
            3
        );
        assert!(matches!(
            Error::from_kube(api(404, "NotFound", "namespaces"), &create),
            Error::MissingNamespace { .. }
        ));
        assert!(matches!(
            Error::from_kube(api(404, "NotFound", ""), &create),
            Error::MissingCrd { .. }
        ));
        let nf = Error::from_kube(api(404, "NotFound", "seldondeployments"), &get);
        assert!(matches!(nf, Error::NotFound { .. }));
        assert_eq!(nf.exit_code(), 1);
        assert_eq!(
            Error::from_kube(api(401, "Unauthorized", ""), &get).exit_code(),
            3
        );
        assert_eq!(
            Error::Interrupted {
                signal: Signal::Term
            }
            .exit_code(),
            143
        );
    }

    #[test]
    fn transient_classification() {
        assert!(is_transient(&api(429, "TooManyRequests", ""), false));
        assert!(is_transient(&api(503, "ServiceUnavailable", ""), true));
        assert!(!is_transient(&api(504, "Timeout", ""), false));
        assert!(is_transient(&api(500, "InternalError", ""), true));
        assert!(!is_transient(&api(500, "InternalError", ""), false));
        assert!(!is_transient(&api(409, "Conflict", ""), true));
        assert!(!is_transient(&api(403, "Forbidden", ""), true));
    }
}

/// Why pods of a Deployment cannot come up (or, for a blocker, are held up).
///
/// # Examples
///
/// ```
/// use seldon_deploy::error::Broken;
///
/// let broken = Broken {
///     deployment: "iris-default-0-classifier".into(),
///     pod: Some("iris-default-0-classifier-5d9c-x2f4q".into()),
///     container: Some("classifier".into()),
///     reason: "CrashLoopBackOff".into(),
///     message: "back-off 40s restarting failed container".into(),
///     exit_code: Some(1),
///     restarts: Some(3),
/// };
/// assert_eq!(
///     broken.to_string(),
///     "pod iris-default-0-classifier-5d9c-x2f4q container classifier: CrashLoopBackOff: \
///      back-off 40s restarting failed container (last exit code 1)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Broken {
    /// The Deployment (owned by the SeldonDeployment) the pod belongs to.
    pub deployment: String,
    /// The pod, when the cause is a pod's (not for `FailedCreate`/`ProgressDeadlineExceeded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The container, when the cause is a container's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Kubernetes' reason: `CrashLoopBackOff`, `ImagePullBackOff`, `OOMKilled`,
    /// `FailedCreate`, `ProgressDeadlineExceeded`, `Unschedulable`, …
    pub reason: String,
    /// The message kubelet, the scheduler or the controller gave.
    pub message: String,
    /// The last exit code of a container that terminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How many times the container has restarted, when it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i32>,
}

impl std::fmt::Display for Broken {
    /// `pod P container C: CrashLoopBackOff: back-off … (last exit code 1)`, or
    /// `Deployment D: FailedCreate: pods "…" is forbidden: exceeded quota …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pod, &self.container) {
            (Some(p), Some(c)) => write!(f, "pod {p} container {c}")?,
            (Some(p), None) => write!(f, "pod {p}")?,
            _ => write!(f, "Deployment {}", self.deployment)?,
        }
        write!(f, ": {}", self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(code) = self.exit_code {
            write!(f, " (last exit code {code})")?;
        }
        Ok(())
    }
}
