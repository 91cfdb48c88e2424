//! YAML documents as JSON values, with duplicate mapping keys judged by their values.
//!
//! YAML forbids a key twice in one mapping, yet kubectl applies such a file (the last value
//! wins), and real manifests do contain the same `name: x` written twice. serde-saphyr can
//! either refuse every duplicate or pass them through to the visitor; it has no policy that
//! compares values. So the parser passes them through, each mapping is collected here with
//! its keys' locations, and the duplicates are judged once the values are known: the same
//! value twice is a warning, different values an error, since then the file's meaning
//! depends on which one the reader keeps.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

/// One parsed document: its value and the harmless duplicate keys found in it.
pub(super) struct Document {
    pub(super) value: Value,
    /// `line L column C: …` for each key written twice with the same value.
    pub(super) warnings: Vec<String>,
}

/// Parses every document of `text`, duplicate keys passed through to [`Node`].
pub(super) fn parse(
    text: &str,
    options: serde_saphyr::Options,
) -> Result<Vec<Node>, serde_saphyr::Error> {
    serde_saphyr::from_multiple_with_options::<Node>(text, options)
}

/// A YAML node as parsed, before duplicate keys are resolved.
pub(super) enum Node {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<(Spanned<String>, Node)>),
}

impl Node {
    /// Resolves the node into a JSON value, as kubectl reads it (the last of equal duplicates).
    ///
    /// # Errors
    ///
    /// `line L column C: …` naming a key written twice in one mapping with different values.
    pub(super) fn into_document(self) -> Result<Document, String> {
        let mut warnings = Vec::new();
        let value = self.resolve(&mut warnings)?;
        Ok(Document { value, warnings })
    }

    fn resolve(self, warnings: &mut Vec<String>) -> Result<Value, String> {
        match self {
            Node::Scalar(v) => Ok(v),
            Node::Seq(items) => items
                .into_iter()
                .map(|n| n.resolve(warnings))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Node::Map(entries) => {
                let mut map = Map::new();
                // Where each key was first written, for the messages.
                let mut first: std::collections::HashMap<String, (u64, u64)> =
                    std::collections::HashMap::new();
                for (key, node) in entries {
                    let value = node.resolve(warnings)?;
                    let at = (key.referenced.line(), key.referenced.column());
                    let name = key.value;
                    match map.get(&name) {
                        None => {
                            first.insert(name.clone(), at);
                        }
                        Some(earlier) => {
                            let (l0, c0) = first.get(&name).copied().unwrap_or_default();
                            if *earlier != value {
                                return Err(format!(
                                    "line {} column {}: duplicate key {name:?} with a different \
                                     value than at line {l0} column {c0}; the file is ambiguous \
                                     (YAML allows a key once per mapping), remove one of them",
                                    at.0, at.1
                                ));
                            }
                            warnings.push(format!(
                                "line {} column {}: duplicate key {name:?}, with the same value \
                                 as at line {l0} column {c0}; using it once (YAML allows a key \
                                 once per mapping)",
                                at.0, at.1
                            ));
                        }
                    }
                    map.insert(name, value);
                }
                Ok(Value::Object(map))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Builds scalars exactly as `serde_json::Value`'s own visitor does.
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element()? {
            items.push(n);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Result<Document, String> {
        let mut nodes = parse(text, super::super::yaml_options()).map_err(|e| e.to_string())?;
        assert_eq!(nodes.len(), 1);
        nodes.remove(0).into_document()
    }

    #[test]
    fn equal_duplicates_warn_with_line_column_and_key() {
        let d = doc("a: 1\nb:\n  name: x\n  name: x\n").unwrap();
        assert_eq!(d.value, serde_json::json!({"a": 1, "b": {"name": "x"}}));
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        let w = &d.warnings[0];
        assert!(
            w.starts_with("line 4 column 3: duplicate key \"name\"")
                && w.contains("line 3 column 3"),
            "{w}"
        );
    }

    #[test]
    fn different_duplicates_are_an_error_naming_both_places() {
        let e = doc("x: 1\nkind: a\nkind: b\n").err().unwrap();
        assert!(
            e.starts_with("line 3 column 1: duplicate key \"kind\" with a different value")
                && e.contains("line 2 column 1"),
            "{e}"
        );
        // Nested values are compared whole.
        assert!(doc("m: {a: [1, 2]}\nm: {a: [1, 3]}\n").is_err());
        assert!(doc("m: {a: [1, 2]}\nm: {a: [1, 2]}\n").is_ok());
    }

    #[test]
    fn values_match_serde_json_value() {
        let text =
            "s: x\ni: -3\nu: 18446744073709551615\nf: 1.5\nb: true\nn: null\nl: [1, {k: v}]\n";
        let plain: Value = serde_saphyr::from_str(text).unwrap();
        assert_eq!(doc(text).unwrap().value, plain);
        assert!(doc(text).unwrap().warnings.is_empty());
    }
}
