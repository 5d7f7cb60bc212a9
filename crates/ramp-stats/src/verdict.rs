//! Canary-versus-stable verdicts: anytime-valid sequential tests, a fixed-horizon rank test
//! and SLO burn rates, each explaining itself in one plain sentence.
//!
//! # Why sequential
//!
//! A gate is looked at every few seconds. A fixed-horizon test (Mann-Whitney, a t-test, a
//! threshold) controls its false-positive rate α only when it is run **once**, at a sample
//! size chosen in advance. Re-running it at every look and stopping at the first "significant"
//! answer lets noise win sooner or later: in A/A runs the false-rollback rate climbs towards
//! 70 % (Netflix, "Sequential A/B testing keeps the world streaming", part 1). The tests here
//! are *anytime-valid*: the probability that they **ever** reject under the null, at any of
//! arbitrarily many looks, is at most α. The test in `tests/verdict_alpha.rs` measures both
//! facts on simulated A/A traffic.
//!
//! | Gate | Null hypothesis | Valid at | Built on |
//! |---|---|---|---|
//! | [`SequentialCountTest`] | an error lands in the canary with probability ρ (its traffic share) | every look | beta-binomial mixture martingale (Lindon & Malek 2022) |
//! | [`SequentialLatencyTest`] | canary latency is not stochastically larger than stable's (optionally: by more than a floor) | every look | time-uniform DKW bands (Howard & Ramdas 2022) |
//! | [`mann_whitney`] | canary and stable latencies have the same distribution | one look only | Mann-Whitney U with mid-ranks (Kayenta style) |
//! | [`MultiWindowBurn`] | — (an alerting rule, not a test) | every look | Google SRE workbook, "Alerting on SLOs" |
//!
//! Both sequential tests assume that within a stage each arm's observations are exchangeable
//! (the canary's weight fixed, traffic mix shared by both arms, which a random split gives).
//! They therefore compare **cumulative stage data**, never a sliding window: a window drops old
//! samples, and the time-uniform guarantees are about a growing sample. A new stage (a new
//! traffic share ρ) starts a new test: call `reset`. Each stage's test is valid on its own, so
//! a rollout of `S` stages has a false-rollback rate of at most `S·α` (union bound); divide α
//! by the number of stages for a plan-wide guarantee.
//!
//! Everything here is pure arithmetic: no clock, no I/O, no randomness.

use crate::{CohortStats, Histogram, RELATIVE_ERROR};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Special functions
// ---------------------------------------------------------------------------------------------

/// Lanczos coefficients for `g = 7`, `n = 9` (Paul Godfrey's widely published set, the one in
/// Wikipedia's "Lanczos approximation"); relative error about 1e-15 for `x ≥ 0.5`.
const LANCZOS_G: f64 = 7.0;
/// See [`LANCZOS_G`].
#[allow(clippy::excessive_precision)]
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_93,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_13,
    -176.615_029_162_140_59,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_571_6e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, reflection below ½).
///
/// For `x ≥ ½`: `Γ(x) = √(2π) · t^(x−½) · e^(−t) · A(x)` with `t = x + g − ½` and
/// `A(x) = c₀ + Σ cᵢ/(x − 1 + i)`, so
/// `ln Γ(x) = ½ ln 2π + (x − ½) ln t − t + ln A(x)`. Below ½ the reflection formula
/// `Γ(x) Γ(1 − x) = π / sin(πx)` is used. Absolute error is below 1e-13 for the arguments the
/// count test uses (a prior parameter `k·ρ` as small as 1e-3 up to counts in the millions);
/// the unit tests check it against known values. Non-positive or NaN input gives NaN
/// (`+∞` at 0).
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::INFINITY;
    }
    if x < 0.5 {
        let s = (std::f64::consts::PI * x).sin();
        return (std::f64::consts::PI / s).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = LANCZOS[0];
    for (i, &c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b)`, the log of the beta function.
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Complementary error function (Numerical Recipes 2nd ed. §6.2 `erfcc`, a Chebyshev fit with
/// fractional error below 1.2e-7 everywhere): ample for reporting p-values.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Upper tail of the standard normal, `1 − Φ(z) = ½ erfc(z/√2)`.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

// ---------------------------------------------------------------------------------------------
// Sentences
// ---------------------------------------------------------------------------------------------

/// `3200` → `"3,200"`: counts in every sentence and report Ramp writes.
///
/// This is the one thousands-separator rule, applied everywhere a person reads Ramp's
/// output (console, status, reports): a count of things (requests, errors, users, samples,
/// runs) is grouped by thousands with a comma; a duration, a time, a port, a seed or an id is
/// written as is. Every grouped number goes through this function.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A share as a percentage with sensible precision: `0.0062` → `"0.62%"`.
fn pct(p: f64) -> String {
    let v = p * 100.0;
    if v == 0.0 {
        "0%".to_string()
    } else if v.abs() >= 10.0 {
        format!("{v:.1}%")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}%")
    } else {
        format!("{v:.3}%")
    }
}

/// The confidence level `1 − α` as a percentage: `0.05` → `"95%"`, `0.005` → `"99.5%"`.
fn confidence(alpha: f64) -> String {
    let c = (1.0 - alpha) * 100.0;
    if (c - c.round()).abs() < 1e-9 {
        format!("{c:.0}%")
    } else if (c * 10.0 - (c * 10.0).round()).abs() < 1e-9 {
        format!("{c:.1}%")
    } else {
        format!("{c:.2}%")
    }
}

/// A quantile's name: `0.99` → `"p99"`, `0.999` → `"p99.9"`, `0.5` → `"p50"`.
fn quantile_name(q: f64) -> String {
    let v = q * 100.0;
    if (v - v.round()).abs() < 1e-6 {
        format!("p{v:.0}")
    } else {
        format!("p{v:.1}")
    }
}

/// Validates a significance level into `(0, 1)`; anything else is clamped to a sane value
/// so that a bad plan can never make a gate reject on no evidence.
fn sane_alpha(alpha: f64) -> f64 {
    if alpha.is_nan() {
        0.05
    } else {
        alpha.clamp(1e-12, 0.5)
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Sequential error-count test
// ---------------------------------------------------------------------------------------------

/// The result of a sequential count test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the null hypothesis is rejected (the canary is worse): roll back.
    pub reject: bool,
    /// Natural log of the Bayes factor (the test martingale's value); rejection needs
    /// `log_bf ≥ ln(1/α)`.
    pub log_bf: f64,
    /// One plain sentence for status and report.
    pub explanation: String,
}

/// Log Bayes factor of the beta-binomial mixture against the point null "each error is the
/// canary's with probability ρ", after `x_c` canary and `x_s` stable errors:
///
/// ```text
///            B(α₀c + x_c, α₀s + x_s) / B(α₀c, α₀s)
///   BF  =  ─────────────────────────────────────────,     α₀c = k·ρ,  α₀s = k·(1 − ρ)
///                    ρ^x_c · (1 − ρ)^x_s
/// ```
///
/// The numerator is the marginal likelihood of the error sequence when the canary's share θ
/// of errors is unknown, with prior `θ ~ Beta(kρ, k(1−ρ))` centred on the null; the
/// denominator is its likelihood under the null θ = ρ. This is the two-category case of the
/// Dirichlet-multinomial test of Lindon & Malek, "Anytime-valid inference for multinomial count
/// data" (NeurIPS 2022), used by Netflix for canary error counts ("Sequential A/B testing
/// keeps the world streaming", part 2). Computed in log space with [`ln_beta`], so counts in
/// the millions neither overflow nor lose precision. Returns 0 (BF = 1) for a degenerate ρ.
pub fn log_bayes_factor(x_c: u64, x_s: u64, rho: f64, k: f64) -> f64 {
    let valid = rho > 0.0 && rho < 1.0 && k > 0.0 && k.is_finite();
    if !valid {
        return 0.0;
    }
    let (a, b) = (k * rho, k * (1.0 - rho));
    let (xc, xs) = (x_c as f64, x_s as f64);
    ln_beta(a + xc, b + xs) - ln_beta(a, b) - xc * rho.ln() - xs * (1.0 - rho).ln()
}

/// Anytime-valid one-sided test that the canary fails more often than stable, on error
/// counts.
///
/// # Model
///
/// Each arm's errors are a counting process with a time-varying rate (traffic rises and falls,
/// incidents come and go) but, under the null, the *same* rate per request in both arms:
/// Poisson processes with intensities `λ(t)·ρ` and `λ(t)·(1−ρ)` (Lindon & Malek's
/// time-inhomogeneous Poisson model). Conditional on the total, every error then lands in the
/// canary arm independently with probability ρ = the canary's share of requests — whatever
/// λ(t) does, which is why this test needs no stationarity of the error rate. (With a
/// per-request Bernoulli failure model the canary's count given the total is hypergeometric
/// instead of binomial; with errors a small fraction of requests the two coincide, and the A/A
/// simulations, which use the Bernoulli model, confirm the rate.) The alternative is any other
/// share θ. Mixing the likelihood ratio `θ^x_c (1−θ)^x_s / ρ^x_c
/// (1−ρ)^x_s` over a prior `θ ~ Beta(kρ, k(1−ρ))` gives the closed form in
/// [`log_bayes_factor`]. Under the null that Bayes factor is a non-negative martingale with
/// initial value 1 (a *test martingale*), so by Ville's inequality
/// `P(∃ n: BFₙ ≥ 1/α) ≤ α`: rejecting the first time `BF ≥ 1/α` has type-I error at most α
/// however often, and whenever, the data are looked at (Lindon & Malek 2022).
///
/// **One-sided.** The mixture is two-sided; this gate only cares about a canary that errs
/// *more*. It rejects when `BF ≥ 1/α` **and** the canary's observed share of errors
/// `x_c / (x_c + x_s)` exceeds ρ. Rejecting on a subset of the two-sided rejection region
/// keeps the type-I error at most α.
///
/// **ρ.** The null share is estimated from the stage's cumulative request counts,
/// `ρ̂ = N_c / (N_c + N_s)`, re-read at every look. With a fixed weight per stage the true
/// share is constant and `ρ̂` converges to it far faster than errors accumulate (requests
/// outnumber errors by orders of magnitude). When the weight changes (a new stage) the null
/// share changes: the martingale with the old ρ is no longer a martingale, so the test is
/// **per stage** — call [`reset`](Self::reset) at each stage start (or create a new test). A
/// caller who knows the share exactly (for instance the router's applied weight) can pin it
/// with [`with_share`](Self::with_share).
///
/// **Prior concentration k.** `k` is the prior's pseudo-count: the prior standard deviation
/// of θ is `√(ρ(1−ρ)/(k+1))`. Small `k` bets on large effects (detects ×5 quickly, ×1.3
/// slowly); large `k` the reverse. Any `k > 0` keeps the α guarantee. The default
/// ([`DEFAULT_CONCENTRATION`](Self::DEFAULT_CONCENTRATION) = 50) gives a prior standard
/// deviation of 0.03 at ρ = 5 %, the scale of the shift a doubled error rate causes (θ = 0.095).
/// On the staging report's traffic (5 % of 125 req/s, 1 % errors, α = 0.05, 300 simulated runs each),
/// median detection times were: ×5 — 25 s at k = 10–20, 30 s at k = 50, 50 s at k = 300;
/// ×2 — 180–200 s for k = 10–100, 260 s at k = 300; ×1.5 — 615 s at k = 50, 620–685 s
/// otherwise.
///
/// Once the test rejects it stays rejected until `reset` (the guarantee is about the first
/// crossing; a later dip of the martingale is no evidence for the canary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialCountTest {
    /// Significance level α.
    alpha: f64,
    /// Prior concentration k.
    k: f64,
    /// A pinned null share, or `None` to use the cumulative request share.
    share: Option<f64>,
    /// Cumulative canary requests this stage.
    canary_requests: u64,
    /// Cumulative canary errors this stage (x_c).
    canary_errors: u64,
    /// Cumulative stable requests this stage.
    stable_requests: u64,
    /// Cumulative stable errors this stage (x_s).
    stable_errors: u64,
    /// The first rejecting verdict, kept once reached.
    rejected: Option<Verdict>,
}

impl SequentialCountTest {
    /// Default prior concentration `k`.
    pub const DEFAULT_CONCENTRATION: f64 = 50.0;

    /// A test at level `alpha` with the default prior concentration.
    pub fn new(alpha: f64) -> SequentialCountTest {
        SequentialCountTest::with_concentration(alpha, Self::DEFAULT_CONCENTRATION)
    }

    /// A test at level `alpha` with prior concentration `k > 0` (non-positive or non-finite
    /// `k` falls back to the default).
    pub fn with_concentration(alpha: f64, k: f64) -> SequentialCountTest {
        SequentialCountTest {
            alpha: sane_alpha(alpha),
            k: if k > 0.0 && k.is_finite() {
                k
            } else {
                Self::DEFAULT_CONCENTRATION
            },
            share: None,
            canary_requests: 0,
            canary_errors: 0,
            stable_requests: 0,
            stable_errors: 0,
            rejected: None,
        }
    }

    /// Pins the null share ρ instead of reading it from request counts (ignored unless
    /// `0 < rho < 1`).
    pub fn with_share(mut self, rho: f64) -> SequentialCountTest {
        self.share = (rho > 0.0 && rho < 1.0).then_some(rho);
        self
    }

    /// The significance level α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Adds one interval's stats of both arms (typically one tick's slot).
    pub fn observe(&mut self, canary: &CohortStats, stable: &CohortStats) {
        self.observe_counts(
            canary.requests,
            canary.errors,
            stable.requests,
            stable.errors,
        );
    }

    /// Adds one interval's request and error counts of both arms.
    pub fn observe_counts(
        &mut self,
        canary_requests: u64,
        canary_errors: u64,
        stable_requests: u64,
        stable_errors: u64,
    ) {
        self.canary_requests = self.canary_requests.saturating_add(canary_requests);
        self.canary_errors = self.canary_errors.saturating_add(canary_errors);
        self.stable_requests = self.stable_requests.saturating_add(stable_requests);
        self.stable_errors = self.stable_errors.saturating_add(stable_errors);
        if self.rejected.is_none() {
            let v = self.evaluate();
            if v.reject {
                self.rejected = Some(v);
            }
        }
    }

    /// Forgets everything: a new stage, with a new traffic share, starts a new test.
    pub fn reset(&mut self) {
        self.canary_requests = 0;
        self.canary_errors = 0;
        self.stable_requests = 0;
        self.stable_errors = 0;
        self.rejected = None;
    }

    /// The null share ρ in use: pinned, or the cumulative request share; `None` before both
    /// arms have served requests.
    pub fn rho(&self) -> Option<f64> {
        if let Some(r) = self.share {
            return Some(r);
        }
        let total = self.canary_requests as f64 + self.stable_requests as f64;
        let rho = self.canary_requests as f64 / total;
        (rho > 0.0 && rho < 1.0).then_some(rho)
    }

    /// The current log Bayes factor (0 when ρ is not yet known).
    pub fn log_bf(&self) -> f64 {
        self.rho()
            .map(|rho| log_bayes_factor(self.canary_errors, self.stable_errors, rho, self.k))
            .unwrap_or(0.0)
    }

    /// The verdict: the first rejection if there was one this stage, else the current state.
    pub fn verdict(&self) -> Verdict {
        match &self.rejected {
            Some(v) => v.clone(),
            None => self.evaluate(),
        }
    }

    /// The verdict on the current counts, ignoring the latch.
    fn evaluate(&self) -> Verdict {
        let (xc, xs) = (self.canary_errors, self.stable_errors);
        let n = self.canary_requests;
        let conf = confidence(self.alpha);
        let Some(rho) = self.rho() else {
            return Verdict {
                reject: false,
                log_bf: 0.0,
                explanation: format!(
                    "no error comparison yet: both arms need traffic ({} canary, {} stable requests)",
                    thousands(n),
                    thousands(self.stable_requests)
                ),
            };
        };
        let log_bf = log_bayes_factor(xc, xs, rho, self.k);
        let threshold = (1.0 / self.alpha).ln();
        let worse = xc + xs > 0 && (xc as f64) / ((xc + xs) as f64) > rho;
        let reject = log_bf >= threshold && worse;
        let rc = if n > 0 { xc as f64 / n as f64 } else { 0.0 };
        let rs = if self.stable_requests > 0 {
            xs as f64 / self.stable_requests as f64
        } else {
            0.0
        };
        let rates = if xs == 0 {
            format!("{} vs none on stable", pct(rc))
        } else {
            format!("{:.1}× stable ({} vs {})", rc / rs, pct(rc), pct(rs))
        };
        let explanation = if xc + xs == 0 {
            format!("no errors in either arm after {} requests", thousands(n))
        } else if reject {
            format!(
                "canary error rate {rates} at {conf} confidence after {} requests",
                thousands(n)
            )
        } else {
            format!(
                "canary error rate {rates}: not significant at {conf} confidence after {} requests (Bayes factor {:.2}, needs {:.0})",
                thousands(n),
                log_bf.exp(),
                1.0 / self.alpha
            )
        };
        Verdict {
            reject,
            log_bf,
            explanation,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Sequential latency test
// ---------------------------------------------------------------------------------------------

/// Half-width of the time-uniform DKW confidence band for an empirical CDF after `n`
/// observations, at level `alpha`:
///
/// ```text
///   εₙ(α) = 0.85 · √[ (ln ln(e·n) + 0.8 · ln(1612/α)) / n ]
/// ```
///
/// Howard & Ramdas, "Sequential estimation of quantiles with applications to A/B-testing and
/// best-arm identification" (Bernoulli 28(3), 2022), Theorem 2: for i.i.d. observations with
/// CDF F, `P(∃ n ≥ 1: sup_x |F̂ₙ(x) − F(x)| > εₙ(α)) ≤ α` — a DKW inequality that holds
/// uniformly over time, shrinking at the law-of-the-iterated-logarithm rate
/// `√(ln ln n / n)`. Netflix uses it for play-delay canaries ("Sequential A/B testing keeps the
/// world streaming", part 1). Returns `+∞` for `n = 0` (no band).
///
/// The closed form was checked against the authors' reference implementation
/// (`EmpiricalProcessLILBound` in github.com/gostevehoward/confseq), which computes
/// `A·√((ln(1 + ln n) + C)/n)` with `A = 0.85` and `C` solved numerically from the crossing
/// bound `4·e^(−γ²C)·(1 + 1/((γ² − 1) ln η))`: at α = 0.05 that `C` is 8.12, while
/// `0.8·ln(1612/α)` = 8.30 (8.62 vs 8.86 at α = 0.025, 9.28 vs 9.59 at α = 0.01), so the closed
/// form is a slightly conservative version of the same band.
pub fn dkw_epsilon(n: u64, alpha: f64) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    let n = n as f64;
    let alpha = sane_alpha(alpha);
    0.85 * (((std::f64::consts::E * n).ln().ln() + 0.8 * (1612.0 / alpha).ln()) / n).sqrt()
}

/// γ of the histogram's log mapping: bucket `i` is `(MIN·γ^(i−1), MIN·γ^i]`.
fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// Upper edge of bucket `i`, in ms: every sample in buckets `≤ i` is `≤` it, every other
/// sample is above it, so an empirical CDF is exact there.
fn upper_edge(i: usize) -> f64 {
    if i == 0 {
        Histogram::value_of(0)
    } else {
        Histogram::value_of(i) * (gamma() + 1.0) / 2.0
    }
}

/// Lower edge of bucket `i` (the upper edge of `i − 1`; 0 for bucket 0).
fn lower_edge(i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        upper_edge(i - 1)
    }
}

/// A histogram's empirical CDF at bucket edges, as a sorted list of
/// `(bucket, samples in buckets ≤ bucket)`.
struct Cdf {
    /// `(bucket index, cumulative count)`, one entry per non-empty bucket, ascending.
    steps: Vec<(usize, u64)>,
    /// Total samples.
    n: u64,
}

impl Cdf {
    /// The CDF of `h`.
    fn of(h: &Histogram) -> Cdf {
        let mut acc = 0u64;
        let steps = h
            .buckets()
            .into_iter()
            .map(|(i, c)| {
                acc += c;
                (i, acc)
            })
            .collect();
        Cdf {
            steps,
            n: h.count(),
        }
    }

    /// Samples in buckets `≤ i`.
    fn count_le(&self, i: usize) -> u64 {
        match self.steps.partition_point(|&(b, _)| b <= i) {
            0 => 0,
            k => self.steps[k - 1].1,
        }
    }

    /// Smallest bucket `i` with `F̂(upper_edge(i)) ≥ p`, i.e. the bucket holding the
    /// empirical `p` quantile; `None` when `p > 1` (beyond the data) — and bucket "−1"
    /// (`Some(None)`) when `p ≤ 0`.
    fn quantile_bucket(&self, p: f64) -> Option<Option<usize>> {
        if p <= 0.0 {
            return Some(None);
        }
        if p > 1.0 + 1e-12 || self.n == 0 {
            return None;
        }
        let need = (p * self.n as f64 - 1e-9).ceil().max(1.0) as u64;
        let k = self.steps.partition_point(|&(_, c)| c < need);
        self.steps.get(k).map(|&(b, _)| Some(b))
    }

    /// A confidence interval `[lo, hi]` in ms for the true `q` quantile, from the band
    /// `F ∈ [F̂ − ε, F̂ + ε]`: `Q(q) ∈ [F̂⁻¹(q − ε), F̂⁻¹(q + ε)]`, widened to whole buckets
    /// (lower edge of the low bucket, upper edge of the high one). `hi` is `None` when
    /// `q + ε > 1` (unbounded above).
    fn quantile_interval(&self, q: f64, eps: f64) -> (f64, Option<f64>) {
        let lo = match self.quantile_bucket(q - eps) {
            Some(Some(b)) => lower_edge(b),
            _ => 0.0,
        };
        let hi = match self.quantile_bucket(q + eps) {
            Some(Some(b)) => Some(upper_edge(b)),
            Some(None) => Some(0.0),
            None => None,
        };
        (lo, hi)
    }
}

/// A confidence interval for the relative shift of one latency quantile, canary against
/// stable: the true `canary Q(q) / stable Q(q) − 1` lies in `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantileShift {
    /// The quantile, e.g. 0.99.
    pub quantile: f64,
    /// Lower bound of the relative shift (−1 = canary could be arbitrarily faster).
    pub low: f64,
    /// Upper bound of the relative shift; `None` when unbounded (too few samples in the
    /// tail to bound this quantile from above).
    pub high: Option<f64>,
}

impl QuantileShift {
    /// "9–14% above", "between 3% below and 4% above", "at least 9% above".
    fn describe(&self) -> String {
        let p = |x: f64| format!("{:.0}", (x * 100.0).abs());
        match self.high {
            None if self.low > 0.0 => format!("at least {}% above", p(self.low)),
            None => "unbounded above (too few samples in the tail)".to_string(),
            Some(h) if self.low >= 0.0 => format!("{}–{}% above", p(self.low), p(h)),
            Some(h) if h <= 0.0 => format!("{}–{}% below", p(h), p(self.low)),
            Some(h) => format!("between {}% below and {}% above", p(self.low), p(h)),
        }
    }
}

/// The simultaneous confidence interval for the relative shift of the `q` quantile, from
/// both arms' bands (half-widths `eps_canary`, `eps_stable`):
///
/// ```text
///   canary Q(q) ∈ [C_lo, C_hi] = [F̂c⁻¹(q − εc), F̂c⁻¹(q + εc)],   stable likewise [S_lo, S_hi]
///   shift ∈ [C_lo / S_hi − 1,  C_hi / S_lo − 1]
/// ```
///
/// Each quantile interval is widened to whole histogram buckets, so binning can only widen
/// the range (by at most one bucket, ≈ 1 %, on each side). Since the bands hold for all `x`
/// and all times at once, so do these intervals, for every `q` together. `None` when either
/// histogram is empty.
pub fn quantile_shift(
    canary: &Histogram,
    stable: &Histogram,
    q: f64,
    eps_canary: f64,
    eps_stable: f64,
) -> Option<QuantileShift> {
    if canary.is_empty() || stable.is_empty() {
        return None;
    }
    shift_of(
        &Cdf::of(canary),
        &Cdf::of(stable),
        q,
        eps_canary,
        eps_stable,
    )
}

/// [`quantile_shift`] on prepared CDFs.
fn shift_of(c: &Cdf, s: &Cdf, q: f64, eps_c: f64, eps_s: f64) -> Option<QuantileShift> {
    let (c_lo, c_hi) = c.quantile_interval(q, eps_c);
    let (s_lo, s_hi) = s.quantile_interval(q, eps_s);
    let low = match s_hi {
        Some(h) if h > 0.0 => c_lo / h - 1.0,
        _ => -1.0,
    };
    let high = match c_hi {
        Some(h) if s_lo > 0.0 => Some(h / s_lo - 1.0),
        _ => None,
    };
    Some(QuantileShift {
        quantile: q,
        low,
        high,
    })
}

/// The result of a sequential latency test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyVerdict {
    /// Whether the canary is slower (by more than the floor) at the test's confidence.
    pub reject: bool,
    /// `max_x (F̂_stable(x) − F̂_canary((1+floor)·x))` over bucket edges.
    pub statistic: f64,
    /// The rejection threshold `ε_s + ε_c`.
    pub threshold: f64,
    /// The canary's band half-width ε_c (at α/2; capped at 1, a vacuous band).
    pub eps_canary: f64,
    /// The stable band half-width ε_s (at α/2; capped at 1, a vacuous band).
    pub eps_stable: f64,
    /// The quantile shift the explanation quotes, when both arms have data.
    pub shift: Option<QuantileShift>,
    /// One plain sentence for status and report.
    pub explanation: String,
}

/// Anytime-valid one-sided test that the canary's latency is stochastically larger than
/// stable's, from the two arms' histograms.
///
/// # Test
///
/// Each arm's empirical CDF lies in its time-uniform DKW band `|F̂ − F| ≤ ε(n)` at every
/// sample size at once, except with probability `α/2` per arm ([`dkw_epsilon`] at `α/2`, so
/// both bands hold together with probability at least `1 − α`). Under the null "the canary is
/// not slower", `F_c(x) ≥ F_s(x)` for all x, so on that event
///
/// ```text
///   F̂_s(x) − F̂_c(x) ≤ (F̂_s − F_s)(x) + (F_s − F_c)(x) + (F_c − F̂_c)(x) ≤ ε_s + ε_c .
/// ```
///
/// The test rejects when `D = sup_x (F̂_s(x) − F̂_c(x)) > ε_s + ε_c`: at every look, type-I
/// error at most α, following Netflix part 1 and Howard & Ramdas (2022). The
/// α/2 split is the union bound over two two-sided bands and is conservative (the bands are
/// two-sided, the test uses one side of each): measured A/A false-rejection rates are far
/// below α.
///
/// # Practical-effect floor
///
/// With `floor = f > 0` the null becomes "no canary quantile is more than `(1+f)×` the stable
/// one": `F_c((1+f)·x) ≥ F_s(x)` for all x (canary latency stochastically at most `1+f` times
/// stable's). The statistic becomes `D_f = sup_x (F̂_s(x) − F̂_c((1+f)·x))` with the same
/// threshold, by the same three-term argument. Shifts of `f` or less are thus never a reason
/// to reject, however much data arrives. On the histograms `(1+f)` is rounded **up** to a
/// whole number of buckets `m = ⌈ln(1+f) / ln γ⌉` (γ ≈ 1.01005): the effective floor is
/// `γ^m − 1`, at most one bucket (≈ 1 %) above the requested one, which keeps the test valid.
///
/// # What binning costs
///
/// A bucket's upper edge splits the samples exactly (everything in lower buckets is below
/// it, everything else above), so `F̂` is **exact** at bucket edges and the bands hold there
/// without any extra error: binning adds no type-I error. Evaluating the supremum only at
/// edges can only lower D, so it costs power, never validity. The price is resolution: two
/// distributions that differ only within one bucket look the same, so shifts below one bucket
/// (≈ 1 % relative) are invisible, the floor is rounded up by at most one bucket, and the
/// reported quantile ranges are widened by at most one bucket (≈ 1 %) on each side.
///
/// Feed it the stage's cumulative data ([`observe`](Self::observe) per tick, or
/// [`evaluate`](Self::evaluate) on the caller's stage totals), never a sliding window;
/// [`reset`](Self::reset) at each stage start. The guarantee assumes each arm's latencies
/// are i.i.d. within the stage — a shared drift (load rising for both arms) is mostly
/// harmless because it moves both CDFs, but a drift confined to one arm is, correctly, a
/// difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialLatencyTest {
    /// Significance level α (split α/2 per arm).
    alpha: f64,
    /// Requested practical-effect floor f (0 = none).
    floor: f64,
    /// The canary's cumulative stage histogram.
    canary: Histogram,
    /// Stable's cumulative stage histogram.
    stable: Histogram,
    /// The first rejecting verdict, kept once reached.
    rejected: Option<LatencyVerdict>,
}

/// Standard quantiles the explanation considers, besides the one where the test rejected.
const REPORT_QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

impl SequentialLatencyTest {
    /// A test at level `alpha` with no practical-effect floor.
    pub fn new(alpha: f64) -> SequentialLatencyTest {
        SequentialLatencyTest::with_floor(alpha, 0.0)
    }

    /// A test at level `alpha` that ignores shifts up to `floor` (e.g. 0.02 for 2 %).
    pub fn with_floor(alpha: f64, floor: f64) -> SequentialLatencyTest {
        SequentialLatencyTest {
            alpha: sane_alpha(alpha),
            floor: if floor.is_finite() && floor > 0.0 {
                floor
            } else {
                0.0
            },
            canary: Histogram::new(),
            stable: Histogram::new(),
            rejected: None,
        }
    }

    /// The test's level: its false-rejection budget for the stage.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The number of buckets the floor shifts the canary's CDF by: `⌈ln(1+f)/ln γ⌉`.
    pub fn floor_buckets(&self) -> usize {
        if self.floor <= 0.0 {
            return 0;
        }
        ((1.0 + self.floor).ln() / gamma().ln() - 1e-9).ceil() as usize
    }

    /// The floor actually applied, `γ^m − 1` (≥ the requested floor, by less than a bucket).
    pub fn effective_floor(&self) -> f64 {
        gamma().powi(self.floor_buckets() as i32) - 1.0
    }

    /// Adds one interval's latencies of both arms (typically one tick's slot).
    pub fn observe(&mut self, canary: &Histogram, stable: &Histogram) {
        self.canary.merge(canary);
        self.stable.merge(stable);
        if self.rejected.is_none() {
            let v = self.evaluate(&self.canary, &self.stable);
            if v.reject {
                self.rejected = Some(v);
            }
        }
    }

    /// Forgets everything: a new stage starts a new test.
    pub fn reset(&mut self) {
        self.canary.clear();
        self.stable.clear();
        self.rejected = None;
    }

    /// The verdict: the first rejection if there was one this stage, else the current state.
    pub fn verdict(&self) -> LatencyVerdict {
        match &self.rejected {
            Some(v) => v.clone(),
            None => self.evaluate(&self.canary, &self.stable),
        }
    }

    /// The verdict on cumulative stage histograms held by the caller (stateless).
    pub fn evaluate(&self, canary: &Histogram, stable: &Histogram) -> LatencyVerdict {
        let (nc, ns) = (canary.count(), stable.count());
        // A band of half-width ≥ 1 says nothing; capping there changes no decision (the
        // statistic is at most 1) and keeps the verdict's numbers finite for JSON.
        let eps_c = dkw_epsilon(nc, self.alpha / 2.0).min(1.0);
        let eps_s = dkw_epsilon(ns, self.alpha / 2.0).min(1.0);
        let threshold = eps_c + eps_s;
        let conf = confidence(self.alpha);
        if nc == 0 || ns == 0 {
            return LatencyVerdict {
                reject: false,
                statistic: 0.0,
                threshold,
                eps_canary: eps_c,
                eps_stable: eps_s,
                shift: None,
                explanation: format!(
                    "no latency comparison yet: both arms need traffic ({} canary, {} stable requests)",
                    thousands(nc),
                    thousands(ns)
                ),
            };
        }
        let c = Cdf::of(canary);
        let s = Cdf::of(stable);
        let m = self.floor_buckets();
        // D_f = max over stable's steps (the sup of F̂_s(x) − F̂_c(γ^m x) over edges is
        // reached where F̂_s has just stepped up, i.e. at a non-empty stable bucket).
        let mut stat = f64::NEG_INFINITY;
        let mut at = 0usize;
        for &(i, cum_s) in &s.steps {
            let d = cum_s as f64 / ns as f64 - c.count_le(i + m) as f64 / nc as f64;
            if d > stat {
                stat = d;
                at = i;
            }
        }
        let reject = stat > threshold;
        // Quantile ranges: the standard quantiles, plus the one where the bands separate.
        let q_star = (cum_frac(&s, at) - eps_s).clamp(0.0, 1.0);
        let mut candidates: Vec<f64> = REPORT_QUANTILES.to_vec();
        if q_star > 0.0 && q_star < 1.0 {
            candidates.push(q_star);
        }
        let shifts: Vec<QuantileShift> = candidates
            .iter()
            .filter_map(|&q| shift_of(&c, &s, q, eps_c, eps_s))
            .collect();
        let after = format!("at {conf} confidence after {} requests", thousands(nc));
        let (shift, explanation) = if reject {
            // Quote the standard quantile (p50, p90, p95, p99) with the largest guaranteed
            // shift; if none is guaranteed above zero, the quantile where the bands separate
            // (which always is, up to binning).
            let widest = |xs: &mut dyn Iterator<Item = QuantileShift>| {
                xs.filter(|x| x.low > 0.0)
                    .fold(None::<QuantileShift>, |b, x| match b {
                        Some(b) if b.low >= x.low - 1e-12 => Some(b),
                        _ => Some(x),
                    })
            };
            let best = widest(&mut shifts.iter().copied().take(REPORT_QUANTILES.len()))
                .or_else(|| widest(&mut shifts.iter().copied().skip(REPORT_QUANTILES.len())))
                .or(shifts.last().copied());
            match best {
                Some(b) if b.low > 0.0 => (
                    Some(b),
                    format!(
                        "canary {} is {} stable {after}",
                        quantile_name(b.quantile),
                        b.describe()
                    ),
                ),
                _ => (
                    best,
                    format!(
                        "canary latency is above stable's (CDF gap {:.3} > {:.3}) {after}",
                        stat, threshold
                    ),
                ),
            }
        } else if threshold >= 1.0 {
            (
                None,
                format!(
                    "no latency regression detectable yet: too few requests for {conf} confidence ({} canary, {} stable)",
                    thousands(nc),
                    thousands(ns)
                ),
            )
        } else {
            let p50 = shifts.first().copied();
            let detail = p50
                .map(|s| format!(": canary p50 is {} stable", s.describe()))
                .unwrap_or_default();
            (p50, format!("no latency regression {after}{detail}"))
        };
        LatencyVerdict {
            reject,
            statistic: stat,
            threshold,
            eps_canary: eps_c,
            eps_stable: eps_s,
            shift,
            explanation,
        }
    }
}

/// `F̂(upper_edge(i))` as a fraction.
fn cum_frac(cdf: &Cdf, i: usize) -> f64 {
    if cdf.n == 0 {
        0.0
    } else {
        cdf.count_le(i) as f64 / cdf.n as f64
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Fixed-horizon Mann-Whitney
// ---------------------------------------------------------------------------------------------

/// One-sided Mann-Whitney U test that canary latencies tend to be larger than stable's, on
/// binned data: returns `(U, z, p)`.
///
/// This is the fixed-horizon comparison Kayenta's judge runs at the end of an analysis
/// interval. **It is valid at one pre-planned look only**: re-running it at every tick and
/// acting on the first `p < α` inflates false positives far above α (see the module docs and
/// the peeking test in `tests/verdict_alpha.rs`). Use it at stage end, or use
/// [`SequentialLatencyTest`].
///
/// All samples in one bucket are ties (they are within the histogram's 0.5 % relative
/// error) and get mid-ranks:
///
/// ```text
///   U = Σ_buckets c_i · (S_<i + s_i / 2)          (pairs canary > stable, ties count ½)
///     = R_c − n_c (n_c + 1) / 2                    (R_c = sum of the canary's mid-ranks)
///   E[U] = n_c n_s / 2
///   Var[U] = n_c n_s / 12 · [ (N + 1) − Σ_i (t_i³ − t_i) / (N (N − 1)) ]   (tie-corrected)
///   z = (U − E[U] − ½) / √Var[U]      (continuity correction, as R's wilcox.test)
///   p = 1 − Φ(z)
/// ```
///
/// with `c_i`, `s_i` the canary and stable counts of bucket `i`, `t_i = c_i + s_i`,
/// `N = n_c + n_s`. With an empty arm, or all samples tied, the result is `(U, 0, 1)`: no
/// evidence.
pub fn mann_whitney(canary: &Histogram, stable: &Histogram) -> (f64, f64, f64) {
    let (nc, ns) = (canary.count() as f64, stable.count() as f64);
    if nc == 0.0 || ns == 0.0 {
        return (0.0, 0.0, 1.0);
    }
    let (cb, sb) = (canary.buckets(), stable.buckets());
    let (mut ci, mut si) = (0usize, 0usize);
    let (mut u, mut stable_below, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    while ci < cb.len() || si < sb.len() {
        let next_c = cb.get(ci).map(|b| b.0).unwrap_or(usize::MAX);
        let next_s = sb.get(si).map(|b| b.0).unwrap_or(usize::MAX);
        let i = next_c.min(next_s);
        let c = if next_c == i {
            ci += 1;
            cb[ci - 1].1 as f64
        } else {
            0.0
        };
        let s = if next_s == i {
            si += 1;
            sb[si - 1].1 as f64
        } else {
            0.0
        };
        u += c * (stable_below + s / 2.0);
        stable_below += s;
        let t = c + s;
        ties += t * t * t - t;
    }
    let n = nc + ns;
    let var = nc * ns / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return (u, 0.0, 1.0);
    }
    let z = (u - nc * ns / 2.0 - 0.5) / var.sqrt();
    (u, z, normal_sf(z))
}

/// The result of a fixed-horizon Mann-Whitney check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MannWhitneyVerdict {
    /// Whether `p < α` (canary slower) at this single look.
    pub reject: bool,
    /// The U statistic of the canary.
    pub u: f64,
    /// The normal approximation's z.
    pub z: f64,
    /// One-sided p-value.
    pub p: f64,
    /// One plain sentence for status and report.
    pub explanation: String,
}

/// [`mann_whitney`] at level `alpha`, with a sentence. Only meaningful at one pre-planned look
/// (stage end).
pub fn mann_whitney_verdict(
    canary: &Histogram,
    stable: &Histogram,
    alpha: f64,
) -> MannWhitneyVerdict {
    let alpha = sane_alpha(alpha);
    let (u, z, p) = mann_whitney(canary, stable);
    let reject = p < alpha;
    let n = canary.count();
    let prob = if n > 0 && stable.count() > 0 {
        u / (n as f64 * stable.count() as f64)
    } else {
        0.5
    };
    let test = format!("(Mann-Whitney, single look: P(canary > stable) = {prob:.2}, p = {p:.2e})");
    let explanation = if reject {
        format!(
            "canary latency is above stable's at {} confidence {test} after {} requests",
            confidence(alpha),
            thousands(n)
        )
    } else {
        format!(
            "canary latency is not significantly above stable's {test} after {} requests",
            thousands(n)
        )
    };
    MannWhitneyVerdict {
        reject,
        u,
        z,
        p,
        explanation,
    }
}

// ---------------------------------------------------------------------------------------------
// 4. SLO burn rate
// ---------------------------------------------------------------------------------------------

/// How fast an error budget burns: `error_ratio / (1 − slo)`. 1 spends exactly the budget
/// over the SLO period; 14.4 spends a 30-day budget in ~2 days (2 % of it per hour). Google
/// SRE workbook, "Alerting on SLOs". Returns `+∞` for an SLO of 100 % with any error and NaN
/// for a nonsensical SLO.
pub fn burn_rate(error_ratio: f64, slo: f64) -> f64 {
    if !(0.0..=1.0).contains(&slo) {
        return f64::NAN;
    }
    let budget = 1.0 - slo;
    if budget == 0.0 {
        return if error_ratio > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
    }
    error_ratio / budget
}

/// A multiwindow burn-rate rule: fire when the burn rate is at least `factor` over **both**
/// the long and the short window.
///
/// The long window makes the alert significant (a real share of the budget is gone), the
/// short one makes it reset quickly once the problem stops (Google SRE workbook, "Alerting on
/// SLOs", "Multiwindow, multi-burn-rate alerts": page at 14.4× over 1 h and 5 m, and at 6×
/// over 6 h and 30 m, for a 30-day SLO). Windows are in milliseconds of plan time, the unit of
/// [`SlidingWindow`](crate::SlidingWindow).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MultiWindowBurn {
    /// Long window, ms.
    pub long: u64,
    /// Short window, ms (the workbook uses 1/12 of the long one).
    pub short: u64,
    /// Burn-rate threshold.
    pub factor: f64,
}

/// The result of a burn-rate check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnVerdict {
    /// Whether both windows burn at least `factor` times the budget.
    pub reject: bool,
    /// Burn rate over the long window (0 without data).
    pub long_burn: f64,
    /// Burn rate over the short window (0 without data).
    pub short_burn: f64,
    /// One plain sentence for status and report.
    pub explanation: String,
}

/// `3_600_000` → `"1 h"`, `300_000` → `"5 min"`.
fn span_name(ms: u64) -> String {
    if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) {
        format!("{} h", ms / 3_600_000)
    } else if ms >= 60_000 && ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

impl MultiWindowBurn {
    /// Fast burn page: 14.4× over 1 h and 5 min (2 % of a 30-day budget in an hour).
    pub const FAST: MultiWindowBurn = MultiWindowBurn {
        long: 3_600_000,
        short: 300_000,
        factor: 14.4,
    };

    /// Slow burn page: 6× over 6 h and 30 min (5 % of a 30-day budget in six hours).
    pub const SLOW: MultiWindowBurn = MultiWindowBurn {
        long: 21_600_000,
        short: 1_800_000,
        factor: 6.0,
    };

    /// The two window lengths, for [`SlidingWindow::new`](crate::SlidingWindow::new).
    pub fn spans(&self) -> [u64; 2] {
        [self.long, self.short]
    }

    /// Checks error ratios (failed / all requests) over the two windows against an SLO such
    /// as 0.999. A window without data (`None`) cannot fire: no data is never a breach here,
    /// and the caller's `min_samples` policy decides what it means.
    pub fn check(
        &self,
        long_ratio: Option<f64>,
        short_ratio: Option<f64>,
        slo: f64,
    ) -> BurnVerdict {
        let lb = long_ratio.map(|r| burn_rate(r, slo));
        let sb = short_ratio.map(|r| burn_rate(r, slo));
        let fires = |b: Option<f64>| b.is_some_and(|b| b >= self.factor);
        let reject = fires(lb) && fires(sb);
        let slo_pct = {
            let v = slo * 100.0;
            let s = format!("{v:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
            format!("{s}%")
        };
        let show = |b: Option<f64>| match b {
            Some(b) if b.is_finite() => format!("{b:.1}×"),
            Some(_) => "∞×".to_string(),
            None => "no data".to_string(),
        };
        let explanation = format!(
            "error budget burning at {} over {} and {} over {}: {} the {:.1}× threshold for a {} SLO",
            show(lb),
            span_name(self.long),
            show(sb),
            span_name(self.short),
            if reject { "both over" } else { "not both over" },
            self.factor,
            slo_pct
        );
        BurnVerdict {
            reject,
            long_burn: lb.filter(|b| !b.is_nan()).unwrap_or(0.0),
            short_burn: sb.filter(|b| !b.is_nan()).unwrap_or(0.0),
            explanation,
        }
    }

    /// [`check`](Self::check) on one cohort's stats over the long and the short window.
    pub fn check_cohorts(&self, long: &CohortStats, short: &CohortStats, slo: f64) -> BurnVerdict {
        self.check(long.error_rate(), short.error_rate(), slo)
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        // Reference values: Python's math.lgamma (C library lgamma).
        let known = [
            (0.01, 4.599_479_878_042_022),
            (0.1, 2.252_712_651_734_205_5),
            (0.5, 0.572_364_942_924_700_4), // ln √π
            (1.0, 0.0),
            (1.5, -0.120_782_237_635_245_43),
            (2.0, 0.0),
            (3.7, 1.428_072_326_665_388_3),
            (10.0, 12.801_827_480_081_467), // ln 9!
            (100.0, 359.134_205_369_575_4),
            (1e6, 12_815_504.569_147_611),
        ];
        for (x, want) in known {
            let got = ln_gamma(x);
            assert!(close(got, want, 1e-13), "lnΓ({x}) = {got}, want {want}");
        }
        // ln n! for integers, summed directly.
        let mut lf = 0.0f64;
        for n in 1..=170u32 {
            lf += (n as f64).ln();
            assert!(close(ln_gamma(n as f64 + 1.0), lf, 1e-13), "ln {n}!");
        }
        // Recurrence Γ(x+1) = x Γ(x) at awkward points, including tiny arguments.
        for &x in &[1e-3, 0.03, 0.37, 0.49, 0.51, 2.5, 17.25, 123.456] {
            assert!(
                close(ln_gamma(x + 1.0), ln_gamma(x) + x.ln(), 1e-12),
                "x = {x}"
            );
        }
        assert!(ln_gamma(-1.0).is_nan());
        assert!(ln_gamma(f64::NAN).is_nan());
        assert_eq!(ln_gamma(0.0), f64::INFINITY);
    }

    #[test]
    fn ln_beta_matches_known_values() {
        assert!(close(ln_beta(1.0, 1.0), 0.0, 1e-14));
        // B(2, 3) = 1!·2!/4! = 1/12.
        assert!(close(ln_beta(2.0, 3.0), (1.0f64 / 12.0).ln(), 1e-13));
        // B(½, ½) = π.
        assert!(close(ln_beta(0.5, 0.5), std::f64::consts::PI.ln(), 1e-13));
        // B(4, 9) = 3!·8!/12! = 1/1980.
        assert!(close(ln_beta(4.0, 9.0), (1.0f64 / 1980.0).ln(), 1e-13));
        // Symmetry.
        assert!(close(ln_beta(0.3, 7.1), ln_beta(7.1, 0.3), 1e-14));
    }

    #[test]
    fn bayes_factor_matches_a_hand_computation() {
        // ρ = ½, k = 2 → Beta(1, 1) prior; 3 canary, 1 stable error:
        // BF = [B(4, 2) / B(1, 1)] / (½)⁴ = (3!·1!/5!) / (1/16) = 0.05 · 16 = 0.8.
        assert!(close(log_bayes_factor(3, 1, 0.5, 2.0).exp(), 0.8, 1e-12));
        // ρ = 0.2, k = 10 → Beta(2, 8); 2 canary, 1 stable:
        // B(4, 9) / B(2, 8) = (1/1980) / (1/72) = 72/1980; ρ²(1−ρ) = 0.032 → BF = 1.13636…
        let want = (72.0 / 1980.0) / 0.032;
        assert!(close(log_bayes_factor(2, 1, 0.2, 10.0).exp(), want, 1e-12));
        // No data: BF = 1.
        assert_eq!(log_bayes_factor(0, 0, 0.05, 50.0), 0.0);
        // Degenerate ρ: no evidence.
        assert_eq!(log_bayes_factor(5, 0, 0.0, 50.0), 0.0);
        assert_eq!(log_bayes_factor(5, 0, 1.0, 50.0), 0.0);
        // Huge counts stay finite.
        assert!(log_bayes_factor(3_000_000, 50_000_000, 0.05, 50.0).is_finite());
    }

    #[test]
    fn count_test_rejects_a_clearly_worse_canary_and_explains() {
        let mut t = SequentialCountTest::new(0.01);
        // 10 % canary traffic; canary fails 2 %, stable 0.3 %.
        t.observe_counts(3200, 60, 28_800, 90);
        let v = t.verdict();
        assert!(v.reject, "{v:?}");
        assert!(v.log_bf >= (100.0f64).ln());
        assert_eq!(
            v.explanation,
            "canary error rate 6.0× stable (1.88% vs 0.31%) at 99% confidence after 3,200 requests"
        );
    }

    #[test]
    fn count_test_is_one_sided_and_latches() {
        // A canary that errs far *less* is never rejected.
        let mut t = SequentialCountTest::new(0.05);
        t.observe_counts(1000, 0, 1000, 200);
        let v = t.verdict();
        assert!(v.log_bf > 10.0 && !v.reject, "{v:?}");
        assert!(
            v.explanation.contains("not significant"),
            "{}",
            v.explanation
        );
        // Once rejected, stays rejected until reset.
        let mut t = SequentialCountTest::new(0.05);
        t.observe_counts(1000, 50, 1000, 5);
        assert!(t.verdict().reject);
        t.observe_counts(100_000, 5, 100_000, 5_000);
        assert!(t.verdict().reject);
        t.reset();
        assert!(!t.verdict().reject);
        assert!(t
            .verdict()
            .explanation
            .starts_with("no error comparison yet"));
        t.observe_counts(100, 0, 900, 0);
        assert_eq!(
            t.verdict().explanation,
            "no errors in either arm after 100 requests"
        );
    }

    #[test]
    fn pinned_share_is_used() {
        let t = SequentialCountTest::new(0.05).with_share(0.25);
        assert_eq!(t.rho(), Some(0.25));
        let mut t = SequentialCountTest::new(0.05);
        t.observe_counts(50, 0, 950, 0);
        assert!(close(t.rho().unwrap(), 0.05, 1e-12));
    }

    #[test]
    fn dkw_epsilon_matches_the_formula() {
        // Reference: 0.85·sqrt((ln ln(e·n) + 0.8·ln(1612/α))/n) evaluated in Python.
        let known = [
            (1, 0.05, 2.449_529_899_316_741_6),
            (100, 0.05, 0.269_175_822_337_312_13),
            (1000, 0.05, 0.086_569_128_376_670_55),
            (10_000, 0.05, 0.027_710_745_077_605_986),
            (1000, 0.01, 0.091_784_906_718_280_09),
            (100_000, 0.025, 0.009_069_962_210_177_062),
        ];
        for (n, a, want) in known {
            assert!(close(dkw_epsilon(n, a), want, 1e-12), "ε({n}, {a})");
        }
        assert_eq!(dkw_epsilon(0, 0.05), f64::INFINITY);
        // Shrinks with n, grows as α shrinks.
        assert!(dkw_epsilon(2000, 0.05) < dkw_epsilon(1000, 0.05));
        assert!(dkw_epsilon(1000, 0.01) > dkw_epsilon(1000, 0.05));
    }

    #[test]
    fn normal_tail_matches_known_values() {
        for (z, want) in [
            (0.0, 0.5),
            (1.644_853_626_951_472_2, 0.05),
            (1.959_963_984_540_054, 0.025),
            (3.0, 0.001_349_898_031_630_094_6),
            (-1.0, 0.841_344_746_068_542_9),
        ] {
            assert!(
                (normal_sf(z) - want).abs() < 2e-7 * want.max(1e-3),
                "z = {z}"
            );
        }
    }

    fn hist(xs: &[f64]) -> Histogram {
        let mut h = Histogram::new();
        for &x in xs {
            h.record(x);
        }
        h
    }

    /// U, z and p by brute force over all pairs and explicit mid-ranks.
    fn brute_mann_whitney(c: &[f64], s: &[f64]) -> (f64, f64, f64) {
        let ci: Vec<usize> = c.iter().map(|&x| Histogram::index_of(x)).collect();
        let si: Vec<usize> = s.iter().map(|&x| Histogram::index_of(x)).collect();
        let mut u_pairs = 0.0;
        for &a in &ci {
            for &b in &si {
                u_pairs += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        // Mid-ranks over the pooled sample.
        let mut all: Vec<(usize, bool)> = ci
            .iter()
            .map(|&i| (i, true))
            .chain(si.iter().map(|&i| (i, false)))
            .collect();
        all.sort();
        let n = all.len();
        let mut rank_sum_c = 0.0;
        let mut ties = 0.0;
        let mut k = 0;
        while k < n {
            let mut j = k;
            while j < n && all[j].0 == all[k].0 {
                j += 1;
            }
            let mid = (k + 1 + j) as f64 / 2.0;
            let t = (j - k) as f64;
            ties += t * t * t - t;
            rank_sum_c += mid * all[k..j].iter().filter(|e| e.1).count() as f64;
            k = j;
        }
        let (nc, ns) = (c.len() as f64, s.len() as f64);
        let u_ranks = rank_sum_c - nc * (nc + 1.0) / 2.0;
        assert!(close(u_pairs, u_ranks, 1e-12), "{u_pairs} vs {u_ranks}");
        let nn = nc + ns;
        let var = nc * ns / 12.0 * ((nn + 1.0) - ties / (nn * (nn - 1.0)));
        let z = (u_pairs - nc * ns / 2.0 - 0.5) / var.sqrt();
        (u_pairs, z, normal_sf(z))
    }

    #[test]
    fn mann_whitney_matches_brute_force() {
        let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
            (vec![1.0, 2.0, 3.0], vec![4.0, 5.0]),
            (vec![10.0, 10.0, 12.0, 15.0], vec![10.0, 11.0, 11.0]),
            (
                vec![100.0, 100.2, 250.0, 99.0, 300.0],
                vec![100.1, 100.0, 80.0, 90.0],
            ),
            (
                (0..37).map(|i| 50.0 + (i * 7 % 13) as f64).collect(),
                (0..29).map(|i| 48.0 + (i * 5 % 11) as f64).collect(),
            ),
        ];
        for (c, s) in cases {
            let (u, z, p) = mann_whitney(&hist(&c), &hist(&s));
            let (bu, bz, bp) = brute_mann_whitney(&c, &s);
            assert!(close(u, bu, 1e-12), "U {u} vs {bu}");
            assert!(close(z, bz, 1e-12), "z {z} vs {bz}");
            assert!(close(p, bp, 1e-12), "p {p} vs {bp}");
        }
        // Complete separation, canary slower: U = n_c·n_s, small p.
        let (u, _, p) = mann_whitney(
            &hist(&[5.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
            &hist(&[1.0, 2.0, 3.0, 4.0]),
        );
        assert_eq!(u, 24.0);
        assert!(p < 0.01);
        // Degenerate inputs.
        assert_eq!(
            mann_whitney(&Histogram::new(), &hist(&[1.0])),
            (0.0, 0.0, 1.0)
        );
        let (_, z, p) = mann_whitney(&hist(&[3.0, 3.0]), &hist(&[3.0]));
        assert_eq!((z, p), (0.0, 1.0));
    }

    #[test]
    fn mann_whitney_verdict_explains_itself() {
        let slow: Vec<f64> = (0..200).map(|i| 120.0 + i as f64).collect();
        let base: Vec<f64> = (0..200).map(|i| 100.0 + i as f64).collect();
        let v = mann_whitney_verdict(&hist(&slow), &hist(&base), 0.05);
        assert!(v.reject && v.p < 0.05, "{v:?}");
        assert!(
            v.explanation
                .starts_with("canary latency is above stable's at 95% confidence (Mann-Whitney, single look: P(canary > stable) = 0.5"),
            "{}",
            v.explanation
        );
        assert!(v.explanation.ends_with("after 200 requests"));
        assert!((0.58..0.61).contains(&(v.u / (200.0 * 200.0))), "{v:?}");
        let v = mann_whitney_verdict(&hist(&base), &hist(&base), 0.05);
        assert!(!v.reject);
        assert!(v
            .explanation
            .starts_with("canary latency is not significantly above stable's"));
    }

    #[test]
    fn latency_test_on_identical_and_shifted_samples() {
        let base: Vec<f64> = (1..=4000)
            .map(|i| 50.0 + (i as f64 * 0.618_034).fract() * 100.0)
            .collect();
        let same = hist(&base);
        let t = SequentialLatencyTest::new(0.05);
        let v = t.evaluate(&same, &same);
        assert!(!v.reject);
        assert!(v.statistic <= 0.0);
        assert!(
            v.explanation
                .starts_with("no latency regression at 95% confidence after 4,000 requests"),
            "{}",
            v.explanation
        );
        // Canary 30 % slower everywhere.
        let slow = hist(&base.iter().map(|x| x * 1.3).collect::<Vec<_>>());
        let v = t.evaluate(&slow, &same);
        assert!(v.reject, "{v:?}");
        let sh = v.shift.unwrap();
        assert!(sh.low > 0.0 && sh.low <= 0.3 + 0.011, "{sh:?}");
        assert!(sh.high.is_none_or(|h| h >= 0.3 - 0.011), "{sh:?}");
        assert!(v.explanation.starts_with("canary p"), "{}", v.explanation);
        assert!(
            v.explanation
                .ends_with("above stable at 95% confidence after 4,000 requests"),
            "{}",
            v.explanation
        );
        // A floor above the shift ignores it; one below does not.
        assert!(
            !SequentialLatencyTest::with_floor(0.05, 0.35)
                .evaluate(&slow, &same)
                .reject
        );
        assert!(
            SequentialLatencyTest::with_floor(0.05, 0.1)
                .evaluate(&slow, &same)
                .reject
        );
        // Faster canary: never a regression.
        let fast = hist(&base.iter().map(|x| x * 0.7).collect::<Vec<_>>());
        assert!(!t.evaluate(&fast, &same).reject);
        // Too little data.
        let v = t.evaluate(&hist(&[1.0, 2.0]), &hist(&[1.0]));
        assert!(
            !v.reject && v.explanation.contains("too few requests"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn floor_rounds_up_to_whole_buckets() {
        let t = SequentialLatencyTest::with_floor(0.05, 0.02);
        assert_eq!(t.floor_buckets(), 2);
        assert!(t.effective_floor() >= 0.02 && t.effective_floor() < 0.02 + 0.0101);
        assert_eq!(SequentialLatencyTest::new(0.05).floor_buckets(), 0);
    }

    #[test]
    fn bucket_edges_split_samples_exactly() {
        for i in [1usize, 10, 500, 1000, 1500] {
            let e = upper_edge(i);
            assert_eq!(Histogram::index_of(e * (1.0 - 1e-9)), i);
            assert_eq!(Histogram::index_of(e * (1.0 + 1e-9)), i + 1);
            assert!(lower_edge(i) < Histogram::value_of(i) && Histogram::value_of(i) < e);
        }
    }

    #[test]
    fn quantile_shift_brackets_a_known_shift() {
        let s: Vec<f64> = (1..=20_000)
            .map(|i| 100.0 + (i as f64 * 0.618_034).fract() * 100.0)
            .collect();
        let c: Vec<f64> = s.iter().map(|x| x * 1.1).collect();
        let (hc, hs) = (hist(&c), hist(&s));
        let e = dkw_epsilon(20_000, 0.025);
        let sh = quantile_shift(&hc, &hs, 0.5, e, e).unwrap();
        assert!(sh.low < 0.1 && sh.high.unwrap() > 0.1, "{sh:?}");
        assert!(sh.low > 0.0, "{sh:?}");
        // With no band, the range is the bucket-widened point estimate: ±1 bucket.
        let sh = quantile_shift(&hc, &hs, 0.5, 0.0, 0.0).unwrap();
        assert!(
            sh.low > 0.1 - 0.025 && sh.high.unwrap() < 0.1 + 0.025,
            "{sh:?}"
        );
        assert_eq!(quantile_shift(&Histogram::new(), &hs, 0.5, e, e), None);
    }

    #[test]
    fn burn_rates_and_multiwindow_rule() {
        assert!(close(burn_rate(0.0144, 0.999), 14.4, 1e-9));
        assert!(close(burn_rate(0.001, 0.999), 1.0, 1e-9));
        assert_eq!(burn_rate(0.0, 1.0), 0.0);
        assert_eq!(burn_rate(0.1, 1.0), f64::INFINITY);
        assert!(burn_rate(0.1, 1.5).is_nan());
        let r = MultiWindowBurn::FAST;
        assert_eq!(r.spans(), [3_600_000, 300_000]);
        let v = r.check(Some(0.0162), Some(0.021), 0.999);
        assert!(v.reject);
        assert_eq!(
            v.explanation,
            "error budget burning at 16.2× over 1 h and 21.0× over 5 min: both over the 14.4× threshold for a 99.9% SLO"
        );
        // The short window has recovered: no page.
        assert!(!r.check(Some(0.0162), Some(0.002), 0.999).reject);
        // No data never fires.
        assert!(!r.check(None, Some(0.5), 0.999).reject);
        let s = MultiWindowBurn::SLOW;
        assert_eq!((s.long, s.short, s.factor), (21_600_000, 1_800_000, 6.0));
        assert!(s.check(Some(0.0061), Some(0.0065), 0.999).reject);
        let mut long = CohortStats::new();
        long.requests = 1000;
        long.errors = 20;
        let mut short = CohortStats::new();
        short.requests = 100;
        short.errors = 2;
        assert!(r.check_cohorts(&long, &short, 0.999).reject);
    }

    #[test]
    fn sentences_format_numbers_plainly() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3200), "3,200");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(pct(0.0062), "0.62%");
        assert_eq!(pct(0.25), "25.0%");
        assert_eq!(pct(0.0004), "0.040%");
        assert_eq!(confidence(0.05), "95%");
        assert_eq!(confidence(0.005), "99.5%");
        assert_eq!(quantile_name(0.99), "p99");
        assert_eq!(quantile_name(0.999), "p99.9");
    }
}
