//! `ramp flags serve`: the options and the run loop, so that wiring the subcommand into a
//! binary is one line (`ramp_flags::cli::run(&args, shutdown).await`). Errors are typed; the
//! binary maps them to exit codes ([`FlagsError::is_invalid_input`] → 2, else 1).

use crate::distinct::{WindowConfig, WindowConfigError};
use crate::flags::{load_flags_file, FlagFileErrors, FlagState, WeightError};
use crate::ofrep::{self, ApiToken, RateLimit, RateLimitError, ServeOptions, Stats, TokenError};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The largest token file read: a token is at most [`ofrep::MAX_TOKEN_BYTES`]; a bigger file
/// is the wrong file.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// How many slots the statistics window moves by: 10 s steps for the default five minutes.
const STATS_SLOTS: u32 = 30;

/// Why the flags server could not run.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// The flags file is unreadable or invalid; every problem is listed, located.
    #[error("invalid flags file:\n{0}")]
    Flags(FlagFileErrors),
    /// The token file cannot be read.
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        /// The file named by `--token-file`.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The token file does not hold a usable token.
    #[error("invalid token in {path}: {reason}")]
    Token {
        /// The file named by `--token-file`.
        path: PathBuf,
        /// What is wrong with the token.
        reason: TokenError,
    },
    /// The token file is larger than any token.
    #[error("the token file {0} is larger than 64 KiB; it should hold one token")]
    TokenFileTooLarge(PathBuf),
    /// `--listen` is not an IP address and port.
    #[error("invalid --listen {0:?}: expected IP:PORT, e.g. 127.0.0.1:8016")]
    Listen(String),
    /// `--rate-limit` is out of range.
    #[error("invalid --rate-limit: {0}")]
    RateLimit(#[from] RateLimitError),
    /// `--weight` is out of range.
    #[error("invalid --weight: {0}")]
    Weight(#[from] WeightError),
    /// `--stats-window` or `--stats-exact-cap` is out of range.
    #[error("invalid statistics options: {0}")]
    Stats(#[from] WindowConfigError),
    /// The listener could not be bound (address in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl FlagsError {
    /// Whether the failure is the user's input (exit code 2) rather than the machine's.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, FlagsError::Bind { .. })
    }
}

/// `ramp flags serve` options.
///
/// Flags with their own `schedule` count its `after` times from when this server started
/// listening (there is no rollout to start them): a restarted server starts its schedules
/// again. Inside `ramp run` they count from the rollout's journaled start instead.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Flags file (TOML: one [flags.NAME] table per flag). A flag's `schedule` counts its
    /// `after` times from when this server starts listening.
    #[arg(long)]
    pub flags: PathBuf,
    /// Address to serve OFREP on (8016 is flagd's OFREP port, the providers' default).
    #[arg(long, default_value = "127.0.0.1:8016")]
    pub listen: String,
    /// File holding the API token clients must send (as `Authorization: Bearer TOKEN` or
    /// `X-API-Key: TOKEN`); surrounding whitespace is ignored. Without it, no token is needed.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Requests per second over all clients (burst: one second's worth); more get 429 with
    /// Retry-After.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Initial weight, in percent, of the rollout that `follow = "rollout"` flags follow.
    /// Without it they serve their default variant (reason DEFAULT) until a driver publishes
    /// a weight.
    #[arg(long)]
    pub weight: Option<f64>,
    /// Seconds over which GET /stats counts distinct targeting keys per flag and outcome
    /// (cut into 30 slots; at least 3 s, at most a day).
    #[arg(long, default_value_t = 300)]
    pub stats_window: u64,
    /// Distinct live keys per flag counted exactly; beyond, a HyperLogLog estimates them
    /// (about 1.6 % standard error) so that memory stays bounded.
    #[arg(long, default_value_t = 100_000)]
    pub stats_exact_cap: usize,
    /// Count nothing (GET /stats answers 404), for the last few percent of throughput.
    #[arg(long)]
    pub no_stats: bool,
}

/// Everything `run` needs, built from [`Args`] without binding anything: the state (whose
/// weight handle a live driver can take before serving) and the options.
#[derive(Debug)]
pub struct Prepared {
    /// The flags and the live weight.
    pub state: Arc<FlagState>,
    /// The server's options (token, rate limit, limits).
    pub options: ServeOptions,
    /// Where to listen.
    pub listen: SocketAddr,
}

/// Loads the flags and the token and checks every option.
pub fn prepare(args: &Args) -> Result<Prepared, FlagsError> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| FlagsError::Listen(args.listen.clone()))?;
    let flags = load_flags_file(&args.flags).map_err(FlagsError::Flags)?;
    let state = Arc::new(FlagState::new(flags));
    if let Some(p) = args.weight {
        state.set_rollout_weight_percent(p)?;
    }
    let mut options = ServeOptions::default();
    if let Some(path) = &args.token_file {
        options.token = Some(read_token(path)?);
    }
    if let Some(n) = args.rate_limit {
        options.rate_limit = Some(RateLimit::per_second(n)?);
    }
    let window = WindowConfig::new(
        std::time::Duration::from_secs(args.stats_window),
        STATS_SLOTS,
        args.stats_exact_cap,
    )?;
    options.stats = (!args.no_stats).then(|| Stats::new(window));
    Ok(Prepared {
        state,
        options,
        listen,
    })
}

/// Reads a token file (bounded), trimming surrounding whitespace and the final newline.
fn read_token(path: &PathBuf) -> Result<ApiToken, FlagsError> {
    let meta = std::fs::metadata(path).map_err(|source| FlagsError::TokenFile {
        path: path.clone(),
        source,
    })?;
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        return Err(FlagsError::TokenFileTooLarge(path.clone()));
    }
    let text = std::fs::read_to_string(path).map_err(|source| FlagsError::TokenFile {
        path: path.clone(),
        source,
    })?;
    ApiToken::new(text.trim()).map_err(|reason| FlagsError::Token {
        path: path.clone(),
        reason,
    })
}

/// Loads the flags, binds the listener and serves OFREP until `shutdown` completes.
pub async fn run(
    args: &Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), FlagsError> {
    let prepared = prepare(args)?;
    let listener = TcpListener::bind(prepared.listen)
        .await
        .map_err(|source| FlagsError::Bind {
            addr: prepared.listen,
            source,
        })?;
    let snapshot = prepared.state.snapshot();
    tracing::info!(
        listen = %prepared.listen,
        flags = snapshot.flags().flags().len(),
        auth = prepared.options.token.is_some(),
        rate_limit = ?prepared.options.rate_limit.map(|l| l.rate()),
        schedules = snapshot.flags().has_schedules(),
        "ramp flags: serving OFREP"
    );
    // Schedules run on the time since the server started listening (documented on `Args`).
    let schedules = tokio::spawn(ofrep::run_schedules(
        Arc::clone(&prepared.state),
        ofrep::schedule_origin(),
    ));
    ofrep::serve(listener, prepared.state, prepared.options, shutdown).await;
    schedules.abort();
    Ok(())
}
