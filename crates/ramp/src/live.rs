//! The live commands: `ramp run`, `ramp rehearse`, the operator verbs (`status`, `pause`,
//! `resume`, `promote`, `abort`, `approve`), `history` and `report`.
//!
//! The rollout itself is `ramp_live::run`; this module resolves the plan's router and
//! control settings, starts a runtime, prints progress and says how the command ended
//! (`main` chooses the exit code).

use crate::journals::Source;
use crate::{open_output, progress, Ended, Invalid};
use anyhow::Context;
use clap::Args;
use http::{Method, StatusCode};
use ramp_core::plan::Router;
use ramp_core::summary::Summary;
use ramp_core::{parse_plan, Plan};
use ramp_live::control::{ActionBody, Verb};
use ramp_live::http::{ApiClient, HttpError};
use ramp_live::routers::command::CommandRouter;
use ramp_live::routers::haproxy::HaproxyRouter;
use ramp_live::routers::LiveRouter;
use ramp_live::seams::FenceToken;
use ramp_live::stores::Controller;
use ramp_live::{ProxyAdmin, RunConfig, RunEnd, StatusView};
use ramp_store::{RunRecord, RunStatus};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The journal used when `--journal` is not given: in the current directory, so that the
/// verbs run where `ramp run` ran find it.
pub const DEFAULT_JOURNAL: &str = "ramp.db";

/// Options shared by `ramp run` and `ramp rehearse`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The plan (TOML); it needs a [router] section.
    pub plan: PathBuf,
    /// The SQLite journal (created if missing; default ramp.db). Running the same plan again
    /// with the same journal resumes an unfinished run. Refused with a plan whose [store]
    /// keeps the journal in etcd.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Write the report here: HTML when the name ends in .html, else Markdown.
    #[arg(long, value_name = "FILE.md|FILE.html")]
    pub report: Option<PathBuf>,
    /// Write the JSON summary here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print only the outcome.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print every checkpoint's monitoring panel, not only stage ends and changes.
    #[arg(long)]
    pub all_panels: bool,
    /// Start over deliberately: drive a proxy whose weights were set by a run this journal
    /// does not hold (the journal was emptied or replaced). The new run begins at stage 1,
    /// with the canary at 0 % first. Without it such a proxy is refused (exit 2).
    #[arg(long)]
    pub new_run: bool,
    /// File holding the bearer token (at least 16 characters) that `GET /metrics` on the
    /// control API requires; without it the metrics are served to every scrape, like
    /// `/healthz`. Separate from the control token, so that a Prometheus server can read
    /// the rollout without being able to act on it.
    #[arg(long, value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
}

/// How a verb finds the running controller.
#[derive(Args, Debug)]
pub struct Target {
    /// The journal the controller writes.
    #[arg(long, default_value = DEFAULT_JOURNAL)]
    pub journal: PathBuf,
    /// The deployment; needed only when several are running.
    #[arg(long)]
    pub deployment: Option<String>,
    /// The control API's URL, instead of the one the journal records.
    #[arg(long, value_name = "URL")]
    pub control: Option<String>,
    /// File holding the control API's bearer token (else $RAMP_TOKEN, if set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub store: crate::journals::EtcdTarget,
}

/// An operator action's arguments.
#[derive(Args, Debug)]
pub struct VerbArgs {
    #[command(flatten)]
    pub target: Target,
    /// Who acts, for the journal (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
    /// Why, for the journal.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// What `ramp run` and `ramp rehearse`, which share one code path, are asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `ramp run`: the rollout alone.
    Rollout,
    /// `ramp rehearse`: the rollout with one of the plan's rehearsals injected through the
    /// proxy.
    Rehearse {
        /// The rehearsal's name; needed only when the plan has several.
        name: Option<String>,
    },
}

/// `ramp run` / `ramp rehearse`.
pub fn run(args: &RunArgs, mode: Mode) -> anyhow::Result<Ended> {
    let text = std::fs::read_to_string(&args.plan).map_err(|e| {
        Invalid(format!(
            "{}: cannot read the plan file: {e}",
            args.plan.display()
        ))
    })?;
    let plan =
        parse_plan(&text, &args.plan.display().to_string()).map_err(|e| Invalid(e.to_string()))?;
    let follows = crate::next::load(&args.plan, &plan)?;
    let base_dir = args
        .plan
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let Some(router) = plan.router.clone() else {
        return Err(Invalid(format!(
            "{}: the plan has no [router] section: a live run needs `admin = \"http://127.0.0.1:PORT\"` (a running `ramp proxy`) or `proxy_config = \"proxy.toml\"`",
            args.plan.display()
        ))
        .into());
    };
    let rehearsal = match mode {
        Mode::Rollout => None,
        Mode::Rehearse { name } => Some(pick_rehearsal(&plan, name.as_deref(), &args.plan)?),
    };
    if let (Some(journal), Some(_)) = (&args.journal, &plan.store) {
        return Err(Invalid(format!(
            "{}: --journal {} names a SQLite journal, but the plan's [store] keeps the journal in etcd; leave --journal out (or remove [store] to use the SQLite journal)",
            args.plan.display(),
            journal.display()
        ))
        .into());
    }
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_JOURNAL));
    let control_token = control_token(&plan, &base_dir)?;
    let metrics_token = args
        .metrics_token_file
        .as_deref()
        .map(metrics_token)
        .transpose()?;
    let ofrep_token = plan
        .ofrep
        .token_file
        .as_ref()
        .map(|f| read_token(&base_dir.join(f)))
        .transpose()?;
    let listen = plan
        .control
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !listen.ip().is_loopback() && control_token.is_none() {
        return Err(Invalid(format!(
            "{}: control.listen {listen} is not loopback and no token is configured; refusing to serve the control API unauthenticated",
            args.plan.display()
        ))
        .into());
    }
    let json_out = args
        .json
        .as_ref()
        .map(|p| open_output(p, "JSON summary"))
        .transpose()?;
    let report_out = args
        .report
        .as_ref()
        .map(|p| open_output(p, "report"))
        .transpose()?;
    let rt = runtime()?;
    let plan = Arc::new(plan);
    let end = rt.block_on(async {
        // The run's fencing token: unset without an election (the SQLite store), so routers
        // send none; the driver sets it when its controller leads, and every router built
        // here reads that one token.
        let fence = FenceToken::none();
        let (router, _embedded) =
            connect_router(&router, &plan.deployment.id, &base_dir, &args.plan, &fence).await?;
        let control_listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen for the control API on {listen}"))?;
        let ofrep_listener = if plan.flags.flags().is_empty() {
            None
        } else {
            let at = plan.ofrep.listen;
            Some(
                tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot serve the flags over OFREP on {at}"))?,
            )
        };
        let config = RunConfig {
            plan: Arc::clone(&plan),
            plan_path: args.plan.display().to_string(),
            plan_text: text.clone(),
            base_dir: base_dir.clone(),
            journal: journal.clone(),
            router,
            control_listener,
            control_token,
            metrics_token,
            rehearsal,
            ofrep_listener,
            ofrep_token,
            halt_on_interrupt: None,
            new_run: args.new_run,
            // One token for the run: the driver sets it if it wins the election on etcd.
            fence: fence.clone(),
        };
        let mut printer =
            progress::Printer::new(Arc::clone(&plan), args.quiet).with_all_panels(args.all_panels);
        let mut on = |ev: ramp_live::Progress<'_>| printer.show_live(ev);
        let end = ramp_live::run(config, &mut on, shutdown_signal()).await;
        end.map(|e| (e, printer)).map_err(live_error)
    })?;
    let (end, printer) = end;
    match end {
        RunEnd::Interrupted {
            run_id: Some(run_id),
        } => {
            eprintln!(
                "ramp: run {run_id} interrupted; {} keeps the current weight. Run the same command again to resume.",
                router_noun(&router)
            );
            Ok(Ended::Interrupted)
        }
        RunEnd::Interrupted { run_id: None } => {
            eprintln!(
                "ramp: interrupted while waiting for the router (or standing by for the leader on etcd); no run was opened and nothing was sent to the router."
            );
            Ok(Ended::Interrupted)
        }
        RunEnd::Finished { mut summary, .. } => {
            // A live run has no seed: the preview of the plan to follow uses seed 1.
            summary.next = follows.map(|n| crate::next::preview(&n, 1));
            printer.outcome(&summary);
            let written = [
                json_out.map(|o| o.write(&ramp_report::json(&summary))),
                report_out.map(|o| o.write_report(&summary)),
            ];
            for w in written.into_iter().flatten() {
                w?;
            }
            for r in &summary.rehearsals {
                print!("{}", printer.rehearsal_breakdown(r));
            }
            Ok(match summary.rehearsals.first() {
                Some(r) => Ended::Rehearsal {
                    passed: r.met_target(),
                },
                None => Ended::Rollout(summary.outcome),
            })
        }
    }
}

/// Errors of the live driver: a changed plan is the user's input, the rest the machine's.
fn live_error(e: ramp_live::LiveError) -> anyhow::Error {
    match e {
        ramp_live::LiveError::PlanChanged { .. }
        | ramp_live::LiveError::WrongProxy { .. }
        | ramp_live::LiveError::ForeignRun { .. }
        | ramp_live::LiveError::JournalBehind { .. }
        | ramp_live::LiveError::RouterDisagrees { .. }
        | ramp_live::LiveError::NoCounters { .. }
        | ramp_live::LiveError::Prometheus { .. }
        | ramp_live::LiveError::Notify(_)
        | ramp_live::LiveError::File { .. } => Invalid(e.to_string()).into(),
        ramp_live::LiveError::Store(ramp_store::StoreError::Locked { .. }) => {
            Invalid(e.to_string()).into()
        }
        other => anyhow::Error::new(other),
    }
}

/// The rehearsal to run: the named one, or the plan's only one.
fn pick_rehearsal(
    plan: &Plan,
    name: Option<&str>,
    path: &Path,
) -> anyhow::Result<ramp_core::plan::Rehearsal> {
    let names = || {
        plan.rehearsals
            .iter()
            .map(|r| format!("\"{}\"", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => plan
            .rehearsals
            .iter()
            .find(|r| r.name == n)
            .cloned()
            .ok_or_else(|| {
                Invalid(format!(
                    "{}: no rehearsal named \"{n}\" (the plan has: {})",
                    path.display(),
                    names()
                ))
                .into()
            }),
        None => match plan.rehearsals.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Invalid(format!(
                "{}: the plan has no [[rehearsals]] to run",
                path.display()
            ))
            .into()),
            _ => Err(Invalid(format!(
                "{}: the plan has several rehearsals; choose one with --name ({})",
                path.display(),
                names()
            ))
            .into()),
        },
    }
}

/// The shortest control API token accepted, as for the proxy's admin API: whoever holds it
/// can abort or promote a rollout, so it must not be guessable.
const MIN_CONTROL_TOKEN: usize = 16;

/// The control API's token from the plan's `[control]` settings.
fn control_token(plan: &Plan, base_dir: &Path) -> anyhow::Result<Option<String>> {
    let (token, origin) = if let Some(file) = &plan.control.token_file {
        let path = base_dir.join(file);
        (read_token(&path)?, path.display().to_string())
    } else if let Some(var) = &plan.control.token_env {
        match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => (t.trim().to_string(), format!("${var}")),
            _ => {
                return Err(Invalid(format!(
                    "control.token_env names ${var}, which is not set or empty"
                ))
                .into())
            }
        }
    } else {
        return Ok(None);
    };
    let n = token.chars().count();
    if n < MIN_CONTROL_TOKEN {
        return Err(Invalid(format!(
            "{origin}: the control API token has {n} characters; at least {MIN_CONTROL_TOKEN} are required"
        ))
        .into());
    }
    Ok(Some(token))
}

/// The metrics token from `--metrics-token-file`, as long as a control token must be.
fn metrics_token(path: &Path) -> anyhow::Result<String> {
    let token = read_token(path)?;
    let n = token.chars().count();
    if n < MIN_CONTROL_TOKEN {
        return Err(Invalid(format!(
            "{}: the metrics token has {n} characters; at least {MIN_CONTROL_TOKEN} are required",
            path.display()
        ))
        .into());
    }
    Ok(token)
}

/// A token file's content, trimmed; an empty file is an error.
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Invalid(format!(
            "{}: cannot read the token file: {e}",
            path.display()
        ))
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(Invalid(format!("{}: the token file is empty", path.display())).into());
    }
    Ok(token)
}

/// The plan's router; for an embedded proxy, also the task serving it (it stops with the
/// process). Every Ramp proxy it drives sends `fence` with its weight changes once the token
/// is set.
async fn connect_router(
    router: &Router,
    deployment: &str,
    base_dir: &Path,
    plan_path: &Path,
    fence: &FenceToken,
) -> anyhow::Result<(LiveRouter, Option<tokio::task::JoinHandle<()>>)> {
    match router {
        Router::Admin { url, token_file } => {
            let token = token_file
                .as_ref()
                .map(|f| read_token(&base_dir.join(f)))
                .transpose()?;
            let admin = ProxyAdmin::new(url, token)
                .map_err(|e| Invalid(format!("{}: router.admin: {e}", plan_path.display())))?
                .with_fence(fence.clone());
            Ok((admin.into(), None))
        }
        Router::Haproxy(h) => Ok((
            LiveRouter::Haproxy(HaproxyRouter::new(h.clone(), base_dir)),
            None,
        )),
        Router::Command(c) => Ok((
            LiveRouter::Command(CommandRouter::new(
                c.clone(),
                base_dir.to_path_buf(),
                deployment,
            )),
            None,
        )),
        Router::Fleet {
            members,
            token_file,
        } => Ok((
            fleet(members, token_file.as_deref(), base_dir, plan_path, fence)?,
            None,
        )),
        Router::Nginx(nginx) => Ok((
            LiveRouter::Nginx(ramp_live::routers::Nginx::new(nginx, base_dir, deployment)),
            None,
        )),
        Router::Etcd(etcd) => {
            let token = etcd
                .token_file
                .as_ref()
                .map(|f| read_token(&base_dir.join(f)))
                .transpose()?;
            let members = etcd
                .members
                .iter()
                .map(|url| {
                    ProxyAdmin::new(url, token.clone()).map_err(|e| {
                        Invalid(format!("{}: router.admin: {url}: {e}", plan_path.display()))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut config = ramp_etcd::EtcdConfig::new(etcd.endpoints.clone());
            config.prefix = etcd.prefix.clone();
            Ok((
                LiveRouter::Etcd(ramp_live::routers::EtcdRouter::new(
                    config,
                    deployment,
                    members,
                    fence.clone(),
                )),
                None,
            ))
        }
        Router::Embedded { config } => {
            let path = base_dir.join(config);
            let config = ramp_proxy::Config::load(&path)
                .map_err(|e| Invalid(format!("router.proxy_config: {e}")))?;
            // The weights and the run that set them, so that a restarted embedded proxy
            // reports the same `set_by` as before.
            let weights =
                ramp_proxy::state::initial_weights(&config).context("proxy state file")?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("the proxy cannot listen on {}", config.listen))?;
            let admin = tokio::net::TcpListener::bind(config.admin_listen)
                .await
                .with_context(|| {
                    format!(
                        "the proxy admin API cannot listen on {}",
                        config.admin_listen
                    )
                })?;
            let admin_addr = admin.local_addr()?;
            let token = config.admin_token.clone();
            let proxy = ramp_proxy::Proxy::with_weights(config, weights);
            let task = tokio::spawn(async move {
                let _ = ramp_proxy::serve(proxy, listener, admin, std::future::pending()).await;
            });
            let client = ProxyAdmin::new(&format!("http://{admin_addr}"), token)
                .context("embedded proxy")?
                .with_fence(fence.clone());
            Ok((client.into(), Some(task)))
        }
    }
}

/// What the plan's router is called in a sentence ("the proxy", "HAProxy").
fn router_noun(router: &Router) -> &'static str {
    match router {
        Router::Admin { .. } | Router::Embedded { .. } => "the proxy",
        Router::Fleet { .. } => "the fleet",
        Router::Haproxy(_) => "HAProxy",
        Router::Nginx(_) => "nginx",
        Router::Command(_) => "the command router",
        Router::Etcd(_) => "the etcd weight key",
    }
}

/// A fleet of running Ramp proxies, every member with the plan's admin token and the run's
/// fencing token.
fn fleet(
    members: &[String],
    token_file: Option<&Path>,
    base_dir: &Path,
    plan_path: &Path,
    fence: &FenceToken,
) -> anyhow::Result<LiveRouter> {
    let token = token_file
        .map(|f| read_token(&base_dir.join(f)))
        .transpose()?;
    let admins = members
        .iter()
        .map(|url| {
            ProxyAdmin::new(url, token.clone())
                .map(|admin| admin.with_fence(fence.clone()))
                .map_err(|e| Invalid(format!("{}: router.admin: {url}: {e}", plan_path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LiveRouter::Fleet(ramp_live::routers::Fleet::new(admins)))
}

/// A multi-threaded runtime for the live commands.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

// -- Verbs ----------------------------------------------------------------------------------

/// The run a verb addresses: the deployment's running run, or the only running one.
fn find_run(target: &Target) -> anyhow::Result<(Source, RunRecord)> {
    let journal = Source::open(&target.journal, &target.store, target.deployment.as_deref())?;
    let runs = journal.runs(target.deployment.as_deref())?;
    let running: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Running)
        .collect();
    let chosen = match (running.as_slice(), &target.deployment) {
        ([one], _) => (*one).clone(),
        ([], Some(d)) => match runs.first() {
            // The deployment's latest run, finished: status can still show it.
            Some(last) => last.clone(),
            None => {
                return Err(Invalid(format!("{}: no run of deployment {d}", journal.name())).into())
            }
        },
        ([], None) => match runs.first() {
            Some(last) => last.clone(),
            None => {
                return Err(Invalid(format!("{}: the journal has no runs", journal.name())).into())
            }
        },
        (many, _) => {
            let ids: Vec<String> = many.iter().map(|r| r.deployment_id.clone()).collect();
            return Err(Invalid(format!(
                "several rollouts are running ({}); choose one with --deployment",
                ids.join(", ")
            ))
            .into());
        }
    };
    Ok((journal, chosen))
}

/// A client for the run's control API.
fn control_client(target: &Target, run: &RunRecord) -> anyhow::Result<ApiClient> {
    let url = match (&target.control, &run.control_addr) {
        (Some(u), _) => u.clone(),
        (None, Some(a)) => a.clone(),
        (None, None) => {
            return Err(anyhow::anyhow!(
                "run {} of {} has no control API on record",
                run.run_id,
                run.deployment_id
            ))
        }
    };
    let token = match &target.token_file {
        Some(f) => Some(read_token(f)?),
        None => std::env::var("RAMP_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
    };
    let client = ApiClient::new(&url, token, Duration::from_secs(15))
        .map_err(|e| Invalid(format!("control API: {e}")))?;
    // Name the run meant: the recorded address may now belong to another rollout.
    let meant = format!("{}/{}", run.deployment_id, run.run_id);
    Ok(match http::HeaderValue::from_str(&meant) {
        Ok(v) => client.with_header(
            http::HeaderName::from_static(ramp_live::control::RUN_HEADER),
            v,
        ),
        Err(_) => client,
    })
}

/// Maps a control API answer to the status view, or to an error (`Invalid` when the
/// operator's request was refused).
fn answer(status: StatusCode, body: &[u8]) -> anyhow::Result<StatusView> {
    let text = String::from_utf8_lossy(body).trim().to_string();
    match status {
        StatusCode::MISDIRECTED_REQUEST => Err(anyhow::anyhow!(
            "the controller of this run is not running ({text}); run `ramp run PLAN` again to resume it"
        )),
        StatusCode::OK => serde_json::from_slice(body)
            .with_context(|| format!("unexpected answer from the control API: {text}")),
        StatusCode::UNAUTHORIZED => Err(Invalid(format!(
            "the control API refused the token ({text}); pass --token-file or set RAMP_TOKEN"
        ))
        .into()),
        s if s.is_client_error() => Err(Invalid(format!("refused: {text}")).into()),
        s => Err(anyhow::anyhow!("control API answered {s}: {text}")),
    }
}

fn unreachable_controller(run: &RunRecord, e: &HttpError) -> anyhow::Error {
    anyhow::anyhow!(
        "the controller of {} (run {}, pid {}) is not reachable: {e}. If it stopped, run `ramp run {}` again to resume it.",
        run.deployment_id,
        run.run_id,
        run.controller_pid.map_or("?".into(), |p| p.to_string()),
        run.plan_path
    )
}

/// `ramp status`.
pub fn status(target: &Target, json: bool) -> anyhow::Result<()> {
    let (journal, run) = find_run(target)?;
    let controllers = journal.controllers()?;
    let print_view =
        |view: &StatusView, json: bool| print_status(view, controllers.as_deref(), json);
    if run.status == RunStatus::Finished {
        let summary = summary_of(&journal, &run)?;
        let view = finished_view(&run, &summary);
        print_view(&view, json);
        return Ok(());
    }
    let client = control_client(target, &run)?;
    let rt = runtime()?;
    match rt.block_on(client.call(Method::GET, "/status", None)) {
        Ok((StatusCode::MISDIRECTED_REQUEST, body)) => {
            // Another rollout's controller holds the recorded address: ours is down.
            let summary = summary_of(&journal, &run)?;
            let view = finished_view(&run, &summary);
            print_view(&view, json);
            Err(answer(StatusCode::MISDIRECTED_REQUEST, &body)
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("misdirected")))
        }
        Ok((status, body)) => {
            let view = answer(status, &body)?;
            print_view(&view, json);
            Ok(())
        }
        Err(e) => {
            // The controller is down: show what the journal knows.
            let summary = summary_of(&journal, &run)?;
            let view = finished_view(&run, &summary);
            print_view(&view, json);
            Err(unreachable_controller(&run, &e))
        }
    }
}

/// Prints the status view; with the journal in etcd, also the deployment's controllers
/// (leader and standbys), as `controllers` in JSON.
fn print_status(view: &StatusView, controllers: Option<&[Controller]>, json: bool) {
    if json {
        let mut value = serde_json::to_value(view).unwrap_or_default();
        if let (Some(c), Some(map)) = (controllers, value.as_object_mut()) {
            map.insert(
                "controllers".into(),
                serde_json::to_value(c).unwrap_or_default(),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", view.render());
        if let Some(c) = controllers {
            if c.is_empty() {
                println!("controllers: none is running");
            }
            for one in c {
                println!("{}: {}", one.role, one.who);
            }
        }
    }
}

/// A status view rebuilt from the journal (finished runs, or a controller that is down).
fn finished_view(run: &RunRecord, summary: &Summary) -> StatusView {
    StatusView {
        deployment_id: run.deployment_id.clone(),
        run_id: run.run_id,
        state: run.status.as_str().to_string(),
        outcome: run.outcome.clone(),
        t_s: summary.totals.duration_s,
        weight: summary.stages.last().map_or(0.0, |s| {
            if summary.rollback.is_some() {
                0.0
            } else {
                s.weight
            }
        }),
        stage: None,
        paused: None,
        awaiting: None,
        gates: Vec::new(),
        tests: Vec::new(),
        recent: ramp_live::status::recent_events(summary),
        metrics_problem: None,
        metrics_incomplete: None,
        flags: summary.flags.clone(),
        members: Vec::new(),
        history: None,
    }
}

/// `ramp pause|resume|promote|abort|approve`; `full` is promote's `--full`, `stage` is
/// approve's `--stage`.
pub fn verb(verb: Verb, args: &VerbArgs, full: bool, stage: Option<usize>) -> anyhow::Result<()> {
    let (_journal, run) = find_run(&args.target)?;
    if run.status == RunStatus::Finished {
        return Err(Invalid(format!(
            "run {} of {} is already finished ({})",
            run.run_id,
            run.deployment_id,
            run.outcome.as_deref().unwrap_or("?")
        ))
        .into());
    }
    let who = match (&args.who, &verb) {
        (Some(w), _) => w.clone(),
        (None, Verb::Approve) => {
            return Err(Invalid(
                "ramp approve needs --as NAME (the approver's name as the plan spells it)".into(),
            )
            .into())
        }
        (None, Verb::Pause | Verb::Resume | Verb::Promote | Verb::Abort) => {
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        }
    };
    let body = ActionBody {
        who,
        reason: args.reason.clone(),
        full,
        stage,
    };
    let body = serde_json::to_string(&body).context("encoding the action's body")?;
    let client = control_client(&args.target, &run)?;
    let rt = runtime()?;
    let (status, resp) = rt
        .block_on(client.call(Method::POST, &format!("/{}", verb.key()), Some(body)))
        .map_err(|e| unreachable_controller(&run, &e))?;
    let view = answer(status, &resp)?;
    print!("{}", view.render());
    Ok(())
}

/// `ramp history`.
pub fn history(journal: &Source, deployment: Option<&str>, json: bool) -> anyhow::Result<()> {
    let runs = journal.runs(deployment)?;
    if json {
        let rows: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run_id": r.run_id,
                    "deployment_id": r.deployment_id,
                    "plan": r.plan_path,
                    "started": ramp_live::driver::rfc3339(r.started_unix_ms),
                    "status": r.status.as_str(),
                    "outcome": r.outcome,
                    "duration_s": r.finished_unix_ms.map(|f| (f - r.started_unix_ms) as f64 / 1000.0),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:>5}  {:<32} {:<21} {:<9} {:<22} {:>9}",
        "RUN", "DEPLOYMENT", "STARTED (UTC)", "STATUS", "OUTCOME", "DURATION"
    );
    for r in &runs {
        let duration = r.finished_unix_ms.map_or("-".to_string(), |f| {
            format!("{:.0}s", (f - r.started_unix_ms) as f64 / 1000.0)
        });
        println!(
            "{:>5}  {:<32} {:<21} {:<9} {:<22} {:>9}",
            r.run_id,
            r.deployment_id,
            ramp_live::driver::rfc3339(r.started_unix_ms),
            r.status.as_str(),
            r.outcome.as_deref().unwrap_or("-"),
            duration
        );
    }
    Ok(())
}

/// The summary of a run: the journaled one when finished, else rebuilt by replaying the
/// journal through the engine (the same path a resumed controller takes: the latest engine
/// snapshot and the inputs after it).
fn summary_of(journal: &Source, run: &RunRecord) -> anyhow::Result<Summary> {
    let journal = journal.store();
    if let Some(text) = &run.summary_json {
        return serde_json::from_str(text)
            .with_context(|| format!("run {}: the journaled summary is unreadable", run.run_id));
    }
    // From the latest engine snapshot and the inputs after it, as a resume does (every
    // input when there is no usable snapshot).
    let replayed = ramp_live::driver::replay_run(journal, run, true)
        .with_context(|| format!("run {}: the journal cannot be replayed", run.run_id))?;
    let mut s = replayed.engine.summary();
    s.mode = "live (in progress)".into();
    let events = journal.events(run.run_id, 0)?;
    s.checks = ramp_live::driver::checks_from_events(&events);
    s.infrastructure = ramp_live::driver::infra_from_events(&events);
    ramp_live::driver::attach_takeovers(&mut s, &events);
    Ok(s)
}

/// The plan to follow of a journaled run, previewed as `ramp run` does: the controller writes
/// its summary to the journal before the preview is made, and an unfinished run has none.
/// The journaled plan names it relative to the plan's path as the run was started; when it
/// cannot be read from here the report leaves the section out and says why on stderr
/// (nothing is invented).
fn next_of(run: &RunRecord) -> Option<ramp_core::summary::NextSummary> {
    let plan = parse_plan(&run.plan_toml, &run.plan_path).ok()?;
    plan.next.as_ref()?;
    match crate::next::load(Path::new(&run.plan_path), &plan) {
        Ok(next) => next.map(|n| crate::next::preview(&n, 1)),
        Err(e) => {
            eprintln!("ramp: the report leaves out the plan to follow: {e:#}");
            None
        }
    }
}

/// `ramp report ID`.
pub fn report(
    journal: &Source,
    id: i64,
    out: Option<&Path>,
    json: Option<&Path>,
) -> anyhow::Result<()> {
    let Some(run) = journal.run(id)? else {
        return Err(Invalid(format!(
            "{}: no run {id} (see `ramp history`)",
            journal.name()
        ))
        .into());
    };
    let mut summary = summary_of(journal, &run)?;
    if summary.next.is_none() {
        summary.next = next_of(&run);
    }
    match out {
        Some(p) => open_output(p, "report")?.write_report(&summary)?,
        None => print!("{}", ramp_report::markdown(&summary)),
    }
    if let Some(p) = json {
        open_output(p, "JSON summary")?.write(&ramp_report::json(&summary))?;
    }
    Ok(())
}
