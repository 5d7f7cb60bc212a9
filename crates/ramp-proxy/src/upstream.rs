//! Upstream pools: round-robin over the healthy members of each cohort's pool, and the
//! active health checks that decide which members are healthy.

use crate::config::HealthConfig;
use crate::routing::Cohort;
use bytes::Bytes;
use http::uri::Authority;
use http_body_util::Empty;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One upstream address and what the health checks know about it.
pub struct Member {
    /// The address requests are sent to.
    pub addr: SocketAddr,
    /// The address as a URI authority, built once so requests only clone it.
    pub authority: Authority,
    /// A number no other member of any proxy in this process has, so that the pool's
    /// per-thread idle stacks can be keyed by member without a lock or a pointer.
    id: u64,
    /// Whether requests may be sent here; true until checks say otherwise.
    healthy: AtomicBool,
    /// Consecutive successful checks (reset by a failure).
    successes: AtomicU32,
    /// Consecutive failed checks (reset by a success).
    failures: AtomicU32,
    /// Checks that failed since start, for operators.
    checks_failed: AtomicU64,
}

impl Member {
    fn new(addr: SocketAddr) -> Self {
        // A SocketAddr always renders as a valid authority ("1.2.3.4:80" or "[::1]:80").
        let authority = Authority::try_from(addr.to_string().as_str())
            .unwrap_or_else(|_| Authority::from_static("invalid"));
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            addr,
            authority,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            healthy: AtomicBool::new(true),
            successes: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            checks_failed: AtomicU64::new(0),
        }
    }

    /// The member's process-wide unique number (see the field).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the member currently receives traffic.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Applies one check result with the rise/fall thresholds.
    pub fn record_check(&self, ok: bool, rise: u32, fall: u32) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            let n = self
                .successes
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            if n >= rise && !self.is_healthy() {
                self.healthy.store(true, Ordering::Relaxed);
                tracing::info!(addr = %self.addr, "upstream is healthy again");
            }
        } else {
            self.checks_failed.fetch_add(1, Ordering::Relaxed);
            self.successes.store(0, Ordering::Relaxed);
            let n = self
                .failures
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            if n >= fall && self.is_healthy() {
                self.healthy.store(false, Ordering::Relaxed);
                tracing::warn!(addr = %self.addr, "upstream marked unhealthy");
            }
        }
    }
}

/// The upstream addresses of one cohort, or of both (flag mode's one pool).
pub struct Pool {
    /// The cohort this pool serves; `None` for flag mode's pool, which serves both.
    pub cohort: Option<Cohort>,
    /// The members, in configuration order.
    pub members: Box<[Member]>,
    /// Round-robin cursor, advanced once per request.
    next: AtomicUsize,
}

impl Pool {
    /// Builds the pool of one cohort; every member starts healthy.
    pub fn new(cohort: Cohort, addrs: &[SocketAddr]) -> Self {
        Self {
            cohort: Some(cohort),
            members: addrs.iter().copied().map(Member::new).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Builds flag mode's pool, which serves both cohorts; every member starts healthy.
    pub fn shared(addrs: &[SocketAddr]) -> Self {
        Self {
            cohort: None,
            members: addrs.iter().copied().map(Member::new).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The pool's name in metrics and JSON: its cohort, or "upstream" for flag mode's pool.
    pub fn name(&self) -> &'static str {
        self.cohort.map_or("upstream", Cohort::as_str)
    }

    /// Picks the next healthy member in round-robin order, or `None` when all are down. It
    /// is a position in `members`, not a reference: a request's future looks its member up
    /// again later, as it cannot hold a borrow of the proxy it came from.
    pub fn pick_index(&self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.members[i].is_healthy())
    }

    /// Number of healthy members.
    pub fn healthy_count(&self) -> usize {
        self.members.iter().filter(|m| m.is_healthy()).count()
    }

    /// A serialisable view for the admin API.
    pub fn status(&self) -> PoolStatus {
        PoolStatus {
            pool: self.name(),
            cohort: self.cohort,
            healthy: self.healthy_count(),
            members: self
                .members
                .iter()
                .map(|m| MemberStatus {
                    addr: m.addr,
                    healthy: m.is_healthy(),
                    checks_failed: m.checks_failed.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

/// Health of one pool as served by `/upstreams` and `/snapshot`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    /// The pool's name: "stable", "canary", or "upstream" (flag mode's one pool).
    pub pool: &'static str,
    /// The pool's cohort; absent for flag mode's pool, which serves both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort: Option<Cohort>,
    /// How many members are healthy.
    pub healthy: usize,
    /// Each member.
    pub members: Vec<MemberStatus>,
}

/// Health of one member.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// Its address.
    pub addr: SocketAddr,
    /// Whether it receives traffic.
    pub healthy: bool,
    /// Failed checks since start.
    pub checks_failed: u64,
}

/// Checks every member of `pools` until `shutdown` turns true.
pub async fn run_health_checks(
    pools: Vec<Arc<Pool>>,
    cfg: HealthConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(cfg.timeout));
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let mut checks = Vec::new();
        for pool in &pools {
            for index in 0..pool.members.len() {
                let (pool, client, path, timeout) =
                    (pool.clone(), client.clone(), cfg.path.clone(), cfg.timeout);
                checks.push(tokio::spawn(async move {
                    let member = &pool.members[index];
                    let ok = check_once(&client, member, &path, timeout).await;
                    member.record_check(ok, cfg.rise, cfg.fall);
                }));
            }
        }
        for check in checks {
            let _ = check.await;
        }
    }
}

async fn check_once(
    client: &Client<HttpConnector, Empty<Bytes>>,
    member: &Member,
    path: &str,
    timeout: Duration,
) -> bool {
    let uri = match http::Uri::builder()
        .scheme("http")
        .authority(member.authority.clone())
        .path_and_query(path)
        .build()
    {
        Ok(uri) => uri,
        Err(_) => return false,
    };
    let request = match http::Request::get(uri)
        .header(http::header::USER_AGENT, "ramp-proxy-health")
        .body(Empty::new())
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    match tokio::time::timeout(timeout, client.request(request)).await {
        Ok(Ok(response)) => response.status().is_success() || response.status().is_redirection(),
        Ok(Err(_)) | Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    #[test]
    fn round_robin_skips_unhealthy_members() {
        let pool = Pool::new(Cohort::Stable, &addrs(3));
        let picks: Vec<u16> = (0..6)
            .map(|_| pool.pick_index().map_or(0, |i| pool.members[i].addr.port()))
            .collect();
        assert_eq!(picks, vec![1000, 1001, 1002, 1000, 1001, 1002]);
        pool.members[1].record_check(false, 2, 2);
        assert!(
            pool.members[1].is_healthy(),
            "one failure is below the fall threshold"
        );
        pool.members[1].record_check(false, 2, 2);
        assert!(!pool.members[1].is_healthy());
        for _ in 0..10 {
            assert_ne!(
                pool.pick_index().map(|i| pool.members[i].addr.port()),
                Some(1001)
            );
        }
        pool.members[1].record_check(true, 2, 2);
        assert!(
            !pool.members[1].is_healthy(),
            "one success is below the rise threshold"
        );
        pool.members[1].record_check(true, 2, 2);
        assert!(pool.members[1].is_healthy());
    }

    #[test]
    fn all_down_picks_nothing() {
        let pool = Pool::new(Cohort::Canary, &addrs(2));
        for m in pool.members.iter() {
            m.record_check(false, 1, 1);
        }
        assert!(pool.pick_index().is_none());
        assert_eq!(pool.healthy_count(), 0);
    }
}
