//! Stage two for `[simulation]`: the traffic and service model `ramp simulate` runs, the
//! canary's overheads (`features` or one `overhead`), the load term, and the faults of the
//! main timeline.
//!
//! The fault checks (`at` and `fault`) are shared with `[[rehearsals]]`, whose fault is a
//! simulation fault placed by the rehearsal's own `at`; `FaultKeys` carries the keys the two
//! kinds of fault table have in common.

use super::raw::{RawFeature, RawServiceModel, RawSimulation};
use super::scalar::{Dur, Num, NumOrText, Text, S};
use super::validator::{fmt_num, fmt_span, valid_or_none, Field, Validator};
use crate::plan::{
    Cohort, Fault, FaultEffect, Feature, LoadModel, SamplingMethod, ServiceModel, Simulation,
    DEFAULT_SIMULATED_USERS, MAX_SIMULATED_REQUESTS, MAX_SIMULATED_USERS,
};
use crate::units::{PlanTime, Span};
use std::ops::Range;

/// The default router delay.
const DEFAULT_ROUTER_DELAY: Span = Span(1_000);

/// Fault keys shared by simulation faults and rehearsal faults.
pub(super) struct FaultKeys<'a> {
    /// The fault table's span.
    pub(super) span: Range<usize>,
    /// `cohort`.
    pub(super) cohort: Option<&'a S<Text>>,
    /// `duration`.
    pub(super) duration: Option<&'a S<Dur>>,
    /// `add_latency`.
    pub(super) add_latency: Option<&'a S<Dur>>,
    /// `fraction`.
    pub(super) fraction: Option<&'a S<NumOrText>>,
    /// `error_rate`.
    pub(super) error_rate: Option<&'a S<NumOrText>>,
}

impl Validator<'_> {
    /// `[simulation]`.
    pub(super) fn simulation(
        &mut self,
        raw: &S<RawSimulation>,
        total: Option<Span>,
    ) -> Option<Simulation> {
        let r = raw.get_ref();
        let table = raw.span();
        let ctx = "[simulation]";
        let rps = match &r.rps {
            None => {
                self.missing(
                    table.clone(),
                    ctx,
                    "rps",
                    "the mean request rate of the whole service, e.g. rps = 125",
                );
                None
            }
            Some(v) => self.positive(v, "simulation.rps"),
        };
        let daily_profile = Field::of(r.daily_profile.as_ref(), |v| self.daily_profile(v));
        let stable = match &r.stable {
            None => {
                self.missing(
                    table.clone(),
                    ctx,
                    "stable",
                    "the stable version's model, e.g. stable = { p50_ms = 145, p95_ms = 385, p99_ms = 720, error_rate = \"0.28%\" }",
                );
                None
            }
            Some(v) => self.service_model(v),
        };
        let features = match (&r.features, &r.overhead) {
            (Some(_), Some(o)) => {
                self.error(
                    o.span(),
                    "simulation: overhead and features are both given; expected one of them: overhead (one unnamed total) or features (named)".into(),
                );
                None
            }
            (Some(list), None) => self.features(list),
            (None, Some(o)) => {
                let o = o.get_ref();
                let (latency, error_rate) = self.overhead_pair(
                    o.latency.as_ref(),
                    o.error_rate.as_ref(),
                    "simulation.overhead",
                );
                Some(vec![Feature {
                    name: "canary overhead".into(),
                    latency: latency?,
                    error_rate: error_rate?,
                }])
            }
            (None, None) => Some(Vec::new()),
        };
        let load = match &r.load {
            None => Some(LoadModel::default()),
            Some(l) => {
                let l = l.get_ref();
                let contention = Field::of(l.contention.as_ref(), |v| {
                    self.rate_in(
                        v,
                        "simulation.load.contention",
                        |x| (0.0..=1.0).contains(&x),
                        "a share between 0 and 1",
                    )
                });
                let stable_latency = Field::of(l.stable_latency.as_ref(), |v| {
                    self.rate_in(
                        v,
                        "simulation.load.stable_latency",
                        |x| x >= 0.0,
                        "a rate of at least 0%, such as \"+2%\"",
                    )
                });
                match (
                    valid_or_none(contention, 0.0),
                    valid_or_none(stable_latency, 0.0),
                ) {
                    (Some(contention), Some(stable_latency)) => Some(LoadModel {
                        contention,
                        stable_latency,
                    }),
                    _ => None,
                }
            }
        };
        let canary_traffic = Field::of(r.canary_traffic.as_ref(), |v| {
            self.rate_in(
                v,
                "simulation.canary_traffic",
                |x| (0.0..=1.0).contains(&x),
                "a rate between 0% and 100%",
            )
        });
        let router_delay = Field::of(r.router_delay.as_ref(), |v| {
            self.duration(v, "simulation.router_delay")
        });
        let mut faults = Some(Vec::new());
        for (i, f) in r.faults.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
            let ctx = format!("simulation fault {}", i + 1);
            let fr = f.get_ref();
            let at = self.at(fr.at.as_ref(), f.span(), &ctx, total);
            let keys = FaultKeys {
                span: f.span(),
                cohort: fr.cohort.as_ref(),
                duration: fr.duration.as_ref(),
                add_latency: fr.add_latency.as_ref(),
                fraction: fr.fraction.as_ref(),
                error_rate: fr.error_rate.as_ref(),
            };
            let fault = self.fault(&keys, at, &ctx);
            faults = match (faults, fault) {
                (Some(mut list), Some(fault)) => {
                    list.push(fault);
                    Some(list)
                }
                _ => None,
            };
        }
        let users = Field::of(r.users.as_ref(), |v| self.simulated_users(v));
        let sampler = Field::of(r.sampler.as_ref(), |v| self.sampler(v));
        let daily_profile = match daily_profile {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid(p) => Some(p),
        };
        if let (Some(rate), Some(v), Some(total)) = (rps, &r.rps, total) {
            self.request_limit(v, rate, daily_profile.as_ref(), total)?;
        }
        Some(Simulation {
            rps: rps?,
            daily_profile,
            stable: stable?,
            features: features?,
            load: load?,
            faults: faults?,
            canary_traffic: valid_or_none(canary_traffic, 1.0)?,
            router_delay: valid_or_none(router_delay, DEFAULT_ROUTER_DELAY)?,
            users: valid_or_none(users, DEFAULT_SIMULATED_USERS)?,
            sampler: valid_or_none(sampler, None)?,
        })
    }

    /// `simulation.sampler`: `"auto"` (the simulator chooses), `"request"` or
    /// `"aggregated"`.
    fn sampler(&mut self, v: &S<Text>) -> Option<Option<SamplingMethod>> {
        match self.string(v, "simulation.sampler")? {
            "auto" => Some(None),
            "request" => Some(Some(SamplingMethod::PerRequest)),
            "aggregated" => Some(Some(SamplingMethod::Aggregated)),
            other => {
                self.error(
                    v.span(),
                    format!("simulation.sampler: {other:?} is not one of \"auto\", \"request\" or \"aggregated\""),
                );
                None
            }
        }
    }

    /// Refuses a rate at which one run could count more than [`MAX_SIMULATED_REQUESTS`]: the
    /// peak rate (`rps` times the largest hourly multiplier) over the stages and an hour more
    /// (a rollback watched to restoration, a rehearsal's fork). Beyond 2⁵³ a count held in a
    /// 64-bit float is no longer exact, and the error would be silent.
    fn request_limit(
        &mut self,
        v: &S<Num>,
        rps: f64,
        profile: Option<&[f64; 24]>,
        total: Span,
    ) -> Option<()> {
        let peak = profile.map_or(1.0, |p| p.iter().copied().fold(0.0, f64::max));
        let seconds = total.as_secs_f64() + 3_600.0;
        let most = rps * peak * seconds;
        if most.is_finite() && most <= MAX_SIMULATED_REQUESTS {
            return Some(());
        }
        let with_profile = if profile.is_some() {
            format!(" (peak {} with the daily profile)", fmt_num(rps * peak))
        } else {
            String::new()
        };
        self.error(
            v.span(),
            format!(
                "simulation.rps: {} requests per second{with_profile} over {} of stages and an hour of rollback and rehearsal could count {most:.3e} requests, above the limit of 2^53 = 9,007,199,254,740,992 requests per simulated run (counts beyond it are not exact); expected at most {} requests per second for this plan",
                fmt_num(rps),
                fmt_span(total),
                fmt_num((MAX_SIMULATED_REQUESTS / (peak.max(f64::MIN_POSITIVE) * seconds)).floor()),
            ),
        );
        None
    }

    /// `simulation.users`: a whole number from 1 to [`MAX_SIMULATED_USERS`].
    fn simulated_users(&mut self, v: &S<Num>) -> Option<u32> {
        let what = "simulation.users";
        let x = self.number(v, what)?;
        if x < 1.0 || x.fract() != 0.0 || x > f64::from(MAX_SIMULATED_USERS) {
            self.error(
                v.span(),
                format!(
                    "{what}: expected a whole number of simulated users from 1 to {} (the population flags are counted over), found {}",
                    // 10,000,000 as people write it.
                    MAX_SIMULATED_USERS
                        .to_string()
                        .as_bytes()
                        .rchunks(3)
                        .rev()
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u32)
    }

    /// `simulation.daily_profile`: exactly 24 numbers of at least 0.
    fn daily_profile(&mut self, v: &S<Vec<S<Num>>>) -> Option<[f64; 24]> {
        let list = v.get_ref();
        if list.len() != 24 {
            self.error(
                v.span(),
                format!(
                    "simulation.daily_profile: has {} values; expected exactly 24 (one multiplier of rps per hour, hour 0 = midnight UTC)",
                    list.len()
                ),
            );
            return None;
        }
        let mut out = [0.0; 24];
        let mut ok = true;
        for (slot, (hour, x)) in out.iter_mut().zip(list.iter().enumerate()) {
            match self.non_negative(x, &format!("simulation.daily_profile hour {hour}")) {
                Some(x) => *slot = x,
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `simulation.stable`.
    fn service_model(&mut self, raw: &S<RawServiceModel>) -> Option<ServiceModel> {
        let r = raw.get_ref();
        let ctx = "simulation.stable";
        let latency =
            |this: &mut Self, v: &Option<S<Num>>, key: &str| -> Option<(f64, Range<usize>)> {
                match v {
                    None => {
                        this.missing(raw.span(), ctx, key, "a latency quantile in milliseconds");
                        None
                    }
                    Some(v) => this
                        .positive(v, &format!("{ctx}.{key}"))
                        .map(|x| (x, v.span())),
                }
            };
        let p50 = latency(self, &r.p50_ms, "p50_ms");
        let p95 = latency(self, &r.p95_ms, "p95_ms");
        let p99 = latency(self, &r.p99_ms, "p99_ms");
        let mut ordered = true;
        for ((lo, lo_key), (hi, hi_key)) in [
            ((&p50, "p50_ms"), (&p95, "p95_ms")),
            ((&p95, "p95_ms"), (&p99, "p99_ms")),
        ] {
            if let (Some((lo, _)), Some((hi, span))) = (lo, hi) {
                if hi <= lo {
                    ordered = false;
                    self.error(
                        span.clone(),
                        format!(
                            "{ctx}: {hi_key} {} is not above {lo_key} {}; expected 0 < p50_ms < p95_ms < p99_ms",
                            fmt_num(*hi),
                            fmt_num(*lo)
                        ),
                    );
                }
            }
        }
        let error_rate = match &r.error_rate {
            None => {
                self.missing(
                    raw.span(),
                    ctx,
                    "error_rate",
                    "the stable error rate, e.g. error_rate = \"0.28%\"",
                );
                None
            }
            Some(v) => self.rate_in(
                v,
                &format!("{ctx}.error_rate"),
                |x| (0.0..1.0).contains(&x),
                "a rate of at least 0% and below 100%",
            ),
        };
        if !ordered {
            return None;
        }
        Some(ServiceModel {
            p50_ms: p50?.0,
            p95_ms: p95?.0,
            p99_ms: p99?.0,
            error_rate: error_rate?,
        })
    }

    /// A feature's or the overhead's `latency` and `error_rate`, with their defaults of 0.
    fn overhead_pair(
        &mut self,
        latency: Option<&S<NumOrText>>,
        error_rate: Option<&S<NumOrText>>,
        ctx: &str,
    ) -> (Option<f64>, Option<f64>) {
        let latency = Field::of(latency, |v| {
            self.rate_in(
                v,
                &format!("{ctx}.latency"),
                |x| x > -0.9,
                "a relative change above -90%, such as \"+3.5%\"",
            )
        });
        let error_rate = Field::of(error_rate, |v| {
            self.rate_in(
                v,
                &format!("{ctx}.error_rate"),
                |x| (0.0..1.0).contains(&x),
                "an added error rate of at least 0% and below 100%, such as \"+0.05%\"",
            )
        });
        (valid_or_none(latency, 0.0), valid_or_none(error_rate, 0.0))
    }

    /// `simulation.features`.
    fn features(&mut self, list: &S<Vec<S<RawFeature>>>) -> Option<Vec<Feature>> {
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, f) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("simulation feature {n}");
            let r = f.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                f.span(),
                &ctx,
                ("feature", "the feature's name as reports show it"),
                (&mut names, n),
            );
            let (latency, error_rate) =
                self.overhead_pair(r.latency.as_ref(), r.error_rate.as_ref(), &ctx);
            out = match (out, name, latency, error_rate) {
                (Some(mut v), Some(name), Some(latency), Some(error_rate)) => {
                    v.push(Feature {
                        name,
                        latency,
                        error_rate,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// A fault's or rehearsal's `at`: required, and before the end of the plan.
    pub(super) fn at(
        &mut self,
        v: Option<&S<Dur>>,
        table: Range<usize>,
        ctx: &str,
        total: Option<Span>,
    ) -> Option<PlanTime> {
        let Some(v) = v else {
            self.missing(
                table,
                ctx,
                "at",
                "when it starts, in plan time, e.g. at = \"12h\"",
            );
            return None;
        };
        let at = self.duration(v, &format!("{ctx}: at"))?;
        if let Some(total) = total {
            if at >= total {
                self.error(
                    v.span(),
                    format!(
                        "{ctx}: at {} is not before the end of the plan ({} of stages); expected a time while the rollout runs",
                        fmt_span(at),
                        fmt_span(total)
                    ),
                );
                return None;
            }
        }
        Some(PlanTime(at.0))
    }

    /// The keys of a fault other than `at`.
    pub(super) fn fault(
        &mut self,
        k: &FaultKeys<'_>,
        at: Option<PlanTime>,
        ctx: &str,
    ) -> Option<Fault> {
        let cohort = match k.cohort {
            None => {
                self.missing(k.span.clone(), ctx, "cohort", "\"canary\" or \"stable\"");
                None
            }
            Some(v) => match self.string(v, &format!("{ctx}: cohort")) {
                None => None,
                Some("canary") => Some(Cohort::Canary),
                Some("stable") => Some(Cohort::Stable),
                Some(other) => {
                    self.error(
                        v.span(),
                        format!("{ctx}: cohort {other:?} is not one of \"canary\" or \"stable\""),
                    );
                    None
                }
            },
        };
        let duration = Field::of(k.duration, |v| {
            self.positive_duration(v, &format!("{ctx}: duration"))
        });
        let effect = match (k.add_latency, k.error_rate) {
            (Some(_), Some(err)) => {
                self.error(
                    err.span(),
                    format!("{ctx}: has both add_latency and error_rate; expected exactly one effect per fault"),
                );
                None
            }
            (None, None) => {
                self.error(
                    k.span.clone(),
                    format!("{ctx}: has no effect; expected add_latency = \"800ms\" (with an optional fraction) or error_rate = \"3%\""),
                );
                None
            }
            (Some(lat), None) => {
                let ms = self.positive_duration(lat, &format!("{ctx}: add_latency"));
                let fraction = Field::of(k.fraction, |v| {
                    self.rate_in(
                        v,
                        &format!("{ctx}: fraction"),
                        |x| x > 0.0 && x <= 1.0,
                        "a share above 0 and at most 1 (or up to \"100%\")",
                    )
                });
                match (ms, valid_or_none(fraction, 1.0)) {
                    (Some(ms), Some(fraction)) => Some(FaultEffect::AddLatency {
                        ms: ms.0 as f64,
                        fraction,
                    }),
                    _ => None,
                }
            }
            (None, Some(err)) => {
                if let Some(f) = k.fraction {
                    self.error(
                        f.span(),
                        format!("{ctx}: fraction applies only to add_latency; an error_rate fault already says what share of requests fails"),
                    );
                }
                let rate = self.rate_in(
                    err,
                    &format!("{ctx}: error_rate"),
                    |x| x > 0.0 && x <= 1.0,
                    "a rate above 0% and at most 100%",
                );
                if k.fraction.is_some() {
                    None
                } else {
                    rate.map(|rate| FaultEffect::ErrorRate { rate })
                }
            }
        };
        let duration = match duration {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid(d) => Some(d),
        };
        Some(Fault {
            cohort: cohort?,
            at: at?,
            duration,
            effect: effect?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::{errs, ok, MINIMAL};

    /// MINIMAL with a `[simulation]` whose `rps` line and extra lines are given.
    fn with_simulation(rps: &str, extra: &str) -> String {
        MINIMAL.to_string()
            + &format!(
                "\n[simulation]\nrps = {rps}\nstable = {{ p50_ms = 100, p95_ms = 200, p99_ms = 300, error_rate = 0 }}\n{extra}"
            )
    }

    #[test]
    fn the_sampler_is_auto_unless_the_plan_names_one() {
        assert_eq!(
            ok(&with_simulation("10", "")).simulation.unwrap().sampler,
            None
        );
        for (text, want) in [
            ("auto", None),
            ("request", Some(SamplingMethod::PerRequest)),
            ("aggregated", Some(SamplingMethod::Aggregated)),
        ] {
            let plan = ok(&with_simulation("10", &format!("sampler = \"{text}\"\n")));
            assert_eq!(plan.simulation.unwrap().sampler, want, "{text}");
        }
        let e = errs(&with_simulation("10", "sampler = \"fast\"\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].2
                .contains("simulation.sampler: \"fast\" is not one of"),
            "{e:?}"
        );
    }

    #[test]
    fn a_rate_that_could_count_past_two_to_the_53_is_refused_at_rps() {
        // One hour of stages plus an hour: 7,200 s. 2^53 / 7,200 = 1.25e12 requests per second.
        assert!(ok(&with_simulation("1.2e12", "")).simulation.is_some());
        let e = errs(&with_simulation("1.3e12", ""));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (12, 7), "{e:?}");
        assert!(e[0].2.contains("above the limit of 2^53"), "{e:?}");
        assert!(
            e[0].2
                .contains("expected at most 1250999896491 requests per second"),
            "{e:?}"
        );
        // Non-finite rates never get that far.
        for rps in ["inf", "nan"] {
            let e = errs(&with_simulation(rps, ""));
            assert_eq!(e.len(), 1, "{rps}: {e:?}");
            assert!(e[0].2.contains("expected a finite number"), "{rps}: {e:?}");
        }
        // The daily profile's peak counts too.
        let profile = format!("daily_profile = [{}2]\n", "1, ".repeat(23));
        let e = errs(&with_simulation("1e12", &profile));
        assert!(
            e[0].2
                .contains("(peak 2000000000000 with the daily profile)"),
            "{e:?}"
        );
    }

    #[test]
    fn overhead_becomes_one_feature_and_faults_get_defaults() {
        let src = MINIMAL.to_string()
            + r#"
[simulation]
rps = 10
stable = { p50_ms = 100, p95_ms = 200, p99_ms = 300, error_rate = 0 }
overhead = { latency = "+13.6%", error_rate = "+0.1%" }
load = { contention = 0.85, stable_latency = "+2%" }
canary_traffic = "0%"
router_delay = "250ms"
daily_profile = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5]

[[simulation.faults]]
cohort = "stable"
at = "30m"
add_latency = "1.5s"

[[simulation.faults]]
cohort = "canary"
at = "0s"
duration = "5m"
error_rate = "3%"
"#;
        let sim = ok(&src).simulation.unwrap();
        assert_eq!(sim.features.len(), 1);
        assert_eq!(sim.features[0].name, "canary overhead");
        assert!((sim.features[0].latency - 0.136).abs() < 1e-12);
        assert!((sim.features[0].error_rate - 0.001).abs() < 1e-12);
        assert_eq!(sim.load.contention, 0.85);
        assert!((sim.load.stable_latency - 0.02).abs() < 1e-12);
        assert_eq!(sim.canary_traffic, 0.0);
        assert_eq!(sim.router_delay, Span(250));
        assert_eq!(sim.daily_profile.unwrap()[23], 0.5);
        assert_eq!(
            sim.faults[0],
            Fault {
                cohort: Cohort::Stable,
                at: PlanTime(1_800_000),
                duration: None,
                effect: FaultEffect::AddLatency {
                    ms: 1500.0,
                    fraction: 1.0
                },
            }
        );
        assert_eq!(sim.faults[1].duration, Some(Span::from_mins(5)));
        assert!(
            matches!(sim.faults[1].effect, FaultEffect::ErrorRate { rate } if (rate - 0.03).abs() < 1e-12)
        );
    }
}
