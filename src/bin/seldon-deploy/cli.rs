//! Flag definitions (clap derive) and the argv compatibility rewrite.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::LazyLock;

use clap::{Args, Parser, Subcommand, ValueEnum};
use seldon_deploy::error::EXIT_CODES;

/// Shown under `--help`: the library's exit-code table ([`EXIT_CODES`]), then the note on
/// the original program's flags.
pub static AFTER_HELP: LazyLock<String> = LazyLock::new(|| {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        let code = code.replace(' ', "");
        for (i, line) in wrap(meaning, HELP_WIDTH - CODE_COLUMN).iter().enumerate() {
            let label = if i == 0 { code.as_str() } else { "" };
            text.push_str(&format!("  {label:<w$}{line}\n", w = CODE_COLUMN - 2));
        }
    }
    text.push_str(
        "\nCompatibility: `seldon-deploy -namespace NS -filename FILE` (the original program's flags)\n\
         means `seldon-deploy run -n NS -f FILE`.",
    );
    text
});

/// Width of the exit-code table under `--help`, and where its meanings start.
const HELP_WIDTH: usize = 92;
const CODE_COLUMN: usize = 11;

/// Greedy word wrap to `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Create, wait for, scale and delete a Seldon Core v1 SeldonDeployment, streaming its events.
#[derive(Debug, Parser)]
#[command(name = "seldon-deploy", version, about, after_help = AFTER_HELP.as_str())]
pub struct Cli {
    /// Connection flags, accepted before or after the subcommand.
    #[command(flatten)]
    pub conn: ConnArgs,

    /// More detail on stderr (-v: debug, -vv: trace incl. HTTP requests; never credentials).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster (like kubectl).
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace (default: the context's namespace, else "default").
    #[arg(short, long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Progress and a summary table (live lines on a terminal, timestamped lines otherwise).
    Text,
    /// One JSON document on stdout at the end (progress lines go to stderr).
    Json,
    /// One JSON report per line on stdout the moment each deployment ends, none kept in
    /// memory: for long runs of many deployments (run, create, apply, scale, wait, smoke,
    /// delete; progress lines go to stderr).
    Jsonl,
    /// JUnit XML on stdout at the end, one test case per deployment and phase, for CI test
    /// reporters (run, create, apply, scale, wait, delete; progress lines go to stderr).
    Junit,
}

/// Examples under `run --help`.
const RUN_EXAMPLES: &str = "\
Examples:
  # The whole lifecycle, scaling to 2 (the default)
  seldon-deploy run -n models -f iris.yaml
  # Scale to 3, keep it afterwards, machine-readable result
  seldon-deploy run -n models -f iris.yaml --replicas 3 --keep -o json
  # Every manifest in a directory, 10 at a time, each wait bounded to 2 minutes
  seldon-deploy run -n models -f manifests/ --concurrency 10 --timeout 2m
  # From stdin
  kustomize build overlays/staging | seldon-deploy run -n staging -f -
  # Once ready, prove the model answers: one request to each predictor (exit 1 if not)
  seldon-deploy run -n models -f iris.yaml --smoke request.json --smoke-expect answer.json";

/// Examples for the standalone steps, shown under their `--help`.
const STEP_EXAMPLES: &str = "\
Examples (one step at a time, e.g. in a CI pipeline):
  seldon-deploy create -n models -f iris.yaml      # create, wait until ready
  seldon-deploy status sklearn -n models            # one-shot summary
  seldon-deploy scale sklearn --replicas 3 -n models
  seldon-deploy wait sklearn --replicas 3 -n models --timeout 2m
  seldon-deploy events sklearn -n models            # history, then follow (Ctrl-C ends)
  seldon-deploy delete sklearn -n models            # foreground delete, wait until gone";

/// Examples under `apply --help` and `diff --help`.
const APPLY_EXAMPLES: &str = "\
Examples (shipping a new model version into a live SeldonDeployment):
  # Update (or create) and wait until every new pod serves and no old pod is left
  seldon-deploy apply -n models -f iris.yaml
  # Roll back to the previous spec if the rollout fails, times out or is interrupted
  seldon-deploy apply -n models -f iris.yaml --atomic --timeout 10m
  # What would change? (the server validates and defaults it; nothing is stored)
  seldon-deploy diff -n models -f iris.yaml          # exit 0: equal, 1: different
  seldon-deploy apply -n models -f iris.yaml --dry-run=server
  # As a kubectl plugin, several files, a JSON report for CI
  kubectl sdep apply -n models -f a.yaml -f b.yaml -o json

Rollout complete means, on fresh data: every component ready at its replica count, every
Deployment running the manifest's images with no pod of an older ReplicaSet left, the
Deployments of removed components gone, an Available status, and proof that the operator has
acted on the update: a status it wrote after it, or new pod templates in the Deployments of the
changed predictors (its Ready condition stays True while old pods serve, so it is not trusted
alone). A change that alters no Deployment (traffic, replicas) needs no proof.";

/// Examples under `smoke --help`.
const SMOKE_EXAMPLES: &str = "\
Examples (does the model answer? one request to each predictor, through pods/portforward):
  # Seldon protocol: POST /api/v1.0/predictions
  seldon-deploy smoke iris -n models -f request.json
  # Its answer must match (numbers within 1e-6 relative, shapes and names exactly)
  seldon-deploy smoke iris -n models -f request.json --expect answer.json
  # Readiness only (the executor's /ready, for every protocol)
  seldon-deploy smoke iris -n models
  # As part of a rollout: roll back when the new version does not answer
  seldon-deploy apply -n models -f iris.yaml --atomic --smoke request.json

It sends one request to one pod per predictor: it proves the model answers, not that it
bears load.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Full lifecycle: create, wait ready, scale to N, wait ready at N, delete.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Create from a manifest and wait until ready at its own replica counts.
    #[command(after_help = STEP_EXAMPLES)]
    Create(CreateArgs),
    /// Create or update from a manifest and wait until the rollout is complete.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// Show what `apply` would change, as a server dry run (exit 0: equal, 1: different).
    #[command(after_help = APPLY_EXAMPLES)]
    Diff(DiffArgs),
    /// Scale every component of an existing SeldonDeployment to N and wait until ready.
    #[command(after_help = STEP_EXAMPLES)]
    Scale(ScaleArgs),
    /// Wait until an existing SeldonDeployment is ready.
    #[command(after_help = STEP_EXAMPLES)]
    Wait(WaitArgs),
    /// Send a request once to each predictor of a SeldonDeployment, through a port-forward
    /// to one ready pod of its executor, and check the answer (exit 1 when one fails).
    #[command(after_help = SMOKE_EXAMPLES)]
    Smoke(SmokeArgs),
    /// Delete (foreground, UID precondition) and wait until it and its Deployments are gone.
    #[command(after_help = STEP_EXAMPLES)]
    Delete(NameArgs),
    /// One-shot readiness summary (exit 0 when readable, 1 when Failed or missing).
    #[command(after_help = STEP_EXAMPLES)]
    Status(StatusArgs),
    /// Follow the Events of a SeldonDeployment and its Deployments, ReplicaSets and Pods.
    #[command(after_help = STEP_EXAMPLES)]
    Events(EventsArgs),
    /// Print a shell completion script.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// Waiting flags shared by the commands that wait.
#[derive(Debug, Clone, Args)]
pub struct WaitFlags {
    /// Bound on each wait phase (e.g. 90s, 5m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m", value_name = "DURATION")]
    pub timeout: Duration,

    /// How long the operator's Failed state, or pods that cannot come up (crash loop, image
    /// pull error, quota), must persist before giving up.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", value_name = "DURATION")]
    pub failed_grace: Duration,

    /// Bound on the clean-up after a failure, timeout or interrupt (deleting what this run
    /// created); what is still there after it is named on exit.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", value_name = "DURATION")]
    pub cleanup_timeout: Duration,
}

/// The smoke test's flags (`run`, `create`, `apply`, `wait`).
#[derive(Debug, Clone, Args)]
pub struct SmokeFlags {
    /// Once ready, send FILE (a JSON request body) once to each predictor, through a
    /// port-forward to one ready pod of its executor, and fail (exit 1) unless it answers
    /// 2xx with the protocol's response and no error payload. Without FILE, check the
    /// executor's readiness path instead. Needs get and create on pods/portforward.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub smoke: Option<Option<PathBuf>>,

    /// The answer's data must equal this file's (a response of the protocol: seldon `data`,
    /// v2 `outputs`, tensorflow `predictions`); numbers within --smoke-tolerance, names and
    /// shapes exactly.
    #[arg(long, value_name = "FILE", requires = "smoke")]
    pub smoke_expect: Option<PathBuf>,

    /// How far an answer's numbers may be from the expected ones, relative to the larger
    /// magnitude (0.01 is 1%).
    #[arg(long, value_name = "FRACTION", default_value_t = seldon_deploy::ops::smoke::DEFAULT_TOLERANCE)]
    pub smoke_tolerance: f64,
}

/// Where the manifests come from (`run`, `create`, `apply`, `diff`).
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Manifest file(s) or directories, repeatable; `-` reads stdin. YAML (several documents
    /// allowed) or JSON.
    #[arg(
        short,
        long = "filename",
        value_name = "FILE",
        required = true,
        num_args = 1
    )]
    pub filename: Vec<String>,
}

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestArgs,

    /// Replica count to scale every component to.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..))]
    pub replicas: i32,

    /// Keep the SeldonDeployment: skip the final delete and any clean-up.
    #[arg(long)]
    pub keep: bool,

    /// How many SeldonDeployments to drive at once when several are given.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Smoke test flags (after the first wait).
    #[command(flatten)]
    pub smoke: SmokeFlags,

    /// Waiting flags.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// `create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestArgs,

    /// Do not delete the object if waiting fails.
    #[arg(long)]
    pub keep: bool,

    /// Smoke test flags.
    #[command(flatten)]
    pub smoke: SmokeFlags,

    /// Waiting flags.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// How `apply` sends its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Send it for real.
    None,
    /// Send it with `dryRun=All`: the server validates and defaults it, stores nothing;
    /// the spec diff is printed.
    Server,
}

/// `apply` flags.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestArgs,

    /// If the rollout fails, times out or is interrupted, undo what the update changed (not
    /// a spec another writer changed since) and wait until it is ready again (an object
    /// `apply` created is deleted instead). After a signal, bounded by --cleanup-timeout.
    #[arg(long)]
    pub atomic: bool,

    /// `server`: only show what would change (see `diff`).
    #[arg(long, value_enum, default_value_t = DryRun::None, value_name = "MODE", num_args = 0..=1, default_missing_value = "server", require_equals = true)]
    pub dry_run: DryRun,

    /// How many SeldonDeployments to apply at once when several are given.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Smoke test flags (after the rollout; with --atomic a failed smoke test rolls back).
    #[command(flatten)]
    pub smoke: SmokeFlags,

    /// With --smoke: test every predictor, not only those the change touched.
    #[arg(long, requires = "smoke")]
    pub smoke_all: bool,

    /// Waiting flags.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// `diff` flags.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestArgs,

    /// Bound on the requests.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", value_name = "DURATION")]
    pub timeout: Duration,
}

/// `scale` flags.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// SeldonDeployment name.
    pub name: String,

    /// Replica count for every component.
    #[arg(long, required = true, value_parser = clap::value_parser!(i32).range(1..))]
    pub replicas: i32,

    /// Waiting flags.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// `wait` flags.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// SeldonDeployment name.
    pub name: String,

    /// Wait for this count on every component (default: the object's own counts).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub replicas: Option<i32>,

    /// Smoke test flags.
    #[command(flatten)]
    pub smoke: SmokeFlags,

    /// Waiting flags.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// `smoke` flags.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// SeldonDeployment name.
    pub name: String,

    /// The request body (JSON) to send to each predictor; without it, the executor's
    /// readiness path is checked.
    #[arg(short, long = "filename", value_name = "FILE")]
    pub filename: Option<PathBuf>,

    /// The answer's data must equal this file's (numbers within --tolerance, names and
    /// shapes exactly).
    #[arg(
        long,
        alias = "smoke-expect",
        value_name = "FILE",
        requires = "filename"
    )]
    pub expect: Option<PathBuf>,

    /// How far an answer's numbers may be from the expected ones, relative to the larger
    /// magnitude (0.01 is 1%).
    #[arg(long, alias = "smoke-tolerance", value_name = "FRACTION", default_value_t = seldon_deploy::ops::smoke::DEFAULT_TOLERANCE)]
    pub tolerance: f64,

    /// Bound on the test (finding the pods and every request).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m", value_name = "DURATION")]
    pub timeout: Duration,
}

/// A name plus timeout.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// SeldonDeployment name.
    pub name: String,

    /// Waiting flags.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// `status` flags.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// SeldonDeployment name.
    pub name: String,

    /// Judge readiness against this count (default: the object's own counts).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub replicas: Option<i32>,
}

/// `events` flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// SeldonDeployment name.
    pub name: String,

    /// Stop after this long and exit 0 (default: follow until interrupted).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

/// Whether the program was invoked as the kubectl plugin `kubectl-sdep`.
pub fn is_kubectl_plugin(argv0: Option<&OsString>) -> bool {
    argv0
        .and_then(|a| {
            std::path::Path::new(a)
                .file_stem()
                .map(|s| s.to_os_string())
        })
        .is_some_and(|s| s == "kubectl-sdep")
}

/// Rewrites the original program's spelling into this CLI's:
/// `-namespace X -filename F` (also `--namespace`/`--filename` and `=` forms) without a
/// subcommand becomes `run --namespace X --filename F`.
pub fn rewrite_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::with_capacity(args.len() + 1);
    for (i, a) in args.into_iter().enumerate() {
        let s = a.to_string_lossy();
        let fixed = if i == 0 {
            None
        } else if let Some(rest) = s.strip_prefix("-namespace") {
            (rest.is_empty() || rest.starts_with('=')).then(|| format!("--namespace{rest}"))
        } else if let Some(rest) = s.strip_prefix("-filename") {
            (rest.is_empty() || rest.starts_with('=')).then(|| format!("--filename{rest}"))
        } else {
            None
        };
        out.push(fixed.map_or(a, OsString::from));
    }
    let has_subcommand = out.iter().skip(1).any(|a| {
        let s = a.to_string_lossy();
        SUBCOMMANDS.contains(&s.as_ref())
    });
    let has_filename = out.iter().skip(1).any(|a| {
        let s = a.to_string_lossy();
        s == "-f" || s == "--filename" || s.starts_with("--filename=")
    });
    let first_is_flag = out
        .get(1)
        .is_some_and(|a| a.to_string_lossy().starts_with('-'));
    if !has_subcommand && has_filename && first_is_flag {
        out.insert(1, OsString::from("run"));
    }
    out
}

const SUBCOMMANDS: [&str; 13] = [
    "run",
    "smoke",
    "apply",
    "diff",
    "create",
    "scale",
    "wait",
    "delete",
    "status",
    "events",
    "completions",
    "man",
    "help",
];

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn parse(s: &str) -> Cli {
        let m = Cli::command()
            .try_get_matches_from(rewrite_args(args(s)))
            .unwrap();
        Cli::from_arg_matches(&m).unwrap()
    }

    #[test]
    fn original_spelling_means_run() {
        let cli = parse("seldon-deploy -namespace seldon -filename deployment.yml");
        assert_eq!(cli.conn.namespace.as_deref(), Some("seldon"));
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.files.filename, vec!["deployment.yml"]);
        assert_eq!(r.replicas, 2);
        assert_eq!(r.wait.timeout, Duration::from_secs(300));

        let cli = parse("seldon-deploy --namespace=a --filename=x.yaml");
        assert!(matches!(cli.command, Command::Run(_)));
        let cli = parse("seldon-deploy -filename=x.yaml -namespace=b");
        assert_eq!(cli.conn.namespace.as_deref(), Some("b"));
    }

    #[test]
    fn subcommands_untouched_and_flags_global() {
        assert_eq!(
            rewrite_args(args("sd scale x --replicas 3")),
            args("sd scale x --replicas 3")
        );
        let cli = parse("sd run -f a.yaml -f b.yaml -n ns --timeout 90s --keep -o json");
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.files.filename.len(), 2);
        assert!(r.keep);
        assert_eq!(cli.output, Output::Json);
        // Names that merely start with the old flags are not rewritten.
        assert_eq!(
            rewrite_args(args("sd status -namespaced")),
            args("sd status -namespaced")
        );
    }

    #[test]
    fn smoke_takes_an_optional_file_on_each_waiting_command() {
        let Command::Run(r) = parse("sd run -f a.yaml --smoke").command else {
            panic!()
        };
        assert_eq!(r.smoke.smoke, Some(None), "readiness only");
        assert_eq!(r.smoke.smoke_tolerance, 1e-6);
        let Command::Apply(a) =
            parse("sd apply --smoke body.json -f a.yaml --smoke-all --smoke-tolerance 0.01")
                .command
        else {
            panic!()
        };
        assert_eq!(a.smoke.smoke, Some(Some(PathBuf::from("body.json"))));
        assert!(a.smoke_all);
        assert_eq!(a.smoke.smoke_tolerance, 0.01);
        let Command::Wait(w) = parse("sd wait iris --smoke b.json --smoke-expect e.json").command
        else {
            panic!()
        };
        assert_eq!(w.name, "iris");
        assert_eq!(w.smoke.smoke_expect, Some(PathBuf::from("e.json")));
        let Command::Smoke(s) = parse("sd smoke iris -f b.json --expect e.json").command else {
            panic!()
        };
        assert_eq!(
            (s.name.as_str(), s.filename.is_some(), s.expect.is_some()),
            ("iris", true, true)
        );
        for bad in [
            "sd run -f a.yaml --smoke-expect e.json",
            "sd apply -f a.yaml --smoke-all",
            "sd smoke iris --expect e.json",
        ] {
            assert!(
                Cli::command().try_get_matches_from(args(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn replicas_must_be_positive_for_scaling() {
        let r = Cli::command().try_get_matches_from(args("sd run -f x --replicas 0"));
        assert!(r.is_err());
    }

    #[test]
    fn plugin_name_detection() {
        assert!(is_kubectl_plugin(Some(&OsString::from(
            "/usr/bin/kubectl-sdep"
        ))));
        assert!(!is_kubectl_plugin(Some(&OsString::from("seldon-deploy"))));
        Cli::command().debug_assert();
    }
}
