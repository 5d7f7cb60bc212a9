//! `ramp-verdicts`: prints docs/verdicts.md's tables as Markdown on stdout.
//!
//! ```text
//! cargo run --release -p ramp-verdicts -- [--runs N] [--regression-runs M] [--seed S]
//!                                         [--minutes MIN] [--threads T]
//! ```
//!
//! `scripts/verdicts.sh` runs it with the defaults and splices the output into the document.
//! Progress goes to stderr, the tables to stdout, so the output is byte-identical for a given
//! set of flags whatever the machine and thread count.

use ramp_verdicts::{render, run, Config, Regression};
use std::process::ExitCode;

/// The usage text.
const USAGE: &str =
    "usage: ramp-verdicts [--runs N] [--regression-runs M] [--seed S] [--minutes MIN] [--threads T]

  --runs N             A/A runs (default 2000; the false-rollback rate's denominator)
  --regression-runs M  runs per real regression (default 500)
  --seed S             seed of every run's random stream (default 1)
  --minutes MIN        stage length per run (default 60)
  --threads T          worker threads (default: all cores)";

/// Parses the flags into a config; `Err` carries the message to print.
fn parse(args: &[String]) -> Result<Config, String> {
    let mut config = Config::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let number = |what: &str| -> Result<u64, String> {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{what}: `{value}` is not a whole number"))
        };
        match flag.as_str() {
            "--runs" => config.aa_runs = number("--runs")? as usize,
            "--regression-runs" => config.regression_runs = number("--regression-runs")? as usize,
            "--seed" => config.seed = number("--seed")?,
            "--minutes" => {
                let m = number("--minutes")?;
                if m == 0 || m > 24 * 60 {
                    return Err("--minutes must be between 1 and 1440".to_string());
                }
                config.horizon_s = (m * 60) as u32;
            }
            "--threads" => config.threads = (number("--threads")? as usize).max(1),
            other => return Err(format!("unknown flag `{other}`\n\n{USAGE}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return if args.iter().any(|a| a == "-h" || a == "--help") {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let total: usize = Regression::ALL.iter().map(|&r| config.runs_for(r)).sum();
    eprintln!(
        "ramp-verdicts: {total} runs of {} min on {} threads (seed {})",
        config.horizon_s / 60,
        config.threads,
        config.seed
    );
    let rows = run(&config);
    let mut command = String::from("cargo run --release -p ramp-verdicts");
    if !args.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.join(" "));
    }
    print!("{}", render(&config, &rows, &command));
    ExitCode::SUCCESS
}
