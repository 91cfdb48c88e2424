//! The smoke test's input files: the request body (`--smoke FILE`) and the expected answer
//! (`--smoke-expect FILE`), read and checked before anything is sent to the cluster.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};

/// The largest body or expected answer read (a smoke test sends one small request).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A JSON document read from a file, with its name for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonFile {
    /// The file name as given.
    pub name: String,
    /// The bytes as written (sent as they are: the body is not re-serialized).
    pub bytes: Arc<[u8]>,
    /// The parsed document.
    pub value: Value,
}

/// Reads `path` as one JSON document. Exit 2 naming the file (and the line and column of a
/// syntax error) when it cannot be read, is too large, or is not JSON.
pub fn load_json(path: &Path) -> Result<JsonFile> {
    let name = path.display().to_string();
    let bad = |message: String| Error::Manifest {
        source_name: name.clone(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(bad("is a directory, not a JSON file".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(bad(format!(
            "is {} bytes; a smoke test's request or expected answer may be at most {MAX_FILE}",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    parse_json(&name, bytes)
}

/// Parses `bytes` (from `name`) as one JSON document; see [`load_json`].
pub fn parse_json(name: &str, bytes: Vec<u8>) -> Result<JsonFile> {
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
        source_name: name.to_owned(),
        message: {
            // serde_json's message ends in " at line L column C": put the place first, as the
            // manifest loader does.
            let text = e.to_string();
            let place = format!(" at line {} column {}", e.line(), e.column());
            match text.strip_suffix(&place) {
                Some(what) if e.line() > 0 => {
                    format!("not JSON: line {} column {}: {what}", e.line(), e.column())
                }
                _ => format!("not JSON: {text}"),
            }
        },
    })?;
    Ok(JsonFile {
        name: name.to_owned(),
        bytes: bytes.into(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_json_is_refused_naming_the_file_line_and_column() {
        let e = parse_json("body.json", b"{\n  \"data\": [1, 2,,]\n}".to_vec()).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.starts_with("body.json: "), "{msg}");
        assert!(
            msg.contains("not JSON: line 2 column 17: expected value"),
            "{msg}"
        );
    }

    #[test]
    fn an_unreadable_file_is_refused_naming_it() {
        let e = load_json(Path::new("/nonexistent/body.json")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/body.json: cannot read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = load_json(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn the_body_is_kept_as_written() {
        let f = parse_json("b", b"{\"data\": {\"ndarray\": [[1.0]]}}".to_vec()).unwrap();
        assert_eq!(&*f.bytes, b"{\"data\": {\"ndarray\": [[1.0]]}}");
        assert_eq!(f.value["data"]["ndarray"][0][0], 1.0);
    }
}
