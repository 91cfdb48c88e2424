//! Components of a SeldonDeployment and their replica counts.
//!
//! The operator creates one Deployment per `componentSpec` of each predictor (one synthesised
//! componentSpec when a predictor has none, e.g. a prepackaged `SKLEARN_SERVER`). Its replica
//! count is the most specific level that is set: `componentSpecs[j].replicas`, then
//! `predictors[i].replicas`, then `spec.replicas`, then 1.
//!
//! The functions here work on any SeldonDeployment JSON (a manifest or a live object) and never
//! fail: values that are not valid replica counts are treated as unset. Strict checking of a
//! manifest happens in [`crate::manifest`].

use serde::Serialize;
use serde_json::Value;

/// Kubernetes names longer than this are hashed by the operator, so the child name is unknown.
const MAX_CHILD_NAME: usize = 63;

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
    /// Replica count from the precedence rule.
    pub initial_replicas: i32,
    /// Set when the component is autoscaled and cannot be scaled by hand.
    pub autoscaler: Option<Autoscaler>,
    /// `(container, image)` for each container of the componentSpec that names an image (a
    /// rollout is complete only when the Deployment's pod template runs these).
    pub images: Vec<(String, String)>,
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
    /// update's), since it writes no `observedGeneration`.
    Rollout {
        /// The update's resourceVersion (as a number), if there was an update.
        status_after: Option<u64>,
    },
}

/// Reads a replica count if it is a valid one (an integer in `0..=i32::MAX`).
#[must_use]
pub fn replicas_at(v: Option<&Value>) -> Option<i32> {
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
/// let comps = seldon_deploy::replicas::components(&sdep);
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
            .filter(|a| !a.is_empty());
        match specs {
            Some(specs) => {
                for (ci, c) in specs.iter().enumerate() {
                    let replicas = replicas_at(c.get("replicas"))
                        .or(p_replicas)
                        .or(spec_replicas)
                        .unwrap_or(1);
                    let containers: Vec<&str> = c
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .map(|cs| {
                            cs.iter()
                                .filter_map(|c| c.get("name").and_then(Value::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    let explicit_name = c
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty());
                    let name = match explicit_name {
                        Some(n) => Some(n.to_owned()),
                        None => child_name(sdep_name, pname, ci, &containers),
                    };
                    out.push(Component {
                        predictor: pname.to_owned(),
                        predictor_index: pi,
                        index: ci,
                        explicit: true,
                        deployment_name: name,
                        initial_replicas: replicas,
                        autoscaler: autoscaler(c),
                        images: images(c),
                    });
                }
            }
            None => {
                // Prepackaged server: the operator synthesises one componentSpec whose single
                // container is named after the graph's root node.
                let graph_name = p
                    .pointer("/graph/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                out.push(Component {
                    predictor: pname.to_owned(),
                    predictor_index: pi,
                    index: 0,
                    explicit: false,
                    deployment_name: child_name(sdep_name, pname, 0, &[graph_name]),
                    initial_replicas: p_replicas.or(spec_replicas).unwrap_or(1),
                    autoscaler: None,
                    images: Vec::new(),
                });
            }
        }
    }
    out
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

/// Which autoscaler a componentSpec uses, if any (KEDA wins, as in the operator).
#[must_use]
pub fn autoscaler(component_spec: &Value) -> Option<Autoscaler> {
    let set = |k: &str| component_spec.get(k).is_some_and(|v| !v.is_null());
    if set("kedaSpec") {
        Some(Autoscaler::Keda)
    } else if set("hpaSpec") {
        Some(Autoscaler::Hpa)
    } else {
        None
    }
}

/// `<sdep>-<predictor>-<index>-<container>-<container>…`, or `None` when the operator would hash it.
fn child_name(sdep: &str, predictor: &str, index: usize, containers: &[&str]) -> Option<String> {
    let mut name = format!("{sdep}-{predictor}-{index}");
    for c in containers.iter().filter(|c| !c.is_empty()) {
        name.push('-');
        name.push_str(c);
    }
    (name.len() <= MAX_CHILD_NAME && !sdep.is_empty()).then_some(name)
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
                Some("custom".to_owned()),
                Some("m-q-0-classifier".to_owned())
            ]
        );
    }

    #[test]
    fn long_names_are_unpredictable() {
        let s = json!({"metadata": {"name": "a".repeat(60)}, "spec": {"predictors": [
            {"name": "default", "graph": {"name": "classifier"}}
        ]}});
        assert_eq!(components(&s)[0].deployment_name, None);
        assert!(components(&s)[0].label().contains("default[0]"));
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
