//! `ramp-chaos`: the chaos soak of `scripts/chaos.sh` (docs/reliability.md, "Chaos soak").
//!
//! A compressed live rollout (`ramp run`) against a real `ramp proxy`, both as child
//! processes, with the demo upstreams and open-loop load in this process, while a scenario
//! file's faults happen on schedule: the proxy and the controller killed with SIGKILL and
//! started again, a stable pool member flapping, slowloris clients, stalled uploads aimed at
//! the canary, and a proxy outage across a stage's end. Each run ends with findings: the
//! outcome, rollbacks, blind promotions, whether every proxy kill left a gap in the
//! controller's record, and the requests the clients saw answered against the requests the
//! controller counted.
//!
//! Not a CI test: a run takes minutes and measures a machine's behaviour under faults. Exit
//! codes: 0 the run (or every run of `table`) passed, 1 one did not, 2 the soak itself
//! could not run (bad arguments, an unreadable scenario, a child that cannot start), 130
//! interrupted.

mod clients;
mod clock;
mod net;
mod procs;
mod report;
mod scenario;
mod soak;
mod timeline;
mod upstreams;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use report::Findings;
use std::path::PathBuf;
use std::process::ExitCode;

/// The command line.
#[derive(Parser)]
#[command(name = "ramp-chaos", about = "Ramp's chaos soak (docs/reliability.md)")]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Run one soak and print its findings.
    Run(RunArgs),
    /// Print the table of several runs' findings (their summary.json files).
    Table {
        /// The runs' summary.json files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Options of `ramp-chaos run`.
#[derive(Args)]
struct RunArgs {
    /// The `ramp` binary to run as the proxy and the controller.
    #[arg(long)]
    ramp: PathBuf,
    /// The scenario file.
    #[arg(long, default_value = "scripts/chaos/scenario.toml")]
    scenario: PathBuf,
    /// Where the findings (summary.json, summary.md) and the logs go.
    #[arg(long)]
    out: PathBuf,
    /// A/A: the canary is the stable version; any rollback or blind promotion fails the run.
    #[arg(long, conflicts_with = "regression_after")]
    aa: bool,
    /// Inject the scenario's canary regression this many seconds after the controller first
    /// starts (real seconds, not scaled), and time its rollback.
    #[arg(long, value_name = "SECONDS")]
    regression_after: Option<f64>,
    /// Multiply stage durations and fault moments by this (0.3: about 3 minutes).
    #[arg(long, default_value_t = 1.0)]
    duration_scale: f64,
    /// The load generator's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The title of the Markdown block.
    #[arg(long, default_value = "Chaos soak")]
    title: String,
    /// Keep the temporary work directory (journal, state file) and print where it is.
    #[arg(long)]
    keep_work: bool,
}

/// Runs one soak.
fn run(args: RunArgs) -> Result<Findings> {
    if !(args.duration_scale.is_finite()
        && args.duration_scale > 0.0
        && args.duration_scale <= 10.0)
    {
        bail!("--duration-scale must be above 0 and at most 10");
    }
    let mode = match (args.aa, args.regression_after) {
        (_, Some(s)) if !(s.is_finite() && s >= 0.0) => {
            bail!("--regression-after must be a number of seconds of at least 0")
        }
        (_, Some(after_s)) => soak::Mode::Regression { after_s },
        (true, None) => soak::Mode::Aa,
        (false, None) => bail!("say --aa or --regression-after SECONDS"),
    };
    if !args.ramp.is_file() {
        bail!("--ramp {}: no such file", args.ramp.display());
    }
    let scenario = scenario::Scenario::load(&args.scenario)?.scaled(args.duration_scale);
    let options = soak::Options {
        ramp: std::fs::canonicalize(&args.ramp).context("cannot resolve --ramp")?,
        scenario,
        mode,
        scale: args.duration_scale,
        seed: args.seed,
        out: args.out.clone(),
        keep_work: args.keep_work,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Ctrl-C or SIGTERM at any moment drops the run: every child is killed on the way out
    // (each `Proc` kills its process when dropped) and the work directory is removed.
    let findings = runtime.block_on(async {
        tokio::select! {
            found = soak::run(options) => found,
            () = interrupted() => Err(anyhow::Error::new(Interrupted)),
        }
    })?;
    // Hostile clients or a slow drain may leave tasks behind; they are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    let markdown = findings.markdown(&args.title);
    let json = serde_json::to_string_pretty(&findings).context("cannot render the findings")?;
    std::fs::write(args.out.join("summary.json"), json).context("cannot write summary.json")?;
    std::fs::write(args.out.join("summary.md"), &markdown).context("cannot write summary.md")?;
    println!("{markdown}");
    Ok(findings)
}

/// The soak was interrupted (Ctrl-C or SIGTERM): exit code 130, as a shell reports SIGINT.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// A future that completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Prints the table of several runs; whether all passed.
fn table(files: &[PathBuf]) -> Result<bool> {
    println!("{}", Findings::table_header());
    let mut all_passed = true;
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let f: Findings = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a soak's summary.json", file.display()))?;
        all_passed &= f.passed;
        println!("{}", f.table_row(&(i + 1).to_string()));
    }
    Ok(all_passed)
}

fn main() -> ExitCode {
    // A panic anywhere must not leave a `ramp` child running.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        procs::kill_all();
        default_hook(info);
    }));
    let cli = Cli::parse();
    let ended = match cli.command {
        Command::Run(args) => run(args).map(|f| f.passed),
        Command::Table { files } => table(&files),
    };
    procs::kill_all();
    match ended {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("ramp-chaos: interrupted; every child process was killed");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("ramp-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
