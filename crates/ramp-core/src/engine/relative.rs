//! The canary-versus-stable checks that run at every tick besides the threshold gates:
//! relative gates (the canary against stable over one window, each at the conservative end
//! of its 99.9 % interval) and the SRE workbook's multiwindow burn-rate gates.

use super::gates::{coarse_edge, group, interval_end, single_value, FAIL_CONFIDENCE};
use super::{Engine, BURN_RULES};
use crate::summary::TestResult;

impl Engine {
    /// Every relative gate on its window as of now: the canary's value against stable's, each
    /// at the conservative end of its 99.9 % interval (the canary's low end against stable's
    /// high end), so noise alone does not fail it.
    pub(super) fn relative_gates(&self) -> Vec<TestResult> {
        let mut out = Vec::new();
        for g in &self.plan.relative {
            let Some(v) = self.windows.view(g.window.0) else {
                continue;
            };
            let (c, st) = (v.canary, v.stable);
            let name = format!("relative_{}", g.metric.key());
            let limit = format!("+{:.0}%", (g.max_ratio - 1.0) * 100.0);
            if c.requests < g.min_samples || st.requests < g.min_samples {
                out.push(TestResult {
                    test: name,
                    alpha: 1.0 - FAIL_CONFIDENCE,
                    reject: false,
                    explanation: format!(
                        "not judged yet: {} canary and {} stable requests over the last {}, fewer than the {} each needs",
                        group(c.requests),
                        group(st.requests),
                        g.window,
                        group(g.min_samples)
                    ),
                });
                continue;
            }
            let (Some(vc), Some(vs)) = (single_value(g.metric, c), single_value(g.metric, st))
            else {
                continue;
            };
            // For coarse buckets each end is pushed to its bucket's edge on the side that
            // favours the canary: a relative breach must be certain given the bounds too.
            let low_c = coarse_edge(
                g.metric,
                c,
                interval_end(g.metric, c, vc, -1.0).unwrap_or(vc),
                -1.0,
            );
            let high_s = coarse_edge(
                g.metric,
                st,
                interval_end(g.metric, st, vs, 1.0).unwrap_or(vs),
                1.0,
            );
            let reject = low_c > g.max_ratio * high_s;
            let change = if vs > 0.0 {
                format!("{:+.1}%", (vc / vs - 1.0) * 100.0)
            } else {
                "above zero".to_string()
            };
            out.push(TestResult {
                test: name,
                alpha: 1.0 - FAIL_CONFIDENCE,
                reject,
                explanation: format!(
                    "canary {} {} against stable's {} ({change}, limit {limit}){} over the last {} ({} canary and {} stable requests)",
                    g.metric,
                    g.metric.format(vc),
                    g.metric.format(vs),
                    if reject {
                        format!(
                            "; at 99.9% confidence the canary is at least {} and stable at most {}",
                            g.metric.format(low_c),
                            g.metric.format(high_s)
                        )
                    } else {
                        String::new()
                    },
                    g.window,
                    group(c.requests),
                    group(st.requests)
                ),
            });
        }
        out
    }

    /// The canary's error-budget burn over each rule's two windows, when the plan sets an SLO.
    pub(super) fn burn_rates(&self) -> Vec<TestResult> {
        let Some(slo) = self.plan.burn_rate_slo else {
            return Vec::new();
        };
        BURN_RULES
            .iter()
            .filter_map(|rule| {
                let long = self.windows.view(rule.long)?;
                let short = self.windows.view(rule.short)?;
                // Require a full short window of canary traffic, so that a handful of early
                // requests cannot page.
                let short_ok = short.covered_ms >= rule.short && short.canary.requests > 0;
                let v = rule.check(
                    long.canary.error_rate().filter(|_| short_ok),
                    short.canary.error_rate().filter(|_| short_ok),
                    slo,
                );
                let name = if rule.factor > 10.0 {
                    "burn_rate_fast"
                } else {
                    "burn_rate_slow"
                };
                Some(TestResult {
                    test: name.into(),
                    alpha: 0.0,
                    reject: v.reject,
                    explanation: format!("canary {}", v.explanation),
                })
            })
            .collect()
    }
}
