//! `seldon-deploy` (also installable as the kubectl plugin `kubectl-sdep`).
#![forbid(unsafe_code)]

mod app;
mod cli;
mod complete;
mod early;
mod live;
mod output;
mod render;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use seldon_deploy::error::Outcome;

fn main() -> ExitCode {
    if complete::is_completer(std::env::args_os().next().as_ref()) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let words: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return complete::main(&words);
    }
    let args = cli::rewrite_args(std::env::args_os().collect());
    let jsonl = early::wants_output(&args, "jsonl");
    let json = jsonl || early::wants_output(&args, "json");
    let junit = early::wants_output(&args, "junit");
    let mut command = cli::Cli::command();
    if cli::is_kubectl_plugin(args.first()) {
        command = command.bin_name("kubectl sdep").name("kubectl-sdep");
    }
    let parsed = command
        .clone()
        .try_get_matches_from(args)
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            if (json || junit) && e.use_stderr() {
                let usage = seldon_deploy::Error::Usage(early::clap_message(&e));
                let rep = early::Asked::default().report(&usage);
                if json {
                    println!("{}", early::json(&rep, jsonl));
                } else {
                    print!("{}", render::junit("seldon-deploy", &[rep]));
                }
            }
            let _ = e.print();
            let outcome = if e.use_stderr() {
                Outcome::Invalid
            } else {
                Outcome::Success
            };
            return ExitCode::from(outcome.code());
        }
    };
    init_tracing(cli.verbose);
    output::set_verbose(cli.verbose > 0);
    // rustls needs one process-wide provider; choose ring explicitly so no other dependency's
    // choice can make it ambiguous.
    let _ = rustls::crypto::ring::default_provider().install_default();

    match cli.command {
        cli::Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "seldon-deploy", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        cli::Command::Man => {
            return match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(Outcome::Failed.code())
                }
            };
        }
        _ => {}
    }

    // One thread: the work is waiting on the API server, and even a thousand concurrent
    // lifecycles keep a core a few percent busy. A second worker only added wake-ups between
    // threads (parking, futexes, context switches), most of it per watch item.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Outcome::Failed.code());
        }
    };
    let code = runtime.block_on(app::dispatch(cli));
    // Exec credential plugins may leave blocking tasks behind; do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

/// Logs go to stderr. Only this crate's and kube's targets are enabled, and never below
/// `debug` for kube, so request headers (tokens) are not printed at any verbosity.
fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => "off,seldon_deploy=warn",
        1 => "warn,seldon_deploy=debug",
        _ => "warn,seldon_deploy=trace,kube_runtime=debug,kube_client=debug,tower_http=debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(output::Stderr::make)
        .with_target(verbose > 1)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
}
