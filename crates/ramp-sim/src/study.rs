//! Monte Carlo studies of a plan: many seeds, one table. The runs themselves are the
//! caller's (the binary spreads them over all cores); this module only aggregates their
//! digests, so it stays pure and deterministic: the same digests give the same study.

use ramp_core::summary::{MonteCarlo, Outcome, RehearsalStudy, RunDigest};
use ramp_core::Plan;

/// Nearest-rank quantile of `v` (which it sorts), `None` when empty.
fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Aggregates the digests of runs `first_seed ..` of `plan`.
pub fn study(plan: &Plan, first_seed: u64, digests: &[RunDigest]) -> MonteCarlo {
    let n = digests.len().max(1) as f64;
    let outcomes = [
        Outcome::Promoted,
        Outcome::PromotedWithCaveats,
        Outcome::RolledBack,
        Outcome::Halted,
    ]
    .into_iter()
    .map(|o| (o, digests.iter().filter(|d| d.outcome == o).count()))
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
            RehearsalStudy {
                name: r.name.clone(),
                detection_rate: det.len() as f64 / n,
                median_detection_s: quantile(&mut det, 0.5),
                p95_detection_s: quantile(&mut det, 0.95),
                median_recovery_s: quantile(&mut rec, 0.5),
                within_target_rate: within as f64 / n,
                target_s: target,
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
        false_rollback_rate: plan
            .simulation
            .as_ref()
            .is_some_and(|s| {
                s.features
                    .iter()
                    .all(|f| f.latency == 0.0 && f.error_rate == 0.0)
            })
            .then_some(false_rollbacks as f64 / n),
        fault_detection_rate: has_faults.then_some(detected as f64 / n),
        median_fault_detection_s: quantile(&mut delays, 0.5),
        rehearsals,
        decision_disagreements: digests.len() - modal,
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
        let s = study(&plan, 1, &d);
        assert_eq!(s.runs, 4);
        assert_eq!(s.unfaulted_rollback_rate, 0.25);
        // The simulated canary equals stable, so those rollbacks were false.
        assert_eq!(s.false_rollback_rate, Some(0.25));
        assert_eq!(s.fault_detection_rate, Some(0.5));
        assert_eq!(s.median_fault_detection_s, Some(30.0));
        assert_eq!(s.outcomes[0], (Outcome::Promoted, 1));
        assert_eq!(s.outcomes[2], (Outcome::RolledBack, 3));
        assert_eq!(s.decision_disagreements, 1);
    }
}
