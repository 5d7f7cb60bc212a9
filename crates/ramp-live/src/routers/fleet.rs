//! A fleet of Ramp proxies behind a load balancer, driven as one router and read as one
//! metrics source.
//!
//! Every member gets every weight (set concurrently, each confirmed by reading it back), and
//! the fleet's counters are the sum of the members' `/snapshot`s: the members bucket latency
//! with the same mapping, so their histograms add bucket for bucket, exactly. The fleet's
//! epoch combines every member's `boot_id`, so one member's restart makes the interval a gap
//! for the whole fleet (its lost counts would otherwise go unnoticed in the sum).

use crate::seams::{MetricsSource, Reading, Router, RouterIdentity};
use crate::source::{
    CohortCounters, Counters, FaultRequest, ProxyAdmin, ProxyReading, SourceError,
};
use crate::status::MemberView;
use ramp_core::Weight;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Several `ramp proxy` processes that must all hold the same weight.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The members, in plan order.
    members: Vec<ProxyAdmin>,
    /// The members' URLs joined, for messages.
    location: String,
    /// What the fleet was last asked and last seen to do, shared by its clones.
    state: Arc<Mutex<FleetState>>,
}

/// What the fleet remembers between calls.
#[derive(Debug, Default)]
struct FleetState {
    /// The weight (basis points) last asked of the fleet: a member that holds another one is
    /// reported so that the driver sets it again.
    target: Option<u32>,
    /// Each member as last read, in plan order.
    seen: Vec<MemberView>,
}

impl Fleet {
    /// A fleet of the proxies whose admin APIs are `members`; at least one.
    pub fn new(members: Vec<ProxyAdmin>) -> Fleet {
        let location = members
            .iter()
            .map(ProxyAdmin::url)
            .collect::<Vec<_>>()
            .join(", ");
        let seen = members
            .iter()
            .map(|m| MemberView {
                url: m.url().to_string(),
                ..MemberView::default()
            })
            .collect();
        Fleet {
            members,
            location,
            state: Arc::new(Mutex::new(FleetState { target: None, seen })),
        }
    }

    /// Runs `call` on every member concurrently; the answers in plan order.
    async fn each<T, F, Fut>(&self, call: F) -> Vec<Result<T, SourceError>>
    where
        T: Send + 'static,
        F: Fn(ProxyAdmin) -> Fut,
        Fut: Future<Output = Result<T, SourceError>> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        for (i, m) in self.members.iter().enumerate() {
            let fut = call(m.clone());
            set.spawn(async move { (i, fut.await) });
        }
        let mut out: Vec<Option<Result<T, SourceError>>> =
            (0..self.members.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            // A member's task only ends by returning: the calls do not panic, and the set
            // is not aborted while it is awaited.
            if let Ok((i, r)) = joined {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(SourceError::Fleet("a member's call was lost".into()))))
            .collect()
    }

    /// Every member's snapshot, remembered for `ramp status`; an error naming every member
    /// that could not be read.
    async fn read_all(&self) -> Result<Vec<ProxyReading>, SourceError> {
        let answers = self.each(|m| async move { m.read().await }).await;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let target = state.target;
        for (view, answer) in state.seen.iter_mut().zip(&answers) {
            match answer {
                Ok(r) => {
                    view.requests = Some(r.counters.stable.completed + r.counters.canary.completed);
                    view.errors = Some(r.counters.stable.errors + r.counters.canary.errors);
                    view.boot_id.clone_from(&r.counters.epoch);
                    view.canary_bp = Some(r.canary_bp);
                    view.holds_weight = Some(r.canary_bp) == target;
                    view.problem = None;
                }
                Err(e) => {
                    view.holds_weight = false;
                    view.problem = Some(e.to_string());
                }
            }
        }
        drop(state);
        self.all_or_error(answers, "cannot be read")
    }

    /// The answers when every member gave one, else an error naming each that did not.
    fn all_or_error<T>(
        &self,
        answers: Vec<Result<T, SourceError>>,
        what: &str,
    ) -> Result<Vec<T>, SourceError> {
        let mut ok = Vec::with_capacity(answers.len());
        let mut failed = Vec::new();
        for (m, a) in self.members.iter().zip(answers) {
            match a {
                Ok(v) => ok.push(v),
                // One member that has seen a newer leader is enough: this controller no
                // longer leads, which is the driver's to act on, not a member's failure.
                Err(e @ SourceError::Superseded { .. }) => return Err(e),
                Err(e) => failed.push(format!("{} {what} ({e})", m.url())),
            }
        }
        if failed.is_empty() {
            return Ok(ok);
        }
        Err(SourceError::Fleet(format!(
            "{} of {} fleet members: {}",
            failed.len(),
            self.members.len(),
            failed.join("; ")
        )))
    }
}

/// The fleet's weight as one number: the weight when every member holds the same one;
/// otherwise the lowest weight held by a member that is not at `target` (the weight last
/// asked of the fleet), so that the driver, seeing a weight other than the one it set, sets
/// it again on every member. Without a target, the lowest weight held.
fn fleet_weight(held: &[u32], target: Option<u32>) -> u32 {
    let lowest = held.iter().copied().min().unwrap_or(0);
    if held.iter().all(|&w| w == lowest) {
        return lowest;
    }
    match target {
        Some(t) => held.iter().copied().filter(|&w| w != t).min().unwrap_or(t),
        None => lowest,
    }
}

/// The members' counters summed: per cohort, requests and errors added, histograms added
/// bucket for bucket, in-flight gauges added; the epoch is every member's boot id in plan
/// order (`?` for a member that names none), so any member's restart changes it.
fn sum(readings: &[ProxyReading]) -> Counters {
    let epoch = readings
        .iter()
        .map(|r| r.counters.epoch.as_deref().unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(",");
    let cohort = |pick: fn(&Counters) -> &CohortCounters| {
        let mut total = CohortCounters::default();
        for r in readings {
            let c = pick(&r.counters);
            total.completed += c.completed;
            total.errors += c.errors;
            total.in_flight += c.in_flight;
            total.buckets = merge(&total.buckets, &c.buckets);
        }
        total
    };
    Counters {
        epoch: Some(format!("fleet:{epoch}")),
        stable: cohort(|c| &c.stable),
        canary: cohort(|c| &c.canary),
    }
}

/// Two ascending `(index, count)` bucket lists added index for index.
fn merge(a: &[(u32, u64)], b: &[(u32, u64)]) -> Vec<(u32, u64)> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(x, n)), Some(&(y, m))) if x == y => {
                out.push((x, n + m));
                i += 1;
                j += 1;
            }
            (Some(&(x, n)), Some(&(y, _))) if x < y => {
                out.push((x, n));
                i += 1;
            }
            (Some(&(x, n)), None) => {
                out.push((x, n));
                i += 1;
            }
            (_, Some(&(y, m))) => {
                out.push((y, m));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The members' identities as the fleet's: refused (a deployment no member has alone) when
/// they serve different deployments; the run that set them when they agree on it (members
/// never set are fine), and a conflict when they name different runs.
fn identity_of(members: &[ProxyAdmin], readings: &[ProxyReading]) -> RouterIdentity {
    let first = readings.first().and_then(|r| r.deployment_id.clone());
    let deployment = if readings.iter().all(|r| r.deployment_id == first) {
        first
    } else {
        let each: Vec<String> = members
            .iter()
            .zip(readings)
            .map(|(m, r)| {
                format!(
                    "{} at {}",
                    r.deployment_id.as_deref().unwrap_or("none"),
                    m.url()
                )
            })
            .collect();
        Some(format!("different deployments ({})", each.join(", ")))
    };
    // Marks are `token:seq`: members that missed a later weight of the same run hold an
    // earlier seq of it, which is the same run; the latest seq is the one the journal must
    // reach.
    let token = |mark: &str| mark.rsplit_once(':').map_or(mark, |(t, _)| t).to_string();
    let seq = |mark: &str| {
        mark.rsplit_once(':')
            .and_then(|(_, s)| s.parse::<u64>().ok())
    };
    let marks: Vec<(&str, &str)> = members
        .iter()
        .zip(readings)
        .filter_map(|(m, r)| r.set_by.as_deref().map(|s| (m.url(), s)))
        .collect();
    let mut set_by: Option<String> = None;
    let mut conflict = None;
    for &(url, mark) in &marks {
        match &set_by {
            None => set_by = Some(mark.to_string()),
            Some(held) if token(held) != token(mark) => {
                let each: Vec<String> = marks.iter().map(|(u, m)| format!("{m} at {u}")).collect();
                conflict = Some(format!(
                    "the fleet's members hold weights set by different runs ({}); {url} disagrees",
                    each.join(", ")
                ));
                break;
            }
            Some(held) if seq(mark) > seq(held) => set_by = Some(mark.to_string()),
            Some(_) => {}
        }
    }
    RouterIdentity {
        deployment,
        set_by,
        conflict,
    }
}

impl Router for Fleet {
    fn location(&self) -> &str {
        &self.location
    }

    fn noun(&self) -> &'static str {
        "the fleet"
    }

    fn salts_by_deployment(&self) -> bool {
        true
    }

    async fn identity(&self) -> Result<RouterIdentity, SourceError> {
        let readings = self.read_all().await?;
        Ok(identity_of(&self.members, &readings))
    }

    async fn weight(&self) -> Result<u32, SourceError> {
        let readings = self.read_all().await?;
        let held: Vec<u32> = readings.iter().map(|r| r.canary_bp).collect();
        let target = self.state.lock().unwrap_or_else(|e| e.into_inner()).target;
        Ok(fleet_weight(&held, target))
    }

    async fn set_weight(&self, weight: Weight, run: &str) -> Result<(), SourceError> {
        let bp = u32::from(weight.basis_points());
        self.state.lock().unwrap_or_else(|e| e.into_inner()).target = Some(bp);
        let run = run.to_string();
        let answers = self
            .each(|m| {
                let run = run.clone();
                async move {
                    m.set_weight(weight, Some(&run)).await?;
                    let held = m.read().await?.canary_bp;
                    if held != bp {
                        return Err(SourceError::Fleet(format!(
                            "holds {} % after being set to {weight}",
                            f64::from(held) / 100.0
                        )));
                    }
                    Ok(())
                }
            })
            .await;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (view, a) in state.seen.iter_mut().zip(&answers) {
            view.holds_weight = a.is_ok();
            if a.is_ok() {
                view.canary_bp = Some(bp);
            }
        }
        drop(state);
        self.all_or_error(answers, "did not take the weight")
            .map(|_| ())
    }

    async fn add_fault(&self, fault: &FaultRequest) -> Result<String, SourceError> {
        let f = fault.clone();
        let answers = self
            .each(|m| {
                let f = f.clone();
                async move { m.add_fault(&f).await }
            })
            .await;
        Ok(self.all_or_error(answers, "refused the fault")?.join("\n"))
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        let answers = self.each(|m| async move { m.clear_faults().await }).await;
        self.all_or_error(answers, "kept its faults").map(|_| ())
    }

    fn members(&self) -> Vec<MemberView> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .clone()
    }
}

/// The fleet's metrics: the members' snapshots summed; a member that cannot be read makes
/// the whole reading an error (the rollout holds, and the driver declares the time a gap
/// once it is longer than the stage may leave unobserved).
impl MetricsSource for Fleet {
    fn noun(&self) -> &'static str {
        "the fleet"
    }

    async fn read(&self) -> Result<Reading, SourceError> {
        let readings = self.read_all().await?;
        let held: Vec<u32> = readings.iter().map(|r| r.canary_bp).collect();
        let target = self.state.lock().unwrap_or_else(|e| e.into_inner()).target;
        Ok(Reading {
            counters: sum(&readings),
            canary_bp: Some(fleet_weight(&held, target)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_add_index_for_index() {
        assert_eq!(
            merge(&[(1, 2), (5, 1), (9, 4)], &[(0, 1), (5, 2), (10, 3)]),
            vec![(0, 1), (1, 2), (5, 3), (9, 4), (10, 3)]
        );
        assert_eq!(merge(&[], &[(3, 3)]), vec![(3, 3)]);
    }

    /// Agreement is the weight; a member off the target is what the driver sees, whichever
    /// side of it the member is on, so that it is set again.
    #[test]
    fn a_member_off_the_target_is_reported() {
        assert_eq!(fleet_weight(&[1000, 1000, 1000], Some(1000)), 1000);
        assert_eq!(fleet_weight(&[1000, 0, 1000], Some(1000)), 0);
        // A member that restarted with a higher weight than a rollback's 0.
        assert_eq!(fleet_weight(&[0, 2000, 0], Some(0)), 2000);
        assert_eq!(fleet_weight(&[500, 2000], None), 500);
    }

    fn reading(deployment: Option<&str>, set_by: Option<&str>) -> ProxyReading {
        ProxyReading {
            deployment_id: deployment.map(str::to_string),
            set_by: set_by.map(str::to_string),
            canary_bp: 0,
            counters: Counters::default(),
        }
    }

    #[test]
    fn members_must_agree_on_deployment_and_run() {
        let m: Vec<ProxyAdmin> = (1..=3)
            .map(|p| ProxyAdmin::new(&format!("http://127.0.0.1:{p}"), None).unwrap())
            .collect();
        let same = identity_of(
            &m,
            &[
                reading(Some("d"), Some("tok:4")),
                reading(Some("d"), None),
                reading(Some("d"), Some("tok:7")),
            ],
        );
        assert_eq!(same.deployment.as_deref(), Some("d"));
        assert_eq!(same.set_by.as_deref(), Some("tok:7"), "the latest seq");
        assert_eq!(same.conflict, None);
        let other = identity_of(
            &m,
            &[
                reading(Some("d"), None),
                reading(Some("e"), None),
                reading(Some("d"), None),
            ],
        );
        let text = other.deployment.unwrap();
        assert!(text.contains("e at http://127.0.0.1:2"), "{text}");
        let runs = identity_of(
            &m,
            &[
                reading(Some("d"), Some("a:1")),
                reading(Some("d"), Some("b:2")),
                reading(Some("d"), None),
            ],
        );
        assert!(runs.conflict.unwrap().contains("b:2 at http://127.0.0.1:2"));
    }

    #[test]
    fn counters_sum_and_any_restart_changes_the_epoch() {
        let mut a = reading(None, None);
        a.counters.epoch = Some("A".into());
        a.counters.canary = CohortCounters {
            completed: 3,
            errors: 1,
            buckets: vec![(4, 3)],
            in_flight: 1,
            coarse_bounds_us: None,
        };
        let mut b = reading(None, None);
        b.counters.epoch = Some("B".into());
        b.counters.canary = CohortCounters {
            completed: 2,
            errors: 0,
            buckets: vec![(4, 1), (6, 1)],
            in_flight: 0,
            coarse_bounds_us: None,
        };
        let s = sum(&[a.clone(), b.clone()]);
        assert_eq!(s.canary.completed, 5);
        assert_eq!(s.canary.errors, 1);
        assert_eq!(s.canary.buckets, vec![(4, 4), (6, 1)]);
        b.counters.epoch = Some("B2".into());
        let later = sum(&[a, b]);
        assert!(later.gap_since(&s).is_some());
    }
}
