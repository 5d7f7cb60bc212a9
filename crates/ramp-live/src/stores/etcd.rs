//! The etcd journal: the `JournalStore` seam over a deployment's keys in etcd, so that any
//! controller of the deployment can resume its run, and only the leader can write.
//!
//! Every write is one transaction whose condition includes the leader's fence (its election
//! key still exists at its creation revision) and that the run is still the deployment's
//! active one: a controller whose lease expired cannot add a record, however late its request
//! arrives, and gets `StoreError::Fenced`, which stops it. Sequence numbers are the last key
//! under the run's directory plus one, read from etcd once and then counted, and each new key
//! must not exist yet, so two writers could never interleave even without the fence. Reads are
//! paginated and pinned to one revision, so a long run's inputs are read whole and consistent.

use std::collections::HashMap;
use std::sync::Arc;

use ramp_etcd::etcd_client::{Compare, CompareOp, TxnOp};
use ramp_etcd::{EtcdConfig, Fence, Keys};
use ramp_store::{EventRecord, InputRecord, RunRecord, SnapshotRecord, StoreError};

use super::access::Refused;
use super::bridge::Bridge;
use super::layout::{prefix_end, trailing_number, EventDoc, InputDoc, Layout, RunDoc};
use crate::seams::JournalStore;

/// The most one record may hold: etcd refuses requests over 1.5 MiB by default, and a
/// transaction carries an input and its cursor together.
pub const MAX_RECORD: usize = 640 * 1024;

/// How much of a summary (or of an engine snapshot) one chunk holds.
pub(super) const CHUNK: usize = 512 * 1024;

/// How many keys one page of a range read returns.
pub(super) const PAGE: i64 = 200;

/// A deployment's journal in etcd.
pub struct EtcdJournal {
    /// The client, on its own thread.
    pub(super) bridge: Arc<Bridge>,
    /// The journal's keys.
    pub(super) layout: Layout,
    /// The deployment this journal is of.
    pub(super) deployment: String,
    /// `etcd http://…,http://… /ramp/deployments/d/journal/`, for messages.
    pub(super) location: String,
    /// The leader's fence; `None` for a reader (`ramp status`), which may not write.
    pub(super) fence: Option<Fence>,
    /// The last input sequence number of each run written to, once read from etcd.
    pub(super) last_input: HashMap<i64, u64>,
    /// The same for events.
    pub(super) last_event: HashMap<i64, u64>,
}

impl EtcdJournal {
    /// The journal of `deployment` on the bridge's cluster; writes carry `fence`.
    pub fn new(
        bridge: Arc<Bridge>,
        config: &EtcdConfig,
        deployment: &str,
        fence: Option<Fence>,
    ) -> EtcdJournal {
        let dir = Keys::new(&config.prefix, deployment).journal();
        EtcdJournal {
            bridge,
            location: format!("etcd {} {dir}", config.endpoints.join(",")),
            layout: Layout::new(dir),
            deployment: deployment.to_string(),
            fence,
            last_input: HashMap::new(),
            last_event: HashMap::new(),
        }
    }

    /// Every run of the deployment, oldest first (`ramp history`).
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let prefix = self.layout.runs();
        let mut out = Vec::new();
        for (key, value) in self.range(&prefix, "list the runs")? {
            let doc: RunDoc = self.decode(&key, &value)?;
            out.push(self.with_summary(doc)?);
        }
        Ok(out)
    }

    /// One run, if the journal holds it.
    pub fn run(&self, run: i64) -> Result<Option<RunRecord>, StoreError> {
        match self.doc(run)? {
            None => Ok(None),
            Some((doc, _)) => Ok(Some(self.with_summary(doc)?)),
        }
    }

    /// The run's record and its modification revision.
    fn doc(&self, run: i64) -> Result<Option<(RunDoc, i64)>, StoreError> {
        let key = self.layout.run(run);
        match self.get(&key, &format!("read run {run}"))? {
            None => Ok(None),
            Some((value, rev)) => Ok(Some((self.decode(&key, &value)?, rev))),
        }
    }

    /// The record with its summary read back from its chunks.
    fn with_summary(&self, doc: RunDoc) -> Result<RunRecord, StoreError> {
        if doc.summary_chunks == 0 {
            return Ok(doc.record(None));
        }
        let chunks = self.range(
            &self.layout.summary(doc.run_id),
            &format!("read the summary of run {}", doc.run_id),
        )?;
        let mut bytes = Vec::new();
        for (_, value) in chunks.iter().take(doc.summary_chunks) {
            bytes.extend_from_slice(value);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(doc.record(Some(text)))
    }
}

impl JournalStore for EtcdJournal {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn active_run(&self, deployment_id: &str) -> Result<Option<RunRecord>, StoreError> {
        if deployment_id != self.deployment {
            return Ok(None);
        }
        let Some((value, _)) = self.get(&self.layout.active(), "read the active run")? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&value)
            .parse::<i64>()
            .map_err(|e| self.fail("read the active run", e))?;
        self.run(id)
    }

    fn begin_run(
        &mut self,
        deployment_id: &str,
        plan_path: &str,
        plan_toml: &str,
        started_unix_ms: i64,
    ) -> Result<RunRecord, StoreError> {
        let what = format!("begin a run of deployment {deployment_id:?}");
        let run = i64::try_from(self.last_seq(&self.layout.runs(), &what)?).unwrap_or(i64::MAX) + 1;
        let token = ramp_store::new_token().map_err(|e| self.fail(&what, e))?;
        let doc = RunDoc {
            run_id: run,
            deployment_id: deployment_id.to_string(),
            plan_path: plan_path.to_string(),
            plan_toml: plan_toml.to_string(),
            started_unix_ms,
            finished: false,
            outcome: None,
            finished_unix_ms: None,
            control_addr: None,
            controller_pid: None,
            summary_chunks: 0,
            token,
        };
        let value = serde_json::to_vec(&doc).map_err(|e| self.fail(&what, e))?;
        self.bounded("the plan", value.len())?;
        let key = self.layout.run(run);
        let compares = vec![
            Compare::version(self.layout.active(), CompareOp::Equal, 0),
            Compare::version(key.clone(), CompareOp::Equal, 0),
        ];
        let ops = vec![
            TxnOp::put(key.clone(), value.clone(), None),
            TxnOp::put(self.layout.active(), run.to_string(), None),
        ];
        match self.fenced(&what, compares, ops)? {
            Ok(()) => Ok(doc.record(None)),
            // Our own write, made again after its answer was lost (only the leader writes).
            Err(Refused::Active(id)) if id == run && self.written(&key, &value)? => {
                Ok(doc.record(None))
            }
            Err(Refused::Active(id)) => Err(StoreError::Active {
                path: self.location.clone().into(),
                deployment: self.deployment.clone(),
                run: id,
            }),
            Err(Refused::Finished) => Err(self.refused(run, Refused::Conflict, &what)),
            Err(why) => Err(self.refused(run, why, &what)),
        }
    }

    fn run_by_token(&self, token: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.runs()?.into_iter().find(|r| r.token == token))
    }

    fn set_control(&mut self, run: i64, addr: &str, pid: u32) -> Result<(), StoreError> {
        let what = format!("record the control address of run {run}");
        let Some((mut doc, rev)) = self.doc(run)? else {
            return Err(StoreError::NoSuchRun {
                path: self.location.clone().into(),
                run,
            });
        };
        doc.control_addr = Some(addr.to_string());
        doc.controller_pid = Some(pid);
        let value = serde_json::to_vec(&doc).map_err(|e| self.fail(&what, e))?;
        let key = self.layout.run(run);
        let compares = vec![
            self.is_active(run),
            Compare::mod_revision(key.clone(), CompareOp::Equal, rev),
        ];
        match self.fenced(
            &what,
            compares,
            vec![TxnOp::put(key.clone(), value.clone(), None)],
        )? {
            Ok(()) => Ok(()),
            Err(Refused::Active(id)) if id == run && self.written(&key, &value)? => Ok(()),
            Err(why) => Err(self.refused(run, why, &what)),
        }
    }

    fn append_input(
        &mut self,
        run: i64,
        plan_ms: u64,
        kind: &str,
        body: &str,
        cursor: Option<&str>,
    ) -> Result<u64, StoreError> {
        let what = format!("append a {kind} input to run {run}");
        let last = match self.last_input.get(&run) {
            Some(seq) => *seq,
            None => self.last_seq(&self.layout.inputs(run), &what)?,
        };
        let seq = last + 1;
        let doc = InputDoc {
            plan_ms,
            kind: kind.to_string(),
            body: body.to_string(),
        };
        let value = serde_json::to_vec(&doc).map_err(|e| self.fail(&what, e))?;
        self.bounded(&format!("input {seq} of run {run}"), value.len())?;
        let key = self.layout.input(run, seq);
        let mut ops = vec![TxnOp::put(key.clone(), value.clone(), None)];
        if let Some(cursor) = cursor {
            self.bounded("the metrics cursor", cursor.len())?;
            ops.push(TxnOp::put(self.layout.cursor(run), cursor, None));
        }
        let compares = vec![
            self.is_active(run),
            Compare::version(key.clone(), CompareOp::Equal, 0),
        ];
        match self.fenced(&what, compares, ops)? {
            Ok(()) => {
                self.last_input.insert(run, seq);
                Ok(seq)
            }
            Err(Refused::Active(id)) if id == run && self.written(&key, &value)? => {
                self.last_input.insert(run, seq);
                Ok(seq)
            }
            Err(why) => Err(self.refused(run, why, &what)),
        }
    }

    fn inputs(&self, run: i64) -> Result<Vec<InputRecord>, StoreError> {
        // Sequence numbers start at 1: every input is after 0.
        self.read_inputs_after(run, 0)
    }

    fn cursor(&self, run: i64) -> Result<Option<String>, StoreError> {
        let what = format!("read the cursor of run {run}");
        Ok(self
            .get(&self.layout.cursor(run), &what)?
            .map(|(value, _)| String::from_utf8_lossy(&value).into_owned()))
    }

    fn inputs_after(&self, run: i64, after_seq: u64) -> Result<Vec<InputRecord>, StoreError> {
        self.read_inputs_after(run, after_seq)
    }

    fn append_snapshot(
        &mut self,
        run: i64,
        after_seq: u64,
        plan_ms: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.put_snapshot(run, after_seq, plan_ms, bytes)
    }

    fn latest_snapshot(&self, run: i64) -> Result<Option<SnapshotRecord>, StoreError> {
        self.read_snapshot(run)
    }

    fn append_event(
        &mut self,
        run: i64,
        plan_ms: u64,
        unix_ms: i64,
        kind: &str,
        body: &str,
    ) -> Result<u64, StoreError> {
        let what = format!("append a {kind} event to run {run}");
        let last = match self.last_event.get(&run) {
            Some(seq) => *seq,
            None => self.last_seq(&self.layout.events(run), &what)?,
        };
        let seq = last + 1;
        let doc = EventDoc {
            plan_ms,
            unix_ms,
            kind: kind.to_string(),
            body: body.to_string(),
        };
        let value = serde_json::to_vec(&doc).map_err(|e| self.fail(&what, e))?;
        self.bounded(&format!("event {seq} of run {run}"), value.len())?;
        let key = self.layout.event(run, seq);
        let compares = vec![
            self.is_active(run),
            Compare::version(key.clone(), CompareOp::Equal, 0),
        ];
        match self.fenced(
            &what,
            compares,
            vec![TxnOp::put(key.clone(), value.clone(), None)],
        )? {
            Ok(()) => {
                self.last_event.insert(run, seq);
                Ok(seq)
            }
            Err(Refused::Active(id)) if id == run && self.written(&key, &value)? => {
                self.last_event.insert(run, seq);
                Ok(seq)
            }
            Err(why) => Err(self.refused(run, why, &what)),
        }
    }

    fn events(&self, run: i64, after_seq: u64) -> Result<Vec<EventRecord>, StoreError> {
        let what = format!("read the events of run {run}");
        let dir = self.layout.events(run);
        let start = self.layout.event(run, after_seq + 1);
        let mut out = Vec::new();
        for (key, value) in self.range_from(start, prefix_end(&dir), &what)? {
            let doc: EventDoc = self.decode(&key, &value)?;
            out.push(EventRecord {
                seq: trailing_number(key.as_bytes()).unwrap_or(0),
                plan_ms: doc.plan_ms,
                unix_ms: doc.unix_ms,
                kind: doc.kind,
                body: doc.body,
            });
        }
        Ok(out)
    }

    fn finish_run(
        &mut self,
        run: i64,
        outcome: &str,
        finished_unix_ms: i64,
        summary_json: &str,
    ) -> Result<(), StoreError> {
        let what = format!("finish run {run}");
        let Some((mut doc, rev)) = self.doc(run)? else {
            return Err(StoreError::NoSuchRun {
                path: self.location.clone().into(),
                run,
            });
        };
        // The summary's chunks first, each fenced; the run is marked finished only once all
        // are written, so a reader never sees a finished run with half a summary.
        let chunks: Vec<&[u8]> = summary_json.as_bytes().chunks(CHUNK).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let op = TxnOp::put(self.layout.summary_chunk(run, i), chunk.to_vec(), None);
            if let Err(why) = self.fenced(&what, vec![self.is_active(run)], vec![op])? {
                return Err(self.refused(run, why, &what));
            }
        }
        doc.finished = true;
        doc.outcome = Some(outcome.to_string());
        doc.finished_unix_ms = Some(finished_unix_ms);
        doc.summary_chunks = chunks.len();
        let value = serde_json::to_vec(&doc).map_err(|e| self.fail(&what, e))?;
        let key = self.layout.run(run);
        let compares = vec![
            self.is_active(run),
            Compare::mod_revision(key.clone(), CompareOp::Equal, rev),
        ];
        let ops = vec![
            TxnOp::put(key.clone(), value.clone(), None),
            TxnOp::delete(self.layout.active(), None),
        ];
        match self.fenced(&what, compares, ops)? {
            Ok(()) => Ok(()),
            Err(Refused::Finished) if self.written(&key, &value)? => Ok(()),
            Err(why) => Err(self.refused(run, why, &what)),
        }
    }
}
