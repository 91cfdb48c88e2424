//! The `-o json` document for an error that ends the process before any lifecycle starts
//! (bad flags, bad input, a namespace conflict, no cluster access): the report shape of a run,
//! with the outcome, exit code and message, so a CI step that parses stdout always gets one.

use std::ffi::OsString;
use std::sync::OnceLock;

use seldon_deploy::error::Error;
use seldon_deploy::report::Report;

/// The namespace in use, once the connection resolved it (`-n`, else the context's).
pub static NAMESPACE: OnceLock<String> = OnceLock::new();
/// The name of the only SeldonDeployment given, once its manifest is loaded.
pub static NAME: OnceLock<String> = OnceLock::new();

/// What the command line said, for the report of an early error.
#[derive(Debug, Default)]
pub struct Asked {
    /// The SeldonDeployment named on the command line (`scale NAME`, …).
    pub name: Option<String>,
    /// `-n`, if given.
    pub namespace: Option<String>,
    /// The manifest given, when there is exactly one `-f`.
    pub source: Option<String>,
}

impl Asked {
    /// The report of `e`: outcome `invalid` (exit 2), `access` (exit 3), … with the message,
    /// no phases, and whatever is known of the name, namespace and manifest.
    pub fn report(&self, e: &Error) -> Report {
        let name = self
            .name
            .clone()
            .or_else(|| NAME.get().cloned())
            .unwrap_or_default();
        let namespace = NAMESPACE
            .get()
            .cloned()
            .or_else(|| self.namespace.clone())
            .unwrap_or_default();
        let mut rep = Report::new(&name, &namespace);
        rep.source.clone_from(&self.source);
        rep.fail(e);
        rep
    }
}

/// The report as printed: pretty like the run's document, or on one line where the
/// command prints JSON lines (`events`).
pub fn json(rep: &Report, one_line: bool) -> String {
    let text = if one_line {
        serde_json::to_string(rep)
    } else {
        serde_json::to_string_pretty(rep)
    };
    text.unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Whether the raw arguments ask for `-o json`, for errors found while parsing them.
pub fn wants_json(args: &[OsString]) -> bool {
    let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    args.iter().enumerate().skip(1).any(|(i, a)| {
        let next_is_json = || args.get(i + 1).is_some_and(|n| n == "json");
        match a.as_ref() {
            "-o" | "--output" => next_is_json(),
            other => matches!(other, "-ojson" | "-o=json" | "--output=json"),
        }
    })
}

/// The first line of a clap error, without its `error: ` prefix.
pub fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn json_is_recognised_in_every_spelling() {
        for s in [
            "sd run -o json",
            "sd -ojson run",
            "sd run --output json -f",
            "sd --output=json",
            "sd -o=json",
        ] {
            assert!(wants_json(&args(s)), "{s}");
        }
        for s in ["sd run -o text", "sd run -f json", "sd json", "sd -o"] {
            assert!(!wants_json(&args(s)), "{s}");
        }
    }
}
