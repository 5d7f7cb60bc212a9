//! Engine snapshots in the etcd journal: each run's latest one, in chunks, and the inputs
//! after it.
//!
//! A snapshot can be larger than one etcd value, so its bytes are written in chunks (as a
//! run's summary is) under a generation of their own, named by the input it covers up to;
//! then one fenced transaction points the run's head at that generation and deletes every
//! other generation. Only the latest is kept because a resume only ever uses the latest (it
//! covers the most inputs), and keeping older ones would grow the deployment's keys with
//! every checkpoint. A reader checks the chunks against the head's length and checksum, so a
//! damaged snapshot is an error, which the driver reports and ignores (replaying every input).

use ramp_etcd::etcd_client::{DeleteOptions, TxnOp};
use ramp_store::{InputRecord, SnapshotRecord, StoreError};

use super::etcd::{EtcdJournal, CHUNK};
use super::layout::{prefix_end, trailing_number, InputDoc, SnapshotDoc};

/// FNV-1a (64 bits) of `bytes`: enough to tell chunks read whole from damaged ones.
fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl EtcdJournal {
    /// Writes the snapshot's chunks, then switches the run's head to them and deletes the
    /// other generations, every write fenced and only while the run is active.
    pub(super) fn put_snapshot(
        &mut self,
        run: i64,
        after_seq: u64,
        plan_ms: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let what = format!("record the snapshot of run {run} after input {after_seq}");
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let key = self.layout.snapshot_chunk(run, after_seq, i);
            let op = TxnOp::put(key, chunk.to_vec(), None);
            if let Err(why) = self.fenced(&what, vec![self.is_active(run)], vec![op])? {
                return Err(self.refused(run, why, &what));
            }
        }
        let doc = SnapshotDoc {
            after_seq,
            plan_ms,
            chunks: chunks.len(),
            bytes: bytes.len(),
            fnv: fnv(bytes),
        };
        let value = serde_json::to_vec(&doc).map_err(|e| self.fail(&what, e))?;
        let dir = self.layout.snapshots(run);
        let generation = self.layout.snapshot_generation(run, after_seq);
        let ops = vec![
            TxnOp::put(self.layout.snapshot(run), value, None),
            // Every other generation: the older ones, and any a deposed leader left half
            // written after this one's place.
            TxnOp::delete(
                dir.clone(),
                Some(DeleteOptions::new().with_range(generation.clone())),
            ),
            TxnOp::delete(
                prefix_end(&generation),
                Some(DeleteOptions::new().with_range(prefix_end(&dir))),
            ),
        ];
        match self.fenced(&what, vec![self.is_active(run)], ops)? {
            Ok(()) => Ok(()),
            Err(why) => Err(self.refused(run, why, &what)),
        }
    }

    /// The run's latest snapshot, its chunks checked against the head.
    pub(super) fn read_snapshot(&self, run: i64) -> Result<Option<SnapshotRecord>, StoreError> {
        let what = format!("read the snapshot of run {run}");
        let head = self.layout.snapshot(run);
        let Some((value, _)) = self.get(&head, &what)? else {
            return Ok(None);
        };
        let doc: SnapshotDoc = self.decode(&head, &value)?;
        let generation = self.layout.snapshot_generation(run, doc.after_seq);
        let mut bytes = Vec::with_capacity(doc.bytes);
        let chunks = self.range(&generation, &what)?;
        for (_, chunk) in chunks.iter().take(doc.chunks) {
            bytes.extend_from_slice(chunk);
        }
        if chunks.len() < doc.chunks || bytes.len() != doc.bytes || fnv(&bytes) != doc.fnv {
            return Err(self.fail(what, Damaged));
        }
        Ok(Some(SnapshotRecord {
            after_seq: doc.after_seq,
            plan_ms: doc.plan_ms,
            bytes,
        }))
    }

    /// The run's inputs after `after_seq`, in order, read from the key after it.
    pub(super) fn read_inputs_after(
        &self,
        run: i64,
        after_seq: u64,
    ) -> Result<Vec<InputRecord>, StoreError> {
        let what = format!("read the inputs of run {run}");
        let dir = self.layout.inputs(run);
        let start = self.layout.input(run, after_seq.saturating_add(1));
        let mut out = Vec::new();
        for (key, value) in self.range_from(start, prefix_end(&dir), &what)? {
            let doc: InputDoc = self.decode(&key, &value)?;
            out.push(InputRecord {
                seq: trailing_number(key.as_bytes()).unwrap_or(0),
                plan_ms: doc.plan_ms,
                kind: doc.kind,
                body: doc.body,
            });
        }
        Ok(out)
    }
}

/// A snapshot whose chunks do not match its head (missing, or not the bytes written).
#[derive(Debug, thiserror::Error)]
#[error("its chunks do not match its head (missing or damaged)")]
struct Damaged;
