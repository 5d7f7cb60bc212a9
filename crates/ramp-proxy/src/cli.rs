//! The proxy's command line, shared by the `ramp-proxy` binary and `ramp proxy`: options
//! (each overriding the same key of the configuration file), the runtime, and a run until
//! SIGINT or SIGTERM. It returns typed errors; each binary maps them to exit codes (2 for
//! invalid configuration, 1 for anything else).

use crate::config::{self, Config, ConfigFile, FileConfig};
use crate::{DrainOutcome, RunError};
use std::path::PathBuf;

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration (file or flags) is invalid: the user's input.
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigErrors),
    /// `--workers` is out of range: the user's input.
    #[error("invalid configuration: --workers {0} is out of range (1 to 1024)")]
    Workers(usize),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The proxy failed while starting or running.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl CliError {
    /// Whether the failure is the user's input (exit code 2) rather than the machine's.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, CliError::Config(_) | CliError::Workers(_))
    }
}

/// Command-line options; each overrides the same key of the configuration file.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// TOML configuration file (see docs/proxy.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Client listener, e.g. 0.0.0.0:8080.
    #[arg(long)]
    pub listen: Option<String>,
    /// Admin listener, e.g. 127.0.0.1:9901.
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Stable pool addresses, comma-separated IP:port.
    #[arg(long, value_delimiter = ',')]
    pub stable: Option<Vec<String>>,
    /// Canary pool addresses, comma-separated IP:port.
    #[arg(long, value_delimiter = ',')]
    pub canary: Option<Vec<String>>,
    /// Canary weight in percent when no state file exists yet.
    #[arg(long)]
    pub weight: Option<f64>,
    /// Sticky routing by this request header.
    #[arg(long, conflicts_with = "sticky_cookie")]
    pub sticky_header: Option<String>,
    /// Sticky routing by this cookie.
    #[arg(long)]
    pub sticky_cookie: Option<String>,
    /// Deployment id, the salt of sticky bucketing.
    #[arg(long)]
    pub deployment_id: Option<String>,
    /// File where the last weights are persisted.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Protocol to upstreams: http1 (default) or h2c.
    #[arg(long)]
    pub upstream_protocol: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// "versions" (stable and canary pools) or "flag" (one pool, cohorts by a flag's
    /// rollout; needs --upstream, --flag-key and a sticky key).
    #[arg(long)]
    pub mode: Option<String>,
    /// Flag mode's one pool, comma-separated IP:port.
    #[arg(long, value_delimiter = ',')]
    pub upstream: Option<Vec<String>>,
    /// Flag mode: the flag's key (its bucketing salt unless --flag-salt is given).
    #[arg(long)]
    pub flag_key: Option<String>,
    /// Flag mode: the flag's `salt`, when its flags file sets one.
    #[arg(long)]
    pub flag_salt: Option<String>,
    /// Longest pause in a client's request body, in milliseconds, before the proxy answers
    /// 408 (default 10000; `[timeouts] client_body_idle_ms`).
    #[arg(long, value_name = "MS")]
    pub client_body_idle_ms: Option<u64>,
    /// Follow the deployment's weight in etcd: the cluster's client URLs, comma-separated
    /// (`[etcd] endpoints`); needs --deployment-id.
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    pub etcd: Option<Vec<String>>,
    /// The key prefix of Ramp's keys in etcd (default /ramp; `[etcd] prefix`).
    #[arg(long, value_name = "PREFIX")]
    pub etcd_prefix: Option<String>,
}

/// Sends the proxy's logs to standard error, filtered by `RAMP_LOG` (default `info`), with
/// colours only on a terminal. Called once by each binary before `run`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMP_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Builds the configuration and runs the proxy until SIGINT or SIGTERM, then drains.
pub fn run(args: &ProxyArgs) -> Result<DrainOutcome, CliError> {
    let config = build_config(args)?;
    let mut builder = match args.workers {
        // One worker: a current-thread runtime has no work-stealing machinery to pay for,
        // which is the fair match for HAProxy's `nbthread 1` and nginx's one worker.
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) if n == 0 || n > 1024 => return Err(CliError::Workers(n)),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build().map_err(CliError::Runtime)?;
    let outcome = runtime.block_on(crate::run(config, shutdown_signal()))?;
    match outcome {
        DrainOutcome::Drained => tracing::info!("drained; bye"),
        DrainOutcome::DeadlineExceeded { remaining } => {
            tracing::warn!(
                remaining,
                "drain deadline passed with connections or tunnels still open"
            )
        }
    }
    Ok(outcome)
}

/// The configuration file (if any) with the options laid over it, validated: every problem
/// of the file and the options at once.
pub fn build_config(args: &ProxyArgs) -> Result<Config, config::ConfigErrors> {
    let mut file = match &args.config {
        Some(path) => ConfigFile::read(path)?,
        None => ConfigFile::from_raw(FileConfig::default(), "command line"),
    };
    file.overlay(args);
    file.validate()
}

/// Resolves on SIGINT or SIGTERM.
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
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use clap::Parser;

    /// What a binary's command line looks like.
    #[derive(Parser)]
    struct Cmd {
        /// The proxy's options, flattened.
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn parse(argv: &[&str]) -> ProxyArgs {
        Cmd::try_parse_from(std::iter::once("ramp-proxy").chain(argv.iter().copied()))
            .expect("valid arguments")
            .args
    }

    #[test]
    fn flag_mode_from_the_command_line() {
        let config = build_config(&parse(&[
            "--mode",
            "flag",
            "--upstream",
            "127.0.0.1:8001,127.0.0.1:8002",
            "--flag-key",
            "checkout_v2",
            "--flag-salt",
            "checkout-2025-10",
            "--sticky-header",
            "X-User-Id",
        ]))
        .expect("valid flag mode");
        let Mode::Flag(flag) = &config.mode else {
            panic!("flag mode expected, got {:?}", config.mode)
        };
        assert_eq!(flag.upstream.len(), 2);
        assert_eq!(
            (flag.key.as_str(), flag.salt.as_str()),
            ("checkout_v2", "checkout-2025-10")
        );
        assert_eq!(
            config.sticky,
            Some(config::StickySource::Header("x-user-id".into()))
        );
        // Without a sticky key flag mode cannot place anyone: refused, as the user's input.
        let e = build_config(&parse(&[
            "--mode",
            "flag",
            "--upstream",
            "127.0.0.1:8001",
            "--flag-key",
            "k",
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("`sticky`"), "{e}");
        assert!(CliError::from(e).is_invalid_input());
    }

    #[test]
    fn the_client_body_idle_deadline_has_an_option() {
        let config = build_config(&parse(&[
            "--stable",
            "127.0.0.1:1",
            "--canary",
            "127.0.0.1:2",
            "--client-body-idle-ms",
            "2500",
        ]))
        .expect("valid");
        assert_eq!(
            config.client_body_idle_timeout,
            std::time::Duration::from_millis(2500)
        );
        let e = build_config(&parse(&[
            "--stable",
            "127.0.0.1:1",
            "--canary",
            "127.0.0.1:2",
            "--client-body-idle-ms",
            "0",
        ]))
        .unwrap_err();
        assert!(
            e.to_string().contains("`timeouts.client_body_idle_ms`"),
            "{e}"
        );
    }

    #[test]
    fn an_option_replaces_a_file_value_and_its_place() {
        let dir = std::env::temp_dir().join(format!("ramp-proxy-overlay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("proxy.toml");
        std::fs::write(
            &path,
            "listen = \"nowhere\"\nstable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:x\"]\n",
        )
        .expect("write");
        let file = path.display().to_string();
        let e = build_config(&parse(&["--config", &file, "--listen", "also-nowhere"]))
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).ok();
        // The file's bad canary is located; the option's bad listener is not in the file, so
        // it names the file alone (and comes last), never line 1 where the file's one was.
        assert_eq!(
            e,
            format!(
                "{file}:3:11: `canary`: \"127.0.0.1:x\" is not an IP:port socket address\n\
                 {file}: `listen`: \"also-nowhere\" is not an IP:port socket address"
            )
        );
    }
}
