//! Which pod a predictor's smoke request goes to: one ready pod of the newest ReplicaSet of
//! the Deployment that holds the predictor's executor. Pure functions over Deployments and
//! Pods read from the API server.
//!
//! The operator (Seldon Core v1.19, `controllers/seldondeployment_engine.go`) adds the
//! executor as container `seldon-container-engine` to one Deployment per predictor, with the
//! arguments `--predictor NAME` and `--http_port PORT` and that port named `http`
//! (8000 unless the operator's `EXECUTOR_SERVER_PORT` says otherwise).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::judge::pods::new_replica_set;

/// The executor's container name.
pub const EXECUTOR_CONTAINER: &str = "seldon-container-engine";

/// The executor's HTTP port when nothing says otherwise.
pub const DEFAULT_EXECUTOR_PORT: u16 = 8000;

/// The Deployment holding a predictor's executor, and the executor's HTTP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    /// The Deployment's name.
    pub deployment: String,
    /// The executor's HTTP port.
    pub port: u16,
}

/// The executor of `predictor` among `owned` (the SeldonDeployment's own Deployments).
#[must_use]
pub fn executor(predictor: &str, owned: &[Deployment]) -> Option<Executor> {
    owned.iter().find_map(|d| {
        let c = d
            .spec
            .template
            .spec
            .as_ref()?
            .containers
            .iter()
            .find(|c| c.name == EXECUTOR_CONTAINER)?;
        (arg(c, "--predictor").as_deref() == Some(predictor)).then(|| Executor {
            deployment: d.metadata.name.clone().unwrap_or_default(),
            port: http_port(c),
        })
    })
}

/// The value of `--flag VALUE` or `--flag=VALUE` in a container's arguments.
fn arg(c: &Container, flag: &str) -> Option<String> {
    let args = c.args.as_deref().unwrap_or_default();
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(flag)?.strip_prefix('=').map(str::to_owned)
        }
    })
}

/// The executor's HTTP port: its port named `http`, else its `--http_port` argument, else
/// [`DEFAULT_EXECUTOR_PORT`].
fn http_port(c: &Container) -> u16 {
    let named = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .and_then(|p| u16::try_from(p.container_port).ok());
    named
        .or_else(|| arg(c, "--http_port").and_then(|p| p.parse().ok()))
        .unwrap_or(DEFAULT_EXECUTOR_PORT)
}

/// Why no pod could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPod {
    /// The Deployment's newest ReplicaSet has no pod that is Ready and not terminating.
    NoneReady {
        /// How many of its pods there are.
        pods: usize,
    },
}

/// One ready pod of `d`'s newest ReplicaSet among `pods` (the first by name, so a retry
/// picks the same one). The newest ReplicaSet is the one `d`'s `Progressing` condition
/// names once its status is current; else a pod counts as new when it runs every container
/// of the template with the template's image.
pub fn choose_pod<'p>(d: &Deployment, pods: &'p [Pod]) -> Result<&'p Pod, NoPod> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let newest = new_replica_set(d);
    let template: Vec<(&str, Option<&str>)> = d
        .spec
        .template
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.as_str(), c.image.as_deref()))
                .collect()
        })
        .unwrap_or_default();
    let mut candidates: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            let owner = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "ReplicaSet" && o.controller == Some(true))
                .map(|o| o.name.as_str());
            match (newest, owner) {
                (Some(rs), Some(owner)) => owner == rs,
                (None, Some(owner)) => {
                    owner
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('-'))
                        && runs_template(p, &template)
                }
                (_, None) => false,
            }
        })
        .collect();
    let count = candidates.len();
    candidates.retain(|p| is_ready(p));
    candidates.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    candidates
        .first()
        .copied()
        .ok_or(NoPod::NoneReady { pods: count })
}

fn runs_template(p: &Pod, template: &[(&str, Option<&str>)]) -> bool {
    let containers = p
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    template.iter().all(|(name, image)| {
        containers
            .iter()
            .any(|c| c.name == *name && (image.is_none() || c.image.as_deref() == *image))
    })
}

/// Ready (its `Ready` condition True) and not terminating.
fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ReplicaSets of Deployment `iris-main-0-classifier`: before and after a rollout.
    const OLD_RS: &str = "iris-main-0-classifier-old";
    const NEW_RS: &str = "iris-main-0-classifier-new";
    use serde_json::{Value, json};

    fn deployment(
        name: &str,
        predictor: &str,
        ports: Value,
        progressing: Option<&str>,
    ) -> Deployment {
        let mut status = json!({"observedGeneration": 2});
        if let Some(rs) = progressing {
            status["conditions"] = json!([{"type": "Progressing", "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": format!("ReplicaSet \"{rs}\" has successfully progressed.")}]);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "generation": 2},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "classifier", "image": "model:2"},
                {"name": EXECUTOR_CONTAINER, "image": "executor:1.19",
                 "args": ["--sdep", "iris", "--predictor", predictor, "--http_port", "8000"],
                 "ports": ports}
            ]}}},
            "status": status
        }))
        .unwrap()
    }

    fn pod(name: &str, rs: &str, ready: bool, image: &str, terminating: bool) -> Pod {
        let mut meta = json!({"name": name, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "u", "controller": true}]});
        if terminating {
            meta["deletionTimestamp"] = json!("2026-12-05T00:00:00Z");
        }
        serde_json::from_value(json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "classifier", "image": image},
                                    {"name": EXECUTOR_CONTAINER, "image": "executor:1.19"}]},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_executor_is_found_by_its_predictor_argument_with_its_http_port() {
        let owned = [
            deployment(
                "iris-main-0-classifier",
                "main",
                json!([{"name": "http", "containerPort": 8000}]),
                None,
            ),
            deployment(
                "iris-canary-0-classifier",
                "canary",
                json!([{"name": "grpc", "containerPort": 5001}, {"name": "http", "containerPort": 9999}]),
                None,
            ),
        ];
        assert_eq!(
            executor("canary", &owned),
            Some(Executor {
                deployment: "iris-canary-0-classifier".into(),
                port: 9999
            })
        );
        assert_eq!(executor("main", &owned).map(|e| e.port), Some(8000));
        assert_eq!(executor("shadow", &owned), None);
        // Without a named port the argument says it; without either, 8000.
        let mut d = deployment("d", "p", json!(null), None);
        assert_eq!(
            executor("p", std::slice::from_ref(&d)).map(|e| e.port),
            Some(8000)
        );
        if let Some(c) = d.spec.template.spec.as_mut().map(|s| &mut s.containers[1]) {
            c.args = Some(vec!["--predictor=p".into(), "--http_port=8123".into()]);
        }
        assert_eq!(executor("p", &[d]).map(|e| e.port), Some(8123));
    }

    #[test]
    fn a_ready_pod_of_the_newest_replica_set_is_chosen() {
        let d = deployment(
            "iris-main-0-classifier",
            "main",
            json!(null),
            Some("iris-main-0-classifier-new"),
        );
        let pods = [
            pod("a-old", OLD_RS, true, "model:1", false),
            pod("b-new-terminating", NEW_RS, true, "model:2", true),
            pod("c-new-unready", NEW_RS, false, "model:2", false),
            pod("d-new", NEW_RS, true, "model:2", false),
            pod("e-new", NEW_RS, true, "model:2", false),
        ];
        assert_eq!(
            choose_pod(&d, &pods).unwrap().metadata.name.as_deref(),
            Some("d-new")
        );
        assert_eq!(
            choose_pod(&d, &pods[..3]).unwrap_err(),
            NoPod::NoneReady { pods: 2 },
            "an old ReplicaSet's ready pod is never chosen"
        );
    }

    #[test]
    fn without_a_current_status_a_pod_running_the_templates_images_is_new() {
        let d = deployment("iris-main-0-classifier", "main", json!(null), None);
        let pods = [
            pod("a-old", OLD_RS, true, "model:1", false),
            pod(
                "b-other",
                "iris-main-0-classifierx-1",
                true,
                "model:2",
                false,
            ),
            pod("c-new", NEW_RS, true, "model:2", false),
        ];
        assert_eq!(
            choose_pod(&d, &pods).unwrap().metadata.name.as_deref(),
            Some("c-new")
        );
    }
}
