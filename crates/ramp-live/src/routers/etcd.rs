//! The etcd router (`[router] kind = "etcd"`): the controller writes the deployment's weight
//! document (`ramp_etcd::WeightDoc` under `ramp_etcd::Keys::weight`) once, and every
//! `ramp proxy --etcd` that follows the key applies it.
//!
//! The write is a fenced transaction when the run's [`FenceToken`] holds the leader's whole
//! fence (etcd refuses a deposed leader's write, which becomes
//! [`SourceError::Superseded`]); without an election (the SQLite store) it is a plain put
//! with fence 0, which proxies apply unfenced. The weight counts as set only once every
//! listed member's admin API shows it (within [`CONFIRM_WITHIN`]), as a fleet's members must
//! hold it; the members' snapshots are summed for metrics by the fleet's code.

use crate::routers::Fleet;
use crate::seams::{FenceToken, Router, RouterIdentity};
use crate::source::{FaultRequest, ProxyAdmin, SourceError};
use crate::status::MemberView;
use ramp_core::Weight;
use ramp_etcd::etcd_client::Client;
use ramp_etcd::{EtcdConfig, Keys, WeightDoc};
use std::sync::Arc;
use std::time::Duration;

/// How long the members have to apply a weight written to etcd.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(2);

/// The pause between two reads of the members while waiting for them.
const CONFIRM_POLL: Duration = Duration::from_millis(100);

/// The weight key of one deployment, and the proxies that follow it.
#[derive(Debug, Clone)]
pub struct EtcdRouter {
    /// How to reach etcd.
    config: EtcdConfig,
    /// The deployment's weight key.
    key: String,
    /// The endpoints and key, for messages.
    location: String,
    /// The run's fencing token (and fence), shared with the driver.
    fence: FenceToken,
    /// The following proxies' admin APIs, for confirmation.
    members: Vec<ProxyAdmin>,
    /// The same proxies as a fleet, for metrics, identity and `ramp status`; `None` without
    /// members.
    fleet: Option<Fleet>,
    /// The connected client, made on first use and dropped after a failure.
    client: Connection,
}

/// The router's etcd client, shared by its clones (etcd's client has no `Debug` of its own).
#[derive(Clone, Default)]
struct Connection(Arc<tokio::sync::Mutex<Option<Client>>>);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl EtcdRouter {
    /// The router of `deployment`'s weight in the cluster `config`, confirmed on `members`.
    pub fn new(
        config: EtcdConfig,
        deployment: &str,
        members: Vec<ProxyAdmin>,
        fence: FenceToken,
    ) -> EtcdRouter {
        let key = Keys::new(&config.prefix, deployment).weight();
        let location = format!("etcd {} key {key}", config.endpoints.join(","));
        let fleet = (!members.is_empty()).then(|| Fleet::new(members.clone()));
        EtcdRouter {
            config,
            key,
            location,
            fence,
            members,
            fleet,
            client: Connection::default(),
        }
    }

    /// The members as a fleet, the metrics source of `[metrics] source = "proxy"`.
    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_ref()
    }

    /// An error of this router, naming it.
    fn error(&self, message: String) -> SourceError {
        SourceError::Router {
            router: self.location.clone(),
            message,
        }
    }

    /// Runs `call` with a connected client; a failure drops the client so that the next call
    /// connects again.
    async fn with_client<T>(
        &self,
        call: impl AsyncFnOnce(&mut Client) -> Result<T, ramp_etcd::EtcdError>,
    ) -> Result<T, SourceError> {
        let mut slot = self.client.0.lock().await;
        if slot.is_none() {
            let client = ramp_etcd::connect(&self.config)
                .await
                .map_err(|e| self.error(e.to_string()))?;
            *slot = Some(client);
        }
        let Some(client) = slot.as_mut() else {
            return Err(self.error("no etcd client".into()));
        };
        match call(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *slot = None;
                Err(self.error(e.to_string()))
            }
        }
    }

    /// The document under the key, `None` when there is none.
    async fn read_doc(&self) -> Result<Option<WeightDoc>, SourceError> {
        let key = self.key.clone();
        let value = self
            .with_client(async |client| {
                let r = client.get(key.as_str(), None).await.map_err(|source| {
                    ramp_etcd::EtcdError::Request {
                        what: format!("a read of {key}"),
                        source,
                    }
                })?;
                Ok(r.kvs().first().map(|kv| kv.value().to_vec()))
            })
            .await?;
        value
            .map(|v| {
                serde_json::from_slice::<WeightDoc>(&v).map_err(|e| {
                    self.error(format!("the weight key holds no weight document: {e}"))
                })
            })
            .transpose()
    }

    /// Waits (at most [`CONFIRM_WITHIN`]) until every member shows `bp` set by `run`.
    async fn confirm(&self, bp: u32, run: &str) -> Result<(), SourceError> {
        let deadline = crate::clock::now() + CONFIRM_WITHIN;
        loop {
            let mut behind = Vec::new();
            for m in &self.members {
                match m.read().await {
                    Ok(r) if r.canary_bp == bp && r.set_by.as_deref() == Some(run) => {}
                    Ok(r) => behind.push(format!(
                        "{} holds {} %",
                        m.url(),
                        f64::from(r.canary_bp) / 100.0
                    )),
                    Err(e) => behind.push(format!("{} cannot be read ({e})", m.url())),
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if crate::clock::now() >= deadline {
                return Err(SourceError::Fleet(format!(
                    "{} of {} proxies following {} did not apply {} % within {} s: {}",
                    behind.len(),
                    self.members.len(),
                    self.key,
                    f64::from(bp) / 100.0,
                    CONFIRM_WITHIN.as_secs(),
                    behind.join("; ")
                )));
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }
}

impl Router for EtcdRouter {
    fn location(&self) -> &str {
        &self.location
    }

    fn noun(&self) -> &'static str {
        "the etcd weight key"
    }

    fn salts_by_deployment(&self) -> bool {
        self.fleet.is_some()
    }

    async fn identity(&self) -> Result<RouterIdentity, SourceError> {
        if let Some(fleet) = &self.fleet {
            return fleet.identity().await;
        }
        Ok(RouterIdentity {
            deployment: None,
            set_by: self.read_doc().await?.and_then(|d| d.run),
            conflict: None,
        })
    }

    async fn weight(&self) -> Result<u32, SourceError> {
        if let Some(fleet) = &self.fleet {
            return fleet.weight().await;
        }
        Ok(self.read_doc().await?.map_or(0, |d| d.canary_bp))
    }

    async fn set_weight(&self, weight: Weight, run: &str) -> Result<(), SourceError> {
        let bp = u32::from(weight.basis_points());
        let fence = self.fence.fence();
        let doc = WeightDoc {
            canary_bp: bp,
            fence: fence.as_ref().map_or(0, ramp_etcd::Fence::token),
            run: Some(run.to_string()),
        };
        let value = serde_json::to_vec(&doc).map_err(|e| self.error(e.to_string()))?;
        let key = self.key.clone();
        let written = self
            .with_client(async |client| match &fence {
                Some(fence) => ramp_etcd::fenced_put(client, fence, &key, value).await,
                None => client
                    .put(key.as_str(), value, None)
                    .await
                    .map(|_| true)
                    .map_err(|source| ramp_etcd::EtcdError::Request {
                        what: format!("a write of {key}"),
                        source,
                    }),
            })
            .await?;
        if !written {
            return Err(SourceError::Superseded {
                router: self.location.clone(),
                reason: format!(
                    "etcd refused the write: the election key of fence {} is gone, so a newer leader leads",
                    doc.fence
                ),
            });
        }
        self.confirm(bp, run).await
    }

    async fn add_fault(&self, fault: &FaultRequest) -> Result<String, SourceError> {
        match &self.fleet {
            Some(fleet) => fleet.add_fault(fault).await,
            None => Err(SourceError::Unsupported(
                "the etcd router lists no proxies (router.admin) to inject a fault into".into(),
            )),
        }
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        match &self.fleet {
            Some(fleet) => fleet.clear_faults().await,
            None => Ok(()),
        }
    }

    fn members(&self) -> Vec<MemberView> {
        self.fleet.as_ref().map_or_else(Vec::new, Router::members)
    }
}
