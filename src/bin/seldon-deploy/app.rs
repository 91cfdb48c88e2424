//! Subcommand dispatch: validate input, connect, run, print.

use std::io::IsTerminal;

use futures::StreamExt;
use seldon_deploy::cluster::connect::{self, ConnectOptions, Connection};
use seldon_deploy::error::{Error, Outcome, Signal};
use seldon_deploy::events::{self, EventFilter};
use seldon_deploy::model::components::Target;
use seldon_deploy::model::manifest::{self, Manifest};
use seldon_deploy::model::merge;
use seldon_deploy::ops::smoke::SmokeOptions;
use seldon_deploy::ops::{Deployer, WaitOptions};
use seldon_deploy::report::{Report, Summary};
use seldon_deploy::run::{self, Context, Interrupt, LeftBehind, RunOn, RunOptions, Step};
use tokio::time::{Duration, Instant};

use crate::cli::{Cli, Command, ConnArgs, DryRun, Output, SmokeFlags, WaitFlags};
use crate::early;
use crate::output::{self, Renderer};

/// The API server this process talks to, once connected: named after any cluster-access
/// failure, since transport errors themselves do not carry the URL.
static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs the subcommand and returns the exit code.
pub async fn dispatch(cli: Cli) -> u8 {
    let out = cli.output;
    let (asked, one_line) = asked(&cli);
    let code = match dispatch_inner(cli).await {
        Ok(code) => code,
        Err(e) => {
            // An error before any lifecycle started: `-o json` still prints a document.
            match out {
                Output::Json => println!("{}", early::json(&asked.report(&e), one_line)),
                Output::Jsonl => println!("{}", early::json(&asked.report(&e), true)),
                Output::Junit => print!(
                    "{}",
                    crate::render::junit("seldon-deploy", &asked.reports_per_input(&e))
                ),
                Output::Text => {}
            }
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    if code == Outcome::Access.code()
        && let Some(server) = SERVER.get()
    {
        eprintln!(
            "cluster: {server} (from the kubeconfig; --kubeconfig and --context choose another)"
        );
    }
    code
}

/// What the command line names, for the report of an early error, and whether the command
/// prints JSON lines rather than one document.
fn asked(cli: &Cli) -> (early::Asked, bool) {
    let (name, files) = asked_name_and_files(&cli.command);
    let inputs = files
        .map(|f| {
            f.iter()
                .map(|one| {
                    if one == "-" {
                        manifest::STDIN_NAME.to_owned()
                    } else {
                        one.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let asked = early::Asked {
        inputs,
        name: name.map(str::to_owned),
        namespace: cli.conn.namespace.clone(),
        source: files.and_then(|f| match f.as_slice() {
            [one] if one == "-" => Some(manifest::STDIN_NAME.to_owned()),
            [one] => Some(one.clone()),
            _ => None,
        }),
    };
    (asked, matches!(cli.command, Command::Events(_)))
}

/// The NAME argument or the `-f` files of a command.
fn asked_name_and_files(command: &Command) -> (Option<&str>, Option<&Vec<String>>) {
    match command {
        Command::Run(a) => (None, Some(&a.files.filename)),
        Command::Create(a) => (None, Some(&a.files.filename)),
        Command::Apply(a) => (None, Some(&a.files.filename)),
        Command::Diff(a) => (None, Some(&a.files.filename)),
        Command::Scale(a) => (Some(&a.name), None),
        Command::Wait(a) => (Some(&a.name), None),
        Command::Smoke(a) => (Some(&a.name), None),
        Command::Delete(a) => (Some(&a.name), None),
        Command::Status(a) => (Some(&a.name), None),
        Command::Events(a) => (Some(&a.name), None),
        _ => (None, None),
    }
}

async fn dispatch_inner(cli: Cli) -> Result<u8, Error> {
    let out = cli.output;
    if matches!(out, Output::Junit | Output::Jsonl)
        && matches!(
            cli.command,
            Command::Status(_) | Command::Events(_) | Command::Diff(_)
        )
    {
        let format = if out == Output::Junit {
            "junit"
        } else {
            "jsonl"
        };
        return Err(Error::Usage(format!(
            "-o {format} is for run, create, apply, scale, wait, smoke and delete; use -o json here"
        )));
    }
    // Names and namespaces go into request paths: check them before anything else.
    if let Some(ns) = cli.conn.namespace.as_deref().filter(|n| !n.is_empty()) {
        manifest::check_namespace_name("-n/--namespace", ns)?;
    }
    if let (Some(name), _) = asked_name_and_files(&cli.command) {
        manifest::check_name("NAME", name)?;
    }
    match cli.command {
        Command::Run(a) => {
            // Everything that can be checked locally is checked before any client exists.
            let manifests = load(&a.files.filename)?;
            for m in &manifests {
                m.ensure_manually_scalable()?;
            }
            check_unique(&manifests)?;
            let opts = RunOptions {
                smoke: smoke_options(&a.smoke, false)?,
                ..run_options(&a.wait, a.replicas, a.keep)
            };
            let conn = connect_checked(&cli.conn, &manifests).await?;
            let ctx = context(&conn, &a.wait, only_name(&manifests));
            let steps = smoke_steps(run::lifecycle_steps(a.replicas, a.keep), &opts);
            drive(
                ctx,
                out,
                &manifests,
                &steps,
                &opts,
                usize::from(a.concurrency),
            )
            .await
        }
        Command::Create(a) => {
            let manifests = load(&a.files.filename)?;
            check_unique(&manifests)?;
            let opts = RunOptions {
                smoke: smoke_options(&a.smoke, false)?,
                ..run_options(&a.wait, 1, a.keep)
            };
            let conn = connect_checked(&cli.conn, &manifests).await?;
            let ctx = context(&conn, &a.wait, only_name(&manifests));
            let steps = smoke_steps(vec![Step::Create, Step::Wait(Target::Initial)], &opts);
            drive(ctx, out, &manifests, &steps, &opts, 4).await
        }
        Command::Apply(a) => {
            let manifests = load(&a.files.filename)?;
            check_unique(&manifests)?;
            let smoke = smoke_options(&a.smoke, a.smoke_all)?;
            let conn = connect_checked(&cli.conn, &manifests).await?;
            if a.dry_run == DryRun::Server {
                return diff(&conn, out, &manifests, a.wait.timeout, false).await;
            }
            let opts = RunOptions {
                atomic: a.atomic,
                smoke,
                ..run_options(&a.wait, 1, false)
            };
            let ctx = context(&conn, &a.wait, only_name(&manifests));
            drive(
                ctx,
                out,
                &manifests,
                &smoke_steps(run::apply_steps(), &opts),
                &opts,
                usize::from(a.concurrency),
            )
            .await
        }
        Command::Diff(a) => {
            let manifests = load(&a.files.filename)?;
            check_unique(&manifests)?;
            let conn = connect_checked(&cli.conn, &manifests).await?;
            diff(&conn, out, &manifests, a.timeout, true).await
        }
        Command::Scale(a) => {
            let steps = [
                Step::Scale(a.replicas),
                Step::Wait(Target::Replicas(a.replicas)),
            ];
            existing(&cli.conn, out, &a.name, &steps, &a.wait, None).await
        }
        Command::Wait(a) => {
            let target = a.replicas.map_or(Target::Initial, Target::Replicas);
            let smoke = smoke_options(&a.smoke, false)?;
            let steps = match smoke {
                Some(_) => run::with_smoke(vec![Step::Wait(target)]),
                None => vec![Step::Wait(target)],
            };
            existing(&cli.conn, out, &a.name, &steps, &a.wait, smoke).await
        }
        Command::Smoke(a) => {
            let smoke = SmokeOptions::load(
                a.filename.as_deref(),
                a.expect.as_deref(),
                a.tolerance,
                true,
            )?;
            let w = WaitFlags {
                timeout: a.timeout,
                failed_grace: Duration::from_secs(30),
                cleanup_timeout: Duration::from_secs(30),
            };
            existing(&cli.conn, out, &a.name, &[Step::Smoke], &w, Some(smoke)).await
        }
        Command::Delete(a) => {
            existing(&cli.conn, out, &a.name, &[Step::Delete], &a.wait, None).await
        }
        Command::Status(a) => status(&cli.conn, out, &a.name, a.replicas).await,
        Command::Events(a) => follow_events(&cli.conn, out, &a.name, a.timeout).await,
        Command::Completions { .. } | Command::Man => Ok(0),
    }
}

/// Loads the manifests and prints their warnings (a key written twice with one value, …).
fn load(files: &[String]) -> Result<Vec<Manifest>, Error> {
    let manifests = manifest::load_all(files)?;
    for w in manifests.iter().flat_map(|m| &m.warnings) {
        eprintln!("warning: {w}");
    }
    if let [m] = manifests.as_slice() {
        let _ = early::NAME.set(m.name.clone());
    }
    Ok(manifests)
}

fn run_options(w: &WaitFlags, replicas: i32, keep: bool) -> RunOptions {
    RunOptions {
        replicas,
        timeout: w.timeout,
        cleanup_timeout: w.cleanup_timeout,
        keep,
        atomic: false,
        smoke: None,
    }
}

/// The smoke test's options from its flags, its files read and checked (exit 2 naming a
/// bad file, before any request); `None` without `--smoke`.
fn smoke_options(f: &SmokeFlags, all: bool) -> Result<Option<SmokeOptions>, Error> {
    let Some(request) = &f.smoke else {
        return Ok(None);
    };
    SmokeOptions::load(
        request.as_deref(),
        f.smoke_expect.as_deref(),
        f.smoke_tolerance,
        all,
    )
    .map(Some)
}

/// `steps` with the smoke test after the first wait, when `--smoke` was given.
fn smoke_steps(steps: Vec<Step>, opts: &RunOptions) -> Vec<Step> {
    match opts.smoke {
        Some(_) => run::with_smoke(steps),
        None => steps,
    }
}

fn check_unique(manifests: &[Manifest]) -> Result<(), Error> {
    let mut seen = std::collections::BTreeMap::new();
    for m in manifests {
        if let Some(first) = seen.insert(m.name.clone(), m) {
            let place = if first.source == m.source {
                format!(
                    "in {}, documents {} and {}",
                    m.source, first.document, m.document
                )
            } else {
                format!("in {} and {}", first.origin(), m.origin())
            };
            return Err(Error::Usage(format!(
                "SeldonDeployment {:?} appears twice: {place}",
                m.name
            )));
        }
    }
    Ok(())
}

async fn connect_plain(c: &ConnArgs) -> Result<Connection, Error> {
    let conn = connect::connect(&ConnectOptions {
        kubeconfig: c.kubeconfig.clone(),
        context: c.context.clone(),
        namespace: c.namespace.clone(),
    })
    .await?;
    let _ = SERVER.set(conn.server.clone());
    let _ = early::NAMESPACE.set(conn.namespace.clone());
    if conn.insecure {
        eprintln!(
            "warning: the kubeconfig sets insecure-skip-tls-verify for {}: the API server's identity is not verified",
            conn.server
        );
    }
    Ok(conn)
}

/// Connects (no request is sent yet) and checks every manifest's namespace first.
async fn connect_checked(c: &ConnArgs, manifests: &[Manifest]) -> Result<Connection, Error> {
    if let Some(ns) = &c.namespace {
        for m in manifests {
            m.check_namespace(ns)?;
        }
    }
    let conn = connect_plain(c).await?;
    for m in manifests {
        m.check_namespace(&conn.namespace)?;
    }
    Ok(conn)
}

/// The name of the only SeldonDeployment in `manifests`, if there is exactly one.
fn only_name(manifests: &[Manifest]) -> Option<&str> {
    match manifests {
        [m] => Some(&m.name),
        _ => None,
    }
}

fn context(conn: &Connection, w: &WaitFlags, only: Option<&str>) -> Context {
    // One watch per resource for the namespace, shared by every lifecycle of this process;
    // the SeldonDeployment watch narrowed to the one name when there is only one.
    let deployer = Deployer::new(conn.client.clone(), &conn.namespace);
    let deployer = match only {
        Some(name) => deployer.with_shared_watches_for(name),
        None => deployer.with_shared_watches(),
    };
    Context::new(deployer.with_options(WaitOptions {
        failed_grace: w.failed_grace,
        ..WaitOptions::default()
    }))
}

/// Installs the signal handlers: the first SIGINT/SIGTERM triggers clean-up, a second SIGINT
/// exits at once naming what is left.
fn install_signals(interrupt: Interrupt, left_behind: LeftBehind) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut count = 0;
        loop {
            #[cfg(unix)]
            let sig = tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } Signal::Int }
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => Signal::Term,
            };
            #[cfg(not(unix))]
            let sig = {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                Signal::Int
            };
            count += 1;
            if count == 1 {
                // Above the live view, when one is on screen.
                if left_behind.describe().is_empty() {
                    output::eprint(&format!("\n{sig} received: stopping\n"));
                } else {
                    output::eprint(&format!(
                        "\n{sig} received: cleaning up what this run created or changed (press Ctrl-C again to exit at once)\n"
                    ));
                }
                interrupt.trigger(sig);
            } else {
                eprintln!("\n{}", left_behind.exit_message());
                std::process::exit(i32::from(sig.exit_code()));
            }
        }
    });
}

/// Runs a plan over the manifests with progress output and prints the result.
async fn drive(
    mut ctx: Context,
    out: Output,
    manifests: &[Manifest],
    steps: &[Step],
    opts: &RunOptions,
    concurrency: usize,
) -> Result<u8, Error> {
    install_signals(ctx.interrupt.clone(), ctx.left_behind.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    ctx.updates = Some(tx);
    let many = manifests.len() > 1;
    let live = out == Output::Text && std::io::stdout().is_terminal();
    let renderer = Renderer::new(live, out != Output::Text, many).with_total(manifests.len());
    let render = output::spawn(rx, renderer);

    if out == Output::Jsonl {
        // Each report is written as its deployment ends and then dropped, so memory stays
        // flat over thousands of deployments; the writes happen on a thread of their own, as
        // the progress output's do, so a stalled pipe cannot stop the watches.
        let (lines, writer) = output::spawn_line_writer();
        let mut worst = Outcome::Success.code();
        run::run_each(&ctx, manifests, steps, opts, concurrency, |_, rep| {
            worst = Outcome::worst_code([worst, rep.exit_code]);
            let _ = lines.send(output::Line::Stdout(early::json(&rep, true)));
            if !rep.succeeded() {
                let _ = lines.send(output::Line::Stderr(output::result_line(&rep)));
            }
        })
        .await;
        drop((ctx, lines));
        let _ = render.await;
        let _ = writer.await;
        return Ok(worst);
    }
    let summary = run::run_many(&ctx, manifests, steps, opts, concurrency).await;
    drop(ctx);
    let _ = render.await;
    Ok(print_reports(out, summary.deployments))
}

fn print_reports(out: Output, mut reports: Vec<Report>) -> u8 {
    if out == Output::Junit {
        print!("{}", crate::render::junit("seldon-deploy", &reports));
        for r in reports.iter().filter(|r| !r.succeeded()) {
            eprint!("{}", output::result_line(r));
        }
        return Summary::new(reports).exit_code;
    }
    if reports.len() == 1 {
        let rep = reports.remove(0);
        match out {
            Output::Jsonl => {
                println!("{}", early::json(&rep, true));
                if !rep.succeeded() {
                    eprint!("{}", output::result_line(&rep));
                }
            }
            Output::Json => {
                println!("{}", to_json(&rep));
                if !rep.succeeded() {
                    eprint!("{}", output::result_line(&rep));
                }
            }
            Output::Text | Output::Junit => {
                let (stdout, stderr) = output::closing_text(&rep);
                print!("{stdout}");
                eprint!("{stderr}");
            }
        }
        rep.exit_code
    } else {
        let sum = Summary::new(reports);
        let (stdout, stderr) = output::closing_summary(&sum);
        match out {
            Output::Json | Output::Jsonl => {
                println!("{}", to_json(&sum));
                eprint!("{stderr}");
            }
            Output::Text | Output::Junit => {
                print!("{stdout}");
                eprint!("{stderr}");
            }
        }
        sum.exit_code
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `diff`, and `apply --dry-run=server`: each manifest's change as the server would make
/// it (`dryRun=All`), as a unified diff of spec, labels and annotations (live → result).
/// With `exit_on_change` (`diff`), exits 1 when anything would change, like `kubectl diff`.
async fn diff(
    conn: &Connection,
    out: Output,
    manifests: &[Manifest],
    timeout: Duration,
    exit_on_change: bool,
) -> Result<u8, Error> {
    let d = Deployer::new(conn.client.clone(), &conn.namespace);
    let mut docs = Vec::new();
    let mut changed = false;
    for m in manifests {
        let a = d.apply_dry_run(m, Instant::now() + timeout).await?;
        let text = merge::diff(&m.name, a.before.as_ref(), &a.after);
        let change = if text.is_empty() {
            merge::Change::Unchanged
        } else {
            a.change
        };
        changed |= change != merge::Change::Unchanged;
        match out {
            Output::Json | Output::Jsonl => docs.push(serde_json::json!({
                "name": m.name,
                "namespace": conn.namespace,
                "source": m.origin(),
                "change": change,
                "diff": text,
                "images": merge::image_changes(a.before.as_ref(), &a.after),
            })),
            Output::Text | Output::Junit => {
                print!("{text}");
                let verb = match change {
                    merge::Change::Created => "created",
                    merge::Change::Updated => "configured",
                    merge::Change::Unchanged => "unchanged",
                };
                eprintln!("seldondeployment/{} {verb} (server dry run)", m.name);
            }
        }
    }
    if matches!(out, Output::Json | Output::Jsonl) {
        println!(
            "{}",
            to_json(&serde_json::json!({"changed": changed, "deployments": docs}))
        );
    }
    Ok(u8::from(exit_on_change && changed))
}

async fn existing(
    c: &ConnArgs,
    out: Output,
    name: &str,
    steps: &[Step],
    w: &WaitFlags,
    smoke: Option<SmokeOptions>,
) -> Result<u8, Error> {
    let conn = connect_plain(c).await?;
    let mut ctx = context(&conn, w, Some(name));
    install_signals(ctx.interrupt.clone(), ctx.left_behind.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    ctx.updates = Some(tx);
    let live = out == Output::Text && std::io::stdout().is_terminal();
    let render = output::spawn(rx, Renderer::new(live, out != Output::Text, false));
    let opts = RunOptions {
        smoke,
        ..run_options(w, 1, true)
    };
    let rep = run::execute(&ctx, RunOn::Existing(name), steps, &opts).await;
    drop(ctx);
    let _ = render.await;
    Ok(print_reports(out, vec![rep]))
}

async fn status(c: &ConnArgs, out: Output, name: &str, replicas: Option<i32>) -> Result<u8, Error> {
    let conn = connect_plain(c).await?;
    let d = Deployer::new(conn.client.clone(), &conn.namespace);
    let (handle, r) = d
        .status(name, replicas, Instant::now() + Duration::from_secs(30))
        .await?;
    let code = match r.verdict {
        seldon_deploy::judge::readiness::Verdict::Failed
        | seldon_deploy::judge::readiness::Verdict::Gone => Outcome::Failed.code(),
        _ => Outcome::Success.code(),
    };
    match out {
        Output::Json | Output::Jsonl => println!(
            "{}",
            to_json(&serde_json::json!({
                "name": handle.name,
                "namespace": handle.namespace,
                "uid": handle.uid,
                "ready": r.is_ready(),
                "readiness": r,
            }))
        ),
        Output::Text | Output::Junit => {
            println!(
                "seldondeployment/{} in {}: {}",
                handle.name,
                handle.namespace,
                if r.is_ready() { "READY" } else { "NOT READY" }
            );
            println!("state: {}", r.state.as_deref().unwrap_or("<none>"));
            if let Some(d) = &r.description {
                println!("description: {d}");
            }
            if let Some(reason) = &r.reason {
                println!("reason: {reason}");
            }
            println!("{:<45} {:>9} {:>6}", "DEPLOYMENT", "AVAILABLE", "READY");
            for comp in &r.components {
                println!("{:<45} {:>9} {:>6}", comp.name, comp.ratio(), comp.ready);
            }
        }
    }
    Ok(code)
}

async fn follow_events(
    c: &ConnArgs,
    out: Output,
    name: &str,
    timeout: Option<Duration>,
) -> Result<u8, Error> {
    let conn = connect_plain(c).await?;
    let d = Deployer::new(conn.client.clone(), &conn.namespace);
    let h = d
        .handle(name, Instant::now() + Duration::from_secs(30))
        .await?;
    let interrupt = Interrupt::new();
    install_signals(interrupt.clone(), LeftBehind::default());
    // Like `kubectl events --for`: the object's history first (from its creation, so a
    // previous object of the same name does not show), then new events as they come.
    let filter = EventFilter {
        name: h.name.clone(),
        uid: h.uid.clone(),
        since: h.created_at.as_deref().and_then(|t| t.parse().ok()),
        replay_existing: true,
        deployment_names: Vec::new(),
    };
    let deployer = Deployer::new(conn.client.clone(), &conn.namespace);
    let mut stream = events::follow(&deployer, filter);
    let until = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return Ok(0),
            () = interrupt.triggered() => {
                return Ok(interrupt.signal().unwrap_or(Signal::Int).exit_code());
            }
            item = stream.next() => match item {
                Some(Ok(e)) => match out {
                    Output::Json | Output::Jsonl => {
                        println!("{}", serde_json::to_string(&e).unwrap_or_default());
                    }
                    Output::Text | Output::Junit => println!(
                        "{} {e}",
                        e.time.as_deref().unwrap_or("-")
                    ),
                },
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
    }
}
