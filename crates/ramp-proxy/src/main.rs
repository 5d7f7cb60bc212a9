//! `ramp-proxy`: runs Ramp's data plane on its own (also available as `ramp proxy`).
//!
//! Exit codes: 0 after a clean shutdown, 2 for invalid configuration or arguments, 1 for
//! any other failure (a port that cannot be bound, a state file that cannot be read).

use clap::Parser;
use std::process::ExitCode;

/// The proxy's command line.
#[derive(Debug, Parser)]
#[command(
    name = "ramp-proxy",
    version,
    about = "Weighted, sticky HTTP proxy that measures stable and canary"
)]
struct Cli {
    #[command(flatten)]
    args: ramp_proxy::cli::ProxyArgs,
}

fn main() -> ExitCode {
    ramp_proxy::cli::init_logging();
    let cli = Cli::parse();
    match ramp_proxy::cli::run(&cli.args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ramp-proxy: {e}");
            ExitCode::from(if e.is_invalid_input() { 2 } else { 1 })
        }
    }
}
