//! One soak run: the world, the schedule of faults, and the records the findings are
//! computed from.
//!
//! The demo upstreams, the load generator and the hostile clients run in this process; the
//! proxy (`ramp proxy --config proxy.toml`) and the controller (`ramp run plan.toml …`) are
//! child processes, so that they can be killed with SIGKILL and started again with the same
//! command, as an operator or a supervisor would. Everything listens on 127.0.0.1, on ports
//! picked free, with every file in a temporary directory of its own. Every wait is bounded,
//! and the run as a whole has a deadline (the plan's length plus a margin).

use crate::clients::{self, SlowlorisStats, UploadShape, UploadStats, Window};
use crate::net;
use crate::procs::Proc;
use crate::report::{ClientOutcomes, Findings, Observed, ProxyKill, Reading, Req};
use crate::scenario::{Fault, Scenario};
use crate::timeline::{Origin, Timeline};
use crate::upstreams::{stopped, Upstreams};
use anyhow::{anyhow, bail, Context, Result};
use ramp_demo::{Behaviour, LoadConfig, LoadCounters};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The deployment id of the plan and the proxy (the salt of sticky bucketing).
pub const DEPLOYMENT: &str = "chaos-soak";

/// How often the main loop looks at its children and its schedule.
const LOOP_EVERY: Duration = Duration::from_millis(100);

/// How often the proxy's weight is read, except after a regression.
const WEIGHT_EVERY: Duration = Duration::from_secs(1);

/// How often the proxy's weight is read after a regression was injected.
const WEIGHT_EVERY_AFTER_REGRESSION: Duration = Duration::from_millis(100);

/// How often the controller's status is read while a stage-end outage waits for its moment.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// The deadline of one admin or control API call.
const API_LIMIT: Duration = Duration::from_millis(500);

/// How long the proxy may take to answer after it is first started.
const PROXY_READY_LIMIT: Duration = Duration::from_secs(20);

/// How long `ramp validate` may take.
const VALIDATE_LIMIT: Duration = Duration::from_secs(30);

/// Beyond the plan's length, how long the run may take before the soak gives up on it.
const RUN_MARGIN_S: f64 = 180.0;

/// What a run injects into the canary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Canary = stable: nothing is injected, so any rollback is a false one.
    Aa,
    /// A real regression is injected this many seconds after T+0.
    Regression {
        /// Seconds after T+0 (not scaled).
        after_s: f64,
    },
}

/// Everything a run needs.
pub struct Options {
    /// The `ramp` binary.
    pub ramp: PathBuf,
    /// The scenario, already scaled.
    pub scenario: Scenario,
    /// What is injected.
    pub mode: Mode,
    /// The scale the scenario was scaled by, for the record.
    pub scale: f64,
    /// The load generator's seed (the upstreams' seeds derive from it).
    pub seed: u64,
    /// Where the run's artifacts go.
    pub out: PathBuf,
    /// Keep the temporary work directory (its path is printed).
    pub keep_work: bool,
}

/// One action of the schedule.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// `kill -9` the controller, resume `down_s` later.
    KillController { down_s: f64 },
    /// Start the controller again with the same command.
    ResumeController,
    /// `kill -9` the proxy, restart `down_s` later.
    KillProxy { down_s: f64 },
    /// Start the proxy again with the same configuration and state file.
    RestartProxy,
    /// Take the flapping stable member down.
    FlapDown,
    /// Bring it back.
    FlapUp,
    /// Make the canary regress.
    Regress,
}

/// A proxy outage that waits for a stage's end.
#[derive(Debug)]
struct StageEndOutage {
    /// The stage, 1-based.
    stage: usize,
    /// Seconds before the end the proxy is killed.
    lead_s: f64,
    /// Seconds it stays down.
    down_s: f64,
    /// The stage's end as last estimated, seconds after T+0.
    end_s: f64,
    /// Whether it has been carried out or given up.
    done: bool,
}

/// The processes and the files of the run.
struct World {
    /// The `ramp` binary.
    ramp: PathBuf,
    /// The work directory.
    dir: PathBuf,
    /// The proxy, while it runs.
    proxy: Option<Proc>,
    /// Proxies started so far.
    proxies: usize,
    /// The controller, while it runs.
    controller: Option<Proc>,
    /// Controllers started so far.
    controllers: usize,
    /// The proxy's admin API.
    admin: SocketAddr,
}

impl World {
    /// Starts a proxy with the run's configuration.
    fn start_proxy(&mut self) -> Result<()> {
        self.proxies += 1;
        let stem = format!("proxy-{}", self.proxies);
        let proc = Proc::spawn(
            &self.ramp,
            &["proxy", "--config", "proxy.toml", "--workers", "2"],
            &self.dir,
            &format!("proxy #{}", self.proxies),
            &stem,
            &[("RAMP_LOG", "warn")],
        )?;
        self.proxy = Some(proc);
        Ok(())
    }

    /// Starts the controller: the same command every time.
    fn start_controller(&mut self) -> Result<()> {
        self.controllers += 1;
        let stem = format!("controller-{}", self.controllers);
        let proc = Proc::spawn(
            &self.ramp,
            &[
                "run",
                "plan.toml",
                "--journal",
                "journal.db",
                "--json",
                "ramp-summary.json",
                "--report",
                "report.md",
            ],
            &self.dir,
            &format!("controller #{}", self.controllers),
            &stem,
            &[],
        )?;
        self.controller = Some(proc);
        Ok(())
    }
}

/// Writes the proxy's configuration.
fn proxy_config(dir: &Path, listen: SocketAddr, admin: SocketAddr, ups: &Upstreams) -> Result<()> {
    let state = dir.join("proxy-state.json");
    let text = format!(
        r#"# The chaos soak's proxy: two stable members (one flaps), one canary, sticky by user.
listen = "{listen}"
admin_listen = "{admin}"
deployment_id = "{DEPLOYMENT}"
state_file = "{state}"
initial_canary_weight = 0
stable = ["{a}", "{b}"]
canary = ["{c}"]

[sticky]
header = "{header}"

[timeouts]
header_read_ms = 5000

[health]
path = "/health"
interval_ms = 1000
timeout_ms = 500
fall = 2
rise = 2
unhealthy_pool = "fallback"
"#,
        state = state.display(),
        a = ups.stable_a,
        b = ups.stable_b,
        c = ups.canary_addr,
        header = clients::USER_HEADER,
    );
    std::fs::write(dir.join("proxy.toml"), text).context("cannot write proxy.toml")
}

/// A duration for a plan file, in milliseconds.
fn plan_duration(s: f64) -> String {
    format!("{}ms", (s * 1000.0).round() as u64)
}

/// The plan's text; `max_unobserved` adds `[gates] max_unobserved`.
fn plan_text(s: &Scenario, admin: SocketAddr, control: SocketAddr, max_unobserved: bool) -> String {
    let p = &s.plan;
    let mut text = format!(
        r#"# The chaos soak's plan, written by ramp-chaos from scripts/chaos/scenario.toml.
[deployment]
id = "{DEPLOYMENT}"
service = "chaos"
environment = "soak"

[router]
admin = "http://{admin}"

[control]
listen = "{control}"

[gates]
evaluate_every = "{every}"
window = "{window}"
min_samples = {min}
"#,
        every = plan_duration(p.evaluate_every_s),
        window = plan_duration(p.window_s),
        min = p.min_samples,
    );
    if max_unobserved {
        text.push_str(&format!(
            "max_unobserved = \"{}\"\n",
            plan_duration(p.max_unobserved_s)
        ));
    }
    text.push_str(&format!(
        "p99_ms = {{ max = {} }}\nerror_rate = {{ max = \"{}%\" }}\nthroughput_rps = {{ min = {}, scope = \"service\" }}\n",
        p.p99_ms_max, p.error_rate_max_percent, p.throughput_min_rps
    ));
    for st in &p.stages {
        text.push_str(&format!(
            "\n[[stages]]\nweight = {}\nduration = \"{}\"\ncheckpoint = \"{}\"\n",
            st.weight,
            plan_duration(st.duration_s),
            plan_duration(p.checkpoint_s.min(st.duration_s)),
        ));
    }
    text
}

/// Runs `ramp validate plan` to its end (bounded): whether it passed, and its error output.
async fn validate(ramp: &Path, dir: &Path, plan: &str) -> Result<(bool, String)> {
    let proc = Proc::spawn(
        ramp,
        &["validate", plan],
        dir,
        "ramp validate",
        "validate",
        &[],
    )?;
    let deadline = crate::clock::now() + VALIDATE_LIMIT;
    loop {
        if let Some(status) = proc.exited() {
            return Ok((status.success(), proc.stderr_tail(20)));
        }
        if crate::clock::now() > deadline {
            bail!("`ramp validate` did not finish within {VALIDATE_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes the plan, with `[gates] max_unobserved` if this `ramp` accepts it; the note says
/// when it does not.
async fn write_plan(
    o: &Options,
    dir: &Path,
    admin: SocketAddr,
    control: SocketAddr,
) -> Result<Option<String>> {
    let path = dir.join("plan.toml");
    std::fs::write(&path, plan_text(&o.scenario, admin, control, true))
        .context("cannot write plan.toml")?;
    let (ok, with_key) = validate(&o.ramp, dir, "plan.toml").await?;
    if ok {
        return Ok(None);
    }
    std::fs::write(&path, plan_text(&o.scenario, admin, control, false))
        .context("cannot write plan.toml")?;
    let (ok, without_key) = validate(&o.ramp, dir, "plan.toml").await?;
    if !ok {
        bail!("the soak's plan is not valid:\n{without_key}");
    }
    Ok(Some(format!(
        "this `ramp` does not accept `[gates] max_unobserved` yet (`ramp validate`: {}), so the plan runs without it",
        with_key
            .lines()
            .next()
            .unwrap_or("refused")
            .split("; expected")
            .next()
            .unwrap_or("refused")
            .trim()
    )))
}

/// Waits (bounded) until the proxy's admin API answers.
async fn proxy_ready(admin: SocketAddr) -> Result<()> {
    let deadline = crate::clock::now() + PROXY_READY_LIMIT;
    loop {
        if let Ok((200, _)) = net::get(admin, "/healthz", API_LIMIT).await {
            return Ok(());
        }
        if crate::clock::now() > deadline {
            bail!("the proxy's admin API at {admin} did not answer within {PROXY_READY_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The run's schedule at `scale`: timed actions, sorted, and the stage-end outages.
fn schedule(s: &Scenario, mode: Mode) -> (Vec<(f64, Action)>, Vec<StageEndOutage>) {
    let mut timed = Vec::new();
    let mut outages = Vec::new();
    for f in &s.faults {
        match *f {
            Fault::ControllerKill { at_s, down_s } => {
                timed.push((at_s, Action::KillController { down_s }));
            }
            Fault::ProxyKill { at_s, down_s } => timed.push((at_s, Action::KillProxy { down_s })),
            Fault::ProxyOutageAtStageEnd {
                stage,
                lead_s,
                down_s,
            } => outages.push(StageEndOutage {
                stage,
                lead_s,
                down_s,
                end_s: s.planned_end_s(stage),
                done: false,
            }),
            Fault::UpstreamFlap {
                from_s,
                until_s,
                every_s,
            } => {
                let mut t = from_s;
                let mut down = true;
                while t < until_s {
                    timed.push((
                        t,
                        if down {
                            Action::FlapDown
                        } else {
                            Action::FlapUp
                        },
                    ));
                    down = !down;
                    t += every_s;
                }
                timed.push((until_s, Action::FlapUp));
            }
            Fault::Slowloris { .. } | Fault::StalledUpload { .. } => {}
        }
    }
    if let Mode::Regression { after_s } = mode {
        timed.push((after_s, Action::Regress));
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    (timed, outages)
}

/// The hostile clients' tasks and their counts.
struct Hostile {
    /// The tasks, joined (bounded) at the end.
    tasks: tokio::task::JoinSet<()>,
    /// Slowloris counts, when the scenario has slowloris windows.
    slowloris: Option<Arc<Mutex<SlowlorisStats>>>,
    /// Stalled-upload counts, when it has upload windows.
    uploads: Option<Arc<Mutex<UploadStats>>>,
}

/// Starts the hostile clients of every window of the scenario.
fn start_hostile(
    s: &Scenario,
    origin: &Origin,
    proxy: SocketAddr,
    stop: &watch::Receiver<bool>,
) -> Hostile {
    let mut h = Hostile {
        tasks: tokio::task::JoinSet::new(),
        slowloris: None,
        uploads: None,
    };
    let first_weight_bp = s
        .plan
        .stages
        .first()
        .map_or(500, |st| (st.weight * 100.0).round() as u32);
    for f in &s.faults {
        match *f {
            Fault::Slowloris {
                from_s,
                until_s,
                connections,
                byte_every_ms,
            } => {
                let stats = Arc::clone(
                    h.slowloris
                        .get_or_insert_with(|| Arc::new(Mutex::new(SlowlorisStats::default()))),
                );
                let window = Window {
                    from: origin.at(from_s),
                    until: origin.at(until_s),
                };
                h.tasks.spawn(clients::slowloris(
                    proxy,
                    window,
                    connections,
                    Duration::from_millis(byte_every_ms),
                    stats,
                    stop.clone(),
                ));
            }
            Fault::StalledUpload {
                from_s,
                until_s,
                connections,
                content_length,
                send_bytes,
                hold_s,
            } => {
                let stats = Arc::clone(
                    h.uploads
                        .get_or_insert_with(|| Arc::new(Mutex::new(UploadStats::default()))),
                );
                let keys = Arc::new(clients::canary_keys(
                    DEPLOYMENT,
                    first_weight_bp,
                    connections * 4,
                ));
                let window = Window {
                    from: origin.at(from_s),
                    until: origin.at(until_s),
                };
                let shape = UploadShape {
                    content_length,
                    send_bytes,
                    hold: Duration::from_secs_f64(hold_s),
                };
                h.tasks.spawn(clients::stalled_uploads(
                    proxy,
                    window,
                    connections,
                    shape,
                    keys,
                    stats,
                    stop.clone(),
                ));
            }
            _ => {}
        }
    }
    h
}

/// What the main loop leaves behind.
#[derive(Default)]
struct LoopRecord {
    /// Every proxy kill.
    proxy_kills: Vec<ProxyKill>,
    /// Controller kills carried out.
    controller_kills: usize,
    /// The final controller's exit code.
    controller_exit: Option<i32>,
    /// Whether the deadline ended the run.
    timed_out: bool,
    /// When the regression was injected and when the weight was first seen at 0 after it.
    regression: Option<(f64, Option<f64>)>,
    /// Faults not carried out, with why.
    skipped: Vec<String>,
    /// Remarks.
    notes: Vec<String>,
}

/// The main loop: the schedule, the children, the weight, until the controller ends on its
/// own or the deadline passes.
async fn main_loop(
    o: &Options,
    world: &mut World,
    ups: &mut Upstreams,
    timeline: &Timeline,
    control: SocketAddr,
) -> Result<LoopRecord> {
    let origin = timeline.origin;
    let (mut timed, mut outages) = schedule(&o.scenario, o.mode);
    let deadline = o.scenario.planned_s() + RUN_MARGIN_S;
    let mut rec = LoopRecord::default();
    let mut next_weight_read = crate::clock::now();
    let mut next_status_read = crate::clock::now();
    let mut last_weight: Option<f64> = None;
    loop {
        tokio::time::sleep(LOOP_EVERY).await;
        let now_s = origin.elapsed();

        // The controller ending on its own ends the run.
        if let Some(c) = &world.controller {
            if let Some(status) = c.exited() {
                let code = status.code();
                timeline.log(
                    "controller_exit",
                    format!("{} exited with {status}", c.label),
                );
                if !matches!(code, Some(0 | 3 | 4)) {
                    rec.notes.push(format!(
                        "{} exited with {status}; the end of its standard error:\n{}",
                        c.label,
                        c.stderr_tail(15)
                    ));
                }
                rec.controller_exit = code;
                world.controller = None;
                // A controller that rolled back exits at once, often before the next 100 ms
                // weight read: read it once more, so that the weight it left is seen (the time
                // is then an upper bound of when it reached 0).
                if let Some((_, zero @ None)) = &mut rec.regression {
                    if let Ok(w) = net::get_json(world.admin, "/weights", API_LIMIT).await {
                        if w["canary"].as_f64() == Some(0.0) {
                            *zero = Some(origin.elapsed());
                        }
                    }
                }
                break;
            }
        }
        // A proxy that dies by itself is a finding; it is restarted so the run goes on.
        if let Some(p) = &world.proxy {
            if let Some(status) = p.exited() {
                let note = format!(
                    "{} exited by itself with {status} at T+{now_s:.1} s; restarted. The end of its standard error:\n{}",
                    p.label,
                    p.stderr_tail(15)
                );
                timeline.log("proxy_exit", note.clone());
                rec.notes.push(note);
                world.start_proxy()?;
            }
        }

        if now_s > deadline {
            rec.timed_out = true;
            timeline.log(
                "note",
                format!("the run passed its deadline of T+{deadline:.0} s"),
            );
            break;
        }

        // Stage-end outages: find the stage's end in the controller's status, then strike.
        let pending = outages.iter().any(|x| !x.done);
        if pending && crate::clock::now() >= next_status_read && world.controller.is_some() {
            next_status_read = crate::clock::now() + STATUS_EVERY;
            if let Ok(view) = net::get_json(control, "/status", API_LIMIT).await {
                let stage = view["stage"]["index"].as_u64().map(|i| i as usize);
                for x in outages.iter_mut().filter(|x| !x.done) {
                    match stage {
                        Some(i) if i == x.stage => {
                            if let (Some(t), Some(el), Some(d)) = (
                                view["t_s"].as_f64(),
                                view["stage"]["elapsed_s"].as_f64(),
                                view["stage"]["duration_s"].as_f64(),
                            ) {
                                // Plan time is within milliseconds of T+ (the controller
                                // started at T+0).
                                x.end_s = t - el + d;
                            }
                        }
                        Some(i) if i > x.stage => {
                            x.done = true;
                            rec.skipped.push(format!(
                                "the proxy outage at the end of stage {}: the stage ended before its moment",
                                x.stage
                            ));
                        }
                        _ => {}
                    }
                    if view["state"] == "finished" && !x.done {
                        x.done = true;
                        rec.skipped.push(format!(
                            "the proxy outage at the end of stage {}: the rollout finished first",
                            x.stage
                        ));
                    }
                }
            }
        }
        for x in outages.iter_mut() {
            if !x.done && now_s >= x.end_s - x.lead_s {
                let (stage, lead, down, end) = (x.stage, x.lead_s, x.down_s, x.end_s);
                x.done = true;
                if world.proxy.is_some() {
                    timeline.log(
                        "note",
                        format!("stage {stage} is due to end at about T+{end:.1} s"),
                    );
                    kill_proxy(world, timeline, &mut rec, down, &mut timed, now_s);
                } else {
                    rec.skipped.push(format!(
                        "the proxy outage at the end of stage {stage} ({lead} s before): the proxy was already down"
                    ));
                }
            }
        }

        // Timed actions.
        while timed.first().is_some_and(|(t, _)| *t <= now_s) {
            let (at, action) = timed.remove(0);
            match action {
                Action::KillController { down_s } => match world.controller.take() {
                    Some(c) => {
                        c.kill9();
                        rec.controller_kills += 1;
                        timeline.log(
                            "controller_kill",
                            format!("kill -9 {} (pid {}); back in {down_s} s", c.label, c.pid),
                        );
                        insert(&mut timed, now_s + down_s, Action::ResumeController);
                    }
                    None => rec.skipped.push(format!(
                        "the controller kill at T+{at:.1} s: no controller was running"
                    )),
                },
                Action::ResumeController => {
                    world.start_controller()?;
                    timeline.log(
                        "controller_resume",
                        format!(
                            "started controller #{}: the same command again",
                            world.controllers
                        ),
                    );
                }
                Action::KillProxy { down_s } => {
                    if world.proxy.is_some() {
                        kill_proxy(world, timeline, &mut rec, down_s, &mut timed, now_s);
                    } else {
                        rec.skipped.push(format!(
                            "the proxy kill at T+{at:.1} s: the proxy was already down"
                        ));
                    }
                }
                Action::RestartProxy => {
                    world.start_proxy()?;
                    if let Some(k) = rec
                        .proxy_kills
                        .iter_mut()
                        .rev()
                        .find(|k| k.restarted_s.is_none())
                    {
                        k.restarted_s = Some(origin.elapsed());
                    }
                    timeline.log(
                        "proxy_restart",
                        format!("started proxy #{} with its state file", world.proxies),
                    );
                }
                Action::FlapDown => ups.flapper_down(timeline),
                Action::FlapUp => ups.flapper_up(timeline).await?,
                Action::Regress => {
                    let r = &o.scenario.regression;
                    ups.canary.set_regression(r.error_rate, r.added_latency_ms);
                    let t = timeline.log(
                        "regression",
                        format!(
                            "canary regresses: +{:.1} % errors, +{} ms",
                            r.error_rate * 100.0,
                            r.added_latency_ms
                        ),
                    );
                    rec.regression = Some((t, None));
                }
            }
        }

        // The proxy's weight: every second, every 100 ms once a regression is in.
        if crate::clock::now() >= next_weight_read && world.proxy.is_some() {
            let fast = rec.regression.is_some_and(|(_, zero)| zero.is_none());
            next_weight_read = crate::clock::now()
                + if fast {
                    WEIGHT_EVERY_AFTER_REGRESSION
                } else {
                    WEIGHT_EVERY
                };
            if let Ok(w) = net::get_json(world.admin, "/weights", API_LIMIT).await {
                if let Some(canary) = w["canary"].as_f64() {
                    let t = origin.elapsed();
                    if last_weight != Some(canary) {
                        timeline.log("weight", format!("the proxy's canary weight is {canary} %"));
                        last_weight = Some(canary);
                    }
                    if let Some((_, zero @ None)) = &mut rec.regression {
                        if canary == 0.0 {
                            *zero = Some(t);
                        }
                    }
                }
            }
        }
    }
    for x in outages.iter().filter(|x| !x.done) {
        rec.skipped.push(format!(
            "the proxy outage at the end of stage {}: the run ended first",
            x.stage
        ));
    }
    for (at, action) in timed {
        let what = match action {
            Action::KillController { .. } => "the controller kill",
            Action::KillProxy { .. } => "the proxy kill",
            Action::Regress => "the regression",
            _ => continue,
        };
        rec.skipped
            .push(format!("{what} at T+{at:.1} s: the run ended first"));
    }
    Ok(rec)
}

/// Inserts an action into the sorted schedule.
fn insert(timed: &mut Vec<(f64, Action)>, at: f64, action: Action) {
    let i = timed.partition_point(|(t, _)| *t <= at);
    timed.insert(i, (at, action));
}

/// `kill -9` the proxy now and schedule its restart.
fn kill_proxy(
    world: &mut World,
    timeline: &Timeline,
    rec: &mut LoopRecord,
    down_s: f64,
    timed: &mut Vec<(f64, Action)>,
    now_s: f64,
) {
    if let Some(p) = world.proxy.take() {
        p.kill9();
        let t = timeline.log(
            "proxy_kill",
            format!("kill -9 {} (pid {}); back in {down_s} s", p.label, p.pid),
        );
        rec.proxy_kills.push(ProxyKill {
            killed_s: t,
            restarted_s: None,
        });
        insert(timed, now_s + down_s, Action::RestartProxy);
    }
}

/// The controller's record, read from its journal once no controller runs.
struct JournalRecord {
    /// The run's start, Unix ms.
    started_unix_ms: i64,
    /// Its readings, in order.
    readings: Vec<Reading>,
    /// Events whose body mentions an unobserved interval.
    unobserved_events: usize,
}

/// Reads the journal's one run.
fn read_journal(path: &Path) -> Result<JournalRecord> {
    let journal = ramp_store::Journal::open(path)
        .with_context(|| format!("cannot open the journal {}", path.display()))?;
    let run = journal
        .runs(Some(DEPLOYMENT))?
        .into_iter()
        .max_by_key(|r| r.run_id)
        .ok_or_else(|| anyhow!("the journal has no run"))?;
    let mut readings = Vec::new();
    for input in journal.inputs(run.run_id)? {
        if input.kind != "tick" {
            continue;
        }
        let body: Value = serde_json::from_str(&input.body).unwrap_or(Value::Null);
        // The slot's fields, at the top of the input or under one key.
        let slot = if body.get("start_ms").is_some() {
            &body
        } else {
            body.as_object()
                .and_then(|o| o.values().find(|v| v.get("start_ms").is_some()))
                .unwrap_or(&Value::Null)
        };
        let ms = |k: &str| slot.get(k).and_then(Value::as_u64);
        let requests = |cohort: &str| slot[cohort]["requests"].as_u64().unwrap_or(0);
        if let (Some(start), Some(end)) = (ms("start_ms"), ms("end_ms")) {
            readings.push(Reading {
                start_s: start as f64 / 1000.0,
                end_s: end as f64 / 1000.0,
                requests: requests("canary") + requests("stable"),
            });
        }
    }
    let unobserved_events = journal
        .events(run.run_id, 0)?
        .iter()
        .filter(|e| e.body.to_lowercase().contains("unobserved") || e.kind.contains("unobserved"))
        .count();
    Ok(JournalRecord {
        started_unix_ms: run.started_unix_ms,
        readings,
        unobserved_events,
    })
}

/// Copies the run's artifacts (logs, plan, configuration, the controller's summary and
/// report) from the work directory to `out`.
fn keep_artifacts(dir: &Path, out: &Path) -> Result<()> {
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep = name.ends_with(".out")
            || name.ends_with(".err")
            || matches!(
                name.as_ref(),
                "plan.toml" | "proxy.toml" | "ramp-summary.json" | "report.md"
            );
        if keep {
            let _ = std::fs::copy(entry.path(), logs.join(name.as_ref()));
        }
    }
    Ok(())
}

/// Runs one soak and returns its findings; the work directory is removed unless kept.
pub async fn run(o: Options) -> Result<Findings> {
    let work = tempfile::Builder::new()
        .prefix("ramp-chaos-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let dir = work.path().to_path_buf();
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let result = run_in(&o, &dir).await;
    let kept = keep_artifacts(&dir, &o.out);
    if o.keep_work {
        let path = work.keep();
        eprintln!(
            "ramp-chaos: the work directory is kept at {}",
            path.display()
        );
    }
    kept?;
    result
}

/// The run, in the work directory `dir`.
async fn run_in(o: &Options, dir: &Path) -> Result<Findings> {
    let s = &o.scenario;
    let (upstream_stop_tx, upstream_stop) = watch::channel(false);
    let (load_stop_tx, load_stop) = watch::channel(false);
    let (hostile_stop_tx, hostile_stop) = watch::channel(false);
    let behaviour = |name: &str, salt: u64| -> Result<Behaviour> {
        let u = &s.upstream;
        Ok(
            Behaviour::new(name, u.p50_ms, u.p95_ms, u.p99_ms, u.error_rate)?
                .with_seed(o.seed.wrapping_mul(0x9e37_79b9).wrapping_add(salt)),
        )
    };
    // A/A: the canary is the stable version (same model and error rate, its own draws).
    let mut ups = Upstreams::start(
        behaviour("stable", 1)?,
        behaviour("canary", 2)?,
        upstream_stop.clone(),
    )
    .await?;
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], net::free_port()?));
    let admin = SocketAddr::from(([127, 0, 0, 1], net::free_port()?));
    let control = SocketAddr::from(([127, 0, 0, 1], net::free_port()?));
    proxy_config(dir, proxy_addr, admin, &ups)?;

    // T+0 is when the first controller starts, after the warm-up.
    let origin = {
        let now = Origin::now();
        let warmup = s.load.warmup_s;
        Origin {
            instant: now.at(warmup),
            unix_ms: now.unix_ms + (warmup * 1000.0).round() as i64,
        }
    };
    let timeline = Timeline::new(origin, true);
    let mut notes = Vec::new();
    if let Some(note) = write_plan(o, dir, admin, control).await? {
        timeline.log("note", note.clone());
        notes.push(note);
    }

    let mut world = World {
        ramp: o.ramp.clone(),
        dir: dir.to_path_buf(),
        proxy: None,
        proxies: 0,
        controller: None,
        controllers: 0,
        admin,
    };
    world.start_proxy()?;
    proxy_ready(admin).await?;
    timeline.log(
        "proxy_start",
        format!("proxy #1 serves {proxy_addr}, admin API {admin}"),
    );

    let counters = LoadCounters::with_log();
    let load = LoadConfig {
        duration: None,
        users: s.load.users,
        timeout: Duration::from_secs_f64(s.load.timeout_s),
        max_in_flight: 4096,
        seed: o.seed,
        ..LoadConfig::new(proxy_addr, s.load.rps)
    };
    let load_task = tokio::spawn(ramp_demo::run_load_with(
        load,
        Arc::clone(&counters),
        stopped(&load_stop),
    ));
    timeline.log(
        "load",
        format!(
            "open-loop load: {} req/s, {} sticky users",
            s.load.rps, s.load.users
        ),
    );
    let mut hostile = start_hostile(s, &origin, proxy_addr, &hostile_stop);

    tokio::time::sleep_until(origin.at(0.0)).await;
    world.start_controller()?;
    timeline.log("controller_start", "started controller #1");

    let looped = main_loop(o, &mut world, &mut ups, &timeline, control).await;

    // Wind down in order: hostile clients, the load (upstreams and proxy still serving it),
    // then the children and the upstreams.
    hostile_stop_tx.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while hostile.tasks.join_next().await.is_some() {}
    })
    .await;
    hostile.tasks.abort_all();
    let _ = ups.flapper_up(&timeline).await;
    load_stop_tx.send_replace(true);
    let report =
        tokio::time::timeout(Duration::from_secs_f64(s.load.timeout_s + 5.0), load_task).await;
    let load_report = match report {
        Ok(Ok(Ok(r))) => Some(r),
        _ => None,
    };
    drop(world.controller.take());
    drop(world.proxy.take());
    upstream_stop_tx.send_replace(true);
    let rec = looped?;

    let journal = read_journal(&dir.join("journal.db"));
    let summary: Option<Value> = std::fs::read_to_string(dir.join("ramp-summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Err(e) = &journal {
        notes.push(format!("the journal could not be read: {e:#}"));
    }
    let journal = journal.ok();

    let requests: Vec<Req> = counters
        .take_log()
        .into_iter()
        .map(|c| Req {
            sent_s: origin.secs(c.sent),
            done_s: origin.secs(c.finished),
            answered: c.status.is_some(),
        })
        .collect();
    let client = match &load_report {
        Some(r) => ClientOutcomes {
            sent: r.sent,
            status_2xx_3xx: r.ok,
            status_4xx: r.status_4xx,
            status_5xx: r.status_5xx,
            connection_errors: r.failed,
            dropped: r.dropped,
        },
        None => {
            let p = counters.snapshot();
            notes.push("the load generator did not report within its drain; its counters are read as they were".to_string());
            ClientOutcomes {
                sent: p.sent,
                status_2xx_3xx: p.ok,
                status_4xx: p.status_4xx,
                status_5xx: p.status_5xx,
                connection_errors: p.failed,
                dropped: p.dropped,
            }
        }
    };
    let uploads = hostile
        .uploads
        .map(|u| u.lock().unwrap_or_else(|p| p.into_inner()).clone());
    let upload_answers = uploads
        .as_ref()
        .map(|u| {
            u.records
                .iter()
                .map(|a| Req {
                    sent_s: origin.secs(a.sent),
                    done_s: origin.secs(a.finished),
                    answered: true,
                })
                .collect()
        })
        .unwrap_or_default();
    let slowloris = hostile
        .slowloris
        .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone());
    if journal.as_ref().is_some_and(|j| j.readings.is_empty()) {
        notes.push("the journal holds no readings".to_string());
    }
    notes.extend(rec.notes);

    let observed = Observed {
        mode: match o.mode {
            Mode::Aa => "aa".to_string(),
            Mode::Regression { .. } => "regression".to_string(),
        },
        scale: o.scale,
        seed: o.seed,
        evaluate_every_s: s.plan.evaluate_every_s,
        events: timeline.events(),
        proxy_kills: rec.proxy_kills,
        controller_kills: rec.controller_kills,
        controller_exit: rec.controller_exit,
        timed_out: rec.timed_out,
        summary,
        run_started_unix_ms: journal.as_ref().map(|j| j.started_unix_ms),
        origin_unix_ms: origin.unix_ms,
        readings: journal
            .as_ref()
            .map(|j| j.readings.clone())
            .unwrap_or_default(),
        journal_unobserved_events: journal.as_ref().map_or(0, |j| j.unobserved_events),
        requests,
        upload_answers,
        client,
        slowloris,
        uploads,
        regression: rec.regression,
        skipped: rec.skipped,
        notes,
    };
    Ok(observed.findings())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chaos/scenario.toml");
        Scenario::load(&path).expect("the shipped scenario")
    }

    #[test]
    fn the_schedule_is_sorted_and_the_flapping_member_ends_up() {
        let (timed, outages) = schedule(&shipped(), Mode::Regression { after_s: 380.0 });
        assert!(timed.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(outages.len(), 1);
        assert_eq!(outages[0].end_s, 240.0);
        let last_flap = timed
            .iter()
            .rev()
            .find(|(_, a)| matches!(a, Action::FlapDown | Action::FlapUp))
            .expect("flapping");
        assert!(matches!(last_flap.1, Action::FlapUp));
        assert!(timed
            .iter()
            .any(|(t, a)| matches!(a, Action::Regress) && *t == 380.0));
    }

    #[test]
    fn the_plan_names_every_gate_and_stage() {
        let s = shipped().scaled(0.3);
        let admin: SocketAddr = "127.0.0.1:9901".parse().expect("address");
        let control: SocketAddr = "127.0.0.1:9911".parse().expect("address");
        let with = plan_text(&s, admin, control, true);
        let without = plan_text(&s, admin, control, false);
        assert!(with.contains("max_unobserved = \"30000ms\""));
        assert!(!without.contains("max_unobserved"));
        assert_eq!(without.matches("[[stages]]").count(), 4);
        assert!(without.contains("duration = \"27000ms\""));
        assert!(without.contains("throughput_rps = { min = 100, scope = \"service\" }"));
    }
}
