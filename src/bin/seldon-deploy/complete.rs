//! `kubectl_complete-sdep`: completions for `kubectl sdep <TAB>` (kubectl ≥ 1.26 runs an
//! executable of that name on the PATH with the words after `sdep`, the last one being the
//! word to complete, and reads one candidate per line, `value<TAB>description`, then an
//! optional `:<directive>` line as cobra programs print). The same binary answers when it is
//! started under that name (a link, like `kubectl-sdep`).
//!
//! Hand-written over clap's own model of the command line ([`crate::cli::Cli`]), rather than
//! `clap_complete`'s dynamic engine: that engine sits behind the `unstable-dynamic` feature,
//! outside clap's semver promise, and speaks its own shell protocol, not kubectl's. Walking
//! the `clap::Command` tree takes the subcommands, flags, their help and possible values from
//! the same definition, so a new flag is completed without a change here; only the cluster
//! lookups (SeldonDeployment names, namespaces) and kubeconfig contexts are ours.

use std::time::Duration;

use clap::{Arg, Command, CommandFactory};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use seldon_deploy::cluster::connect::{self, ConnectOptions};
use seldon_deploy::model::manifest::sdep_resource;

/// How long a lookup in the cluster may take: a shell waits for the answer.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(3);

/// cobra's `ShellCompDirectiveNoFileComp`: offer these words, not file names.
const NO_FILES: u8 = 4;
/// cobra's `ShellCompDirectiveDefault`: the shell may complete file names.
const FILES: u8 = 0;

/// Where the word being completed stands.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    /// A subcommand or a flag of the top level.
    Subcommand,
    /// A flag of the current (sub)command.
    Flag,
    /// The value of a flag (by its id).
    Value(String),
    /// The `NAME` of a SeldonDeployment.
    Name,
    /// Nothing we know how to offer.
    Other,
}

/// What the words before the current one set up.
struct Parsed {
    command: Command,
    slot: Slot,
    kubeconfig: Option<String>,
    context: Option<String>,
    namespace: Option<String>,
}

/// Prints the completions of `words` (the last one is being typed) in kubectl's plugin
/// protocol.
pub fn main(words: &[String]) -> std::process::ExitCode {
    let (current, before) = match words.split_last() {
        Some((c, b)) => (c.as_str(), b),
        None => ("", &[][..]),
    };
    let parsed = parse(before, current);
    let (candidates, directive) = candidates(&parsed, current);
    let mut out = String::new();
    for (value, help) in candidates.iter().filter(|(v, _)| v.starts_with(current)) {
        out.push_str(value);
        if !help.is_empty() {
            out.push('\t');
            out.push_str(help);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    print!("{out}");
    std::process::ExitCode::SUCCESS
}

/// Finds the command and the slot `current` fills, after the words `before` it.
fn parse(before: &[String], current: &str) -> Parsed {
    let mut command = crate::cli::Cli::command();
    // Global flags reach the subcommands only once the command is built.
    command.build();
    let mut p = Parsed {
        command,
        slot: Slot::Other,
        kubeconfig: None,
        context: None,
        namespace: None,
    };
    let mut expecting: Option<String> = None;
    let mut positionals = 0;
    let mut only_positionals = false;
    for w in before {
        if let Some(id) = expecting.take() {
            p.set(&id, w);
            continue;
        }
        if only_positionals || !w.starts_with('-') || w == "-" {
            let sub = (positionals == 0 && !only_positionals)
                .then(|| p.command.find_subcommand(w).cloned())
                .flatten();
            match sub {
                Some(sub) => p.command = sub,
                None => positionals += 1,
            }
            continue;
        }
        if w == "--" {
            only_positionals = true;
            continue;
        }
        let (flag, value) = match w.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (w.as_str(), None),
        };
        let Some(arg) = find_flag(&p.command, flag) else {
            continue;
        };
        let id = arg.get_id().to_string();
        match value {
            Some(v) => p.set(&id, v),
            None if takes_value(arg) && !short_with_value(flag) => expecting = Some(id),
            None if short_with_value(flag) && takes_value(arg) => p.set(&id, &flag[2..]),
            None => {}
        }
    }
    p.slot = if let Some(id) = expecting {
        Slot::Value(id)
    } else if current.starts_with('-') && !only_positionals {
        Slot::Flag
    } else if p.command.has_subcommands() && positionals == 0 {
        Slot::Subcommand
    } else if positionals == 0 && p.command.get_arguments().any(|a| a.get_id() == "name") {
        Slot::Name
    } else {
        Slot::Other
    };
    p
}

impl Parsed {
    fn set(&mut self, id: &str, value: &str) {
        let v = Some(value.to_owned());
        match id {
            "kubeconfig" => self.kubeconfig = v,
            "context" => self.context = v,
            "namespace" => self.namespace = v,
            _ => {}
        }
    }
}

/// `-nfoo`: a short flag with its value attached.
fn short_with_value(flag: &str) -> bool {
    !flag.starts_with("--") && flag.len() > 2
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// The flag `--long` or `-s` (or `-sVALUE`) of `command`.
fn find_flag<'c>(command: &'c Command, flag: &str) -> Option<&'c Arg> {
    if let Some(long) = flag.strip_prefix("--") {
        return command.get_arguments().find(|a| {
            a.get_long() == Some(long)
                || a.get_all_aliases().into_iter().flatten().any(|x| x == long)
        });
    }
    let short = flag.strip_prefix('-')?.chars().next()?;
    command
        .get_arguments()
        .find(|a| a.get_short() == Some(short))
}

/// The candidates for the slot, each with its help, and the directive for the shell.
fn candidates(p: &Parsed, current: &str) -> (Vec<(String, String)>, u8) {
    let help = |s: Option<&clap::builder::StyledStr>| {
        s.map(|h| {
            let h = h.to_string();
            h.lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_owned()
        })
        .unwrap_or_default()
    };
    match &p.slot {
        Slot::Subcommand if !current.starts_with('-') => {
            let subs = p
                .command
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .map(|s| (s.get_name().to_owned(), help(s.get_about())))
                .collect();
            (subs, NO_FILES)
        }
        Slot::Subcommand | Slot::Flag => {
            let mut flags: Vec<(String, String)> = p
                .command
                .get_arguments()
                .filter(|a| !a.is_hide_set() && !a.is_positional())
                .filter_map(|a| a.get_long().map(|l| (format!("--{l}"), help(a.get_help()))))
                .collect();
            flags.sort();
            (flags, NO_FILES)
        }
        Slot::Value(id) => {
            let arg = p
                .command
                .get_arguments()
                .find(|a| a.get_id() == id.as_str());
            let values: Vec<(String, String)> = arg
                .map(|a| a.get_possible_values())
                .unwrap_or_default()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| (v.get_name().to_owned(), help(v.get_help())))
                .collect();
            if !values.is_empty() {
                return (values, NO_FILES);
            }
            match id.as_str() {
                "namespace" => (lookup(p, Lookup::Namespaces), NO_FILES),
                "context" => (contexts(p), NO_FILES),
                // Files (-f, --kubeconfig): the shell completes them.
                _ => (Vec::new(), FILES),
            }
        }
        Slot::Name => (lookup(p, Lookup::SeldonDeployments), NO_FILES),
        Slot::Other => (Vec::new(), NO_FILES),
    }
}

enum Lookup {
    SeldonDeployments,
    Namespaces,
}

/// Names from the cluster of the kubeconfig, context and namespace the words name (else the
/// current ones); none when it cannot be reached within [`CLUSTER_TIMEOUT`]: a completion
/// never prints an error into the command line.
fn lookup(p: &Parsed, what: Lookup) -> Vec<(String, String)> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let opts = ConnectOptions {
        kubeconfig: p.kubeconfig.clone().map(Into::into),
        context: p.context.clone(),
        namespace: p.namespace.clone(),
    };
    let names = rt.block_on(async {
        tokio::time::timeout(CLUSTER_TIMEOUT, async {
            let conn = connect::connect(&opts).await.ok()?;
            let lp = ListParams::default().limit(500);
            let list: kube::Result<Vec<Option<String>>> = match what {
                Lookup::SeldonDeployments => Api::<DynamicObject>::namespaced_with(
                    conn.client,
                    &conn.namespace,
                    &sdep_resource("v1"),
                )
                .list_metadata(&lp)
                .await
                .map(|l| l.items.into_iter().map(|o| o.metadata.name).collect()),
                Lookup::Namespaces => Api::<Namespace>::all(conn.client)
                    .list_metadata(&lp)
                    .await
                    .map(|l| l.items.into_iter().map(|o| o.metadata.name).collect()),
            };
            list.ok()
        })
        .await
        .ok()
        .flatten()
    });
    // Exec credential plugins may leave blocking tasks behind; do not wait for them.
    rt.shutdown_timeout(Duration::from_millis(100));
    names
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|n| (n, String::new()))
        .collect()
}

/// The contexts of the kubeconfig the words name, else `$KUBECONFIG` or `~/.kube/config`.
fn contexts(p: &Parsed) -> Vec<(String, String)> {
    let config = match &p.kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    };
    config
        .map(|c| {
            c.contexts
                .into_iter()
                .map(|c| (c.name, String::new()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the program was started as the completion executable.
pub fn is_completer(argv0: Option<&std::ffi::OsString>) -> bool {
    argv0
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|s| s.to_os_string())
        })
        .is_some_and(|s| s == "kubectl_complete-sdep")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> (Vec<(String, String)>, u8) {
        let (current, before) = ws.split_last().unwrap();
        let before: Vec<String> = before.iter().map(|s| (*s).to_owned()).collect();
        let p = parse(&before, current);
        let (c, d) = candidates(&p, current);
        (
            c.into_iter()
                .filter(|(v, _)| v.starts_with(current))
                .collect(),
            d,
        )
    }

    fn values(ws: &[&str]) -> Vec<String> {
        words(ws).0.into_iter().map(|(v, _)| v).collect()
    }

    #[test]
    fn subcommands_flags_and_values_come_from_the_clap_definition() {
        let subs = values(&[""]);
        assert!(
            subs.contains(&"run".to_owned()) && subs.contains(&"status".to_owned()),
            "{subs:?}"
        );
        assert!(!subs.contains(&"help".to_owned()), "{subs:?}");
        assert_eq!(values(&["st"]), ["status"]);
        assert_eq!(values(&["run", "--con"]), ["--concurrency", "--context"]);
        assert_eq!(values(&["-o", ""]), ["text", "json", "jsonl", "junit"]);
        assert_eq!(values(&["apply", "--dry-run="]), Vec::<String>::new());
        // Files: left to the shell.
        assert_eq!(words(&["run", "-f", ""]), (Vec::new(), FILES));
        // The name slot is filled: nothing more to offer.
        assert_eq!(words(&["status", "x", ""]), (Vec::new(), NO_FILES));
    }

    #[test]
    fn the_name_slot_reads_the_connection_flags_before_it() {
        let before: Vec<String> = ["-n", "models", "--context=c", "status"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let p = parse(&before, "");
        assert_eq!(p.slot, Slot::Name);
        assert_eq!(p.namespace.as_deref(), Some("models"));
        assert_eq!(p.context.as_deref(), Some("c"));
        let p = parse(&["scale".to_owned(), "-nfoo".to_owned()], "");
        assert_eq!((p.slot, p.namespace.as_deref()), (Slot::Name, Some("foo")));
    }
}
