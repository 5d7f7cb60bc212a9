//! A standalone OFREP server: `ramp flags serve` without the `ramp` binary, so that
//! `scripts/bench-flags.sh` can build and measure the flags server alone (in release).
//!
//! ```sh
//! cargo run --release -p ramp-flags --example ofrep_server -- \
//!     --flags flags.toml --listen 127.0.0.1:8016 --weight 25
//! ```
//!
//! It stops on Ctrl-C or SIGTERM; invalid options exit with status 2, anything else that
//! stops it early with 1.

use clap::Parser;

/// The command line: exactly `ramp flags serve`'s options.
#[derive(Parser)]
#[command(name = "ofrep_server", about = "Serve a flags file over OFREP")]
struct Cmd {
    /// The flags server's options.
    #[command(flatten)]
    args: ramp_flags::cli::Args,
    /// Worker threads (default: one per core), so that a benchmark can pin the server to
    /// the cores it means to measure.
    #[arg(long)]
    workers: Option<usize>,
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn main() -> std::process::ExitCode {
    let cmd = Cmd::parse();
    let mut builder = match cmd.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) if n == 0 || n > 1024 => {
            eprintln!("ofrep_server: --workers {n} is out of range (1 to 1024)");
            return std::process::ExitCode::from(2);
        }
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ofrep_server: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(ramp_flags::cli::run(&cmd.args, shutdown_signal())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ofrep_server: {e}");
            std::process::ExitCode::from(if e.is_invalid_input() { 2 } else { 1 })
        }
    }
}
