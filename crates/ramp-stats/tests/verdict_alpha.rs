//! Empirical checks of the verdict module's guarantees on seeded simulated traffic.
//!
//! Traffic follows the staging report's stage 1: 125 req/s with 5 % to the canary, looked at every
//! 5-second tick (Poisson request counts per tick). Each A/A check runs at least 1,000
//! independent runs, peeks at **every** tick over a long horizon, and counts the runs that
//! ever reject; anytime-validity says that share is at most α. The binomial tolerance is three
//! standard errors: `α + 3·√(α(1−α)/runs)`.
//!
//! Run with `--nocapture` to see the measured rates:
//! `CARGO_TARGET_DIR=/work/target-stats cargo test --release -p ramp-stats --test verdict_alpha -- --nocapture`

use ramp_stats::verdict::{mann_whitney, SequentialCountTest, SequentialLatencyTest};
use ramp_stats::Histogram;
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use rand_pcg::Pcg64Mcg;

/// Requests per second (the staging report's traffic).
const RPS: f64 = 125.0;
/// Canary share in stage 1.
const SHARE: f64 = 0.05;
/// Seconds per tick.
const TICK_S: f64 = 5.0;
/// α of every test here.
const ALPHA: f64 = 0.05;

/// Requests of each arm in one tick: `(canary, stable)`.
fn tick_requests(rng: &mut Pcg64Mcg, share: f64) -> (u64, u64) {
    let c = Poisson::new(RPS * TICK_S * share).unwrap().sample(rng) as u64;
    let s = Poisson::new(RPS * TICK_S * (1.0 - share))
        .unwrap()
        .sample(rng) as u64;
    (c, s)
}

/// Failures among `n` requests that each fail with probability `p`.
fn failures(rng: &mut Pcg64Mcg, n: u64, p: f64) -> u64 {
    if n == 0 {
        return 0;
    }
    Binomial::new(n, p.clamp(0.0, 1.0)).unwrap().sample(rng)
}

/// The largest false-rejection rate consistent with α over `runs` runs (3 standard errors).
fn tolerance(runs: usize) -> f64 {
    ALPHA + 3.0 * (ALPHA * (1.0 - ALPHA) / runs as f64).sqrt()
}

fn median(mut xs: Vec<usize>) -> Option<usize> {
    xs.sort_unstable();
    (!xs.is_empty()).then(|| xs[xs.len() / 2])
}

/// Runs the count test over `ticks` ticks; `rate(tick)` is stable's failure probability and
/// `ratio` the canary's multiple of it. Returns the tick of the first rejection, if any.
fn count_run(
    rng: &mut Pcg64Mcg,
    ticks: usize,
    stages: &[f64],
    rate: impl Fn(usize) -> f64,
    ratio: f64,
) -> Option<usize> {
    let per_stage = ticks / stages.len();
    let mut test = SequentialCountTest::new(ALPHA);
    for (k, &share) in stages.iter().enumerate() {
        // A new stage has a new traffic share: a new test.
        test.reset();
        for t in k * per_stage..(k + 1) * per_stage {
            let (nc, ns) = tick_requests(rng, share);
            let p = rate(t);
            let (ec, es) = (failures(rng, nc, p * ratio), failures(rng, ns, p));
            test.observe_counts(nc, ec, ns, es);
            if test.verdict().reject {
                return Some(t + 1);
            }
        }
    }
    None
}

#[test]
fn count_test_false_rejection_rate_is_at_most_alpha() {
    // 2,000 A/A runs of one hour (720 ticks), peeking at every tick. The shared error rate
    // swings ±80 % around 1 % over 20-minute cycles: the test conditions on where errors land,
    // so a time-varying rate does not matter.
    let runs = 2000;
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_0001);
    let rate = |t: usize| 0.01 * (1.0 + 0.8 * (t as f64 * std::f64::consts::TAU / 240.0).sin());
    let false_rejections = (0..runs)
        .filter(|_| count_run(&mut rng, 720, &[SHARE], rate, 1.0).is_some())
        .count();
    let rate_aa = false_rejections as f64 / runs as f64;
    println!(
        "count test A/A: {false_rejections}/{runs} runs ever rejected = {rate_aa:.4} (α = {ALPHA}, tolerance {:.4})",
        tolerance(runs)
    );
    assert!(rate_aa <= tolerance(runs), "{rate_aa}");
}

#[test]
fn count_test_stays_valid_across_stages_with_reset() {
    // Three stages (5 %, 20 %, 50 %), 20 minutes each, the test reset at each stage start.
    // Each stage's test is valid on its own, so the whole rollout's rate is at most 3α; in
    // practice it stays near α because the martingales are conservative.
    let runs = 1000;
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_0002);
    let false_rejections = (0..runs)
        .filter(|_| count_run(&mut rng, 720, &[0.05, 0.2, 0.5], |_| 0.01, 1.0).is_some())
        .count();
    let rate_aa = false_rejections as f64 / runs as f64;
    println!(
        "count test A/A over 3 stages with reset: {false_rejections}/{runs} = {rate_aa:.4} (bound 3α = {:.2})",
        3.0 * ALPHA
    );
    assert!(
        rate_aa <= 3.0 * ALPHA + 3.0 * (3.0 * ALPHA * (1.0 - 3.0 * ALPHA) / runs as f64).sqrt()
    );
}

#[test]
fn count_test_detects_a_five_fold_error_rate() {
    let runs = 200;
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_0003);
    let mut report = Vec::new();
    for ratio in [5.0, 2.0] {
        let delays: Vec<usize> = (0..runs)
            .filter_map(|_| count_run(&mut rng, 720, &[SHARE], |_| 0.01, ratio))
            .collect();
        let power = delays.len() as f64 / runs as f64;
        let med = median(delays.clone()).map(|t| t as f64 * TICK_S);
        println!(
            "count test power, error rate ×{ratio} (1% → {}%): {}/{runs} = {power:.3} within 1 h, median detection {:?} s",
            ratio,
            delays.len(),
            med
        );
        report.push((ratio, power, med));
    }
    let (_, power5, med5) = report[0];
    assert!(power5 >= 0.95, "power at ×5 = {power5}");
    assert!(med5.unwrap() <= 300.0, "median delay at ×5 = {med5:?} s");
}

/// One A/A-or-shifted latency run: log-normal latencies (median 100 ms, σ = 0.5), the
/// canary's multiplied by `factor`. At every tick it asks the sequential test and (for the
/// peeking demonstration) a one-sided Mann-Whitney at α on the cumulative data. Returns the
/// first rejecting tick of each: `(sequential, mann_whitney)`.
fn latency_run(
    rng: &mut Pcg64Mcg,
    ticks: usize,
    factor: f64,
    floor: f64,
    with_mann_whitney: bool,
) -> (Option<usize>, Option<usize>) {
    let dist = LogNormal::new(100f64.ln(), 0.5).unwrap();
    let mut test = SequentialLatencyTest::with_floor(ALPHA, floor);
    let (mut all_c, mut all_s) = (Histogram::new(), Histogram::new());
    let (mut seq, mut mw) = (None, None);
    for t in 0..ticks {
        let (nc, ns) = tick_requests(rng, SHARE);
        let (mut hc, mut hs) = (Histogram::new(), Histogram::new());
        for _ in 0..nc {
            hc.record(dist.sample(rng) * factor);
        }
        for _ in 0..ns {
            hs.record(dist.sample(rng));
        }
        test.observe(&hc, &hs);
        if seq.is_none() && test.verdict().reject {
            seq = Some(t + 1);
        }
        if with_mann_whitney {
            all_c.merge(&hc);
            all_s.merge(&hs);
            if mw.is_none() && mann_whitney(&all_c, &all_s).2 < ALPHA {
                mw = Some(t + 1);
            }
        }
        if seq.is_some() && (mw.is_some() || !with_mann_whitney) {
            break;
        }
    }
    (seq, mw)
}

#[test]
fn latency_test_false_rejection_rate_is_at_most_alpha_and_peeking_mann_whitney_is_not() {
    // 1,000 A/A runs of 20 minutes (240 ticks), both tests looked at every tick on the same
    // data. The sequential test must stay within α; Mann-Whitney re-run at every look is the
    // fixed-horizon test misused as a sequential one, and its false-rejection rate explodes.
    let runs = 1000;
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_0004);
    let (mut seq, mut mw, mut mw_final) = (0usize, 0usize, 0usize);
    for _ in 0..runs {
        let (s, m) = latency_run(&mut rng, 240, 1.0, 0.0, true);
        seq += s.is_some() as usize;
        mw += m.is_some() as usize;
    }
    // Mann-Whitney once, at the horizon only, on fresh runs: valid, ≈ α.
    let fixed_runs = 1000;
    for _ in 0..fixed_runs {
        let dist = LogNormal::new(100f64.ln(), 0.5).unwrap();
        let (mut c, mut s) = (Histogram::new(), Histogram::new());
        let (nc, ns) = (
            Poisson::new(RPS * 240.0 * TICK_S * SHARE)
                .unwrap()
                .sample(&mut rng) as u64,
            2000u64,
        );
        for _ in 0..nc {
            c.record(dist.sample(&mut rng));
        }
        for _ in 0..ns {
            s.record(dist.sample(&mut rng));
        }
        mw_final += (mann_whitney(&c, &s).2 < ALPHA) as usize;
    }
    let (seq_rate, mw_rate, mw_final_rate) = (
        seq as f64 / runs as f64,
        mw as f64 / runs as f64,
        mw_final as f64 / fixed_runs as f64,
    );
    println!(
        "latency test A/A: {seq}/{runs} runs ever rejected = {seq_rate:.4} (α = {ALPHA}, tolerance {:.4})",
        tolerance(runs)
    );
    println!(
        "Mann-Whitney peeked at every tick, A/A: {mw}/{runs} = {mw_rate:.3} ({:.1}× α)",
        mw_rate / ALPHA
    );
    println!(
        "Mann-Whitney at one pre-planned look, A/A: {mw_final}/{fixed_runs} = {mw_final_rate:.3}"
    );
    assert!(
        seq_rate <= tolerance(runs),
        "sequential A/A rate {seq_rate}"
    );
    assert!(
        mw_rate > 3.0 * ALPHA,
        "peeking Mann-Whitney A/A rate {mw_rate}"
    );
    assert!(
        mw_final_rate <= tolerance(fixed_runs),
        "single-look Mann-Whitney A/A rate {mw_final_rate}"
    );
}

#[test]
fn latency_test_detects_a_ten_percent_shift() {
    let runs = 200;
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_0005);
    for floor in [0.0, 0.02] {
        let delays: Vec<usize> = (0..runs)
            .filter_map(|_| latency_run(&mut rng, 360, 1.1, floor, false).0)
            .collect();
        let power = delays.len() as f64 / runs as f64;
        let med = median(delays.clone()).map(|t| t as f64 * TICK_S);
        println!(
            "latency test power, +10% shift, floor {floor}: {}/{runs} = {power:.3} within 30 min, median detection {med:?} s",
            delays.len()
        );
        assert!(power >= 0.95, "power = {power} (floor {floor})");
    }
    // And a shift under the floor is never a rejection, even with plenty of data.
    let under = (0..100)
        .filter(|_| latency_run(&mut rng, 240, 1.01, 0.02, false).0.is_some())
        .count();
    println!("latency test, +1% shift with a 2% floor: {under}/100 rejected");
    assert!(under as f64 / 100.0 <= tolerance(100));
}

#[test]
fn explanations_read_as_sentences_on_a_real_regression() {
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_0006);
    let dist = LogNormal::new(100f64.ln(), 0.5).unwrap();
    let mut test = SequentialLatencyTest::new(ALPHA);
    let (mut c, mut s) = (Histogram::new(), Histogram::new());
    for _ in 0..4000 {
        c.record(dist.sample(&mut rng) * 1.15);
    }
    for _ in 0..40_000 {
        s.record(dist.sample(&mut rng));
    }
    test.observe(&c, &s);
    let v = test.verdict();
    println!("{}", v.explanation);
    assert!(v.reject);
    assert!(v.explanation.starts_with("canary p"));
    assert!(v
        .explanation
        .contains("% above stable at 95% confidence after 4,000 requests"));
    let mut count = SequentialCountTest::new(0.01);
    let (mut nc, mut ec, mut ns, mut es) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..20 {
        let (a, b) = tick_requests(&mut rng, 0.1);
        let (x, y) = (failures(&mut rng, a, 0.006), failures(&mut rng, b, 0.003));
        nc += a;
        ec += x;
        ns += b;
        es += y;
    }
    count.observe_counts(nc, ec, ns, es);
    println!("{}", count.verdict().explanation);
    assert!(count.verdict().explanation.starts_with("canary error rate"));
}
