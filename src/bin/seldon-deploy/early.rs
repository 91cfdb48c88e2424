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
    /// Every `-f` as given (`-` as `<stdin>`), for one JUnit test case each.
    pub inputs: Vec<String>,
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

impl Asked {
    /// The reports of `e` for `-o junit`: one per input (each `-f`, else the NAME), so a CI
    /// test reporter shows every input it was given. The input `e` names (a file that does not
    /// load) carries the error; the others say they were not run, and why.
    pub fn reports_per_input(&self, e: &Error) -> Vec<Report> {
        if self.inputs.len() <= 1 {
            return vec![self.report(e)];
        }
        let refused = match e {
            Error::Manifest { source_name, .. } => Some(source_name.as_str()),
            _ => None,
        };
        self.inputs
            .iter()
            .map(|input| {
                let mut rep = self.report(e);
                rep.name = String::new();
                rep.source = Some(input.clone());
                if refused.is_some_and(|r| !names_input(r, input)) {
                    rep.error = Some(format!("not run: {e}"));
                }
                rep
            })
            .collect()
    }
}

/// Whether the file a manifest error names (`x.yaml`, `x.yaml (document 2)`, `dir/x.yaml`)
/// was given as `input` (that file, or the directory holding it).
fn names_input(refused: &str, input: &str) -> bool {
    refused == input
        || refused.starts_with(&format!("{input} ("))
        || refused.starts_with(&format!("{}/", input.trim_end_matches('/')))
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

/// Whether the raw arguments ask for `-o FORMAT` (`json`, `junit`), for errors found while
/// parsing them.
pub fn wants_output(args: &[OsString], format: &str) -> bool {
    let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    args.iter().enumerate().skip(1).any(|(i, a)| {
        let next_is = || args.get(i + 1).is_some_and(|n| n == format);
        match a.as_ref() {
            "-o" | "--output" => next_is(),
            other => [
                format!("-o{format}"),
                format!("-o={format}"),
                format!("--output={format}"),
            ]
            .iter()
            .any(|s| s == other),
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
    fn a_refused_file_is_matched_to_its_own_input_only() {
        assert!(names_input("a.yaml", "a.yaml"));
        assert!(names_input("a.yaml (document 2)", "a.yaml"));
        assert!(names_input("dir/a.yaml", "dir"));
        assert!(names_input("dir/a.yaml", "dir/"));
        assert!(!names_input("a.yaml.bak", "a.yaml"));
        assert!(!names_input("dirt/a.yaml", "dir"));
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
            assert!(wants_output(&args(s), "json"), "{s}");
        }
        for s in ["sd run -o text", "sd run -f json", "sd json", "sd -o"] {
            assert!(!wants_output(&args(s), "json"), "{s}");
        }
    }
}
