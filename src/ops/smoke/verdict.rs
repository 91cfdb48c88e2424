//! Whether an answer passes: pure functions over the HTTP status and body.
//!
//! A prediction passes when the status is 2xx, the body parses as the protocol's response
//! and is not an error payload, and (with an expected answer) its data equals the expected
//! data: numbers within a relative tolerance, everything else (names, shapes, strings, the
//! number of items) exactly. A readiness check passes on a 2xx status alone.

use serde_json::Value;

use super::protocol::{Ask, Protocol};

/// The default of `--smoke-tolerance`: numbers may differ by this fraction of the larger
/// one's magnitude (float32 models keep about 7 significant digits, and a JSON round trip of
/// a float32 must not fail the test).
pub const DEFAULT_TOLERANCE: f64 = 1e-6;

/// The largest body excerpt kept for the report and messages, in bytes.
pub const EXCERPT_BYTES: usize = 1024;

/// The members of a response that hold its data, per protocol: only these are compared with
/// the expected answer (`meta`, `id`, `model_version`, `parameters` differ per call or
/// version).
fn data_keys(p: Protocol) -> &'static [&'static str] {
    match p {
        Protocol::Seldon => &["data", "jsonData", "strData", "binData"],
        Protocol::V2 => &["outputs"],
        Protocol::Tensorflow => &["predictions", "outputs"],
    }
}

/// Every member name that holds data in some protocol: an expected answer must have one.
const ANY_DATA_KEY: [&str; 6] = [
    "data",
    "jsonData",
    "strData",
    "binData",
    "outputs",
    "predictions",
];

/// Checks an expected answer (`--smoke-expect`) before anything is sent: it must be an
/// object with the data of some protocol's response. The error says what is missing.
pub fn check_expected(expected: &Value) -> Result<(), String> {
    let ok = expected
        .as_object()
        .is_some_and(|o| ANY_DATA_KEY.iter().any(|k| o.contains_key(*k)));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "an expected answer must be a response object with its data: one of {} (seldon: data, jsonData, strData or binData; v2: outputs; tensorflow: predictions or outputs)",
            ANY_DATA_KEY.join(", ")
        ))
    }
}

/// Judges an answer: `Ok(())` when it passes, else why not (without the body: the caller
/// shows its excerpt).
pub fn judge(
    protocol: Protocol,
    ask: Ask,
    status: u16,
    body: &[u8],
    expected: Option<&Value>,
    tolerance: f64,
) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    if ask == Ask::Ready {
        return Ok(());
    }
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| format!("HTTP {status}, but the body is not JSON ({e})"))?;
    if let Some(why) = error_payload(&answer) {
        return Err(format!(
            "HTTP {status}, but the body is an error payload ({why})"
        ));
    }
    let keys = data_keys(protocol);
    if !answer
        .as_object()
        .is_some_and(|o| keys.iter().any(|k| o.contains_key(*k)))
    {
        return Err(format!(
            "HTTP {status}, but the body is not a {} protocol response (it has none of {})",
            protocol.name(),
            keys.join(", ")
        ));
    }
    let Some(expected) = expected else {
        return Ok(());
    };
    let present: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| expected.get(*k).is_some())
        .collect();
    if present.is_empty() {
        return Err(format!(
            "the expected answer has none of the {} protocol's data ({})",
            protocol.name(),
            keys.join(", ")
        ));
    }
    for key in present {
        let want = &expected[key];
        let got = answer.get(key).unwrap_or(&Value::Null);
        if let Some(diff) = first_difference(key, want, got, tolerance, false) {
            return Err(format!(
                "HTTP {status}, but the answer differs from the expected one: {diff}"
            ));
        }
    }
    Ok(())
}

/// Why `v` is an error payload, if it is one: Seldon's `{"status": {"status": "FAILURE"}}`,
/// or the `{"error": …}` of the v2 and TensorFlow protocols.
#[must_use]
pub fn error_payload(v: &Value) -> Option<String> {
    if v.pointer("/status/status").and_then(Value::as_str) == Some("FAILURE") {
        let said = ["info", "reason"]
            .iter()
            .filter_map(|k| v.pointer(&format!("/status/{k}")).and_then(Value::as_str))
            .find(|s| !s.is_empty());
        return Some(match said {
            Some(s) => format!("status FAILURE: {s}"),
            None => "status FAILURE".to_owned(),
        });
    }
    match v.get("error") {
        Some(Value::Null) | None => None,
        Some(Value::String(s)) => Some(format!("error: {s}")),
        Some(other) => Some(format!("error: {other}")),
    }
}

/// The first place where `got` differs from `want`, as `path: expected X, got Y`. Object
/// members `got` has beyond `want`'s are not compared; arrays must have the same length.
/// Numbers may differ by `tolerance` relative to the larger magnitude, except under a
/// `shape` member (`exact`), which must be equal.
fn first_difference(
    path: &str,
    want: &Value,
    got: &Value,
    tolerance: f64,
    exact: bool,
) -> Option<String> {
    let differ = || {
        Some(format!(
            "{path}: expected {}, got {}",
            brief(want),
            brief(got)
        ))
    };
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return differ();
            };
            let close = if exact {
                a == b || x == y
            } else {
                x == y || (x - y).abs() <= tolerance * x.abs().max(y.abs())
            };
            if close { None } else { differ() }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{path}: expected {} items, got {} ({} vs {})",
                    a.len(),
                    b.len(),
                    brief(want),
                    brief(got)
                ));
            }
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| {
                first_difference(&format!("{path}[{i}]"), x, y, tolerance, exact)
            })
        }
        (Value::Object(a), Value::Object(b)) => {
            // What identifies the data (names, shapes, types) is named before the data
            // itself: a wrong shape is told as such, not as a count of values.
            let mut keys: Vec<&String> = a.keys().collect();
            keys.sort_by_key(|k| !IDENTITY_KEYS.contains(&k.as_str()));
            keys.into_iter()
                .find_map(|k| match (&a[k.as_str()], b.get(k)) {
                    (x, None) => Some(format!("{path}.{k}: expected {}, got nothing", brief(x))),
                    (x, Some(y)) => first_difference(
                        &format!("{path}.{k}"),
                        x,
                        y,
                        tolerance,
                        exact || k == "shape",
                    ),
                })
        }
        _ if want == got => None,
        _ => differ(),
    }
}

/// Members that say what data is, compared before the data.
const IDENTITY_KEYS: [&str; 4] = ["name", "names", "shape", "datatype"];

/// A value as compact JSON, cut to about 200 bytes.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 200 {
        return s;
    }
    format!("{}…", &s[..floor_char_boundary(&s, 199)])
}

/// The body as text for reports and messages: at most [`EXCERPT_BYTES`] bytes (cut at a
/// character boundary, ending in `…` when cut), invalid UTF-8 replaced.
#[must_use]
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_end();
    if text.len() <= EXCERPT_BYTES {
        return text.to_owned();
    }
    let end = floor_char_boundary(text, EXCERPT_BYTES - '…'.len_utf8());
    format!("{}…", &text[..end])
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: &Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn a_2xx_answer_of_the_protocols_shape_passes() {
        let seldon = json!({"data": {"names": ["t:0"], "ndarray": [[3.0]]}, "meta": {"puid": "x"}});
        assert_eq!(
            judge(
                Protocol::Seldon,
                Ask::Predict,
                200,
                &body(&seldon),
                None,
                0.0
            ),
            Ok(())
        );
        let v2 = json!({"model_name": "m", "outputs": [{"name": "sum", "shape": [1, 1], "datatype": "FP64", "data": [3.0]}]});
        assert_eq!(
            judge(Protocol::V2, Ask::Predict, 200, &body(&v2), None, 0.0),
            Ok(())
        );
        let tf = json!({"predictions": [[0.1, 0.9]]});
        assert_eq!(
            judge(
                Protocol::Tensorflow,
                Ask::Predict,
                200,
                &body(&tf),
                None,
                0.0
            ),
            Ok(())
        );
    }

    #[test]
    fn a_non_2xx_status_fails_whatever_the_body() {
        let ok = json!({"data": {"ndarray": [1]}});
        assert_eq!(
            judge(Protocol::Seldon, Ask::Predict, 500, &body(&ok), None, 0.0),
            Err("HTTP 500".into())
        );
        assert_eq!(
            judge(Protocol::V2, Ask::Ready, 503, b"", None, 0.0),
            Err("HTTP 503".into())
        );
        assert_eq!(judge(Protocol::V2, Ask::Ready, 200, b"", None, 0.0), Ok(()));
    }

    #[test]
    fn an_error_payload_fails_even_with_200() {
        let failure = json!({"status": {"code": -1, "info": "model crashed", "reason": "MICROSERVICE_INTERNAL_ERROR", "status": "FAILURE"}});
        let e = judge(
            Protocol::Seldon,
            Ask::Predict,
            200,
            &body(&failure),
            None,
            0.0,
        )
        .unwrap_err();
        assert!(
            e.contains("error payload (status FAILURE: model crashed)"),
            "{e}"
        );
        let v2 = json!({"error": "Model m not found"});
        let e = judge(Protocol::V2, Ask::Predict, 200, &body(&v2), None, 0.0).unwrap_err();
        assert!(e.contains("error: Model m not found"), "{e}");
        // A success status is not an error payload.
        let ok = json!({"status": {"status": "SUCCESS"}, "data": {"ndarray": []}});
        assert_eq!(
            judge(Protocol::Seldon, Ask::Predict, 200, &body(&ok), None, 0.0),
            Ok(())
        );
    }

    #[test]
    fn a_body_that_is_not_the_protocols_response_fails() {
        let e = judge(
            Protocol::Seldon,
            Ask::Predict,
            200,
            b"<html>hello</html>",
            None,
            0.0,
        )
        .unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        // A v1 answer from a predictor declared v2: the protocol is wrong.
        let v1 = json!({"data": {"ndarray": [[1]]}});
        let e = judge(Protocol::V2, Ask::Predict, 200, &body(&v1), None, 0.0).unwrap_err();
        assert!(
            e.contains("not a v2 protocol response (it has none of outputs)"),
            "{e}"
        );
    }

    #[test]
    fn numbers_compare_within_the_relative_tolerance_names_and_shapes_exactly() {
        let want = json!({"outputs": [{"name": "sum", "shape": [2, 1], "datatype": "FP64", "data": [3.0, 7.0]}]});
        let judge_v2 = |got: Value, tol: f64| {
            judge(
                Protocol::V2,
                Ask::Predict,
                200,
                &body(&got),
                Some(&want),
                tol,
            )
        };
        let close = json!({"outputs": [{"name": "sum", "shape": [2, 1], "datatype": "FP64", "data": [3.0000001, 7.0], "parameters": {}}], "id": "x"});
        assert_eq!(judge_v2(close.clone(), 1e-6), Ok(()));
        let e = judge_v2(close, 1e-9).unwrap_err();
        assert_eq!(
            e,
            "HTTP 200, but the answer differs from the expected one: outputs[0].data[0]: expected 3.0, got 3.0000001"
        );
        let renamed = json!({"outputs": [{"name": "total", "shape": [2, 1], "datatype": "FP64", "data": [3.0, 7.0]}]});
        assert!(
            judge_v2(renamed, 1.0)
                .unwrap_err()
                .contains("outputs[0].name: expected \"sum\", got \"total\"")
        );
        // A shape is exact even where the tolerance would forgive the number.
        let reshaped = json!({"outputs": [{"name": "sum", "shape": [2, 1.0000001], "datatype": "FP64", "data": [3.0, 7.0]}]});
        assert!(
            judge_v2(reshaped, 0.5)
                .unwrap_err()
                .contains("outputs[0].shape[1]")
        );
        let wrong_shape = json!({"outputs": [{"name": "sum", "shape": [1, 1], "datatype": "FP64", "data": [3.0]}]});
        let e = judge_v2(wrong_shape, 0.5).unwrap_err();
        assert!(e.contains("outputs[0].shape[0]: expected 2, got 1"), "{e}");
    }

    #[test]
    fn a_seldon_answer_with_fewer_rows_names_the_count() {
        let want = json!({"data": {"names": ["t:0"], "ndarray": [[3.0], [7.0]]}});
        let got = json!({"data": {"names": ["t:0"], "ndarray": [[3.0]]}, "meta": {}});
        let e = judge(
            Protocol::Seldon,
            Ask::Predict,
            200,
            &body(&got),
            Some(&want),
            1e-6,
        )
        .unwrap_err();
        assert!(e.contains("data.ndarray: expected 2 items, got 1"), "{e}");
        let missing = json!({"jsonData": {"a": 1}});
        let e = judge(
            Protocol::Seldon,
            Ask::Predict,
            200,
            &body(&missing),
            Some(&want),
            1e-6,
        )
        .unwrap_err();
        assert!(e.contains("data: expected {"), "{e}");
    }

    #[test]
    fn an_expected_answer_must_hold_some_protocols_data() {
        assert!(check_expected(&json!({"outputs": []})).is_ok());
        assert!(check_expected(&json!({"data": {"ndarray": [[1]]}})).is_ok());
        assert!(check_expected(&json!([1, 2])).is_err());
        let e = check_expected(&json!({"ndarray": [[1]]})).unwrap_err();
        assert!(e.contains("one of data, jsonData"), "{e}");
    }

    #[test]
    fn the_excerpt_is_at_most_one_kib_and_cut_at_a_character() {
        let long = "é".repeat(2000);
        let e = excerpt(long.as_bytes());
        assert!(e.len() <= EXCERPT_BYTES, "{}", e.len());
        assert!(e.ends_with('…'));
        assert_eq!(excerpt(b"short\n"), "short");
        assert_eq!(excerpt(&[0xff, b'a']), "\u{fffd}a");
    }
}
