//! Property tests of the manifest loader (`seldon_deploy::model::manifest::parse`).
//!
//! `cargo fuzz` needs a nightly toolchain, which this project does not use, so the loader is
//! fuzzed with proptest on stable instead:
//! - arbitrary bytes, and token soup built from YAML punctuation and SeldonDeployment words;
//! - the valid manifests in `examples/` and `tests/data/fuzz-corpus/ok-*`, mutated (lines
//!   deleted, duplicated or swapped, bytes flipped, tabs, anchors, aliases and odd values
//!   inserted, truncated);
//! - generated valid SeldonDeployments, written as block YAML, as JSON and as YAML flow style,
//!   which must load with every field intact in the JSON body that is sent to the server.
//!
//! Whatever the input, the loader must not panic and must return either manifests or an error
//! with exit code 2 whose message starts with the file name. Every run also replays the
//! committed corpus in `tests/data/fuzz-corpus/` (see `tests/data/README.md`) and the failures
//! proptest saved in `proptest-regressions/prop_manifest.txt`.
//!
//! The number of cases keeps a debug run to a few seconds; for a longer soak run
//! `PROPTEST_CASES=20000 cargo test --release --test prop_manifest`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use seldon_deploy::model::manifest::{self, Manifest};
use serde_json::{Value, json};

/// The name the inputs are loaded under; every error message must start with it.
const SOURCE: &str = "fuzz/input.yaml";
/// An error message longer than this would mean the input is being echoed back wholesale.
const MAX_MESSAGE: usize = 64 * 1024;

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/prop_manifest.txt",
        ))),
        ..ProptestConfig::default()
    }
}

fn data_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(sub)
}

/// The files of a directory, sorted (empty when the directory does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// Parses `bytes` and checks the loader's contract: manifests, or an exit-2 error naming the
/// source, with a bounded message. Returns the manifests when the input was accepted.
fn check(source: &str, bytes: &[u8]) -> Result<Option<Vec<Manifest>>, TestCaseError> {
    match manifest::parse(source, bytes) {
        Ok(ms) => {
            prop_assert!(!ms.is_empty(), "Ok with no manifest");
            for (i, m) in ms.iter().enumerate() {
                prop_assert_eq!(&m.source, source);
                prop_assert_eq!(m.document, i + 1);
                prop_assert!(m.object.is_object());
                prop_assert_eq!(m.object["metadata"]["name"].as_str(), Some(m.name.as_str()));
                prop_assert!(manifest::VERSIONS.contains(&m.version.as_str()));
                prop_assert!(manifest::check_dns1123_subdomain(&m.name).is_ok());
            }
            Ok(Some(ms))
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert_eq!(e.exit_code(), 2, "wrong exit code for: {}", text);
            prop_assert!(
                text.starts_with(source),
                "message does not start with the file name: {}",
                text
            );
            prop_assert!(text.len() > source.len() + 2, "no reason given: {}", text);
            prop_assert!(text.len() < MAX_MESSAGE, "message of {} bytes", text.len());
            Ok(None)
        }
    }
}

/// Bytes shown as lossy text in failure reports.
#[derive(Clone)]
struct Input(Vec<u8>);

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds and mutations

/// Valid manifests to mutate: the bundled examples and the corpus's `ok-*` files.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut paths: Vec<PathBuf> = files_in(&data_dir("examples"))
            .into_iter()
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        paths.extend(
            files_in(&data_dir("tests/data/fuzz-corpus"))
                .into_iter()
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ok-"))
                }),
        );
        let seeds: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).expect("read seed"))
            .collect();
        assert!(seeds.len() >= 3, "seed corpus missing: {paths:?}");
        seeds
    })
}

/// Text dropped into mutated manifests: YAML syntax, odd scalars, and characters the loader
/// treats specially.
const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "-",
    ":",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!custom ",
    "---\n",
    "...\n",
    "? ",
    "|\n",
    ">-\n",
    "# c",
    "\"",
    "'",
    "\t",
    "\n",
    "  ",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "<<: *a\n",
    "~",
    "null",
    "true",
    "yes",
    "-1",
    "2147483648",
    "99999999999999999999",
    "1e309",
    "1.5",
    ".nan",
    ".inf",
    "0x10",
    "0o17",
    "\"2\"",
    "[[[[[[[[",
    "{{{{",
    "\u{feff}",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "é",
    "\\u0000",
    "\"\\ud800\"",
    "replicas",
    "replica",
    "predictors",
    "componentSpecs",
    "hpaSpec: {}",
    "namespace: other",
    "apiVersion",
    "kind",
    "SeldonDeployment",
    "metadata",
    "name",
];

/// Replacement values for the text after the first `: ` of a line.
const VALUES: &[&str] = &[
    "-1",
    "\"2\"",
    "2147483648",
    "99999999999",
    "18446744073709551616",
    "null",
    "~",
    "[]",
    "{}",
    "true",
    "*a",
    "&a x",
    "&a [1, *a]",
    ".inf",
    "1.5",
    "0x10",
    "''",
    "|\n  text",
    "!!binary aGk=",
    "[[[[",
    "{a: 1, a: 2}",
    "v2",
    "mlops.seldon.io/v1alpha1",
    "Model",
    "Deployment",
    "A_B",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    FlipByte(usize, u8),
    InsertToken(usize, usize),
    IndentWithTab(usize),
    AnchorAndAlias(usize, usize),
    ReplaceValue(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ix = any::<usize>;
    prop_oneof![
        ix().prop_map(Mutation::DeleteLine),
        ix().prop_map(Mutation::DuplicateLine),
        (ix(), ix()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (ix(), 1..=255u8).prop_map(|(a, m)| Mutation::FlipByte(a, m)),
        (ix(), ix()).prop_map(|(a, t)| Mutation::InsertToken(a, t)),
        ix().prop_map(Mutation::IndentWithTab),
        (ix(), ix()).prop_map(|(a, b)| Mutation::AnchorAndAlias(a, b)),
        (ix(), ix()).prop_map(|(a, v)| Mutation::ReplaceValue(a, v)),
        ix().prop_map(Mutation::Truncate),
    ]
}

fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Where the value of a `key: value` line starts, if it has one.
fn value_start(line: &[u8]) -> Option<usize> {
    line.windows(2).position(|w| w == b": ").map(|p| p + 2)
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let mut lines = split_lines(&bytes);
    let n = lines.len();
    match *m {
        Mutation::DeleteLine(i) if n > 0 => {
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) if n > 0 => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Mutation::SwapLines(a, b) if n > 0 => lines.swap(a % n, b % n),
        Mutation::IndentWithTab(i) if n > 0 => {
            let l = &mut lines[i % n];
            let lead = l.iter().take_while(|b| **b == b' ').count();
            l.splice(0..lead.min(2), [b'\t']);
        }
        Mutation::AnchorAndAlias(a, b) if n > 0 => {
            if let Some(p) = value_start(&lines[a % n]) {
                lines[a % n].splice(p..p, *b"&a ");
            }
            let l = &mut lines[b % n];
            if let Some(p) = value_start(l) {
                let end = l.len() - usize::from(l.ends_with(b"\n"));
                l.splice(p..end, *b"*a");
            }
        }
        Mutation::ReplaceValue(a, v) if n > 0 => {
            let l = &mut lines[a % n];
            if let Some(p) = value_start(l) {
                let end = l.len() - usize::from(l.ends_with(b"\n"));
                l.splice(p..end, VALUES[v % VALUES.len()].bytes());
            }
        }
        Mutation::FlipByte(i, mask) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] ^= mask;
            return bytes;
        }
        Mutation::InsertToken(i, t) => {
            let i = i % (bytes.len() + 1);
            bytes.splice(i..i, TOKENS[t % TOKENS.len()].bytes());
            return bytes;
        }
        Mutation::Truncate(i) => {
            bytes.truncate(i % (bytes.len() + 1));
            return bytes;
        }
        _ => return bytes,
    }
    lines.concat()
}

fn mutated_seed() -> impl Strategy<Value = Input> {
    (
        prop::sample::select(seeds()),
        prop::collection::vec(mutation(), 1..6),
    )
        .prop_map(|(seed, ms)| Input(ms.iter().fold(seed, apply)))
}

fn token_soup() -> impl Strategy<Value = Input> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..64)
        .prop_map(|ts| Input(ts.concat().into_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Generated valid SeldonDeployments

fn dns_label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
}

fn replicas() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        2 => Just(None),
        2 => (0..5i64).prop_map(Some),
        1 => Just(Some(i64::from(i32::MAX))),
    ]
}

/// Keys for fields this crate does not model: plain words, dotted annotation keys, and keys
/// that mean something in YAML when unquoted.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z][a-zA-Z0-9_]{0,10}",
        1 => "[a-z]{1,6}\\.io/[a-z-]{1,8}",
        1 => prop::sample::select(vec!["<<", "? x", "- y", "#z", "null", "~", "true", "1", "", " "])
            .prop_map(str::to_owned),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        prop::sample::select(vec![
            "yes",
            "no",
            "null",
            "~",
            "1e3",
            "0x10",
            "0o7",
            "+1",
            ".5",
            "-",
            ": ",
            "#",
            "- a",
            "*a",
            "&a",
            "!tag",
            "'",
            "\"",
            "\\",
            "@",
            "`",
            "%",
            "a: b",
            "[x]",
            "{}",
            "\n",
            " x ",
            "2147483648",
        ])
        .prop_map(Value::from),
    ]
}

fn extra_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn extras() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(key(), extra_value(), 0..3)
}

/// Adds `extra` to `obj` without overwriting the fields the manifest needs.
fn with_extras(mut obj: Value, extra: BTreeMap<String, Value>) -> Value {
    let map = obj.as_object_mut().expect("object");
    for (k, v) in extra {
        map.entry(k).or_insert(v);
    }
    obj
}

#[derive(Debug, Clone)]
struct Generated {
    object: Value,
}

fn component_spec() -> impl Strategy<Value = Value> {
    (dns_label(), replicas(), extras()).prop_map(|(container, r, extra)| {
        let mut c =
            json!({"spec": {"containers": [{"name": container, "image": "seldonio/mock:1.19.0"}]}});
        if let Some(r) = r {
            c["replicas"] = json!(r);
        }
        with_extras(c, extra)
    })
}

fn predictor() -> impl Strategy<Value = Value> {
    (
        dns_label(),
        replicas(),
        prop::option::of(prop::collection::vec(component_spec(), 1..3)),
        dns_label(),
        extras(),
        extras(),
    )
        .prop_map(|(name, r, specs, graph_name, graph_extra, extra)| {
            let graph = with_extras(json!({"name": graph_name, "children": []}), graph_extra);
            let mut p = json!({"name": name, "graph": graph});
            if let Some(r) = r {
                p["replicas"] = json!(r);
            }
            if let Some(specs) = specs {
                p["componentSpecs"] = Value::Array(specs);
            }
            with_extras(p, extra)
        })
}

fn seldon_deployment() -> impl Strategy<Value = Generated> {
    (
        prop::sample::select(manifest::VERSIONS.to_vec()),
        (dns_label(), prop::collection::vec(dns_label(), 0..2)),
        prop::option::of(dns_label()),
        prop::collection::btree_map("[a-z.]{1,8}/[a-z]{1,8}", "\\PC{0,12}", 0..3),
        replicas(),
        prop::collection::vec(predictor(), 1..3),
        extras(),
        extras(),
    )
        .prop_map(
            |(
                version,
                (first, rest),
                namespace,
                annotations,
                r,
                predictors,
                spec_extra,
                top_extra,
            )| {
                let name = std::iter::once(first)
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .join(".");
                let mut metadata = json!({"name": name});
                if let Some(ns) = namespace {
                    metadata["namespace"] = json!(ns);
                }
                if !annotations.is_empty() {
                    metadata["annotations"] = json!(annotations);
                }
                // Predictor names are unique in a valid SeldonDeployment.
                let predictors: Vec<Value> = predictors
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut p)| {
                        p["name"] = json!(format!("p{i}-{}", p["name"].as_str().unwrap()));
                        p
                    })
                    .collect();
                let mut spec = json!({"predictors": predictors});
                if let Some(r) = r {
                    spec["replicas"] = json!(r);
                }
                let object = with_extras(
                    json!({
                        "apiVersion": format!("{}/{version}", seldon_deploy::names::GROUP),
                        "kind": manifest::KIND,
                        "metadata": metadata,
                        "spec": with_extras(spec, spec_extra),
                    }),
                    top_extra,
                );
                Generated { object }
            },
        )
}

/// Block-style YAML with every key and string double-quoted (JSON string syntax is valid in a
/// YAML double-quoted scalar), so no value changes type on the way.
fn to_block_yaml(v: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::Array(a) if a.is_empty() => "[]".into(),
            Value::Object(o) if o.is_empty() => "{}".into(),
            other => serde_json::to_string(other).expect("scalar"),
        }
    }
    fn nested(v: &Value) -> bool {
        matches!(v, Value::Array(a) if !a.is_empty())
            || matches!(v, Value::Object(o) if !o.is_empty())
    }
    fn emit(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(o) => {
                for (k, val) in o {
                    out.push_str(&pad);
                    out.push_str(&serde_json::to_string(k).expect("key"));
                    if nested(val) {
                        out.push_str(":\n");
                        emit(val, indent + 2, out);
                    } else {
                        out.push_str(": ");
                        out.push_str(&scalar(val));
                        out.push('\n');
                    }
                }
            }
            Value::Array(a) => {
                for item in a {
                    out.push_str(&pad);
                    if nested(item) {
                        out.push_str("-\n");
                        emit(item, indent + 2, out);
                    } else {
                        out.push_str("- ");
                        out.push_str(&scalar(item));
                        out.push('\n');
                    }
                }
            }
            other => {
                out.push_str(&pad);
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
    let mut out = String::from("# generated\n");
    emit(v, 0, &mut out);
    out
}

/// The replica count each component should start at: componentSpec, predictor, spec, then 1.
fn expected_replicas(sdep: &Value) -> Vec<i32> {
    let at = |v: &Value| v.get("replicas").and_then(Value::as_i64);
    let spec = &sdep["spec"];
    let mut out = Vec::new();
    for p in spec["predictors"].as_array().expect("predictors") {
        let fallback = at(p).or_else(|| at(spec)).unwrap_or(1);
        match p.get("componentSpecs").and_then(Value::as_array) {
            Some(cs) => out.extend(cs.iter().map(|c| at(c).unwrap_or(fallback))),
            None => out.push(fallback),
        }
    }
    out.into_iter()
        .map(|r| i32::try_from(r).expect("generated in range"))
        .collect()
}

/// Loads one encoding of a generated manifest and checks that nothing was lost.
fn check_round_trip(g: &Generated, encoding: &str, text: &str) -> Result<(), TestCaseError> {
    let loaded = check(SOURCE, text.as_bytes())?;
    let Some(ms) = loaded else {
        let err = manifest::parse(SOURCE, text.as_bytes()).unwrap_err();
        return Err(TestCaseError::fail(format!(
            "{encoding}: a valid SeldonDeployment was rejected: {err}\n{text}"
        )));
    };
    prop_assert_eq!(ms.len(), 1);
    let m = &ms[0];
    // The body `Deployer::create` sends is `serde_json::to_vec(&manifest.object)`.
    let body = serde_json::to_vec(&m.object).expect("encode body");
    let sent: Value = serde_json::from_slice(&body).expect("decode body");
    prop_assert_eq!(
        &sent,
        &g.object,
        "{}: fields changed on the way\n{}",
        encoding,
        text
    );
    prop_assert_eq!(
        m.name.as_str(),
        g.object["metadata"]["name"].as_str().unwrap()
    );
    prop_assert_eq!(
        m.namespace.as_deref(),
        g.object["metadata"]["namespace"].as_str()
    );
    let version = g.object["apiVersion"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    prop_assert_eq!(m.version.as_str(), version);
    let replicas: Vec<i32> = m.components.iter().map(|c| c.initial_replicas).collect();
    prop_assert_eq!(replicas, expected_replicas(&g.object), "{}", encoding);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_are_rejected_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(SOURCE, &bytes)?;
    }

    #[test]
    fn yaml_token_soup_is_rejected_cleanly(input in token_soup()) {
        check(SOURCE, &input.0)?;
    }

    #[test]
    fn mutated_manifests_load_or_fail_with_exit_2(input in mutated_seed()) {
        check(SOURCE, &input.0)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn generated_manifests_round_trip_every_field(g in seldon_deployment()) {
        check_round_trip(&g, "block YAML", &to_block_yaml(&g.object))?;
        check_round_trip(&g, "JSON", &serde_json::to_string_pretty(&g.object).unwrap())?;
        // YAML flow style: compact JSON behind a comment, so the YAML parser reads it.
        let flow = format!("# flow\n{}", serde_json::to_string(&g.object).unwrap());
        check_round_trip(&g, "YAML flow", &flow)?;
        let doc = format!("---\n{}...\n", to_block_yaml(&g.object));
        check_round_trip(&g, "YAML document markers", &doc)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The committed corpus, replayed on every run

/// Replays `tests/data/fuzz-corpus/`: `ok-*` files must load, `bad-*` files must be rejected
/// (exit 2, named), anything else (minimised finds) must just keep the contract.
#[test]
fn fuzz_corpus_replays() {
    let files = files_in(&data_dir("tests/data/fuzz-corpus"));
    assert!(files.len() >= 10, "corpus missing: {files:?}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = path.to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let loaded = check(&source, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.starts_with("ok-") {
            assert!(
                loaded.is_some(),
                "{name} should load: {:?}",
                manifest::parse(&source, &bytes)
            );
        } else if name.starts_with("bad-") {
            assert!(loaded.is_none(), "{name} should be rejected");
        }
    }
}

/// The bad-input corpus of `tests/bad_input.rs`, through the library: the same contract.
#[test]
fn bad_input_corpus_keeps_the_contract() {
    let files = files_in(&data_dir("tests/data/bad"));
    assert!(files.len() >= 20, "corpus missing: {files:?}");
    for path in files {
        let source = path.to_string_lossy().into_owned();
        check(&source, &std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{source}: {e}"));
    }
}

/// Every bundled example loads (they are also the mutation seeds).
#[test]
fn examples_load() {
    for path in files_in(&data_dir("examples")) {
        if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            let source = path.to_string_lossy().into_owned();
            if let Err(e) = manifest::load(&source) {
                panic!("{e}");
            }
        }
    }
}

/// The mutator itself: each mutation changes the input or is a no-op by design, and a flipped
/// byte really lands (a mutator that returns its input unchanged would make the test vacuous).
#[test]
fn mutations_change_the_input() {
    let seed = std::fs::read(data_dir("tests/data/fuzz-corpus/ok-iris-v1alpha2.yaml")).unwrap();
    assert!(manifest::parse(SOURCE, &seed).is_ok());
    assert_ne!(apply(seed.clone(), &Mutation::FlipByte(3, 0x20)), seed);
    assert_ne!(apply(seed.clone(), &Mutation::DeleteLine(1)), seed);
    assert_ne!(apply(seed.clone(), &Mutation::IndentWithTab(3)), seed);
    assert_ne!(apply(seed.clone(), &Mutation::ReplaceValue(0, 0)), seed);
    let text = String::from_utf8(apply(seed.clone(), &Mutation::AnchorAndAlias(0, 1))).unwrap();
    assert!(text.contains("&a ") && text.contains("*a"), "{text}");
    // And a mutated seed that breaks the manifest is caught with exit 2.
    assert_eq!(VALUES[21], "v2");
    let broken = apply(seed, &Mutation::ReplaceValue(0, 21)); // apiVersion: v2
    assert!(manifest::parse(SOURCE, &broken).is_err());
}
