//! The create-once protocol: a create is sent again only when the answer proves it was not
//! stored; after a lost answer (or a 409), a read of this create's run-id marker decides.

use super::transport::{Backoff, answer_lost};
use super::*;

/// [`RUN_ID_ANNOTATION`] as a JSON Pointer segment (`/` escaped as `~1`).
const RUN_ID_POINTER: &str = "seldon-deploy.io~1run-id";

impl Deployer {
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
    /// match deployer.create(m, deadline).await {
    ///     Ok(h) => println!("created {} (uid {})", h.name, h.uid),
    ///     Err(e @ seldon_deploy::Error::AlreadyExists { .. }) => eprintln!("{e}"), // left untouched
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
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
        let mut backoff = Backoff::transient();
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
                Err(Error::NotFound { .. }) if backoff.fits(deadline) => {
                    self.stats.retry();
                    tokio::time::sleep(backoff.take()).await;
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
}

/// A fresh random marker for one create (128 bits, hex).
pub(super) fn new_run_id() -> String {
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
pub(super) fn with_annotation(object: &Value, key: &str, value: &str) -> Value {
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
