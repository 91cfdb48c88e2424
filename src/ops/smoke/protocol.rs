//! Where a smoke request goes: the executor's paths for each of the SeldonDeployment's
//! protocols (Seldon Core v1.19, `executor/api/rest/server.go`).
//!
//! The executor routes every protocol's prediction path to its graph; the model name in a
//! v2 or TensorFlow path replaces each graph node's name in the calls it makes (its
//! `ModelNameOverride`), so the name to use is the predictor's graph root, which Seldon's
//! examples and prepackaged servers name the model after. `/ready` is the executor's own
//! readiness check (its readiness probe), served for every protocol; it serves no v2
//! `/v2/health/ready`, so that path is not used even for v2.

use serde_json::Value;

use crate::error::{Error, Result};

/// A SeldonDeployment's `spec.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `seldon`, the default.
    Seldon,
    /// `v2` (the Open Inference Protocol), or its older name `kfserving`.
    V2,
    /// `tensorflow` (TensorFlow Serving's REST API).
    Tensorflow,
}

/// What a smoke request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A prediction with the user's body.
    Predict,
    /// Readiness only (`--smoke` without a file).
    Ready,
}

impl Protocol {
    /// The protocol of a SeldonDeployment object (its `spec.protocol`, `seldon` when unset).
    pub fn of(sdep: &Value) -> Result<Self> {
        match sdep.pointer("/spec/protocol").and_then(Value::as_str) {
            None | Some("" | "seldon") => Ok(Protocol::Seldon),
            Some("v2" | "kfserving") => Ok(Protocol::V2),
            Some("tensorflow") => Ok(Protocol::Tensorflow),
            Some(other) => Err(Error::Usage(format!(
                "spec.protocol {other:?} is not one the smoke test knows (seldon, v2, kfserving, tensorflow)"
            ))),
        }
    }

    /// The protocol's name, as `spec.protocol` spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Seldon => "seldon",
            Protocol::V2 => "v2",
            Protocol::Tensorflow => "tensorflow",
        }
    }

    /// The HTTP method and path of `ask` for a predictor whose graph root is `model`.
    #[must_use]
    pub fn request(self, ask: Ask, model: &str) -> (&'static str, String) {
        let model = encode_segment(model);
        match (self, ask) {
            (Protocol::Seldon, Ask::Predict) => ("POST", "/api/v1.0/predictions".to_owned()),
            (Protocol::V2, Ask::Predict) => ("POST", format!("/v2/models/{model}/infer")),
            (Protocol::Tensorflow, Ask::Predict) => ("POST", format!("/v1/models/{model}:predict")),
            // The executor's own check, for every protocol: the 1.19 executor routes no
            // `/v2/health/ready` (only `/v2/models/<model>/ready`, which asks one node).
            (_, Ask::Ready) => ("GET", "/ready".to_owned()),
        }
    }
}

/// The name of predictor `predictor`'s graph root in `sdep` (the model name of its paths).
#[must_use]
pub fn graph_root<'a>(sdep: &'a Value, predictor: &str) -> Option<&'a str> {
    sdep.pointer("/spec/predictors")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(predictor))?
        .pointer("/graph/name")
        .and_then(Value::as_str)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a graph name can
/// never change the path's shape.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_protocol_has_the_executors_paths_with_the_graph_root_as_the_model() {
        let cases = [
            (
                Protocol::Seldon,
                Ask::Predict,
                "POST",
                "/api/v1.0/predictions",
            ),
            (
                Protocol::V2,
                Ask::Predict,
                "POST",
                "/v2/models/classifier/infer",
            ),
            (
                Protocol::Tensorflow,
                Ask::Predict,
                "POST",
                "/v1/models/classifier:predict",
            ),
            (Protocol::Seldon, Ask::Ready, "GET", "/ready"),
            (Protocol::V2, Ask::Ready, "GET", "/ready"),
            (Protocol::Tensorflow, Ask::Ready, "GET", "/ready"),
        ];
        for (p, ask, method, path) in cases {
            assert_eq!(
                p.request(ask, "classifier"),
                (method, path.to_owned()),
                "{p:?} {ask:?}"
            );
        }
        assert_eq!(
            Protocol::V2.request(Ask::Predict, "a/b?c").1,
            "/v2/models/a%2Fb%3Fc/infer",
            "a name cannot change the path"
        );
    }

    #[test]
    fn the_protocol_is_read_from_the_spec_with_seldon_the_default() {
        let of = |v: Value| Protocol::of(&json!({"spec": v}));
        assert_eq!(of(json!({})).unwrap(), Protocol::Seldon);
        assert_eq!(of(json!({"protocol": "seldon"})).unwrap(), Protocol::Seldon);
        assert_eq!(of(json!({"protocol": "v2"})).unwrap(), Protocol::V2);
        assert_eq!(of(json!({"protocol": "kfserving"})).unwrap(), Protocol::V2);
        assert_eq!(
            of(json!({"protocol": "tensorflow"})).unwrap(),
            Protocol::Tensorflow
        );
        assert!(of(json!({"protocol": "grpc"})).is_err());
    }

    #[test]
    fn the_model_name_is_the_predictors_graph_root() {
        let sdep = json!({"spec": {"predictors": [
            {"name": "main", "graph": {"name": "classifier", "children": [{"name": "t"}]}},
            {"name": "canary", "graph": {"name": "classifier-v2"}}
        ]}});
        assert_eq!(graph_root(&sdep, "canary"), Some("classifier-v2"));
        assert_eq!(graph_root(&sdep, "main"), Some("classifier"));
        assert_eq!(graph_root(&sdep, "other"), None);
    }
}
