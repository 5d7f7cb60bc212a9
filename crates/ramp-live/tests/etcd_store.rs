//! The etcd journal and the election against a real three-member etcd cluster: records
//! round-trip in order, a finished run takes no more records, and a controller whose lease is
//! gone can write nothing once another leads (its writes fail as lost leadership); engine
//! snapshots keep only the latest, chunked, and a damaged one is an error, not bytes.
//!
//! One cluster serves the whole binary (starting one takes seconds), so the cases run in one
//! test, each on a deployment of its own.

// Tests time what they wait for with the wall clock.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ramp_etcd::cluster::LocalCluster;
use ramp_etcd::etcd_client::GetOptions;
use ramp_etcd::{EtcdConfig, Keys};
use ramp_live::seams::JournalStore;
use ramp_live::stores::{Bridge, Candidate, EtcdJournal};
use ramp_store::{RunStatus, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_journal_round_trips_and_refuses_a_deposed_leader() {
    let cluster = LocalCluster::start(3).expect("etcd cluster");
    let mut config = EtcdConfig::new(cluster.endpoints());
    config.request_timeout = Duration::from_secs(2);
    let bridge = Arc::new(Bridge::connect(&config).expect("connect"));
    round_trip(&bridge, &config).await;
    snapshots(&bridge, &config).await;
    deposed_leader(&bridge, &config).await;
    standbys_keep_their_place(&bridge, &config).await;
    unreachable_cluster();
}

/// Leads `deployment` on a lease of `ttl`.
async fn lead(
    bridge: &Bridge,
    config: &EtcdConfig,
    deployment: &str,
    ttl: Duration,
    me: &str,
) -> ramp_live::stores::Leadership {
    let keys = Keys::new(&config.prefix, deployment);
    let candidate = Candidate::new(bridge, &keys, ttl, me.into())
        .await
        .expect("lease");
    tokio::time::timeout(Duration::from_secs(20), candidate.campaign(bridge))
        .await
        .expect("elected within 20 s")
        .expect("campaign")
}

async fn round_trip(bridge: &Arc<Bridge>, config: &EtcdConfig) {
    let leader = lead(bridge, config, "round-trip", Duration::from_secs(10), "a").await;
    let mut j = EtcdJournal::new(
        Arc::clone(bridge),
        config,
        "round-trip",
        Some(leader.fence.clone()),
    );
    assert!(j.active_run("round-trip").unwrap().is_none());
    let run = j
        .begin_run("round-trip", "plan.toml", "[plan]", 1_000)
        .unwrap();
    assert_eq!(run.run_id, 1);
    assert_eq!(run.token.len(), 32);
    // A second run while one is active is refused.
    assert!(matches!(
        j.begin_run("round-trip", "plan.toml", "[plan]", 2_000),
        Err(StoreError::Active { run: 1, .. })
    ));
    // More inputs than one page of a range read, so that pagination is exercised.
    for i in 1..=450u64 {
        let cursor = (i % 2 == 0).then(|| format!("{{\"c\":{i}}}"));
        let seq = j
            .append_input(
                run.run_id,
                i * 10,
                "tick",
                &format!("{{\"i\":{i}}}"),
                cursor.as_deref(),
            )
            .unwrap();
        assert_eq!(seq, i);
    }
    j.append_event(run.run_id, 5, 1_005, "stage_started", "{}")
        .unwrap();
    j.append_event(run.run_id, 6, 1_006, "checkpoint", "{}")
        .unwrap();
    j.set_control(run.run_id, "127.0.0.1:9", 42).unwrap();

    // A second handle (a controller that takes over, or `ramp status`) reads the same.
    let reader = EtcdJournal::new(Arc::clone(bridge), config, "round-trip", None);
    let inputs = reader.inputs(run.run_id).unwrap();
    assert_eq!(inputs.len(), 450);
    assert!(inputs.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1
        && r.plan_ms == (i as u64 + 1) * 10
        && r.body == format!("{{\"i\":{}}}", i + 1)));
    assert_eq!(
        reader.cursor(run.run_id).unwrap().as_deref(),
        Some("{\"c\":450}")
    );
    let events = reader.events(run.run_id, 1).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, events[0].kind.as_str()), (2, "checkpoint"));
    let active = reader.active_run("round-trip").unwrap().expect("active");
    assert_eq!(active.control_addr.as_deref(), Some("127.0.0.1:9"));
    assert_eq!(active.controller_pid, Some(42));
    assert_eq!(
        reader.run_by_token(&run.token).unwrap().map(|r| r.run_id),
        Some(1)
    );
    // A reader may not write.
    let mut reader = reader;
    assert!(reader
        .append_event(run.run_id, 7, 1_007, "x", "{}")
        .is_err());

    // A summary larger than one chunk comes back whole.
    let summary = format!("{{\"pad\":\"{}\"}}", "x".repeat(1_200_000));
    j.finish_run(run.run_id, "promoted", 9_000, &summary)
        .unwrap();
    let done = j.run(run.run_id).unwrap().expect("run");
    assert_eq!(done.status, RunStatus::Finished);
    assert_eq!(done.outcome.as_deref(), Some("promoted"));
    assert_eq!(done.summary_json.as_deref(), Some(summary.as_str()));
    assert!(j.active_run("round-trip").unwrap().is_none());
    // A finished run takes no more records.
    assert!(matches!(
        j.append_input(run.run_id, 99_999, "tick", "{}", None),
        Err(StoreError::Finished { run: 1, .. })
    ));
    // The next run gets the next id.
    let next = j
        .begin_run("round-trip", "plan.toml", "[plan]", 10_000)
        .unwrap();
    assert_eq!(next.run_id, 2);
    assert_eq!(j.runs().unwrap().len(), 2);
    leader.resign(bridge).await;
}

async fn deposed_leader(bridge: &Arc<Bridge>, config: &EtcdConfig) {
    let old = lead(bridge, config, "deposed", Duration::from_secs(3), "old").await;
    let mut old_j = EtcdJournal::new(
        Arc::clone(bridge),
        config,
        "deposed",
        Some(old.fence.clone()),
    );
    let run = old_j
        .begin_run("deposed", "plan.toml", "[plan]", 1_000)
        .unwrap();
    old_j
        .append_input(run.run_id, 10, "start", "{}", None)
        .unwrap();
    let mut lost = old.lost.clone();

    // Its lease ends (revoked here: what etcd does when a paused leader stops renewing it),
    // and a new candidate leads.
    let fence = old.fence.clone();
    old.resign(bridge).await;
    let new = lead(bridge, config, "deposed", Duration::from_secs(10), "new").await;
    assert!(
        new.fence.token() > fence.token(),
        "tokens grow with leaders"
    );

    // The old leader's keep-alive says the lease is gone, within its TTL.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), async {
        while lost.borrow().is_none() {
            lost.changed().await.expect("the keep-alive reports");
        }
    })
    .await
    .expect("the loss is noticed within 5 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    let why = lost.borrow().clone().unwrap_or_default();
    assert!(why.contains("expired"), "{why}");

    // Every write of the old leader is refused by etcd itself.
    let refused = old_j
        .append_input(run.run_id, 20, "tick", "{}", None)
        .unwrap_err();
    assert!(matches!(refused, StoreError::Fenced { .. }), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("lost leadership of deployment deposed"),
        "{refused}"
    );
    assert!(matches!(
        old_j.append_event(run.run_id, 20, 1_020, "x", "{}"),
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        old_j.finish_run(run.run_id, "promoted", 2_000, "{}"),
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        old_j.append_snapshot(run.run_id, 1, 10, b"{}"),
        Err(StoreError::Fenced { .. })
    ));

    // The new leader resumes the same run where it stands.
    let mut new_j = EtcdJournal::new(
        Arc::clone(bridge),
        config,
        "deposed",
        Some(new.fence.clone()),
    );
    let active = new_j
        .active_run("deposed")
        .unwrap()
        .expect("the run is still active");
    assert_eq!(active.run_id, run.run_id);
    assert_eq!(new_j.inputs(run.run_id).unwrap().len(), 1);
    assert_eq!(
        new_j
            .append_input(run.run_id, 20, "tick", "{}", None)
            .unwrap(),
        2
    );
    new.resign(bridge).await;
}

/// Two standbys wait behind a leader far longer than a request may take: each keeps its
/// election key (its place in line) the whole time, and they lead in the order they came.
async fn standbys_keep_their_place(bridge: &Arc<Bridge>, config: &EtcdConfig) {
    let ttl = Duration::from_secs(10);
    let keys = Keys::new(&config.prefix, "order");
    let a = lead(bridge, config, "order", ttl, "a").await;
    let mut waiting = Vec::new();
    for me in ["b", "c"] {
        let candidate = Candidate::new(bridge, &keys, ttl, me.into())
            .await
            .expect("lease");
        let on = Arc::clone(bridge);
        waiting.push(tokio::spawn(async move { candidate.campaign(&on).await }));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Three request timeouts: every candidate's key stays, oldest first.
    let started = Instant::now();
    while started.elapsed() < config.request_timeout * 3 {
        let who: Vec<String> = ramp_live::stores::controllers(bridge, &keys)
            .expect("the election's keys")
            .into_iter()
            .map(|c| c.who)
            .collect();
        assert_eq!(who, ["a", "b", "c"], "after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.resign(bridge).await;
    let c = waiting.pop().expect("c");
    let b = tokio::time::timeout(Duration::from_secs(10), waiting.pop().expect("b"))
        .await
        .expect("b leads within 10 s of the leader's resignation")
        .expect("the campaign's task")
        .expect("b's campaign");
    assert!(!c.is_finished(), "c must not lead while b does");
    b.resign(bridge).await;
    let c = tokio::time::timeout(Duration::from_secs(10), c)
        .await
        .expect("c leads after b")
        .expect("the campaign's task")
        .expect("c's campaign");
    c.resign(bridge).await;
}

/// How many keys are under `prefix`.
fn keys_under(bridge: &Bridge, prefix: &str) -> i64 {
    let p = prefix.to_string();
    bridge
        .call(move |mut c| {
            let p = p.clone();
            async move {
                let options = GetOptions::new().with_prefix().with_count_only();
                c.get(p, Some(options)).await
            }
        })
        .expect("count the keys")
        .count()
}

/// Engine snapshots: the latest replaces the older (whose chunks go), one larger than an
/// etcd value comes back whole, a damaged one is an error, the inputs after a snapshot are
/// read alone, and a finished run takes none.
async fn snapshots(bridge: &Arc<Bridge>, config: &EtcdConfig) {
    let leader = lead(bridge, config, "snapshots", Duration::from_secs(10), "a").await;
    let mut j = EtcdJournal::new(
        Arc::clone(bridge),
        config,
        "snapshots",
        Some(leader.fence.clone()),
    );
    let run = j
        .begin_run("snapshots", "plan.toml", "[plan]", 1_000)
        .unwrap();
    for i in 1..=5u64 {
        j.append_input(run.run_id, i * 10, "tick", "{}", None)
            .unwrap();
    }
    assert_eq!(j.latest_snapshot(run.run_id).unwrap(), None);
    j.append_snapshot(run.run_id, 2, 20, b"small").unwrap();
    // Three chunks' worth, of every byte value.
    let big: Vec<u8> = (0..1_300_000u32).map(|i| (i % 251) as u8).collect();
    j.append_snapshot(run.run_id, 4, 40, &big).unwrap();
    let reader = EtcdJournal::new(Arc::clone(bridge), config, "snapshots", None);
    let latest = reader
        .latest_snapshot(run.run_id)
        .unwrap()
        .expect("a snapshot");
    assert_eq!((latest.after_seq, latest.plan_ms), (4, 40));
    assert!(latest.bytes == big, "the chunks come back whole");
    // Only the latest generation's chunks are kept.
    let dir = format!(
        "{}snapshots/{:012}/",
        Keys::new(&config.prefix, "snapshots").journal(),
        run.run_id
    );
    assert_eq!(keys_under(bridge, &dir), 3);
    let after: Vec<u64> = reader
        .inputs_after(run.run_id, 3)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(after, vec![4, 5]);
    // A reader may not write one.
    let mut reader = reader;
    assert!(reader.append_snapshot(run.run_id, 5, 50, b"x").is_err());
    // A damaged chunk makes the snapshot an error, never other bytes.
    let chunk = format!("{dir}{:012}/000001", 4);
    bridge
        .call(move |mut c| {
            let chunk = chunk.clone();
            async move { c.put(chunk, b"damaged".to_vec(), None).await }
        })
        .expect("damage a chunk");
    assert!(reader.latest_snapshot(run.run_id).is_err());
    j.finish_run(run.run_id, "promoted", 9_000, "{}").unwrap();
    assert!(matches!(
        j.append_snapshot(run.run_id, 5, 50, b"late"),
        Err(StoreError::Finished { .. })
    ));
    leader.resign(bridge).await;
}

/// An unreachable cluster fails within the dial timeout, naming its endpoints.
fn unreachable_cluster() {
    let mut config = EtcdConfig::new(vec!["http://127.0.0.1:9".into()]);
    config.dial_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = Bridge::connect(&config).map(|_| ()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}
