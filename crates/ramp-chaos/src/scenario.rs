//! The soak's scenario file: the load, the upstreams, the plan and the faults, as data.
//!
//! Scenarios are data so that a new fault schedule is a new file rather than a new build.
//! Times are seconds after the controller first starts, written for `--duration-scale 1`.
//! The scale shortens (or lengthens) the rollout: it multiplies every stage's duration and
//! every moment a fault happens (`at_s`, `from_s`, `until_s`), and leaves alone how long a
//! fault lasts (`down_s`, `lead_s`, `every_s`, `hold_s`, `byte_every_ms`), because a
//! ten-second proxy outage is the fault under test whatever the length of the rollout.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

/// A whole scenario, as read from its TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The open-loop load through the proxy.
    pub load: Load,
    /// How both versions behave: in an A/A run the canary is the stable version.
    pub upstream: Upstream,
    /// The regression injected into the canary by `--regression-after`.
    pub regression: Regression,
    /// The rollout plan the controller runs.
    pub plan: PlanSpec,
    /// The scheduled faults.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// The open-loop load: what the proxy serves while the rollout runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Mean arrival rate, requests per second (Poisson arrivals).
    pub rps: f64,
    /// Distinct sticky user keys; each request carries one drawn uniformly.
    pub users: u32,
    /// Per-request deadline, seconds.
    pub timeout_s: f64,
    /// Seconds of load before the controller starts, so that its first windows have data.
    pub warmup_s: f64,
}

/// One version's behaviour (the demo upstream's latency model and error rate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Share of requests answered 500, 0–1.
    pub error_rate: f64,
}

/// The canary regression of `--regression-after`: a real one, that gates must catch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    /// Extra share of canary requests answered 500, 0–1.
    pub error_rate: f64,
    /// Extra canary latency, ms.
    #[serde(default)]
    pub added_latency_ms: f64,
}

/// The rollout plan, from which the harness writes the plan file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Seconds between gate evaluations (`[gates] evaluate_every`); not scaled.
    pub evaluate_every_s: f64,
    /// The gates' sliding window, seconds; not scaled.
    pub window_s: f64,
    /// Fewer requests than this in a window is no data.
    pub min_samples: u64,
    /// Canary p99 ceiling, ms.
    pub p99_ms_max: f64,
    /// Canary error rate ceiling, percent.
    pub error_rate_max_percent: f64,
    /// Service-wide throughput floor, requests per second.
    pub throughput_min_rps: f64,
    /// `[gates] max_unobserved`, seconds: written only when `ramp validate` accepts the key.
    pub max_unobserved_s: f64,
    /// Seconds between checkpoint rows at scale 1 (scaled, at least 5 s).
    pub checkpoint_s: f64,
    /// The stages, in order.
    pub stages: Vec<StageSpec>,
}

/// One stage of the plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Canary weight, percent.
    pub weight: f64,
    /// Planned duration at scale 1, seconds.
    pub duration_s: f64,
}

/// One scheduled fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// `kill -9` of the controller at `at_s`, and the same command again `down_s` later.
    ControllerKill {
        /// When, seconds.
        at_s: f64,
        /// How long no controller runs, seconds.
        down_s: f64,
    },
    /// `kill -9` of the proxy at `at_s`, restarted with its state file `down_s` later.
    ProxyKill {
        /// When, seconds.
        at_s: f64,
        /// How long the proxy is down, seconds.
        down_s: f64,
    },
    /// `kill -9` of the proxy `lead_s` before stage `stage` ends, restarted `down_s` later,
    /// so that the stage's end falls inside the outage. The stage's end is read from the
    /// controller's status while it runs.
    ProxyOutageAtStageEnd {
        /// The stage (1-based) whose end the outage straddles.
        stage: usize,
        /// How long before the stage's end the proxy is killed, seconds.
        lead_s: f64,
        /// How long the proxy is down, seconds.
        down_s: f64,
    },
    /// The second stable pool member goes down and comes back every `every_s` (down for
    /// `every_s`, up for `every_s`), from `from_s` until `until_s`.
    UpstreamFlap {
        /// When the flapping starts, seconds.
        from_s: f64,
        /// When it stops (the member is left up), seconds.
        until_s: f64,
        /// Seconds between changes.
        every_s: f64,
    },
    /// Clients that open connections to the proxy and send a request head one byte at a
    /// time, never finishing it.
    Slowloris {
        /// When they start, seconds.
        from_s: f64,
        /// When they stop, seconds.
        until_s: f64,
        /// Connections held at once.
        connections: usize,
        /// Milliseconds between two bytes.
        byte_every_ms: u64,
    },
    /// Uploads aimed at the canary (user keys that the sticky bucketing puts in the canary
    /// at the first stage's weight, hence at every later one) that announce a body, send a
    /// little of it and stall.
    StalledUpload {
        /// When they start, seconds.
        from_s: f64,
        /// When they stop, seconds.
        until_s: f64,
        /// Uploads held at once.
        connections: usize,
        /// The announced `Content-Length`, bytes.
        content_length: usize,
        /// Body bytes actually sent before stalling.
        send_bytes: usize,
        /// How long each upload stalls before the client gives up, seconds.
        hold_s: f64,
    },
}

impl Fault {
    /// The fault's kind as written in the scenario file, for messages and records.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ControllerKill { .. } => "controller_kill",
            Fault::ProxyKill { .. } => "proxy_kill",
            Fault::ProxyOutageAtStageEnd { .. } => "proxy_outage_at_stage_end",
            Fault::UpstreamFlap { .. } => "upstream_flap",
            Fault::Slowloris { .. } => "slowloris",
            Fault::StalledUpload { .. } => "stalled_upload",
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the scenario {}", path.display()))?;
        let scenario: Scenario = toml::from_str(&text)
            .with_context(|| format!("the scenario {} is not valid", path.display()))?;
        scenario
            .check()
            .with_context(|| format!("the scenario {} is not valid", path.display()))?;
        Ok(scenario)
    }

    /// Checks what serde cannot: ranges, and stage references.
    fn check(&self) -> Result<()> {
        let positive = |what: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v > 0.0) {
                bail!("{what} must be a positive number, got {v}");
            }
            Ok(())
        };
        let not_negative = |what: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{what} must be a number of at least 0, got {v}");
            }
            Ok(())
        };
        positive("load.rps", self.load.rps)?;
        positive("load.timeout_s", self.load.timeout_s)?;
        not_negative("load.warmup_s", self.load.warmup_s)?;
        positive("plan.evaluate_every_s", self.plan.evaluate_every_s)?;
        positive("plan.window_s", self.plan.window_s)?;
        positive("plan.max_unobserved_s", self.plan.max_unobserved_s)?;
        positive("plan.checkpoint_s", self.plan.checkpoint_s)?;
        if self.plan.stages.is_empty() {
            bail!("plan.stages must have at least one stage");
        }
        for (i, st) in self.plan.stages.iter().enumerate() {
            positive(&format!("plan.stages[{i}].duration_s"), st.duration_s)?;
            if !(st.weight > 0.0 && st.weight <= 100.0) {
                bail!("plan.stages[{i}].weight must be above 0 and at most 100");
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let at = |what: &str| format!("faults[{i}] ({}): {what}", f.kind());
            match f {
                Fault::ControllerKill { at_s, down_s } | Fault::ProxyKill { at_s, down_s } => {
                    not_negative(&at("at_s"), *at_s)?;
                    positive(&at("down_s"), *down_s)?;
                }
                Fault::ProxyOutageAtStageEnd {
                    stage,
                    lead_s,
                    down_s,
                } => {
                    if *stage == 0 || *stage > self.plan.stages.len() {
                        bail!("{} must name a stage of the plan", at("stage"));
                    }
                    positive(&at("lead_s"), *lead_s)?;
                    positive(&at("down_s"), *down_s)?;
                }
                Fault::UpstreamFlap {
                    from_s,
                    until_s,
                    every_s,
                } => {
                    not_negative(&at("from_s"), *from_s)?;
                    positive(&at("every_s"), *every_s)?;
                    if until_s <= from_s {
                        bail!("{} must be after from_s", at("until_s"));
                    }
                }
                Fault::Slowloris {
                    from_s,
                    until_s,
                    connections,
                    byte_every_ms,
                } => {
                    not_negative(&at("from_s"), *from_s)?;
                    if until_s <= from_s || *connections == 0 || *byte_every_ms == 0 {
                        bail!(
                            "{} needs until_s after from_s, connections and byte_every_ms above 0",
                            at("the window")
                        );
                    }
                }
                Fault::StalledUpload {
                    from_s,
                    until_s,
                    connections,
                    content_length,
                    send_bytes,
                    hold_s,
                } => {
                    not_negative(&at("from_s"), *from_s)?;
                    positive(&at("hold_s"), *hold_s)?;
                    if until_s <= from_s || *connections == 0 || send_bytes >= content_length {
                        bail!(
                            "{} needs until_s after from_s, connections above 0 and send_bytes below content_length",
                            at("the window")
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The scenario at `scale`: stage durations and fault moments multiplied, fault lengths
    /// kept (see the module's documentation). No stage becomes shorter than the gates'
    /// window (or 10 s), which the plan loader would refuse.
    pub fn scaled(&self, scale: f64) -> Scenario {
        let mut s = self.clone();
        // A gate's window must fit in its stage, so no stage is scaled below it.
        let shortest = s.plan.window_s.max(10.0);
        for st in &mut s.plan.stages {
            st.duration_s = (st.duration_s * scale).round().max(shortest);
        }
        s.plan.checkpoint_s = (s.plan.checkpoint_s * scale).round().max(5.0);
        for f in &mut s.faults {
            match f {
                Fault::ControllerKill { at_s, .. } | Fault::ProxyKill { at_s, .. } => {
                    *at_s *= scale;
                }
                Fault::ProxyOutageAtStageEnd { .. } => {}
                Fault::UpstreamFlap {
                    from_s, until_s, ..
                }
                | Fault::Slowloris {
                    from_s, until_s, ..
                }
                | Fault::StalledUpload {
                    from_s, until_s, ..
                } => {
                    *from_s *= scale;
                    *until_s *= scale;
                }
            }
        }
        s
    }

    /// The plan's planned length: the sum of its stages, seconds.
    pub fn planned_s(&self) -> f64 {
        self.plan.stages.iter().map(|s| s.duration_s).sum()
    }

    /// When stage `stage` (1-based) is planned to end, seconds after the rollout's start.
    pub fn planned_end_s(&self, stage: usize) -> f64 {
        self.plan
            .stages
            .iter()
            .take(stage)
            .map(|s| s.duration_s)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenario that scripts/chaos.sh runs, so that a broken file fails here first.
    fn shipped() -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chaos/scenario.toml");
        Scenario::load(&path).expect("the shipped scenario loads")
    }

    #[test]
    fn the_shipped_scenario_has_every_fault_of_the_soak() {
        let s = shipped();
        let count = |kind: &str| s.faults.iter().filter(|f| f.kind() == kind).count();
        assert_eq!(count("controller_kill"), 2);
        assert_eq!(count("proxy_kill"), 2);
        assert_eq!(count("proxy_outage_at_stage_end"), 1);
        for kind in ["upstream_flap", "slowloris", "stalled_upload"] {
            assert!(count(kind) >= 1, "{kind}");
        }
        let total = s.planned_s();
        assert!((540.0..=600.0).contains(&total), "{total} s of stages");
    }

    #[test]
    fn scaling_shortens_moments_and_keeps_lengths() {
        let s = shipped().scaled(0.5);
        let original = shipped();
        assert_eq!(
            s.plan.stages[0].duration_s,
            (original.plan.stages[0].duration_s * 0.5).round()
        );
        for (a, b) in s.faults.iter().zip(&original.faults) {
            if let (
                Fault::ProxyKill { at_s, down_s },
                Fault::ProxyKill {
                    at_s: at0,
                    down_s: down0,
                },
            ) = (a, b)
            {
                assert_eq!(*at_s, at0 * 0.5);
                assert_eq!(down_s, down0);
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_stage_references_are_refused() {
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chaos/scenario.toml"),
        )
        .expect("the shipped scenario");
        let extra =
            format!("{base}\n[[faults]]\nkind = \"proxy_kill\"\nat_s = 1\ndown_s = 1\nnope = 2\n");
        assert!(toml::from_str::<Scenario>(&extra).is_err());
        let bad_stage = format!(
            "{base}\n[[faults]]\nkind = \"proxy_outage_at_stage_end\"\nstage = 9\nlead_s = 1\ndown_s = 1\n"
        );
        let s: Scenario = toml::from_str(&bad_stage).expect("parses");
        assert!(s.check().is_err());
    }
}
