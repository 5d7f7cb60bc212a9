//! Engine snapshots in the SQLite journal: one per run (a newer one replaces the older),
//! refused for a finished run, and the inputs after a snapshot read alone.

use ramp_store::{Journal, SnapshotRecord, StoreError};

/// A journal in a fresh directory with one running run.
fn journal() -> (tempfile::TempDir, Journal, i64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut j = Journal::open(&dir.path().join("journal.db")).expect("the journal opens");
    let run = j
        .begin_run("d", "plan.toml", "[deployment]", 1_700_000_000_000)
        .expect("a run begins");
    (dir, j, run)
}

#[test]
fn the_latest_snapshot_replaces_the_older_and_inputs_after_it_are_read_alone() {
    let (_dir, mut j, run) = journal();
    assert_eq!(j.latest_snapshot(run).ok(), Some(None));
    for i in 0..5u64 {
        j.append_input(run, i * 1000, "tick", "{}", None)
            .expect("an input is journaled");
    }
    j.append_snapshot(run, 2, 1000, b"first")
        .expect("a snapshot");
    j.append_snapshot(run, 4, 3000, &[0, 255, 7])
        .expect("a newer snapshot");
    let latest = j.latest_snapshot(run).expect("the snapshot reads");
    assert_eq!(
        latest,
        Some(SnapshotRecord {
            after_seq: 4,
            plan_ms: 3000,
            bytes: vec![0, 255, 7],
        })
    );
    let after: Vec<u64> = j
        .inputs_after(run, 4)
        .expect("the inputs read")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(after, vec![5]);
    assert_eq!(j.inputs_after(run, 0).map(|v| v.len()).ok(), Some(5));
    assert_eq!(j.inputs_after(run, u64::MAX).map(|v| v.len()).ok(), Some(0));
}

#[test]
fn a_finished_run_takes_no_snapshot_and_an_unknown_run_has_none() {
    let (_dir, mut j, run) = journal();
    j.finish_run(run, "promoted", 1_700_000_001_000, "{}")
        .expect("the run finishes");
    assert!(matches!(
        j.append_snapshot(run, 0, 0, b"x"),
        Err(StoreError::Finished { .. })
    ));
    assert!(matches!(
        j.latest_snapshot(run + 1),
        Err(StoreError::NoSuchRun { .. })
    ));
}
