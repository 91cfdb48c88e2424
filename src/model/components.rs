//! Components of a SeldonDeployment and their replica counts.
//!
//! The operator creates one Deployment per `componentSpec` of each predictor (one synthesised
//! componentSpec when a predictor has none, e.g. a prepackaged `SKLEARN_SERVER`). Its replica
//! count is the most specific level that is set: `componentSpecs[j].replicas`, then
//! `predictors[i].replicas`, then `spec.replicas`, then 1.
//!
//! The functions here work on any SeldonDeployment JSON (a manifest or a live object) and never
//! fail: values that are not valid replica counts are treated as unset. Strict checking of a
//! manifest happens in [`crate::model::manifest`].

use serde::Serialize;
use serde_json::Value;

/// The operator replaces a child name longer than this by `seldon-<md5 of the name>`.
const MAX_CHILD_NAME: usize = 63;

/// `implementation` values the operator runs in the user's own containers; any other value is a
/// prepackaged server, whose container the operator adds (operator `IsPrepack`).
const NOT_PREPACKAGED: [&str; 5] = [
    "SIMPLE_MODEL",
    "SIMPLE_ROUTER",
    "RANDOM_ABTEST",
    "AVERAGE_COMBINER",
    "UNKNOWN_IMPLEMENTATION",
];

/// The autoscaler that owns a component's replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Autoscaler {
    /// `hpaSpec`: a HorizontalPodAutoscaler.
    Hpa,
    /// `kedaSpec`: a KEDA ScaledObject.
    Keda,
}

impl Autoscaler {
    /// The manifest field that enables it.
    #[must_use]
    pub fn field(self) -> &'static str {
        match self {
            Autoscaler::Hpa => "hpaSpec",
            Autoscaler::Keda => "kedaSpec",
        }
    }
}

/// One Deployment-producing component: (predictor, componentSpec index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Predictor name.
    pub predictor: String,
    /// Index of the predictor in `spec.predictors`.
    pub predictor_index: usize,
    /// Index of the componentSpec (0 for a synthesised one).
    pub index: usize,
    /// Whether the manifest lists this componentSpec (false: synthesised by the operator).
    pub explicit: bool,
    /// The child Deployment name the operator will use, when it can be predicted.
    pub deployment_name: Option<String>,
    /// The container names of its pod as the operator builds it (a prepackaged server's
    /// container included, the orchestrator's not): how its Deployment is recognised when
    /// the operator names it differently (e.g. with `DEPLOYMENT_NAME_AS_PREFIX`).
    pub containers: Vec<String>,
    /// Replica count from the precedence rule.
    pub initial_replicas: i32,
    /// Set when the component is autoscaled and cannot be scaled by hand.
    pub autoscaler: Option<Autoscaler>,
    /// `(container, image)` for each container of the componentSpec that names an image (a
    /// rollout is complete only when the Deployment's pod template runs these).
    pub images: Vec<(String, String)>,
    /// `(key, value)` of the labels and annotations the componentSpec's `metadata` sets on
    /// its pods, except keys the operator sets itself afterwards (see [`pod_metadata`]).
    pub pod_metadata: Vec<(String, String)>,
}

impl Component {
    /// A short label for progress output: the Deployment name, or `predictor[index]`.
    #[must_use]
    pub fn label(&self) -> String {
        self.deployment_name
            .clone()
            .unwrap_or_else(|| format!("{}[{}]", self.predictor, self.index))
    }

    /// The replica count to wait for under `target`; `None` for an autoscaled component
    /// (whatever its autoscaler chose).
    #[must_use]
    pub fn desired(&self, target: Target) -> Option<i32> {
        if self.autoscaler.is_some() {
            return None;
        }
        match target {
            Target::Initial | Target::Rollout { .. } => Some(self.initial_replicas),
            Target::Replicas(n) => Some(n),
        }
    }
}

/// What replica counts a wait expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Each component at its own count from the manifest (precedence rule).
    Initial,
    /// Every component at this count.
    Replicas(i32),
    /// A rollout of the object's spec (`apply`): each component at its own count, running
    /// the images the spec names, no Deployment left over from an earlier spec, and, when
    /// `status_after` is set, a status the operator wrote after that resourceVersion (the
    /// update's), since it writes no `observedGeneration`. `Deployer::wait_rollout` also
    /// accepts the other proofs of [`crate::judge::freshness`].
    Rollout {
        /// The update's resourceVersion (as a number), if there was an update.
        status_after: Option<u64>,
    },
}

/// Reads a replica count if it is a valid one (an integer in `0..=i32::MAX`).
#[must_use]
pub(crate) fn replicas_at(v: Option<&Value>) -> Option<i32> {
    v.and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 0)
}

/// The components of a SeldonDeployment, in predictor/componentSpec order.
///
/// # Examples
///
/// ```
/// let sdep = serde_json::json!({
///     "metadata": {"name": "iris"},
///     "spec": {"replicas": 3, "predictors": [{
///         "name": "default", "replicas": 2,
///         "graph": {"name": "classifier", "implementation": "SKLEARN_SERVER"}
///     }]}
/// });
/// let comps = seldon_deploy::model::components::components(&sdep);
/// assert_eq!(comps.len(), 1);
/// assert_eq!(comps[0].initial_replicas, 2);
/// assert_eq!(comps[0].deployment_name.as_deref(), Some("iris-default-0-classifier"));
/// ```
#[must_use]
pub fn components(sdep: &Value) -> Vec<Component> {
    let sdep_name = sdep
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec_replicas = replicas_at(sdep.pointer("/spec/replicas"));
    let predictors = sdep
        .pointer("/spec/predictors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();

    let mut out = Vec::new();
    for (pi, p) in predictors.iter().enumerate() {
        let pname = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let p_replicas = replicas_at(p.get("replicas"));
        let specs = p
            .get("componentSpecs")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut containers: Vec<Vec<String>> = specs.iter().map(container_names).collect();
        // Prepackaged servers without a container of their own get one, named after their
        // graph node, in the first componentSpec (one is made when there is none), as the
        // operator's defaulting does before it names the Deployments.
        let mut missing: Vec<String> = Vec::new();
        if let Some(graph) = p.get("graph") {
            prepackaged_units(graph, &mut missing);
        }
        let mut seen = std::collections::BTreeSet::new();
        missing.retain(|u| !containers.iter().flatten().any(|c| c == u) && seen.insert(u.clone()));
        let explicit = !specs.is_empty();
        if explicit {
            containers[0].extend(missing);
        } else {
            if missing.is_empty() {
                // No componentSpec and no prepackaged server: one container named after the
                // graph's root node.
                let root = p.pointer("/graph/name").and_then(Value::as_str);
                missing.push(root.unwrap_or_default().to_owned());
            }
            containers.push(missing);
        }
        for (ci, names) in containers.into_iter().enumerate() {
            let c = specs.get(ci);
            let replicas = c
                .and_then(|c| replicas_at(c.get("replicas")))
                .or(p_replicas)
                .or(spec_replicas)
                .unwrap_or(1);
            let explicit_name = c
                .and_then(|c| c.pointer("/metadata/name"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            out.push(Component {
                predictor: pname.to_owned(),
                predictor_index: pi,
                index: ci,
                explicit,
                deployment_name: child_name(sdep_name, pname, ci, explicit_name, &names),
                containers: names,
                initial_replicas: replicas,
                autoscaler: c.and_then(autoscaler),
                images: c.map(images).unwrap_or_default(),
                pod_metadata: c.map(pod_metadata).unwrap_or_default(),
            });
        }
    }
    out
}

/// The labels and annotations of a componentSpec's `metadata`, which the operator copies onto
/// the pod template last, so they arrive as written; except the keys it sets after them
/// (`seldon-app`, `seldon-app-svc-…`, `seldon.io/…` role labels, `app.kubernetes.io/managed-by`).
fn pod_metadata(component_spec: &Value) -> Vec<(String, String)> {
    let operators = |k: &str| k.starts_with("seldon") || k == "app.kubernetes.io/managed-by";
    ["labels", "annotations"]
        .iter()
        .filter_map(|m| {
            component_spec
                .pointer(&format!("/metadata/{m}"))
                .and_then(Value::as_object)
        })
        .flatten()
        .filter(|(k, _)| !operators(k))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// The `(container, image)` pairs a componentSpec names.
fn images(component_spec: &Value) -> Vec<(String, String)> {
    component_spec
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c.get("name").and_then(Value::as_str)?;
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .filter(|i| !i.is_empty())?;
            Some((name.to_owned(), image.to_owned()))
        })
        .collect()
}

fn container_names(component_spec: &Value) -> Vec<String> {
    component_spec
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let name = c.get("name").and_then(Value::as_str);
                    name.unwrap_or_default().to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Names of the graph's prepackaged-server nodes, depth first (the operator's order).
fn prepackaged_units(unit: &Value, out: &mut Vec<String>) {
    let implementation = unit.get("implementation").and_then(Value::as_str);
    if let Some(i) = implementation
        && !i.is_empty()
        && !NOT_PREPACKAGED.contains(&i)
    {
        let name = unit.get("name").and_then(Value::as_str);
        out.push(name.unwrap_or_default().to_owned());
    }
    let children = unit.get("children").and_then(Value::as_array);
    for child in children.map(Vec::as_slice).unwrap_or_default() {
        prepackaged_units(child, out);
    }
}

/// Which autoscaler a componentSpec uses, if any (KEDA wins, as in the operator).
#[must_use]
pub(crate) fn autoscaler(component_spec: &Value) -> Option<Autoscaler> {
    let set = |k: &str| component_spec.get(k).is_some_and(|v| !v.is_null());
    if set("kedaSpec") {
        Some(Autoscaler::Keda)
    } else if set("hpaSpec") {
        Some(Autoscaler::Hpa)
    } else {
        None
    }
}

/// The operator's name for a component's Deployment (`GetDeploymentName`, Seldon Core
/// 1.19): `<sdep>-<predictor>-<index>-<componentSpec.metadata.name>`, or with the container
/// names joined by `-` in place of the metadata name; longer than 63 characters,
/// `seldon-<md5 of that name, in hex>`. `None` without a SeldonDeployment name.
fn child_name(
    sdep: &str,
    predictor: &str,
    index: usize,
    metadata_name: Option<&str>,
    containers: &[String],
) -> Option<String> {
    if sdep.is_empty() {
        return None;
    }
    let tail = match metadata_name {
        Some(n) => n.to_owned(),
        None => containers.join("-"),
    };
    let name = format!("{sdep}-{predictor}-{index}-{tail}");
    if name.len() <= MAX_CHILD_NAME {
        return Some(name);
    }
    use md5::Digest;
    let digest = md5::Md5::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("seldon-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sdep(spec: Value) -> Value {
        json!({"metadata": {"name": "m"}, "spec": spec})
    }

    fn container_spec(name: &str, replicas: Option<i64>) -> Value {
        let mut v = json!({"spec": {"containers": [{"name": name, "image": "x"}]}});
        if let Some(r) = replicas {
            v["replicas"] = json!(r);
        }
        v
    }

    #[test]
    fn precedence_component_then_predictor_then_spec_then_one() {
        let s = sdep(json!({
            "replicas": 5,
            "predictors": [
                {"name": "a", "replicas": 3, "componentSpecs": [
                    container_spec("c1", Some(7)),
                    container_spec("c2", None),
                ], "graph": {"name": "c1"}},
                {"name": "b", "componentSpecs": [container_spec("c3", None)], "graph": {"name": "c3"}},
            ]
        }));
        let c = components(&s);
        let counts: Vec<i32> = c.iter().map(|c| c.initial_replicas).collect();
        assert_eq!(counts, vec![7, 3, 5]);

        let none = sdep(json!({"predictors": [{"name": "a", "graph": {"name": "g"}}]}));
        assert_eq!(components(&none)[0].initial_replicas, 1);
    }

    #[test]
    fn zero_is_a_valid_count() {
        let s = sdep(json!({"replicas": 4, "predictors": [
            {"name": "a", "replicas": 0, "graph": {"name": "g"}}
        ]}));
        assert_eq!(components(&s)[0].initial_replicas, 0);
    }

    #[test]
    fn child_names_follow_operator_rules() {
        let mut two = container_spec("x", None);
        two["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "y"}));
        let mut named = container_spec("z", None);
        named["metadata"] = json!({"name": "custom"});
        let s = sdep(json!({"predictors": [
            {"name": "p", "componentSpecs": [two, named], "graph": {"name": "x"}},
            {"name": "q", "graph": {"name": "classifier", "implementation": "SKLEARN_SERVER"}},
        ]}));
        let names: Vec<_> = components(&s)
            .into_iter()
            .map(|c| c.deployment_name)
            .collect();
        assert_eq!(
            names,
            vec![
                Some("m-p-0-x-y".to_owned()),
                Some("m-p-1-custom".to_owned()),
                Some("m-q-0-classifier".to_owned())
            ]
        );
    }

    #[test]
    fn long_names_are_hashed_as_the_operator_does() {
        // Names the Seldon 1.19 operator gave these components on the local cluster.
        let s = json!({"metadata": {"name": "fraud-detection-ensemble-production"},
            "spec": {"predictors": [{"name": "champion-candidate", "replicas": 1,
                "componentSpecs": [container_spec("classifier", Some(3)),
                                   container_spec("transformer", None)],
                "graph": {"name": "transformer"}}]}});
        let c = components(&s);
        assert_eq!(
            c[0].deployment_name.as_deref(),
            Some("seldon-d19aa4c2bd38a2e6b24214a23faed3fa")
        );
        assert_eq!(
            c[1].deployment_name.as_deref(),
            Some("seldon-adf1be1cdf88f287e1fc0b32b7c07cc3")
        );
        assert_eq!(c[0].containers, ["classifier"]);
        assert_eq!(c[1].label(), "seldon-adf1be1cdf88f287e1fc0b32b7c07cc3");

        // 63 characters stay as they are; 64 are hashed.
        let at = |sdep_len: usize| {
            let s = json!({"metadata": {"name": "a".repeat(sdep_len)}, "spec": {"predictors": [
                {"name": "p", "graph": {"name": "c"}}]}});
            components(&s)[0].deployment_name.clone().unwrap()
        };
        assert_eq!(at(57).len(), 63);
        assert!(
            at(58).starts_with("seldon-") && at(58).len() == 39,
            "{}",
            at(58)
        );
    }

    #[test]
    fn prepackaged_servers_join_the_first_component_spec() {
        let s = sdep(json!({"predictors": [
            {"name": "p", "componentSpecs": [container_spec("router", None),
                                             container_spec("other", Some(2))],
             "graph": {"name": "router", "children": [
                {"name": "sk", "implementation": "SKLEARN_SERVER"},
                {"name": "other", "implementation": "SKLEARN_SERVER"},
                {"name": "plain", "implementation": "SIMPLE_MODEL"}]}},
            {"name": "q", "graph": {"name": "top", "implementation": "RANDOM_ABTEST", "children": [
                {"name": "a", "implementation": "XGBOOST_SERVER"},
                {"name": "b", "implementation": "TENSORFLOW_SERVER"}]}}
        ]}));
        let c = components(&s);
        let got: Vec<_> = c
            .iter()
            .map(|c| (c.deployment_name.clone().unwrap(), c.containers.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "m-p-0-router-sk".to_owned(),
                    vec!["router".to_owned(), "sk".to_owned()]
                ),
                ("m-p-1-other".to_owned(), vec!["other".to_owned()]),
                ("m-q-0-a-b".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ]
        );
    }

    #[test]
    fn autoscalers_detected_and_desired_is_open() {
        let mut hpa = container_spec("c", Some(2));
        hpa["hpaSpec"] = json!({"maxReplicas": 3});
        let mut keda = container_spec("d", None);
        keda["kedaSpec"] = json!({"triggers": []});
        let s = sdep(
            json!({"predictors": [{"name": "p", "componentSpecs": [hpa, keda], "graph": {"name": "c"}}]}),
        );
        let c = components(&s);
        assert_eq!(c[0].autoscaler, Some(Autoscaler::Hpa));
        assert_eq!(c[1].autoscaler, Some(Autoscaler::Keda));
        assert_eq!(c[0].desired(Target::Replicas(4)), None);
    }

    #[test]
    fn desired_follows_target() {
        let s = sdep(json!({"predictors": [{"name": "p", "replicas": 2, "graph": {"name": "g"}}]}));
        let c = &components(&s)[0];
        assert_eq!(c.desired(Target::Initial), Some(2));
        assert_eq!(c.desired(Target::Replicas(5)), Some(5));
    }
}
