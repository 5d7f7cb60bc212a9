//! HAProxy as a live run's router (`[router] kind = "haproxy"`), through its runtime API.
//!
//! Both versions' servers sit in one backend; Ramp owns the weights of the servers the plan
//! lists. A canary weight becomes one HAProxy weight per server (0–256): every canary server
//! gets the same weight and every stable server the same, chosen so that the canary side's
//! share of the backend's total weight is as close as 256 allows to the plan's weight (see
//! [`split`]); weight 0 drains a side, since HAProxy sends no new request to a server of
//! weight 0. All the servers are set in one line of commands, then read back with `show
//! servers state`: the weights in force must be the ones set, else the call fails. HAProxy
//! cannot hold a run token nor name a deployment, so its identity is the default one (see
//! [`crate::routers`]). [`stats`] reads its own counters as a metrics source.

mod runtime;
pub mod stats;

use crate::seams::{Router, RouterIdentity};
use crate::source::{FaultRequest, SourceError};
use ramp_core::plan::HaproxyRouter as Plan;
use ramp_core::Weight;
use runtime::Runtime;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// HAProxy's largest server weight.
pub const MAX_WEIGHT: u32 = 256;

/// A backend of HAProxy, driven through its runtime API.
#[derive(Debug, Clone)]
pub struct HaproxyRouter {
    /// The runtime API.
    runtime: Runtime,
    /// The backend and its two sides.
    plan: Plan,
    /// The last canary weight set by this process (basis points), to report exactly that
    /// weight while the servers hold its split (several weights split alike).
    last: Arc<Mutex<Option<u32>>>,
}

/// The per-server weights `(stable, canary)` for a canary weight of `bp` basis points over
/// `stable` and `canary` servers: 0 drains a side; otherwise the pair in 1–256 whose canary
/// share `canary·wc / (canary·wc + stable·ws)` is nearest to `bp`, the larger weights on a
/// tie. With one server a side, 5 % is 13 against 247 (5.00 %) and 1 % is 2 against 198;
/// the smallest share above 0 is 1/(1 + 256·stable/canary), 0.39 % with one server a side.
pub fn split(bp: u32, stable: usize, canary: usize) -> (u32, u32) {
    match bp {
        0 => return (MAX_WEIGHT, 0),
        10_000.. => return (0, MAX_WEIGHT),
        _ => {}
    }
    let (ns, nc) = (stable as f64, canary as f64);
    let want = f64::from(bp) / 10_000.0;
    let mut best = (MAX_WEIGHT, 1, f64::INFINITY);
    for ws in (1..=MAX_WEIGHT).rev() {
        for wc in (1..=MAX_WEIGHT).rev() {
            let c = nc * f64::from(wc);
            let err = (c / (c + ns * f64::from(ws)) - want).abs();
            if err < best.2 - 1e-12 {
                best = (ws, wc, err);
            }
        }
    }
    (best.0, best.1)
}

/// The canary share of per-server weights, in basis points (rounded).
fn share_bp(ws: u32, wc: u32, stable: usize, canary: usize) -> Option<u32> {
    let s = f64::from(ws) * stable as f64;
    let c = f64::from(wc) * canary as f64;
    (s + c > 0.0).then(|| (10_000.0 * c / (s + c)).round() as u32)
}

impl HaproxyRouter {
    /// The router of the plan's `[router] kind = "haproxy"`, a relative socket path taken
    /// from `base_dir`.
    pub fn new(plan: Plan, base_dir: &Path) -> HaproxyRouter {
        let runtime = Runtime::new(
            &plan.socket,
            base_dir,
            Duration::from_millis(plan.timeout.0),
        );
        HaproxyRouter {
            runtime,
            plan,
            last: Arc::default(),
        }
    }

    /// The metrics source of the same HAProxy: its own counters of the plan's servers.
    pub fn stats(&self) -> stats::HaproxyStats {
        stats::HaproxyStats::new(self.runtime.clone(), self.plan.clone())
    }

    /// Every server of the backend with the weight in force (`srv_uweight`), from `show
    /// servers state`.
    async fn servers(&self) -> Result<Vec<(String, u32)>, SourceError> {
        let backend = &self.plan.backend;
        let answer = self
            .runtime
            .ask(&format!("show servers state {backend}"))
            .await?;
        stats::servers_state(&answer)
            .map_err(|e| self.runtime.error(format!("backend {backend:?}: {e}")))
    }

    /// The weights in force of one side's servers, each server required.
    fn side(&self, servers: &[(String, u32)], names: &[String]) -> Result<Vec<u32>, SourceError> {
        names
            .iter()
            .map(|name| {
                servers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, w)| *w)
                    .ok_or_else(|| {
                        let have: Vec<&str> = servers.iter().map(|(n, _)| n.as_str()).collect();
                        self.runtime.error(format!(
                            "backend {:?} has no server {name:?} (it has {})",
                            self.plan.backend,
                            if have.is_empty() {
                                "none".to_string()
                            } else {
                                have.join(", ")
                            }
                        ))
                    })
            })
            .collect()
    }
}

impl Router for HaproxyRouter {
    fn location(&self) -> &str {
        &self.runtime.location
    }

    fn noun(&self) -> &'static str {
        "HAProxy"
    }

    /// Checks that the backend and every server of the plan exist, since nothing else can
    /// be asked of HAProxy about who drives it (see [`crate::routers`]).
    async fn identity(&self) -> Result<RouterIdentity, SourceError> {
        let servers = self.servers().await?;
        self.side(&servers, &self.plan.stable)?;
        self.side(&servers, &self.plan.canary)?;
        Ok(RouterIdentity::default())
    }

    async fn weight(&self) -> Result<u32, SourceError> {
        let servers = self.servers().await?;
        let stable = self.side(&servers, &self.plan.stable)?;
        let canary = self.side(&servers, &self.plan.canary)?;
        let (ns, nc) = (stable.len(), canary.len());
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bp) = last {
            let (ws, wc) = split(bp, ns, nc);
            if stable.iter().all(|w| *w == ws) && canary.iter().all(|w| *w == wc) {
                return Ok(bp);
            }
        }
        let (s, c): (u32, u32) = (stable.iter().sum(), canary.iter().sum());
        share_bp(s, c, 1, 1).ok_or_else(|| {
            self.runtime.error(format!(
                "every server of backend {:?} that the plan lists has weight 0: no traffic goes to either version",
                self.plan.backend
            ))
        })
    }

    async fn set_weight(&self, weight: Weight, _run: &str) -> Result<(), SourceError> {
        let bp = u32::from(weight.basis_points());
        let (ns, nc) = (self.plan.stable.len(), self.plan.canary.len());
        let (ws, wc) = split(bp, ns, nc);
        // Every server exists before anything is set, so that a typo is named, not half
        // applied.
        self.identity().await?;
        let backend = &self.plan.backend;
        let sides = [(&self.plan.stable, ws), (&self.plan.canary, wc)];
        let commands: Vec<String> = sides
            .iter()
            .flat_map(|(names, w)| {
                names
                    .iter()
                    .map(move |n| format!("set server {backend}/{n} weight {w}"))
            })
            .collect();
        let answer = self.runtime.ask(&commands.join("; ")).await?;
        let said: Vec<&str> = answer
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !said.is_empty() {
            return Err(self.runtime.error(format!(
                "setting the weights of backend {backend:?} for {weight}: HAProxy answered: {}",
                said.join(" ")
            )));
        }
        let servers = self.servers().await?;
        let stable = self.side(&servers, &self.plan.stable)?;
        let canary = self.side(&servers, &self.plan.canary)?;
        if stable.iter().any(|w| *w != ws) || canary.iter().any(|w| *w != wc) {
            return Err(self.runtime.error(format!(
                "backend {backend:?}: set stable servers to weight {ws} and canary servers to {wc} for {weight}, but HAProxy reports stable {stable:?} and canary {canary:?}"
            )));
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(bp);
        Ok(())
    }

    async fn add_fault(&self, _fault: &FaultRequest) -> Result<String, SourceError> {
        Err(self.runtime.error(
            "HAProxy cannot inject Ramp's rehearsal faults; rehearse through a Ramp proxy".into(),
        ))
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        Err(self.runtime.error(
            "HAProxy cannot inject Ramp's rehearsal faults; rehearse through a Ramp proxy".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_weight_splits_over_the_servers_as_near_as_256_allows() {
        assert_eq!(split(0, 2, 1), (256, 0));
        assert_eq!(split(10_000, 2, 1), (0, 256));
        for (bp, ns, nc) in [
            (500, 1, 1),
            (100, 1, 1),
            (2_500, 2, 1),
            (5_000, 3, 2),
            (9_900, 1, 3),
        ] {
            let (ws, wc) = split(bp, ns, nc);
            let got = share_bp(ws, wc, ns, nc).unwrap();
            assert!(
                got.abs_diff(bp) <= 2,
                "{bp} bp over {ns}+{nc}: {ws}/{wc} gives {got}"
            );
            assert!((1..=MAX_WEIGHT).contains(&ws) && (1..=MAX_WEIGHT).contains(&wc));
        }
        assert_eq!(split(500, 1, 1), (247, 13));
        assert_eq!(split(100, 1, 1), (198, 2));
        // The smallest canary share HAProxy can give one canary server against one stable.
        assert_eq!(split(1, 1, 1), (256, 1));
    }
}
