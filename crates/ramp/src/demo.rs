//! `ramp demo`: the embedded default for a newcomer, nothing to install.
//!
//! It starts two small demo upstreams on loopback (stable, and a canary a little slower),
//! Ramp's proxy in front of them, an open-loop load generator, and runs a compressed plan
//! (`demo-plan.toml`, about a minute) through the live driver with progress, a journal, a
//! control API and a report. `--break` makes the canary regress part-way so that the
//! automatic rollback can be watched.

use crate::{open_output, progress, Ended, Invalid};
use anyhow::Context;
use clap::Args;
use ramp_core::engine::group;
use ramp_core::parse_plan;
use ramp_core::plan::{Check, Probe};
use ramp_core::Span;
use ramp_demo::{Behaviour, LoadConfig, Stack};
use ramp_live::{ProxyAdmin, RunConfig, RunEnd};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The demo's plan.
const PLAN: &str = include_str!("demo-plan.toml");

/// The plan of `ramp demo --rehearse`: the staging report's rollback rehearsal on live traffic.
const REHEARSAL_PLAN: &str = include_str!("demo-rehearsal.toml");

/// Requests per second the load generator sends through the proxy.
const DEMO_RPS: f64 = 100.0;

/// The staging report's traffic, for the rehearsal.
const REHEARSAL_RPS: f64 = 125.0;

/// When `--break` makes the canary regress, seconds after the start (in stage 2).
const BREAK_AT: Duration = Duration::from_secs(22);

/// Where the demo's controller reads canary and stable.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoMetrics {
    /// Ramp's proxy's exact `/snapshot` (nothing to install).
    Proxy,
    /// A real Prometheus scraping the demo upstreams every second (`apt-get install
    /// prometheus`), plus a query gate on their checkout success rate.
    Prometheus,
}

/// `ramp demo` options.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Make the canary regress part-way (errors and latency) to show the automatic rollback.
    #[arg(long = "break", conflicts_with = "rehearse")]
    pub break_it: bool,
    /// Where the controller reads canary and stable: the proxy's snapshot, or a Prometheus
    /// server the demo starts (needs the `prometheus` package).
    #[arg(long, value_enum, default_value = "proxy")]
    pub metrics: DemoMetrics,
    /// Make the canary's checkouts fail part-way (30 % of them, with nothing else wrong),
    /// which only the query gate of `--metrics prometheus` sees.
    #[arg(long, conflicts_with_all = ["rehearse", "break_it"])]
    pub break_checkout: bool,
    /// Run the staging report's rollback rehearsal instead (+800 ms on 50% of canary requests at
    /// 125 req/s) and print its recovery breakdown; exit 0 when it recovered in time.
    #[arg(long)]
    pub rehearse: bool,
    /// The journal (default: demo.db in $XDG_STATE_HOME/ramp, or ~/.local/state/ramp: one
    /// per user, so that demos by different users of a machine do not share run numbers).
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
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<Ended> {
    if args.break_checkout && args.metrics != DemoMetrics::Prometheus {
        return Err(Invalid(
            "ramp demo: --break-checkout breaks what only the query gate of --metrics prometheus sees; add --metrics prometheus".into(),
        )
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
    // After the outputs: a bad output path is said before anything is created.
    let journal = match &args.journal {
        Some(path) => path.clone(),
        None => default_journal()?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (summary, printer) = rt.block_on(demo(args, journal))?;
    printer.outcome(&summary);
    for r in &summary.rehearsals {
        print!("{}", printer.rehearsal_breakdown(r));
    }
    let written = [
        json_out.map(|o| o.write(&ramp_report::json(&summary))),
        report_out.map(|o| o.write_report(&summary)),
    ];
    for w in written.into_iter().flatten() {
        w?;
    }
    Ok(match summary.rehearsals.first() {
        Some(r) => Ended::Rehearsal {
            passed: r.met_target(),
        },
        None => Ended::Rollout(summary.outcome),
    })
}

/// The demo's journal when none is given: the user's own state directory (XDG base
/// directories), created if missing; the system's temporary directory only when the user has
/// no home.
fn default_journal() -> anyhow::Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = match (non_empty("XDG_STATE_HOME"), non_empty("HOME")) {
        (Some(state), _) => PathBuf::from(state).join("ramp"),
        (None, Some(home)) => PathBuf::from(home).join(".local/state/ramp"),
        (None, None) => return Ok(std::env::temp_dir().join("ramp-demo.db")),
    };
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "cannot create the demo's journal directory {}",
            dir.display()
        )
    })?;
    Ok(dir.join("demo.db"))
}

async fn demo(
    args: &DemoArgs,
    journal: PathBuf,
) -> anyhow::Result<(ramp_core::summary::Summary, progress::Printer)> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    // The control API first, so that its dashboard's address is the first thing printed.
    let control_listener = TcpListener::bind(loopback).await?;
    if !args.quiet {
        println!(
            "Dashboard: http://{}/  (open it in a browser to watch the rollout live)",
            control_listener.local_addr()?
        );
    }

    // The plan, under a deployment id of its own for each demo.
    let (text, rps) = if args.rehearse {
        (REHEARSAL_PLAN, REHEARSAL_RPS)
    } else {
        (PLAN, DEMO_RPS)
    };
    let mut plan = parse_plan(text, "demo-plan.toml").map_err(|e| Invalid(e.to_string()))?;
    plan.deployment.id = format!(
        "{}-{}",
        plan.deployment.id,
        ramp_live::clock::unix_ms() / 1000
    );

    // Two upstreams (the canary a little slower, as a new version often is) and the proxy,
    // in-process, serving the plan's deployment, sticky on the load generator's user header.
    let stack = Stack::start(
        Behaviour::new("stable", 40.0, 90.0, 150.0, 0.002).context("demo stable upstream")?,
        Behaviour::new("canary", 44.0, 100.0, 170.0, 0.002).context("demo canary upstream")?,
        |config| {
            config.deployment_id = plan.deployment.id.clone();
            config.sticky = Some(ramp_proxy::config::StickySource::Header("x-user-id".into()));
        },
    )
    .await?;
    let (addrs, proxy_addr, admin_addr) = (
        [stack.stable_addr, stack.canary_addr],
        stack.proxy_addr,
        stack.admin_addr,
    );

    // With --metrics prometheus, a real Prometheus scrapes the upstreams and the plan reads
    // it; kept until the run ends.
    let _prometheus = match args.metrics {
        DemoMetrics::Proxy => None,
        DemoMetrics::Prometheus => {
            let p = crate::demo_metrics::judge_from_prometheus(&mut plan, &addrs).await?;
            if !args.quiet {
                println!(
                    "Prometheus {} scrapes both upstreams every second; the controller reads canary and stable there, and judges their checkout success rate",
                    p.url()
                );
            }
            Some(p)
        }
    };

    // Open-loop load through the proxy.
    let mut load = LoadConfig::new(proxy_addr, rps);
    load.users = 10_000;
    load.seed = 1;
    let load_task = tokio::spawn(ramp_demo::run_load(load, stack.stopped()));

    // Checks against the demo's own upstreams.
    for (name, addr) in [("Stable health", addrs[0]), ("Canary health", addrs[1])] {
        plan.checks.push(Check {
            name: name.into(),
            probe: Probe::Http {
                url: format!("http://{addr}/health"),
                expect_status: 200,
            },
            timeout: Span(2_000),
        });
    }
    let plan = Arc::new(plan);
    if !args.quiet {
        println!(
            "Ramp demo: stable upstream {}, canary upstream {} (a little slower), proxy {} (admin {}), {} req/s of open-loop load{}",
            addrs[0],
            addrs[1],
            proxy_addr,
            admin_addr,
            rps,
            if args.break_it {
                format!("; the canary will break at T+{}s", BREAK_AT.as_secs())
            } else if args.break_checkout {
                format!(
                    "; the canary's checkouts will start failing at T+{}s",
                    BREAK_AT.as_secs()
                )
            } else {
                String::new()
            }
        );
        println!(
            "Journal: {} (try `ramp status --journal {}` in another terminal)\n",
            journal.display(),
            journal.display()
        );
    }
    if args.break_it {
        let canary = Arc::clone(&stack.canary);
        tokio::spawn(async move {
            tokio::time::sleep(BREAK_AT).await;
            // 15% of requests fail and every one is 250 ms slower.
            canary.set_regression(0.15, 250.0);
        });
    }
    if args.break_checkout {
        let canary = Arc::clone(&stack.canary);
        tokio::spawn(async move {
            tokio::time::sleep(BREAK_AT).await;
            // Requests still succeed and are fast: only the business metric breaks.
            canary.set_checkout_failure_rate(0.3);
        });
    }

    let config = RunConfig {
        plan: Arc::clone(&plan),
        plan_path: "(ramp demo)".into(),
        plan_text: text.to_string(),
        base_dir: std::env::temp_dir(),
        journal,
        router: ProxyAdmin::new(&format!("http://{admin_addr}"), None)?.into(),
        control_listener,
        control_token: None,
        metrics_token: None,
        rehearsal: if args.rehearse {
            plan.rehearsals.first().cloned()
        } else {
            None
        },
        ofrep_listener: None,
        ofrep_token: None,
        // The demo's world ends with it: an interrupted demo is halted and recorded
        // finished, not left "running" in the journal for a resume that cannot come.
        halt_on_interrupt: Some(
            "the demo was interrupted (Ctrl-C); its upstreams and proxy end with it".into(),
        ),
        // Each demo starts its own proxy, whose weights no run has set yet.
        new_run: false,
        fence: ramp_live::seams::FenceToken::none(),
    };
    let mut printer =
        progress::Printer::new(Arc::clone(&plan), args.quiet).with_all_panels(args.all_panels);
    let mut on = |ev: ramp_live::Progress<'_>| printer.show_live(ev);
    let end = ramp_live::run(config, &mut on, crate::live::shutdown_signal()).await;
    stack.stop();
    if let Ok(Ok(report)) = load_task.await {
        if !args.quiet {
            println!(
                "Load: {} requests sent, {} ok, {} 5xx, {} failed, {} dropped",
                group(report.sent),
                group(report.ok),
                group(report.status_5xx),
                group(report.failed),
                group(report.dropped)
            );
        }
    }
    match end? {
        RunEnd::Finished { summary, .. } => Ok((*summary, printer)),
        // Only a run left open ends this way; the demo's is halted instead.
        RunEnd::Interrupted { .. } => Err(anyhow::anyhow!("interrupted")),
    }
}
