//! The controllers' election: a lease kept alive, a campaign under the deployment's election
//! key, and the signal that the lease was lost.
//!
//! A candidate grants itself a lease of `[store] lease_ttl` and keeps it alive from the bridge's
//! thread (so nothing the driver does delays a renewal); it campaigns with etcd's election
//! service, which answers once every older candidate's key is gone. The winner's fence is its
//! key and that key's creation revision. The keep-alive declares the lease lost when etcd says
//! it expired, or when no renewal succeeded for two thirds of the TTL (etcd may then expire it
//! any moment): the leader stops acting before a standby can win, and the fenced journal
//! refuses whatever it still tries to write.

use std::time::Duration;

use ramp_etcd::etcd_client::{Client, Error as ClientError};
use ramp_etcd::{Fence, Keys};
use tokio::sync::watch;

use super::bridge::{Bridge, BridgeError};
use crate::clock;

/// A won election: the fence every write carries, and the signal of its loss.
pub struct Leadership {
    /// The leader's key and its creation revision.
    pub fence: Fence,
    /// Becomes `Some(why)` once the lease is lost.
    pub lost: watch::Receiver<Option<String>>,
    /// The lease, revoked when the leader stops so that a standby takes over at once.
    lease: i64,
}

/// Why a candidate could not campaign.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// A request to etcd failed.
    #[error("{what}: {source}")]
    Etcd {
        /// What was asked.
        what: &'static str,
        /// What the client or the bridge said.
        source: BridgeError,
    },
    /// The lease was lost while standing by.
    #[error("the lease was lost while standing by: {0}")]
    Lost(String),
}

/// A candidate with a live lease, before or while campaigning.
pub struct Candidate {
    /// The lease id.
    lease: i64,
    /// Becomes `Some(why)` once the lease is lost.
    lost: watch::Receiver<Option<String>>,
    /// The election's name.
    name: String,
    /// What this candidate says about itself (host, pid, control address).
    me: String,
}

impl Candidate {
    /// Grants a lease of `ttl` and starts keeping it alive on the bridge's thread.
    pub async fn new(
        bridge: &Bridge,
        keys: &Keys,
        ttl: Duration,
        me: String,
    ) -> Result<Candidate, ElectionError> {
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(60);
        let mut c = bridge.client();
        let timeout = bridge.timeout();
        let lease = bridge
            .run(async move {
                // A member that is down is skipped: the grant is made again on another.
                let grant = async {
                    loop {
                        match c.lease_grant(secs, None).await {
                            Err(e) if super::bridge::unavailable(&e) => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            other => return other,
                        }
                    }
                };
                tokio::time::timeout(timeout, grant).await
            })
            .await
            .map_err(|source| ElectionError::Etcd {
                what: "grant a lease",
                source,
            })?
            .map_err(|_| ElectionError::Etcd {
                what: "grant a lease",
                source: BridgeError::Timeout(ms(timeout)),
            })?
            .map_err(|e| ElectionError::Etcd {
                what: "grant a lease",
                source: BridgeError::Etcd(ramp_etcd::EtcdError::Request {
                    what: "a lease".into(),
                    source: e,
                }),
            })?
            .id();
        let (tx, lost) = watch::channel(None);
        bridge.spawn(keep_alive(bridge.client(), lease, ttl, tx));
        Ok(Candidate {
            lease,
            lost,
            name: keys.election(),
            me,
        })
    }

    /// The candidate's lease, to revoke it when it stops standing by.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// What the current leader says about itself, when there is one.
    pub async fn leader(&self, bridge: &Bridge) -> Option<String> {
        let mut c = bridge.client();
        let name = self.name.clone();
        let timeout = bridge.timeout();
        let answer = bridge
            .run(async move { tokio::time::timeout(timeout, c.leader(name)).await })
            .await;
        match answer {
            Ok(Ok(Ok(r))) => r
                .kv()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        }
    }

    /// Campaigns until this candidate leads, or its lease is lost. The campaign is one
    /// request without a deadline (etcd answers it when every older candidate's key is gone):
    /// a campaign cut off by a timeout would be withdrawn by etcd, its key deleted, and the
    /// next attempt would queue behind every candidate that came later. The wait ends when the
    /// lease is lost; a connection that breaks ends the attempt, which is made again.
    pub async fn campaign(self, bridge: &Bridge) -> Result<Leadership, ElectionError> {
        loop {
            if let Some(why) = self.lost.borrow().clone() {
                return Err(ElectionError::Lost(why));
            }
            let mut c = bridge.waiting_client();
            let (name, me, lease) = (self.name.clone(), self.me.clone(), self.lease);
            let mut lost = self.lost.clone();
            let attempt = bridge
                .run(async move {
                    tokio::select! {
                        won = c.campaign(name, me, lease) => Some(won),
                        () = lapsed(&mut lost) => None,
                    }
                })
                .await
                .map_err(|source| ElectionError::Etcd {
                    what: "campaign",
                    source,
                })?;
            match attempt {
                // The lease was lost while waiting: said at the top of the loop.
                None => continue,
                Some(Ok(won)) => {
                    if let Some(leader) = won.leader() {
                        let fence = Fence {
                            leader_key: leader.key().to_vec(),
                            revision: leader.rev(),
                        };
                        return Ok(Leadership {
                            fence,
                            lost: self.lost,
                            lease: self.lease,
                        });
                    }
                }
                Some(Err(e)) if retryable(&e) => {}
                Some(Err(e)) => {
                    return Err(ElectionError::Etcd {
                        what: "campaign",
                        source: BridgeError::Etcd(ramp_etcd::EtcdError::Request {
                            what: "a campaign".into(),
                            source: e,
                        }),
                    })
                }
            }
            // A short pause before another attempt (a member went away).
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Resolves once the lease is lost (never, if nobody can say so any more): what ends a
/// campaign, and a leader's term.
pub async fn lapsed(lost: &mut watch::Receiver<Option<String>>) {
    while lost.borrow().is_none() {
        if lost.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Leadership {
    /// The leader's lease, revoked again by a controller that lost it (etcd may not have
    /// taken the first revocation while it had no quorum).
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Revokes the lease (best effort, bounded), so that a standby takes over at once
    /// instead of after the TTL.
    pub async fn resign(self, bridge: &Bridge) {
        revoke(bridge, self.lease).await;
    }
}

/// Revokes `lease` (best effort, bounded): its election key goes with it.
pub async fn revoke(bridge: &Bridge, lease: i64) {
    let mut c = bridge.client();
    let timeout = bridge.timeout();
    let _ = bridge
        .run(async move { tokio::time::timeout(timeout, c.lease_revoke(lease)).await })
        .await;
}

/// Whether a campaign's error is the request timeout or a member going away, which another
/// attempt may get past, rather than a refusal (authentication, a bad request).
fn retryable(e: &ClientError) -> bool {
    use ramp_etcd::etcd_client::Error as E;
    match e {
        // gRPC's codes: 3 invalid argument, 7 permission denied, 16 unauthenticated.
        E::GRpcStatus(s) => !matches!(i32::from(s.code()), 3 | 7 | 16),
        E::TransportError(_) | E::IoError(_) => true,
        _ => false,
    }
}

/// Keeps `lease` alive every third of `ttl` until it is lost or nobody listens any more;
/// says why it was lost through `lost`.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
) {
    let every = ttl / 3;
    let give_up = ttl * 2 / 3;
    let mut last_ok = clock::now();
    let mut stream = None;
    loop {
        if lost.is_closed() {
            return;
        }
        let turn = clock::now();
        if stream.is_none() {
            if let Ok(Ok(s)) = tokio::time::timeout(every, client.lease_keep_alive(lease)).await {
                stream = Some(s);
            }
        }
        if let Some((keeper, answers)) = stream.as_mut() {
            let sent = clock::now();
            let renewed = tokio::time::timeout(every, async {
                keeper.keep_alive().await?;
                answers.message().await
            })
            .await;
            match renewed {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => last_ok = sent,
                Ok(Ok(Some(_))) => {
                    let _ = lost.send(Some(format!(
                        "etcd says lease {lease:x} expired (it was not renewed within {} s)",
                        ttl.as_secs()
                    )));
                    return;
                }
                // The stream broke or the renewal timed out: a new stream at the next turn.
                _ => stream = None,
            }
        }
        if clock::now().duration_since(last_ok) >= give_up {
            let _ = lost.send(Some(format!(
                "lease {lease:x} could not be renewed for {} ms (etcd unreachable or without quorum); it may expire any moment",
                give_up.as_millis()
            )));
            return;
        }
        // The next renewal a third of the TTL after this one; sooner after a failure.
        let pause = if last_ok >= turn {
            every
        } else {
            Duration::from_millis(200)
        };
        tokio::time::sleep_until(turn + pause).await;
    }
}

/// A duration in whole milliseconds.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One controller of a deployment on etcd, as its election key describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Controller {
    /// What it says about itself (pid, host, control API).
    pub who: String,
    /// `"leader"` for the oldest candidate, `"standby"` for the others.
    pub role: &'static str,
}

/// The deployment's controllers, leader first (`ramp status`): every candidate's key under
/// the election, oldest first, since etcd's election makes the oldest the leader.
pub fn controllers(bridge: &Bridge, keys: &Keys) -> Result<Vec<Controller>, BridgeError> {
    use ramp_etcd::etcd_client::{GetOptions, SortOrder, SortTarget};
    let prefix = format!("{}/", keys.election());
    let answer = bridge.call(move |mut c| {
        let prefix = prefix.clone();
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend);
        async move { c.get(prefix, Some(options)).await }
    })?;
    Ok(answer
        .kvs()
        .iter()
        .enumerate()
        .map(|(i, kv)| Controller {
            who: String::from_utf8_lossy(kv.value()).into_owned(),
            role: if i == 0 { "leader" } else { "standby" },
        })
        .collect())
}
