//! A tiny configuration of the comparison (50 runs of 10 minutes per regression), checked for
//! sanity: Ramp's sequential gates rarely roll back an A/A canary, they catch a five-fold
//! error rate, the threshold checks' false rollbacks show up, and the result does not depend
//! on the number of threads. It takes a second or two in release, longer in debug.

use ramp_verdicts::{run, Column, Config, Method, Regression};

fn tiny(threads: usize) -> Config {
    Config {
        aa_runs: 50,
        regression_runs: 50,
        seed: 7,
        horizon_s: 600,
        threads,
        regressions: vec![Regression::None, Regression::Errors5],
    }
}

#[test]
fn tiny_comparison_is_sane_and_deterministic() {
    let config = tiny(2);
    let rows = run(&config);
    assert_eq!(rows.len(), 2);
    let (aa, x5) = (&rows[0], &rows[1]);
    assert_eq!(aa.regression, Regression::None);
    assert_eq!(aa.outcomes.len(), 50);
    assert_eq!(x5.outcomes.len(), 50);

    for m in [Method::Ramp, Method::RampFloor] {
        let c = aa.cell(Column::Method(m));
        assert!(c.rate() <= 0.05, "{m:?} A/A rate {}", c.rate());
        let c = x5.cell(Column::Method(m));
        assert!(c.rate() >= 0.9, "{m:?} ×5 power {}", c.rate());
        assert!(c.median_s.is_some_and(|s| s < 600.0), "{c:?}");
    }
    // The count test is the part that sees errors; the latency tests see nothing to reject.
    let errors = x5.cell(Column::Method(Method::RampErrors));
    assert!(errors.rate() >= 0.9, "{errors:?}");
    // Ten threshold checks at the staging report's levels fail often on an A/A canary with 5 % of
    // 125 req/s: a single failed check (threshold 1) rolls back well over 5 % of A/A runs.
    let flagger = aa.cell(Column::Method(Method::Flagger1));
    assert!(flagger.rate() > 0.05, "{flagger:?}");
    // Threshold T fires exactly at the T-th failed check.
    for o in &aa.outcomes {
        assert_eq!(o.at(Method::Flagger1), o.flagger_at(1));
        assert_eq!(o.at(Method::Flagger5), o.flagger_at(5));
        assert_eq!(o.flagger_at(0), None);
    }
    // Fixed-horizon methods decide at the end of the stage, or never.
    for o in aa.outcomes.iter().chain(&x5.outcomes) {
        assert!(o.at(Method::Kayenta).is_none_or(|t| t == 600));
    }

    // The same seed gives the same runs on one thread.
    assert_eq!(run(&tiny(1)), rows);
}
