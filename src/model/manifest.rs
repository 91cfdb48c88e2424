//! Loading and validating SeldonDeployment manifests.
//!
//! A manifest is read from a file, a directory (its `*.yaml`, `*.yml` and `*.json` files) or
//! stdin (`-`), as YAML (possibly several documents) or JSON. Each document is kept as a
//! [`serde_json::Value`] exactly as written, so every field reaches the API server; the checks
//! here only reject what the server would reject anyway or what this tool cannot handle, and
//! run before any client is built.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::components::{self, Component};

mod yaml;

/// Largest manifest accepted, in bytes. Real SeldonDeployments are a few KiB.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 10 * 1024 * 1024;
/// Deepest YAML/JSON nesting accepted. A PodSpec inside a 10-level graph stays well below this.
pub(crate) const MAX_DEPTH: usize = 64;
pub use crate::names::GROUP;
/// The kind this tool deploys.
pub const KIND: &str = "SeldonDeployment";
/// API versions the v1 operator serves (all share one schema).
pub const VERSIONS: [&str; 3] = ["v1", "v1alpha2", "v1alpha3"];

/// The name used for standard input in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// One validated SeldonDeployment document.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// File name, or `<stdin>`.
    pub source: String,
    /// 1-based position of the document in its file.
    pub document: usize,
    /// The document as written.
    pub object: Value,
    /// The API version it names (`v1`, `v1alpha2` or `v1alpha3`).
    pub version: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if written.
    pub namespace: Option<String>,
    /// Components with their initial replica counts.
    pub components: Vec<Component>,
    /// Harmless oddities of the file worth telling the user (`file: line L column C: …`),
    /// such as a key written twice with the same value.
    pub warnings: Vec<String>,
}

impl Manifest {
    /// Where this document came from, for messages: `file` or `file (document N)`.
    #[must_use]
    pub fn origin(&self) -> String {
        if self.document > 1 {
            format!("{} (document {})", self.source, self.document)
        } else {
            self.source.clone()
        }
    }

    /// Checks `metadata.namespace` against the namespace the run uses, as kubectl does.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] when the manifest names a different namespace.
    pub fn check_namespace(&self, namespace: &str) -> Result<()> {
        match &self.namespace {
            Some(ns) if ns != namespace => Err(Error::Manifest {
                source_name: self.origin(),
                message: format!(
                    "metadata.namespace is {ns:?} but the namespace in use is {namespace:?}; \
                     pass -n {ns} or remove metadata.namespace"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a manifest with an autoscaled component, which cannot be scaled by hand.
    ///
    /// # Errors
    ///
    /// [`Error::Autoscaled`] naming the components and the field responsible.
    pub fn ensure_manually_scalable(&self) -> Result<()> {
        let auto: Vec<String> = self
            .components
            .iter()
            .filter_map(|c| {
                c.autoscaler.map(|a| {
                    format!(
                        "spec.predictors[{}].componentSpecs[{}] ({}) has {}",
                        c.predictor_index,
                        c.index,
                        c.label(),
                        a.field()
                    )
                })
            })
            .collect();
        if auto.is_empty() {
            return Ok(());
        }
        Err(Error::Autoscaled(format!(
            "{}: cannot scale {:?} by hand: {}. An autoscaler owns the replica count of such a \
             component, so the operator ignores manual replicas; remove the autoscaler spec to \
             use this tool's scale step",
            self.origin(),
            self.name,
            auto.join("; ")
        )))
    }
}

/// Loads every SeldonDeployment from the given sources: files, directories, or `-` for stdin.
///
/// # Errors
///
/// [`Error::Manifest`] (exit 2) for unreadable, oversized, malformed or invalid input, and
/// when no document is found at all.
pub fn load_all<S: AsRef<str>>(sources: &[S]) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for s in sources {
        out.extend(load(s.as_ref())?);
    }
    if out.is_empty() {
        return Err(Error::Usage("no manifest given (use -f FILE)".into()));
    }
    Ok(out)
}

/// Loads the SeldonDeployments in one file, directory, or `-` (stdin).
///
/// # Errors
///
/// [`Error::Manifest`] naming the file: missing, unreadable, too large, not UTF-8, not YAML or
/// JSON (with line and column), or not a valid SeldonDeployment.
///
/// # Examples
///
/// ```no_run
/// let manifests = seldon_deploy::model::manifest::load("examples/iris-v1alpha2.yaml")?;
/// assert_eq!(manifests[0].name, "sklearn");
/// # Ok::<(), seldon_deploy::Error>(())
/// ```
pub fn load(source: &str) -> Result<Vec<Manifest>> {
    if source == "-" {
        let bytes = read_limited(std::io::stdin().lock(), STDIN_NAME)?;
        return parse(STDIN_NAME, &bytes);
    }
    let path = Path::new(source);
    let meta = std::fs::metadata(path).map_err(|e| io_error(source, &e))?;
    if meta.is_dir() {
        return load_dir(path);
    }
    if meta.is_file() && meta.len() > MAX_MANIFEST_BYTES {
        return Err(too_large(source));
    }
    let file = std::fs::File::open(path).map_err(|e| io_error(source, &e))?;
    let bytes = read_limited(file, source)?;
    parse(source, &bytes)
}

fn load_dir(dir: &Path) -> Result<Vec<Manifest>> {
    let shown = dir.display().to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(&shown, &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Manifest {
            source_name: shown,
            message: "is a directory with no *.yaml, *.yml or *.json files".into(),
        });
    }
    let mut out = Vec::new();
    for f in files {
        out.extend(load(&f.to_string_lossy())?);
    }
    Ok(out)
}

fn io_error(source: &str, e: &std::io::Error) -> Error {
    let message = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied (cannot read file)".to_owned(),
        _ => format!("cannot read: {e}"),
    };
    Error::Manifest {
        source_name: source.to_owned(),
        message,
    }
}

fn too_large(source: &str) -> Error {
    Error::Manifest {
        source_name: source.to_owned(),
        message: format!(
            "larger than {} MiB; a SeldonDeployment manifest is a few KiB",
            MAX_MANIFEST_BYTES / 1024 / 1024
        ),
    }
}

/// Reads at most [`MAX_MANIFEST_BYTES`] (+1 to detect overflow) so a huge pipe cannot exhaust memory.
fn read_limited(r: impl Read, source: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(source, &e))?;
    if buf.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large(source));
    }
    Ok(buf)
}

/// Parses and validates manifest bytes. `source` names the input in messages.
///
/// # Errors
///
/// [`Error::Manifest`] for anything that is not one or more valid SeldonDeployments.
///
/// # Examples
///
/// ```
/// let yaml = b"apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\n\
///              metadata: {name: demo}\nspec:\n  predictors:\n  - name: p\n    graph: {name: g}\n";
/// let m = seldon_deploy::model::manifest::parse("demo.yaml", yaml)?;
/// assert_eq!(m[0].components[0].initial_replicas, 1);
///
/// let err = seldon_deploy::model::manifest::parse("bad.yaml", b"kind: [unclosed\n").unwrap_err();
/// assert!(err.to_string().starts_with("bad.yaml: "));
/// assert_eq!(err.exit_code(), 2);
/// # Ok::<(), seldon_deploy::Error>(())
/// ```
pub fn parse(source: &str, bytes: &[u8]) -> Result<Vec<Manifest>> {
    let fail = |message: String| Error::Manifest {
        source_name: source.to_owned(),
        message,
    };
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large(source));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = line_col(&bytes[..e.valid_up_to()]);
            return Err(fail(format!(
                "not UTF-8 text: invalid byte at line {line} column {col}"
            )));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(pos) = text.find(|c: char| c == '\0' || (c.is_control() && !c.is_whitespace())) {
        let (line, col) = line_col(&text.as_bytes()[..pos]);
        return Err(fail(format!(
            "looks like binary data, not YAML or JSON: control character at line {line} column {col}"
        )));
    }

    let docs = if text.trim_start().starts_with(['{', '[']) {
        parse_json(text)
            .map_err(fail)?
            .into_iter()
            .map(|v| (v, Vec::new()))
            .collect()
    } else {
        parse_yaml(text, source).map_err(fail)?
    };

    let mut docs: Vec<(Value, Vec<String>)> =
        docs.into_iter().filter(|(d, _)| !d.is_null()).collect();
    // kubectl accepts `kind: List`; expand it so such files work here too.
    if docs.len() == 1
        && docs[0].0.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(items) = docs[0].0.get("items").and_then(Value::as_array)
    {
        let items = items.clone();
        let mut warnings = std::mem::take(&mut docs[0].1);
        docs = items
            .into_iter()
            .map(|i| (i, std::mem::take(&mut warnings)))
            .collect();
    }
    if docs.is_empty() {
        return Err(fail(
            "contains no YAML or JSON document (empty, or comments only)".into(),
        ));
    }
    let several = docs.len() > 1;
    docs.into_iter()
        .enumerate()
        .map(|(i, (doc, warnings))| {
            let origin = if several {
                format!("{source} (document {})", i + 1)
            } else {
                source.to_owned()
            };
            let mut m = validate(doc, source, i + 1).map_err(|message| Error::Manifest {
                source_name: origin.clone(),
                message,
            })?;
            m.warnings = warnings.iter().map(|w| format!("{origin}: {w}")).collect();
            Ok(m)
        })
        .collect()
}

fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_reader_input_bytes = Some(MAX_MANIFEST_BYTES as usize);
    budget.max_documents = 1024;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // Alias expansion is bounded so a "billion laughs" document fails fast and small.
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_alias_expansions_per_anchor = 10_000;
    // Duplicate keys reach `yaml`, which accepts a repeated equal value and refuses a
    // different one.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    options
}

/// The documents of a YAML text, each with its warnings.
fn parse_yaml(text: &str, source: &str) -> std::result::Result<Vec<(Value, Vec<String>)>, String> {
    yaml::parse(text, yaml_options())
        .map_err(|e| format!("invalid YAML: {}", yaml_error_text(&e, source)))?
        .into_iter()
        .map(|node| {
            node.into_document()
                .map(|d| (d.value, d.warnings))
                .map_err(|e| format!("invalid YAML: {e}"))
        })
        .collect()
}

/// The parser's message with `line L column C` up front when it knows the location, then its
/// snippet headed by `source`.
fn yaml_error_text(e: &serde_saphyr::Error, source: &str) -> String {
    let text = e.render_with_options(serde_saphyr::render_options! {
        formatter: &YamlMessages,
        source_name: Some(source),
    });
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    match e.location() {
        Some(loc) if !text.contains(&format!("line {}", loc.line())) => {
            format!("line {} column {}: {text}", loc.line(), loc.column())
        }
        _ => text.to_owned(),
    }
}

/// The parser's user-facing wording, except where it speaks of its own options and budgets
/// (`set DuplicateKeyPolicy`, `Depth { depth: 65 }`): those say what is wrong with the file.
struct YamlMessages;

impl serde_saphyr::MessageFormatter for YamlMessages {
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        use serde_saphyr::Error as E;
        use serde_saphyr::budget::BudgetBreach;
        match err {
            E::Budget {
                breach: BudgetBreach::Depth { .. },
                ..
            }
            | E::AliasReplayStackDepthExceeded { .. } => {
                format!("nested deeper than {MAX_DEPTH} levels").into()
            }
            E::AliasReplayLimitExceeded { .. }
            | E::AliasExpansionLimitExceeded { .. }
            | E::AliasReplayCounterOverflow { .. } => {
                "aliases expand to too many values (an alias bomb?); write the values out instead"
                    .into()
            }
            _ => {
                let text = serde_saphyr::UserMessageFormatter.format_message(err);
                if text.contains("found a tab") {
                    // The most common YAML mistake deserves the fix, not only the scanner's words.
                    format!("{text} (YAML indents with spaces only)").into()
                } else {
                    text
                }
            }
        }
    }
}

fn parse_json(text: &str) -> std::result::Result<Vec<Value>, String> {
    // serde_json bounds recursion at 128 levels on its own.
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let v = v.map_err(|e| format!("invalid JSON: {e}"))?;
        if depth(&v) > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        out.push(v);
    }
    Ok(out)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn line_col(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
    let col = prefix.len()
        - prefix
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

fn validate(doc: Value, source: &str, document: usize) -> std::result::Result<Manifest, String> {
    if !doc.is_object() {
        return Err(format!(
            "expected a mapping (a Kubernetes object), found {}",
            type_name(&doc)
        ));
    }
    let api_version = str_field(&doc, "apiVersion")?;
    let kind = str_field(&doc, "kind")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group != GROUP {
        let hint = if group == "mlops.seldon.io" {
            " (Seldon Core v2 resources are not supported; this tool deploys Seldon Core v1)"
        } else {
            ""
        };
        return Err(format!(
            "apiVersion {api_version:?} ({kind}) is not a SeldonDeployment: expected \
             {GROUP}/{{{}}}{hint}",
            VERSIONS.join(",")
        ));
    }
    if kind != KIND {
        return Err(format!("kind is {kind:?}; expected {KIND:?}"));
    }
    if !VERSIONS.contains(&version) {
        return Err(format!(
            "apiVersion {api_version:?} is not served by Seldon Core v1; use one of {}",
            VERSIONS.map(|v| format!("{GROUP}/{v}")).join(", ")
        ));
    }

    let metadata = doc
        .get("metadata")
        .filter(|m| m.is_object())
        .ok_or("metadata is missing or not a mapping")?;
    let name = match metadata.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None if metadata.get("generateName").is_some() => {
            return Err(
                "metadata.name is required (generateName is not supported: the run must know the name)"
                    .into(),
            );
        }
        Some(Value::String(_)) | None => return Err("metadata.name is required".into()),
        Some(v) => {
            return Err(format!(
                "metadata.name must be a string, found {}",
                type_name(v)
            ));
        }
    };
    if let Err(why) = check_dns1123_subdomain(&name) {
        return Err(format!("metadata.name {name:?} is not a valid name: {why}"));
    }
    let namespace = match metadata.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            if let Err(why) = check_dns1123_label(s) {
                return Err(format!(
                    "metadata.namespace {s:?} is not a valid namespace: {why}"
                ));
            }
            Some(s.clone())
        }
        Some(v) => {
            return Err(format!(
                "metadata.namespace must be a string, found {}",
                type_name(v)
            ));
        }
    };

    let spec = doc
        .get("spec")
        .filter(|s| s.is_object())
        .ok_or("spec is missing or not a mapping")?;
    check_replicas(spec.get("replicas"), "spec.replicas")?;
    let predictors = match spec.get("predictors") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err("spec.predictors must list at least one predictor".into());
        }
        Some(v) => {
            return Err(format!(
                "spec.predictors must be a list, found {}",
                type_name(v)
            ));
        }
    };
    let mut predictor_names = std::collections::HashMap::new();
    for (i, p) in predictors.iter().enumerate() {
        let at = format!("spec.predictors[{i}]");
        if !p.is_object() {
            return Err(format!("{at} must be a mapping, found {}", type_name(p)));
        }
        match p.get("name") {
            Some(Value::String(s)) if !s.is_empty() => {
                // Seldon's validating webhook denies this; where it is not installed, the
                // operator makes both predictors fight over the same Deployments forever.
                if let Some(first) = predictor_names.insert(s.as_str(), i) {
                    return Err(format!(
                        "{at}.name {s:?} is also the name of spec.predictors[{first}]: \
                         predictor names must be unique (Seldon's webhook denies a Duplicate \
                         predictor name)"
                    ));
                }
            }
            _ => return Err(format!("{at}.name is required")),
        }
        check_replicas(p.get("replicas"), &format!("{at}.replicas"))?;
        match p.get("componentSpecs") {
            None | Some(Value::Null) => {}
            Some(Value::Array(specs)) => {
                for (j, c) in specs.iter().enumerate() {
                    let at = format!("{at}.componentSpecs[{j}]");
                    if !c.is_object() {
                        return Err(format!("{at} must be a mapping, found {}", type_name(c)));
                    }
                    check_replicas(c.get("replicas"), &format!("{at}.replicas"))?;
                }
            }
            Some(v) => {
                return Err(format!(
                    "{at}.componentSpecs must be a list, found {}",
                    type_name(v)
                ));
            }
        }
    }

    let components = components::components(&doc);
    Ok(Manifest {
        source: source.to_owned(),
        document,
        version: version.to_owned(),
        name,
        namespace,
        components,
        object: doc,
        warnings: Vec::new(),
    })
}

fn str_field<'a>(doc: &'a Value, key: &str) -> std::result::Result<&'a str, String> {
    match doc.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(format!("{key} is missing")),
        Some(v) => Err(format!("{key} must be a string, found {}", type_name(v))),
    }
}

fn check_replicas(v: Option<&Value>, at: &str) -> std::result::Result<(), String> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if (0..=i64::from(i32::MAX)).contains(&i) => Ok(()),
            Some(i) if i < 0 => Err(format!("{at} is {i}; replicas cannot be negative")),
            Some(i) => Err(format!("{at} is {i}, larger than the maximum {}", i32::MAX)),
            None if n.as_u64().is_some() => {
                Err(format!("{at} is {n}, larger than the maximum {}", i32::MAX))
            }
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f > 0.0 => {
                    Err(format!("{at} is {n}, larger than the maximum {}", i32::MAX))
                }
                Some(f) if f.fract() == 0.0 && f < 0.0 => {
                    Err(format!("{at} is {n}; replicas cannot be negative"))
                }
                _ => Err(format!("{at} is {n}; replicas must be a whole number")),
            },
        },
        Some(v) => Err(format!(
            "{at} must be an integer, found {} {v}",
            type_name(v)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks a DNS-1123 subdomain: at most 253 characters of `[a-z0-9.-]`, starting and ending
/// alphanumeric, with each dot-separated label non-empty.
///
/// # Errors
///
/// A short explanation of the first rule broken.
pub fn check_dns1123_subdomain(name: &str) -> std::result::Result<(), String> {
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("use only lowercase letters, digits, '-' and '.'".into());
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    for label in name.split('.') {
        if !alnum(label.bytes().next()) || !alnum(label.bytes().last()) {
            return Err("must start and end with a letter or digit".into());
        }
    }
    Ok(())
}

/// Checks a DNS-1123 label, the rule for namespaces: at most 63 characters of `[a-z0-9-]`,
/// starting and ending alphanumeric.
///
/// # Errors
///
/// A short explanation of the first rule broken.
pub(crate) fn check_dns1123_label(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("empty".into());
    }
    if name.len() > 63 {
        return Err(format!("{} characters, at most 63 allowed", name.len()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("use only lowercase letters, digits and '-'".into());
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(name.bytes().next()) || !alnum(name.bytes().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Checks a SeldonDeployment name given as `argument` (`NAME`, say): the rule of
/// `metadata.name` in a manifest (a DNS-1123 subdomain). Request paths embed names, so a name
/// that passes cannot change the path a request goes to (no `/`, `?`, `%`, `..` or space).
///
/// # Errors
///
/// [`Error::InvalidName`] (exit 2) naming the argument and the rule.
pub fn check_name(argument: &str, name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Err("empty".to_owned())
    } else {
        check_dns1123_subdomain(name)
    };
    why.map_err(|why| Error::InvalidName {
        argument: argument.to_owned(),
        value: name.to_owned(),
        rule: format!(
            "a SeldonDeployment name must be a DNS-1123 subdomain (lowercase letters, digits, \
             '-' and '.', starting and ending with a letter or digit, at most 253 characters): {why}"
        ),
    })
}

/// Checks a namespace given as `argument` (`-n/--namespace`, the kubeconfig context's
/// namespace, …): a DNS-1123 label, as Kubernetes requires of namespaces.
///
/// # Errors
///
/// [`Error::InvalidName`] (exit 2) naming the argument and the rule.
pub fn check_namespace_name(argument: &str, namespace: &str) -> Result<()> {
    check_dns1123_label(namespace).map_err(|why| Error::InvalidName {
        argument: argument.to_owned(),
        value: namespace.to_owned(),
        rule: format!(
            "a namespace must be a DNS-1123 label (lowercase letters, digits and '-', starting \
             and ending with a letter or digit, at most 63 characters): {why}"
        ),
    })
}

/// The `ApiResource` of SeldonDeployment at `version`.
#[must_use]
pub fn sdep_resource(version: &str) -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(GROUP, version, "SeldonDeployment"),
        "seldondeployments",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const IRIS: &str = "apiVersion: machinelearning.seldon.io/v1alpha2
kind: SeldonDeployment
metadata:
  name: sklearn
spec:
  name: iris
  predictors:
  - graph:
      children: []
      implementation: SKLEARN_SERVER
      modelUri: gs://seldon-models/sklearn/iris
      name: classifier
    name: default
    replicas: 1
";

    fn err(src: &str) -> String {
        parse("m.yaml", src.as_bytes()).unwrap_err().to_string()
    }

    fn with_spec(spec: &str) -> String {
        format!(
            "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata:\n  name: x\nspec:\n{spec}"
        )
    }

    #[test]
    fn loads_iris_and_keeps_every_field() {
        let m = parse("iris.yaml", IRIS.as_bytes()).unwrap();
        assert_eq!(m.len(), 1);
        let m = &m[0];
        assert_eq!(m.version, "v1alpha2");
        assert_eq!(m.name, "sklearn");
        assert_eq!(m.object["spec"]["name"], "iris");
        assert_eq!(
            m.object["spec"]["predictors"][0]["graph"]["children"],
            serde_json::json!([])
        );
        assert_eq!(m.components.len(), 1);
        assert_eq!(
            m.components[0].deployment_name.as_deref(),
            Some("sklearn-default-0-classifier")
        );
        assert_eq!(m.components[0].initial_replicas, 1);
    }

    #[test]
    fn unknown_fields_survive_for_the_server_to_judge() {
        let src = with_spec("  replica: 3\n  predictors:\n  - name: p\n    graph: {name: g}\n");
        let m = parse("m.yaml", src.as_bytes()).unwrap();
        assert_eq!(m[0].object["spec"]["replica"], 3);
    }

    #[test]
    fn json_and_multi_document() {
        let json = r#"{"apiVersion":"machinelearning.seldon.io/v1","kind":"SeldonDeployment",
            "metadata":{"name":"j"},"spec":{"predictors":[{"name":"p","graph":{"name":"g"}}]}}"#;
        assert_eq!(parse("m.json", json.as_bytes()).unwrap()[0].name, "j");

        let two = format!(
            "{IRIS}---\n{}",
            IRIS.replace("name: sklearn", "name: second")
        );
        let m = parse("m.yaml", two.as_bytes()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].name, "second");
        assert_eq!(m[1].document, 2);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let bad = "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata:\n  name: [x\n";
        let e = err(bad);
        assert!(e.starts_with("m.yaml: "), "{e}");
        assert!(e.contains("line "), "{e}");
        assert!(e.contains("column"), "{e}");

        let e = parse("m.json", b"{\"a\": 1,\n  \"b\": }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn tabs_and_differing_duplicate_keys_are_rejected() {
        let tab = "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata:\n\tname: x\n";
        assert!(err(tab).contains("line"), "{}", err(tab));
        let dup = "apiVersion: a\napiVersion: b\n";
        let e = err(dup);
        assert!(
            e.starts_with("m.yaml: invalid YAML: line 2 column 1: duplicate key \"apiVersion\""),
            "{e}"
        );
    }

    #[test]
    fn an_equal_duplicate_key_is_a_warning_naming_file_line_and_key() {
        let src = IRIS.replace(
            "    name: default\n",
            "    name: default\n    name: default\n",
        );
        let m = &parse("iris.yaml", src.as_bytes()).unwrap()[0];
        assert_eq!(m.object["spec"]["predictors"][0]["name"], "default");
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(
            m.warnings[0].starts_with("iris.yaml: line 14 column 5: duplicate key \"name\""),
            "{:?}",
            m.warnings
        );
        let two = format!("{IRIS}---\n{src}").replace("name: sklearn\nspec", "name: b\nspec");
        let ms = parse("two.yaml", two.as_bytes()).unwrap();
        assert!(ms[0].warnings.is_empty());
        assert!(
            ms[1].warnings[0].starts_with("two.yaml (document 2): line 29 column 5:"),
            "{:?}",
            ms[1].warnings
        );
    }

    #[test]
    fn empty_comments_binary_non_utf8() {
        assert!(err("").contains("no YAML or JSON document"));
        assert!(err("# just a comment\n\n").contains("no YAML or JSON document"));
        assert!(err("---\n...\n").contains("no YAML or JSON document"));
        let e = parse("b.bin", b"\x7fELF\x02\x01\x01\0\0\0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("binary"), "{e}");
        let e = parse("l.yaml", b"kind: caf\xe9\n").unwrap_err().to_string();
        assert!(
            e.contains("not UTF-8") && e.contains("line 1 column 10"),
            "{e}"
        );
    }

    #[test]
    fn alias_bomb_and_deep_nesting_fail_fast() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            bomb.push_str(&format!(
                "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = c;
        }
        let e = err(&bomb);
        assert!(e.starts_with("m.yaml: invalid YAML"), "{e}");

        let deep = "[".repeat(100_000);
        assert!(err(&deep).starts_with("m.yaml: invalid"));
        let deep_yaml: String = (0..200)
            .map(|i| format!("{}k:\n", " ".repeat(i * 2)))
            .collect();
        assert!(err(&deep_yaml).contains("invalid YAML"));
    }

    #[test]
    fn oversized_input_rejected() {
        let big = vec![b'#'; MAX_MANIFEST_BYTES as usize + 1];
        assert!(
            parse("big.yaml", &big)
                .unwrap_err()
                .to_string()
                .contains("larger than 10 MiB")
        );
    }

    #[test]
    fn wrong_kind_group_version() {
        let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n";
        assert!(err(dep).contains("not a SeldonDeployment"));
        let v2 = "apiVersion: mlops.seldon.io/v1alpha1\nkind: Model\nmetadata: {name: x}\n";
        assert!(err(v2).contains("Seldon Core v2"));
        let k = "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeploymentList\n";
        assert!(err(k).contains("expected \"SeldonDeployment\""));
        let v = "apiVersion: machinelearning.seldon.io/v2\nkind: SeldonDeployment\n";
        assert!(err(v).contains("not served"));
    }

    #[test]
    fn metadata_name_rules() {
        let no_name = "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata: {}\nspec: {predictors: [{name: p}]}\n";
        assert!(err(no_name).contains("metadata.name is required"));
        let bad = no_name.replace("{}", "{name: Bad_Name}");
        assert!(err(&bad).contains("not a valid name"));
        assert!(check_dns1123_subdomain("a.b-c").is_ok());
        assert!(check_dns1123_subdomain("-a").is_err());
        assert!(check_dns1123_subdomain("a..b").is_err());
    }

    #[test]
    fn predictors_required() {
        let twice = err(&with_spec(
            "  predictors:\n  - {name: p, graph: {name: a}}\n  - {name: p, graph: {name: b}}\n",
        ));
        assert!(
            twice.contains("spec.predictors[1].name \"p\" is also the name of spec.predictors[0]"),
            "{twice}"
        );
        assert!(err(&with_spec("  predictors: []\n")).contains("at least one predictor"));
        assert!(err(&with_spec("  replicas: 1\n")).contains("at least one predictor"));
    }

    #[test]
    fn replicas_must_be_int32() {
        let cases = [
            (
                "  replicas: \"2\"\n  predictors: [{name: p}]\n",
                "spec.replicas must be an integer",
            ),
            (
                "  replicas: -1\n  predictors: [{name: p}]\n",
                "cannot be negative",
            ),
            (
                "  replicas: 2147483648\n  predictors: [{name: p}]\n",
                "larger than the maximum",
            ),
            (
                "  replicas: 99999999999999999999\n  predictors: [{name: p}]\n",
                "larger than",
            ),
            (
                "  replicas: 1.5\n  predictors: [{name: p}]\n",
                "whole number",
            ),
            (
                "  predictors: [{name: p, replicas: x}]\n",
                "spec.predictors[0].replicas",
            ),
            (
                "  predictors: [{name: p, componentSpecs: [{replicas: -3}]}]\n",
                "spec.predictors[0].componentSpecs[0].replicas",
            ),
        ];
        for (spec, want) in cases {
            let e = err(&with_spec(spec));
            assert!(e.contains(want), "{spec:?} -> {e}");
        }
        assert!(
            parse(
                "m",
                with_spec("  replicas: 2147483647\n  predictors: [{name: p}]\n").as_bytes()
            )
            .is_ok()
        );
    }

    #[test]
    fn namespace_conflict() {
        let src = IRIS.replace("name: sklearn", "name: sklearn\n  namespace: team-a");
        let m = &parse("iris.yaml", src.as_bytes()).unwrap()[0];
        assert!(m.check_namespace("team-a").is_ok());
        let e = m.check_namespace("other").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("\"team-a\""));
        let plain = &parse("iris.yaml", IRIS.as_bytes()).unwrap()[0];
        assert!(plain.check_namespace("anything").is_ok());
    }

    #[test]
    fn hpa_refused() {
        let src = with_spec(
            "  predictors:\n  - name: p\n    graph: {name: c}\n    componentSpecs:\n    - hpaSpec: {maxReplicas: 3}\n      spec: {containers: [{name: c, image: i}]}\n",
        );
        let m = &parse("h.yaml", src.as_bytes()).unwrap()[0];
        let e = m.ensure_manually_scalable().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.contains("hpaSpec") && text.contains("h.yaml"),
            "{text}"
        );
        assert!(
            parse("i", IRIS.as_bytes()).unwrap()[0]
                .ensure_manually_scalable()
                .is_ok()
        );
    }

    #[test]
    fn files_directories_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let e = load(missing.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("nope.yaml") && e.contains("no such file"), "{e}");
        let e = load(dir.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        std::fs::write(dir.path().join("a.yaml"), IRIS).unwrap();
        std::fs::write(dir.path().join("b.txt"), "ignored").unwrap();
        let all = load_all(&[dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].source.ends_with("a.yaml"));
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn bundled_examples_load_with_expected_components() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/");
        let iris = &load(&format!("{dir}iris-v1alpha2.yaml")).unwrap()[0];
        assert_eq!(
            (iris.version.as_str(), iris.components[0].initial_replicas),
            ("v1alpha2", 1)
        );
        let multi = &load(&format!("{dir}multi-component.yaml")).unwrap()[0];
        let counts: Vec<_> = multi
            .components
            .iter()
            .map(|c| (c.deployment_name.clone().unwrap(), c.initial_replicas))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("multi-default-0-classifier".to_owned(), 1),
                ("multi-default-1-transformer".to_owned(), 2)
            ]
        );
        let spec = &load(&format!("{dir}spec-replicas.yaml")).unwrap()[0];
        assert_eq!(spec.components[0].initial_replicas, 1);
        assert_eq!(
            spec.components[0].deployment_name.as_deref(),
            Some("seldon-scale-example-0-classifier")
        );
    }
}
