//! A Prometheus histogram's cumulative `_bucket` series as engine latency buckets.
//!
//! Prometheus buckets are cumulative in `le` (each counts every request at or below its
//! bound) and coarse (a dozen bounds, not Ramp's 0.5 % buckets). They are summed over every
//! other label (pods, instances), turned into per-bucket counts, and each bucket's count is
//! placed at the engine histogram's index of the bucket's lower bound (index 0 for the first
//! bucket), with the finite bounds carried along (only the bounds every series group shares:
//! pods exporting different layouts are summed on their common edges): `ramp_stats::CohortStats::coarse_bounds_us`
//! then lets a gate read a quantile as "between these two bounds" and fail only on a breach
//! that is certain.

use super::error::PromError;
use ramp_stats::Histogram;
use std::collections::BTreeMap;

/// One cohort's histogram, summed over its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coarse {
    /// `(engine histogram index, count)`, ascending by index; counts are cumulative over
    /// time (since the series began), per bucket (not cumulative in `le`).
    pub buckets: Vec<(u32, u64)>,
    /// The finite `le` bounds in microseconds, ascending.
    pub bounds_us: Vec<u64>,
    /// The `+Inf` bucket's count: every request observed.
    pub total: u64,
}

/// Builds one cohort's histogram from its bucket series (labels, rounded count), read by
/// `query`.
pub fn coarse(
    query: &str,
    series: &[(&BTreeMap<String, String>, u64)],
) -> Result<Coarse, PromError> {
    let fail = |message: String| PromError::Histogram {
        query: query.to_string(),
        message,
    };
    // Each series' bound, grouped by its other labels (one group per pod or instance).
    let mut parsed: Vec<(String, f64, u64)> = Vec::with_capacity(series.len());
    for (labels, count) in series {
        let text = labels.get("le").ok_or_else(|| {
            fail(format!(
                "series {} has no `le` label",
                super::parse::series_name(labels)
            ))
        })?;
        let le = match text.as_str() {
            "+Inf" => f64::INFINITY,
            t => t
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| fail(format!("`le` {t:?} is not a latency bound in seconds")))?,
        };
        let mut others = (*labels).clone();
        others.remove("le");
        parsed.push((super::parse::series_name(&others), le, *count));
    }
    // Only the bounds every group has are bucket edges of the sum: a pod whose layout lacks a
    // bound says nothing of how its requests fall on either side of it, and summing its
    // counts at the bounds it has would put them on the wrong side of the others'.
    let mut layouts: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (group, le, _) in &parsed {
        layouts
            .entry(group.as_str())
            .or_default()
            .push(le.to_bits());
    }
    let shared: Vec<u64> = layouts
        .values()
        .fold(None, |acc: Option<Vec<u64>>, les| {
            Some(match acc {
                None => les.clone(),
                Some(mut a) => {
                    a.retain(|b| les.contains(b));
                    a
                }
            })
        })
        .unwrap_or_default();
    // The cumulative count at each shared bound, summed over the groups.
    let mut by_le: Vec<(f64, u64)> = Vec::new();
    for (_, le, count) in &parsed {
        if !shared.contains(&le.to_bits()) {
            continue;
        }
        match by_le.iter_mut().find(|(b, _)| b == le) {
            Some((_, c)) => *c = c.saturating_add(*count),
            None => by_le.push((*le, *count)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(&(last, total)) = by_le.last() else {
        return Err(fail("no bucket series".into()));
    };
    if last != f64::INFINITY {
        return Err(fail(
            "no `+Inf` bucket: the count of every request is missing".into(),
        ));
    }
    let mut buckets: BTreeMap<u32, u64> = BTreeMap::new();
    let mut bounds_us: Vec<u64> = Vec::new();
    let (mut lower_s, mut below) = (0.0_f64, 0_u64);
    for (i, &(le, cumulative)) in by_le.iter().enumerate() {
        let in_bucket = cumulative.checked_sub(below).ok_or_else(|| {
            fail(format!(
                "the count at le={le} ({cumulative}) is below the count at le={lower_s} ({below}): buckets must not decrease with `le`"
            ))
        })?;
        let index = if i == 0 {
            0
        } else {
            u32::try_from(Histogram::index_of(lower_s * 1000.0)).unwrap_or(u32::MAX)
        };
        if in_bucket > 0 {
            let c = buckets.entry(index).or_insert(0);
            *c = c.saturating_add(in_bucket);
        }
        if le.is_finite() {
            // Whole microseconds: the engine's finest unit; bounds closer than that merge.
            let us = (le * 1e6).round() as u64;
            if bounds_us.last() != Some(&us) {
                bounds_us.push(us);
            }
        }
        (lower_s, below) = (le, cumulative);
    }
    Ok(Coarse {
        buckets: buckets.into_iter().collect(),
        bounds_us,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(le: &str, pod: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("le".to_string(), le.to_string()),
            ("pod".to_string(), pod.to_string()),
        ])
    }

    #[test]
    fn buckets_are_summed_over_pods_and_placed_at_their_lower_bound() {
        let ls = [
            labels("0.05", "a"),
            labels("0.1", "a"),
            labels("+Inf", "a"),
            labels("0.05", "b"),
            labels("0.1", "b"),
            labels("+Inf", "b"),
        ];
        let counts = [3, 5, 6, 1, 4, 4];
        let series: Vec<_> = ls.iter().zip(counts).collect();
        let h = coarse("q", &series).unwrap();
        assert_eq!(h.total, 10);
        assert_eq!(h.bounds_us, vec![50_000, 100_000]);
        let at = |ms: f64| Histogram::index_of(ms) as u32;
        // 4 at or below 50 ms, 5 in (50, 100] ms, 1 above 100 ms.
        assert_eq!(h.buckets, vec![(0, 4), (at(50.0), 5), (at(100.0), 1)]);
    }

    /// Pods of one cohort exporting different layouts: summed by `le` before, pod b's 10
    /// requests (all above 0.5 s by its only bound) were counted above 0.1 s but not at 0.1 s,
    /// and pod a's 5 above 0.1 s were counted at 0.5 s: "10 of 20 above 0.5 s" where at most
    /// 5 can be. Only the bounds both have are edges of the sum now.
    #[test]
    fn pods_with_different_layouts_are_summed_on_the_bounds_they_share() {
        let ls = [
            labels("0.1", "a"),
            labels("1", "a"),
            labels("+Inf", "a"),
            labels("0.5", "b"),
            labels("1", "b"),
            labels("+Inf", "b"),
        ];
        let counts = [5, 10, 10, 0, 10, 10];
        let series: Vec<_> = ls.iter().zip(counts).collect();
        let h = coarse("q", &series).unwrap();
        assert_eq!(h.bounds_us, vec![1_000_000], "only the shared bound");
        assert_eq!(h.total, 20);
        assert_eq!(
            h.buckets,
            vec![(0, 20)],
            "all 20 at or below 1 s, no finer claim"
        );
    }

    #[test]
    fn a_histogram_without_inf_or_decreasing_or_unlabelled_is_refused() {
        let no_inf = [labels("0.1", "a")];
        let e = coarse("q", &no_inf.iter().zip([1]).collect::<Vec<_>>()).unwrap_err();
        assert!(e.to_string().contains("+Inf"), "{e}");
        let down = [labels("0.1", "a"), labels("+Inf", "a")];
        let e = coarse("q", &down.iter().zip([5, 3]).collect::<Vec<_>>()).unwrap_err();
        assert!(e.to_string().contains("must not decrease"), "{e}");
        let bad_le = [labels("fast", "a")];
        let e = coarse("q", &bad_le.iter().zip([1]).collect::<Vec<_>>()).unwrap_err();
        assert!(e.to_string().contains("\"fast\""), "{e}");
        let no_le = [BTreeMap::from([("pod".to_string(), "a".to_string())])];
        let e = coarse("q", &no_le.iter().zip([1]).collect::<Vec<_>>()).unwrap_err();
        assert!(e.to_string().contains("no `le`"), "{e}");
        assert!(coarse("q", &[]).is_err());
    }
}
