//! Monte Carlo studies of a plan: many seeds, one table. The runs themselves are the
//! caller's (the binary spreads them over all cores); this module only aggregates their
//! digests, so it stays pure and deterministic: the same digests give the same study.
//!
//! Every rate comes with its 95 % Wilson score interval ([`wilson`]): a study of 200 runs
//! without a false rollback has not shown a rate of 0, only one below 1.9 %.

use ramp_core::summary::{
    MonteCarlo, Outcome, Proportion, RehearsalStudy, RunDigest, Sampling, Stopping,
};
use ramp_core::Plan;

/// z of the two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Runs between two looks of a stopping rule (`--until-ci`): the rule is checked after runs
/// 10, 20, 30… in seed order, so where a study stops depends on the seeds alone, not on
/// which worker finished first.
pub const LOOK_EVERY: usize = 10;

/// `count` of `runs` with its 95 % Wilson score interval: centre
/// `(p + z²/2n) / (1 + z²/n)`, half-width `z·√(p(1−p)/n + z²/4n²) / (1 + z²/n)`. Unlike
/// `p ± z·√(p(1−p)/n)`, it is not empty at 0 of n (its upper end is then
/// `z² / (n + z²)`: 1.9 % at 200 runs) and stays inside [0, 1].
pub fn wilson(count: usize, runs: usize) -> Proportion {
    if runs == 0 {
        return Proportion {
            count,
            runs,
            rate: 0.0,
            low: 0.0,
            high: 1.0,
        };
    }
    let n = runs as f64;
    let p = count as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Proportion {
        count,
        runs,
        rate: p,
        low: if count == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        high: if count >= runs {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    }
}

/// Whether the simulated canary is identical to stable (no feature overhead): then every
/// rollback without a fault is a false rollback.
fn canary_equals_stable(plan: &Plan) -> bool {
    plan.simulation.as_ref().is_some_and(|s| {
        s.features
            .iter()
            .all(|f| f.latency == 0.0 && f.error_rate == 0.0)
    })
}

/// The rollbacks with no simulated fault active among `digests`, with their interval: the
/// rate a stopping rule watches (false rollbacks when the canary equals stable).
pub fn watched(digests: &[RunDigest]) -> Proportion {
    let unfaulted = digests
        .iter()
        .filter(|d| matches!(d.rollback, Some((_, None))))
        .count();
    wilson(unfaulted, digests.len())
}

/// Nearest-rank quantile of `v` (which it sorts), `None` when empty.
fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Aggregates the digests of runs `first_seed ..` of `plan`, drawn with `sampling`, under
/// `stopping` when a stopping rule ended the study.
pub fn study(
    plan: &Plan,
    first_seed: u64,
    digests: &[RunDigest],
    sampling: Option<Sampling>,
    stopping: Option<Stopping>,
) -> MonteCarlo {
    let runs = digests.len();
    let n = runs.max(1) as f64;
    let outcomes: Vec<(Outcome, usize)> = [
        Outcome::Promoted,
        Outcome::PromotedWithCaveats,
        Outcome::RolledBack,
        Outcome::Halted,
    ]
    .into_iter()
    .map(|o| (o, digests.iter().filter(|d| d.outcome == o).count()))
    .collect();
    let outcome_shares = outcomes
        .iter()
        .map(|&(o, c)| (o, wilson(c, runs)))
        .collect();
    let false_rollbacks = digests
        .iter()
        .filter(|d| matches!(d.rollback, Some((_, None))))
        .count();
    let has_faults = plan
        .simulation
        .as_ref()
        .is_some_and(|s| !s.faults.is_empty());
    let mut delays: Vec<f64> = digests
        .iter()
        .filter_map(|d| d.rollback.and_then(|(_, delay)| delay))
        .collect();
    let detected = delays.len();
    let rehearsals = plan
        .rehearsals
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let of = |d: &RunDigest| d.rehearsals.get(i).cloned();
            let mut det: Vec<f64> = digests.iter().filter_map(|d| of(d)?.1).collect();
            let mut rec: Vec<f64> = digests.iter().filter_map(|d| of(d)?.2).collect();
            let target = r.target.as_secs_f64();
            let within = rec.iter().filter(|&&t| t <= target).count();
            let detections = wilson(det.len(), runs);
            RehearsalStudy {
                name: r.name.clone(),
                detection_rate: det.len() as f64 / n,
                median_detection_s: quantile(&mut det, 0.5),
                p95_detection_s: quantile(&mut det, 0.95),
                median_recovery_s: quantile(&mut rec, 0.5),
                within_target_rate: within as f64 / n,
                target_s: target,
                detections,
                within_target: wilson(within, runs),
            }
        })
        .collect();
    // The most common decision sequence, ties broken by first appearance (deterministic).
    let mut counts: Vec<(&Vec<_>, usize)> = Vec::new();
    for d in digests {
        match counts.iter_mut().find(|(k, _)| **k == d.decisions) {
            Some((_, c)) => *c += 1,
            None => counts.push((&d.decisions, 1)),
        }
    }
    let modal = counts.iter().map(|(_, c)| *c).max().unwrap_or(0);
    MonteCarlo {
        deployment_id: plan.deployment.id.clone(),
        runs: digests.len(),
        first_seed,
        outcomes,
        unfaulted_rollback_rate: false_rollbacks as f64 / n,
        false_rollback_rate: canary_equals_stable(plan).then_some(false_rollbacks as f64 / n),
        fault_detection_rate: has_faults.then_some(detected as f64 / n),
        median_fault_detection_s: quantile(&mut delays, 0.5),
        rehearsals,
        decision_disagreements: digests.len() - modal,
        sampling,
        outcome_shares,
        unfaulted_rollbacks: wilson(false_rollbacks, runs),
        false_rollbacks: canary_equals_stable(plan).then(|| wilson(false_rollbacks, runs)),
        fault_detections: has_faults.then(|| wilson(detected, runs)),
        stopping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_core::summary::Decision;

    fn digest(seed: u64, outcome: Outcome, rollback: Option<(usize, Option<f64>)>) -> RunDigest {
        RunDigest {
            seed,
            outcome,
            decisions: match outcome {
                Outcome::RolledBack => vec![Decision::Proceed, Decision::Rollback],
                _ => vec![Decision::Proceed, Decision::Proceed],
            },
            rollback,
            rehearsals: vec![],
        }
    }

    #[test]
    fn false_rollbacks_and_detections_are_told_apart() {
        let plan = ramp_core::parse_plan(
            r#"
[deployment]
id = "d"
service = "s"
environment = "e"
[gates]
p95_ms = { max = 500 }
[[stages]]
weight = 10
duration = "10m"
[[stages]]
weight = 100
duration = "10m"
[simulation]
rps = 10
stable = { p50_ms = 100, p95_ms = 200, p99_ms = 300, error_rate = "0.1%" }
[[simulation.faults]]
cohort = "canary"
at = "5m"
error_rate = "5%"
"#,
            "t.toml",
        )
        .unwrap();
        let d = vec![
            digest(1, Outcome::Promoted, None),
            digest(2, Outcome::RolledBack, Some((2, None))),
            digest(3, Outcome::RolledBack, Some((1, Some(30.0)))),
            digest(4, Outcome::RolledBack, Some((1, Some(50.0)))),
        ];
        let s = study(&plan, 1, &d, None, None);
        assert_eq!(s.runs, 4);
        assert_eq!(s.unfaulted_rollback_rate, 0.25);
        // The simulated canary equals stable, so those rollbacks were false.
        assert_eq!(s.false_rollback_rate, Some(0.25));
        assert_eq!(s.fault_detection_rate, Some(0.5));
        assert_eq!(s.median_fault_detection_s, Some(30.0));
        assert_eq!(s.outcomes[0], (Outcome::Promoted, 1));
        assert_eq!(s.outcomes[2], (Outcome::RolledBack, 3));
        assert_eq!(s.decision_disagreements, 1);
        assert_eq!(s.false_rollbacks.unwrap().count, 1);
        assert_eq!(s.outcome_shares[2].1.count, 3);
        assert_eq!(watched(&d).count, 1);
    }

    #[test]
    fn wilson_intervals_have_their_textbook_values() {
        // 0 of 200: the upper end is z²/(n + z²).
        let none = wilson(0, 200);
        assert_eq!(none.low, 0.0);
        assert!((none.high - 0.018_846).abs() < 1e-5, "{}", none.high);
        // 10 of 100: 5.5 % to 17.4 % (Wilson 1927, as tabulated by Newcombe 1998).
        let some = wilson(10, 100);
        assert!((some.low - 0.055_2).abs() < 5e-4 && (some.high - 0.174_4).abs() < 5e-4);
        let all = wilson(50, 50);
        assert_eq!(all.high, 1.0);
        assert!((all.low - 0.928_7).abs() < 5e-4, "{}", all.low);
        assert_eq!(wilson(0, 0).high, 1.0);
    }
}
