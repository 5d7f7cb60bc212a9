//! The `ramp` command: validate, simulate and run rollout plans, and operate running ones.
//!
//! Only this file chooses exit codes (README, "Exit codes"): 0 promoted (with or without
//! caveats), 3 rolled back, 4 halted, 2 invalid input, 1 any other failure. The commands
//! return how they ended ([`Ended`]) or an error, never a code.

mod demo;
mod demo_metrics;
mod journals;
mod live;
mod next;
mod progress;
mod setup;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use ramp_core::summary::Outcome;
use ramp_core::{load_plan, Plan};
use ramp_live::control::Verb;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Progressive delivery with SLO gates, automatic rollback and simulation.
#[derive(Parser)]
#[command(name = "ramp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing the proxy's options would only add noise"
)]
enum Command {
    /// Run the data plane: a weighted, sticky HTTP proxy that measures stable and canary
    /// (see docs/proxy.md). Runs until SIGINT or SIGTERM, then drains.
    Proxy(ramp_proxy::cli::ProxyArgs),
    /// Write a commented starter plan (stages, gates, a simulation model) that validates and
    /// simulates as written: `ramp init > plan.toml`.
    Init(setup::InitArgs),
    /// Print a shell completion script: `ramp completions bash > ~/.local/share/bash-completion/completions/ramp`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: setup::Shell,
    },
    /// Print the manual page (roff), or write one per command with --dir.
    Man(setup::ManArgs),
    /// Check a plan file and report every error with file:line:column.
    Validate {
        /// The plan (TOML).
        plan: PathBuf,
    },
    /// Run a plan on the virtual clock against its [simulation] model.
    Simulate {
        /// The plan (TOML).
        plan: PathBuf,
        /// Seed of the traffic and service model; the same seed gives the same output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the report here: HTML when the name ends in .html, else Markdown.
        #[arg(long, value_name = "FILE.md|FILE.html")]
        report: Option<PathBuf>,
        /// Write the JSON summary here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Print only the outcome, not the monitoring panels.
        #[arg(long, short)]
        quiet: bool,
        /// Print every checkpoint's monitoring panel, not only stage ends and changes.
        #[arg(long)]
        all_panels: bool,
        /// Run a Monte Carlo study over this many seeds (from --seed on), on all cores:
        /// outcomes, false-rollback rate, detection power and delays, each rate with its 95%
        /// Wilson interval. --json and --report then receive the study.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        runs: Option<u32>,
        /// With --runs: stop early, after a multiple of 10 runs, once the upper end of the
        /// 95% interval of the false-rollback rate (rollbacks with no fault active) is below
        /// this rate, e.g. "2%"; --runs N stays the most runs.
        #[arg(long, value_name = "RATE", requires = "runs", value_parser = parse_target)]
        until_ci: Option<f64>,
        /// How requests are drawn: "aggregated" draws each tick's counts and latency buckets
        /// from the model (cost per tick), "request" draws every request (needed for plans
        /// with flags); "auto" (the default) takes the plan's simulation.sampler or lets
        /// the simulator choose. Both agree in distribution, not in bytes.
        #[arg(long, value_enum, default_value_t = SamplerArg::Auto)]
        sampler: SamplerArg,
    },
    /// A one-command live demo on loopback: two demo upstreams, the proxy, open-loop load
    /// and a compressed four-stage plan (about a minute). --break shows an automatic rollback.
    Demo(demo::DemoArgs),
    /// Feature flags: `ramp flags serve` runs an OFREP server (OpenFeature Remote Evaluation
    /// Protocol) for a flags file.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Run a plan live: the engine on the real clock, weights and metrics through a `ramp
    /// proxy`, every input and decision journaled (run it again to resume after a crash).
    Run(live::RunArgs),
    /// Rehearse a rollback live: run the plan, inject its rehearsal's fault through the
    /// proxy, and time detection, rollback, restoration and total recovery.
    Rehearse {
        #[command(flatten)]
        run: live::RunArgs,
        /// The rehearsal to run, when the plan has several.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show the running rollout: stage, weight, each gate explained, who must approve.
    Status {
        #[command(flatten)]
        target: live::Target,
        /// Print the status document as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold the rollout at its current weight (gates keep running; a failure still rolls back).
    Pause(live::VerbArgs),
    /// Lift a pause.
    Resume(live::VerbArgs),
    /// End the current stage now and move to the next (--full: straight to 100%).
    Promote {
        #[command(flatten)]
        args: live::VerbArgs,
        /// Skip every remaining stage and finish at 100%.
        #[arg(long)]
        full: bool,
    },
    /// Roll back now: canary weight to 0.
    Abort(live::VerbArgs),
    /// Approve the next stage that needs a named approver (--as "SRE Lead"), or a later one
    /// with --stage N (so that promote --full can pass it).
    Approve {
        #[command(flatten)]
        args: live::VerbArgs,
        /// The stage to approve (1-based); the next stage still waiting for NAME by default.
        #[arg(long, value_name = "N")]
        stage: Option<usize>,
    },
    /// List past and running deployments in the journal.
    History {
        /// The journal.
        #[arg(long, default_value = live::DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// Only this deployment.
        #[arg(long)]
        deployment: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: journals::EtcdTarget,
    },
    /// Re-render the report of a journaled run (see `ramp history` for ids).
    Report {
        /// The run id.
        id: i64,
        /// The journal.
        #[arg(long, default_value = live::DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// Write the report here instead of standard output: HTML when the name ends in
        /// .html, else Markdown.
        #[arg(long, value_name = "FILE.md|FILE.html")]
        out: Option<PathBuf>,
        /// Also write the JSON summary here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// The deployment, with --etcd.
        #[arg(long)]
        deployment: Option<String>,
        #[command(flatten)]
        store: journals::EtcdTarget,
    },
}

/// `--sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SamplerArg {
    /// The plan's `simulation.sampler`, else the simulator's choice.
    Auto,
    /// Every request drawn on its own.
    Request,
    /// Counts and latency buckets drawn per tick.
    Aggregated,
}

impl SamplerArg {
    /// The sampler forced from the command line, if any.
    fn forced(self) -> Option<ramp_core::SamplingMethod> {
        match self {
            SamplerArg::Auto => None,
            SamplerArg::Request => Some(ramp_core::SamplingMethod::PerRequest),
            SamplerArg::Aggregated => Some(ramp_core::SamplingMethod::Aggregated),
        }
    }
}

/// `--until-ci`: a rate strictly between 0 and 1, as "2%" or 0.02.
fn parse_target(text: &str) -> Result<f64, String> {
    let v = ramp_core::parse_rate(text)?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "expected a rate above 0% and below 100%, such as \"2%\", found \"{text}\""
        ))
    }
}

/// `ramp flags …`.
#[derive(Subcommand)]
enum FlagsCommand {
    /// Serve a flags file over OFREP until SIGINT or SIGTERM.
    Serve(ramp_flags::cli::Args),
}

/// A failure caused by the user's input (plan, flags, arguments), as opposed to the
/// machine's: `main` maps it to exit code 2.
#[derive(Debug)]
struct Invalid(String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// How a command ended when it did not fail. Commands return this rather than an exit code,
/// so that every code is chosen here, in [`Ended::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The command did what it was asked (validate, init, a verb, status, history, …).
    Done,
    /// A rollout, simulated or live, finished with this outcome.
    Rollout(Outcome),
    /// A rehearsal ran to its end; `passed` when its fault was caught and the service was
    /// restored within the rehearsal's target.
    Rehearsal {
        /// Whether the rehearsal met its target.
        passed: bool,
    },
    /// A live run was interrupted and left open for a resume (the proxy keeps its weight):
    /// not a result, so not a success.
    Interrupted,
}

impl Ended {
    /// The process's exit code (README, "Exit codes").
    fn exit_code(self) -> ExitCode {
        match self {
            Ended::Done => ExitCode::SUCCESS,
            Ended::Rollout(Outcome::Promoted | Outcome::PromotedWithCaveats) => ExitCode::SUCCESS,
            Ended::Rollout(Outcome::RolledBack) => ExitCode::from(3),
            Ended::Rollout(Outcome::Halted) => ExitCode::from(4),
            Ended::Rehearsal { passed: true } => ExitCode::SUCCESS,
            Ended::Rehearsal { passed: false } => ExitCode::from(4),
            Ended::Interrupted => ExitCode::from(1),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(ended) => ended.exit_code(),
        Err(e) => {
            if let Some(inv) = e.downcast_ref::<Invalid>() {
                eprint!("{inv}");
                if !inv.0.ends_with('\n') {
                    eprintln!();
                }
                ExitCode::from(2)
            } else {
                eprintln!("error: {}", chain(&e));
                ExitCode::from(1)
            }
        }
    }
}

/// An error and its causes on one line, outermost first, joined by ": " as `{:#}` joins them,
/// except that a cause whose text the error before it already quotes is not repeated: many of
/// the workspace's error types say their source in their own message (`journal: {0}`) and
/// also return it from `source()`, and the operator should read each cause once.
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out.push_str(&text);
        } else if !previous.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        previous = text;
    }
    out
}

fn read_plan(path: &Path) -> anyhow::Result<Plan> {
    load_plan(path).map_err(|e| Invalid(e.to_string()).into())
}

fn run(cli: Cli) -> anyhow::Result<Ended> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Init(args) => setup::init(&args).map(|()| Ended::Done),
        Command::Completions { shell } => {
            setup::completions(shell, &mut Cli::command());
            Ok(Ended::Done)
        }
        Command::Man(args) => setup::man(&args, Cli::command()).map(|()| Ended::Done),
        Command::Flags(FlagsCommand::Serve(args)) => {
            ramp_proxy::cli::init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            match rt.block_on(ramp_flags::cli::run(&args, live::shutdown_signal())) {
                Ok(()) => Ok(Ended::Done),
                Err(e) if e.is_invalid_input() => {
                    Err(Invalid(format!("ramp flags serve: {e}")).into())
                }
                Err(e) => Err(anyhow::Error::new(e).context("ramp flags serve")),
            }
        }
        Command::Run(args) => live::run(&args, live::Mode::Rollout),
        Command::Rehearse { run, name } => live::run(&run, live::Mode::Rehearse { name }),
        Command::Status { target, json } => live::status(&target, json).map(|()| Ended::Done),
        Command::Pause(args) => live::verb(Verb::Pause, &args, false, None).map(|()| Ended::Done),
        Command::Resume(args) => live::verb(Verb::Resume, &args, false, None).map(|()| Ended::Done),
        Command::Promote { args, full } => {
            live::verb(Verb::Promote, &args, full, None).map(|()| Ended::Done)
        }
        Command::Abort(args) => live::verb(Verb::Abort, &args, false, None).map(|()| Ended::Done),
        Command::Approve { args, stage } => {
            live::verb(Verb::Approve, &args, false, stage).map(|()| Ended::Done)
        }
        Command::History {
            journal,
            deployment,
            json,
            store,
        } => {
            let source = journals::Source::open(&journal, &store, deployment.as_deref())?;
            live::history(&source, deployment.as_deref(), json).map(|()| Ended::Done)
        }
        Command::Report {
            id,
            journal,
            out,
            json,
            deployment,
            store,
        } => {
            let source = journals::Source::open(&journal, &store, deployment.as_deref())?;
            live::report(&source, id, out.as_deref(), json.as_deref()).map(|()| Ended::Done)
        }
        Command::Proxy(args) => {
            ramp_proxy::cli::init_logging();
            match ramp_proxy::cli::run(&args) {
                Ok(_) => Ok(Ended::Done),
                Err(e) if e.is_invalid_input() => Err(Invalid(format!("ramp proxy: {e}")).into()),
                Err(e) => Err(anyhow::Error::new(e).context("ramp proxy")),
            }
        }
        Command::Validate { plan } => {
            let p = read_plan(&plan)?;
            let follows = next::load(&plan, &p)?;
            println!(
                "{}: ok — deployment {}, {} ({}), {} total, {}{}",
                plan.display(),
                p.deployment.id,
                progress::count_of(p.stages.len(), "stage"),
                p.stages
                    .iter()
                    .map(|s| s.weight.to_string())
                    .collect::<Vec<_>>()
                    .join(" → "),
                p.total_duration(),
                progress::count_of(p.rehearsals.len(), "rehearsal"),
                if p.simulation.is_some() {
                    ", simulation model"
                } else {
                    ""
                }
            );
            if let (Some(_), Some(written)) = (follows, &p.next) {
                println!("  followed by {}: ok", written.display());
            }
            Ok(Ended::Done)
        }
        Command::Simulate {
            plan,
            seed,
            report,
            json,
            quiet,
            all_panels,
            runs,
            until_ci,
            sampler,
        } => {
            let p = Arc::new(read_plan(&plan)?);
            let follows = next::load(&plan, &p)?;
            // The sampler is settled before any work: a plan it cannot simulate (or no
            // simulation at all) is an input error said at once.
            let options = ramp_sim::Options {
                sampler: sampler.forced(),
            };
            let sampling = ramp_sim::sampling(&p, options.sampler)
                .map_err(|e| Invalid(format!("{}: {e}", plan.display())))?;
            if let Some(runs) = runs {
                let json_out = json
                    .map(|path| open_output(&path, "study JSON"))
                    .transpose()?;
                let report_out = report
                    .map(|path| open_output(&path, "study report"))
                    .transpose()?;
                let study =
                    monte_carlo(&p, seed, runs as usize, until_ci, options, sampling, quiet);
                print!("{}", ramp_report::monte_carlo_markdown(&study));
                let written = [
                    json_out.map(|o| o.write(&ramp_report::to_json(&study))),
                    report_out.map(|o| {
                        let text = o.format.render_study(&study);
                        o.write(&text)
                    }),
                ];
                for w in written.into_iter().flatten() {
                    w?;
                }
                return Ok(Ended::Done);
            }
            // Open the outputs before the run, so that a bad path fails in a second rather
            // than after the whole simulation.
            let json_out = json
                .map(|path| open_output(&path, "JSON summary"))
                .transpose()?;
            let report_out = report
                .map(|path| open_output(&path, "report"))
                .transpose()?;
            let mut printer =
                progress::Printer::new(Arc::clone(&p), quiet).with_all_panels(all_panels);
            let mut summary =
                ramp_sim::simulate_with(Arc::clone(&p), seed, options, &mut |ev| printer.show(ev))
                    .map_err(|e| Invalid(format!("{}: {e}", plan.display())))?;
            summary.next = follows.map(|n| next::preview(&n, seed));
            printer.outcome(&summary);
            // Write both outputs even if one fails, then report the first failure.
            let written = [
                json_out.map(|o| o.write(&ramp_report::json(&summary))),
                report_out.map(|o| o.write_report(&summary)),
            ];
            for w in written.into_iter().flatten() {
                w?;
            }
            Ok(Ended::Rollout(summary.outcome))
        }
    }
}

/// Runs up to `runs` simulations (seeds `first_seed..`) spread over every core and
/// aggregates them. Each run is independent and deterministic, so the study does not depend
/// on how the runs were scheduled; with `until_ci`, the stopping rule looks only at complete
/// prefixes of the seeds (every `LOOK_EVERY` runs in seed order), so where it stops does not
/// either.
#[allow(clippy::too_many_arguments)]
fn monte_carlo(
    plan: &Arc<Plan>,
    first_seed: u64,
    runs: usize,
    until_ci: Option<f64>,
    options: ramp_sim::Options,
    sampling: ramp_core::summary::Sampling,
    quiet: bool,
) -> ramp_core::summary::MonteCarlo {
    use ramp_core::summary::{RunDigest, Stopping};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(runs.max(1));
    let next = AtomicUsize::new(0);
    // Every run of the plan draws from the same bucket tables: built once for the study.
    let tables = Arc::new(ramp_sim::TableCache::default());
    // How many runs the study uses: `runs`, or fewer once the stopping rule is met.
    let enough = AtomicUsize::new(runs);
    /// What the workers share: the digests by seed, how many of the first ones are complete
    /// (the prefix the stopping rule looks at), and how many runs are done.
    struct Shared {
        digests: Vec<Option<RunDigest>>,
        prefix: usize,
        done: usize,
    }
    let shared = Mutex::new(Shared {
        digests: vec![None; runs],
        prefix: 0,
        done: 0,
    });
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= enough.load(Ordering::Relaxed) {
                    break;
                }
                let seed = first_seed.wrapping_add(i as u64);
                let summary = ramp_sim::simulate_sharing(
                    Arc::clone(plan),
                    seed,
                    options,
                    Some(Arc::clone(&tables)),
                    &mut |_| {},
                )
                .expect("the plan's sampler was checked before the study");
                let digest = RunDigest::of(&summary);
                let mut s = shared
                    .lock()
                    .expect("no worker panics while holding the lock");
                s.digests[i] = Some(digest);
                s.done += 1;
                let n = s.done;
                if let Some(target) = until_ci {
                    while s.prefix < runs && s.digests[s.prefix].is_some() {
                        s.prefix += 1;
                        let k = s.prefix;
                        if k.is_multiple_of(ramp_sim::LOOK_EVERY)
                            && k < enough.load(Ordering::Relaxed)
                        {
                            let complete: Vec<RunDigest> =
                                s.digests[..k].iter().flatten().cloned().collect();
                            if ramp_sim::watched(&complete).high < target {
                                enough.store(k, Ordering::Relaxed);
                            }
                        }
                    }
                }
                drop(s);
                if !quiet && (n * 10 / runs) != ((n - 1) * 10 / runs) {
                    eprintln!(
                        "  {}/{} runs done",
                        ramp_core::engine::group(n as u64),
                        ramp_core::engine::group(runs as u64)
                    );
                }
            });
        }
    });
    let used = enough.load(Ordering::Relaxed);
    let digests: Vec<RunDigest> = shared
        .into_inner()
        .expect("no worker panicked")
        .digests
        .into_iter()
        .take(used)
        .flatten()
        .collect();
    let stopping = until_ci.map(|target| Stopping {
        target,
        limit: runs,
        met: ramp_sim::watched(&digests).high < target,
    });
    ramp_sim::study(plan, first_seed, &digests, Some(sampling), stopping)
}

/// An output file opened before a run and written after it.
struct Output {
    /// Where it goes, for messages.
    path: PathBuf,
    /// What it is, for messages.
    what: &'static str,
    /// The open file.
    file: std::fs::File,
    /// Which report the path asks for, by its extension.
    format: ramp_report::ReportFormat,
}

impl Output {
    fn write(mut self, text: &str) -> anyhow::Result<()> {
        use std::io::Write;
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing the {} to {}", self.what, self.path.display()))
    }

    /// Writes a rollout's report in the format the path's extension names.
    fn write_report(self, summary: &ramp_core::summary::Summary) -> anyhow::Result<()> {
        let text = self.format.render(summary);
        self.write(&text)
    }
}

/// Opens an output before the work starts, so that a path that cannot be written is an
/// input error (exit 2) said in a second rather than after a long run.
///
/// A missing parent directory is created (`--report out/report.html` in a fresh clone), so
/// that only a path that truly cannot be written is an error.
fn open_output(path: &Path, what: &'static str) -> anyhow::Result<Output> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            Invalid(format!(
                "cannot write the {what} to {}: cannot create {}: {e}",
                path.display(),
                parent.display()
            ))
        })?;
    }
    let file = std::fs::File::create(path).map_err(|e| {
        Invalid(format!(
            "cannot write the {what} to {}: {e}",
            path.display()
        ))
    })?;
    Ok(Output {
        path: path.to_path_buf(),
        what,
        file,
        format: ramp_report::ReportFormat::for_path(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that quotes its source in its own message, as `journal: {0}` does.
    #[derive(Debug)]
    struct Quoting(std::io::Error);

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "journal: {}", self.0)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_says_each_cause_once() {
        let io = || std::io::Error::other("disk full");
        let quoted = anyhow::Error::new(Quoting(io()));
        assert_eq!(chain(&quoted), "journal: disk full");
        let wrapped = anyhow::Error::new(io()).context("writing the report");
        assert_eq!(chain(&wrapped), "writing the report: disk full");
        assert_eq!(chain(&wrapped), format!("{wrapped:#}"));
    }

    #[test]
    fn exit_codes_are_the_readmes() {
        let code = |e: Ended| format!("{:?}", e.exit_code());
        let of = |n: u8| format!("{:?}", ExitCode::from(n));
        assert_eq!(code(Ended::Done), of(0));
        assert_eq!(code(Ended::Rollout(Outcome::Promoted)), of(0));
        assert_eq!(code(Ended::Rollout(Outcome::PromotedWithCaveats)), of(0));
        assert_eq!(code(Ended::Rollout(Outcome::RolledBack)), of(3));
        assert_eq!(code(Ended::Rollout(Outcome::Halted)), of(4));
        assert_eq!(code(Ended::Rehearsal { passed: true }), of(0));
        assert_eq!(code(Ended::Rehearsal { passed: false }), of(4));
        assert_eq!(code(Ended::Interrupted), of(1));
    }
}
