//! How the etcd journal reads and writes: bounded requests through the bridge, range reads
//! in pages at one revision, and the fenced transaction every write is, with the reason a
//! refused one was refused (lost leadership, a finished run, another active run).

use ramp_etcd::etcd_client::{
    Compare, CompareOp, GetOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use ramp_etcd::Fence;
use ramp_store::StoreError;

use super::etcd::{EtcdJournal, MAX_RECORD, PAGE};
use super::layout::{prefix_end, trailing_number};

/// Why a fenced transaction's condition failed.
pub(super) enum Refused {
    /// The leader's key is gone or was re-created: leadership is lost.
    Fenced,
    /// The run is not the active one (it finished).
    Finished,
    /// The deployment has another active run.
    Active(i64),
    /// A key that must be new exists, or a record changed under us.
    Conflict,
}

impl EtcdJournal {
    /// A remote error for `what`.
    pub(super) fn fail(
        &self,
        what: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Remote {
            location: self.location.clone(),
            what: what.into(),
            source: Box::new(e),
        }
    }

    /// A record decoded from JSON, or an error naming its key.
    pub(super) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(value).map_err(|e| self.fail(format!("read the record at {key}"), e))
    }

    /// One key's value and modification revision.
    pub(super) fn get(&self, key: &str, what: &str) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let k = key.to_string();
        let got = self
            .bridge
            .call(move |mut c| {
                let k = k.clone();
                async move { c.get(k, None).await }
            })
            .map_err(|e| self.fail(what, e))?;
        Ok(got
            .kvs()
            .first()
            .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
    }

    /// Every key and value under `prefix` in key order, read in pages at one revision.
    pub(super) fn range(
        &self,
        prefix: &str,
        what: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.range_from(prefix.to_string(), prefix_end(prefix), what)
    }

    /// Every key and value from `start` (inclusive) to `end` (exclusive), in pages.
    pub(super) fn range_from(
        &self,
        mut start: String,
        end: Vec<u8>,
        what: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut revision = 0;
        loop {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE)
                .with_revision(revision);
            let from = start.clone();
            let page = self
                .bridge
                .call(move |mut c| {
                    let (from, options) = (from.clone(), options.clone());
                    async move { c.get(from, Some(options)).await }
                })
                .map_err(|e| self.fail(what, e))?;
            if revision == 0 {
                revision = page.header().map_or(0, |h| h.revision());
            }
            for kv in page.kvs() {
                out.push((
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().to_vec(),
                ));
            }
            match (page.more(), page.kvs().last()) {
                (true, Some(last)) => {
                    start = format!("{}\0", String::from_utf8_lossy(last.key()));
                }
                _ => return Ok(out),
            }
        }
    }

    /// The largest sequence number under `prefix`, 0 when there is none.
    pub(super) fn last_seq(&self, prefix: &str, what: &str) -> Result<u64, StoreError> {
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(1)
            .with_keys_only();
        let p = prefix.to_string();
        let got = self
            .bridge
            .call(move |mut c| {
                let (p, options) = (p.clone(), options.clone());
                async move { c.get(p, Some(options)).await }
            })
            .map_err(|e| self.fail(what, e))?;
        Ok(got
            .kvs()
            .first()
            .and_then(|kv| trailing_number(kv.key()))
            .unwrap_or(0))
    }

    /// Refuses a record too large for one etcd value.
    pub(super) fn bounded(&self, what: &str, bytes: usize) -> Result<(), StoreError> {
        if bytes > MAX_RECORD {
            return Err(StoreError::TooLarge {
                location: self.location.clone(),
                what: what.to_string(),
                bytes,
                max: MAX_RECORD,
            });
        }
        Ok(())
    }

    /// Runs `ops` in one transaction if the fence holds and `compares` hold; otherwise says
    /// why not.
    pub(super) fn fenced(
        &self,
        what: &str,
        compares: Vec<Compare>,
        ops: Vec<TxnOp>,
    ) -> Result<Result<(), Refused>, StoreError> {
        let Some(fence) = &self.fence else {
            return Err(self.fail(what, ReadOnly));
        };
        let mut when = vec![fence.compare()];
        when.extend(compares);
        let active = self.layout.active();
        let txn = Txn::new().when(when).and_then(ops).or_else(vec![
            TxnOp::get(fence.leader_key.clone(), None),
            TxnOp::get(active, None),
        ]);
        let answer = self
            .bridge
            .call(move |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .map_err(|e| self.fail(what, e))?;
        if answer.succeeded() {
            return Ok(Ok(()));
        }
        let responses = answer.op_responses();
        let held = match responses.first() {
            Some(TxnOpResponse::Get(g)) => g
                .kvs()
                .first()
                .is_some_and(|kv| kv.create_revision() == fence.revision),
            _ => false,
        };
        if !held {
            return Ok(Err(Refused::Fenced));
        }
        let active = match responses.get(1) {
            Some(TxnOpResponse::Get(g)) => g
                .kvs()
                .first()
                .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse::<i64>().ok()),
            _ => None,
        };
        Ok(Err(match active {
            None => Refused::Finished,
            Some(id) => Refused::Active(id),
        }))
    }

    /// The error of a refused write to `run`.
    pub(super) fn refused(&self, run: i64, why: Refused, what: &str) -> StoreError {
        let path = std::path::PathBuf::from(&self.location);
        match why {
            Refused::Fenced => StoreError::Fenced {
                location: self.location.clone(),
                deployment: self.deployment.clone(),
                token: self.fence.as_ref().map_or(0, Fence::token),
            },
            // Another run is active, so this one finished.
            Refused::Finished => StoreError::Finished { path, run },
            Refused::Active(id) if id != run => StoreError::Finished { path, run },
            Refused::Active(_) | Refused::Conflict => self.fail(what, Conflict),
        }
    }

    /// Whether `key` holds exactly `value`: a write refused because its key exists (or its
    /// run was finished) was our own, made again after its answer was lost.
    pub(super) fn written(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .get(key, &format!("read back {key}"))?
            .is_some_and(|(v, _)| v == value))
    }

    /// The condition that `run` is the deployment's active run.
    pub(super) fn is_active(&self, run: i64) -> Compare {
        Compare::value(self.layout.active(), CompareOp::Equal, run.to_string())
    }
}

/// A write through a journal opened for reading only.
#[derive(Debug, thiserror::Error)]
#[error("this controller does not lead the deployment, so it may not write to its journal")]
struct ReadOnly;

/// A key that had to be new exists.
#[derive(Debug, thiserror::Error)]
#[error("the record already exists: another writer wrote to this run")]
struct Conflict;
