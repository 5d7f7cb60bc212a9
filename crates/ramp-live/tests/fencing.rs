//! Fencing from the controller's side, against real proxies on loopback: a router whose run
//! holds a token sends it with every weight; a proxy that has seen a newer token refuses with
//! a typed error (`SourceError::Superseded`), through a fleet too; and a run whose router
//! refuses it stops acting at once instead of retrying.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests time the live driver against the real clock"
)]

use ramp_core::{parse_plan, Weight};
use ramp_demo::{Behaviour, Stack};
use ramp_live::routers::Fleet;
use ramp_live::seams::{FenceToken, Router};
use ramp_live::source::SourceError;
use ramp_live::{LiveError, ProxyAdmin, RunConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Two upstreams with a proxy in front, named `deployment`.
async fn stack(deployment: &str) -> Stack {
    let deployment = deployment.to_string();
    Stack::start(
        Behaviour::new("stable", 1.0, 2.0, 3.0, 0.0).unwrap(),
        Behaviour::new("canary", 1.0, 2.0, 3.0, 0.0).unwrap(),
        |config| config.deployment_id = deployment,
    )
    .await
    .unwrap()
}

/// A client of the stack's proxy sending `fence` once it is set.
fn admin(stack: &Stack, fence: &FenceToken) -> ProxyAdmin {
    ProxyAdmin::new(&format!("http://{}", stack.admin_addr), None)
        .unwrap()
        .with_fence(fence.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_saw_a_newer_leader_refuses_an_older_one() {
    let s = stack("fence-one").await;
    let old = FenceToken::none();
    old.set(5);
    let new = FenceToken::none();
    new.set(7);
    let (old_admin, new_admin) = (admin(&s, &old), admin(&s, &new));

    old_admin
        .set_weight(Weight::from_percent(5.0).unwrap(), Some("r-old:1"))
        .await
        .expect("token 5 is the newest so far");
    new_admin
        .set_weight(Weight::from_percent(20.0).unwrap(), Some("r-new:1"))
        .await
        .expect("token 7 is newer");
    let refused = old_admin
        .set_weight(Weight::from_percent(50.0).unwrap(), Some("r-old:2"))
        .await
        .unwrap_err();
    assert!(refused.is_superseded(), "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("fence 5") && text.contains("fence 7"),
        "{text}"
    );
    assert_eq!(old_admin.read().await.unwrap().canary_bp, 2000, "unchanged");

    // Without any token a client behaves as before fencing: a person's change goes through.
    let person = admin(&s, &FenceToken::none());
    person
        .set_weight(Weight::from_percent(0.0).unwrap(), None)
        .await
        .expect("no token, no refusal");
    assert_eq!(person.read().await.unwrap().canary_bp, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_member_that_saw_a_newer_leader_refuses_the_whole_fleet() {
    let (a, b) = (stack("fence-fleet").await, stack("fence-fleet").await);
    let newer = FenceToken::none();
    newer.set(9);
    admin(&b, &newer)
        .set_weight(Weight::from_percent(30.0).unwrap(), Some("r-new:1"))
        .await
        .unwrap();
    let token = FenceToken::none();
    token.set(4);
    let fleet = Fleet::new(vec![admin(&a, &token), admin(&b, &token)]);
    let refused = Router::set_weight(&fleet, Weight::from_percent(10.0).unwrap(), "r-old:1")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SourceError::Superseded { .. }),
        "a fencing refusal is not a member's failure: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_router_refuses_it_stops_acting_without_retrying() {
    let s = stack("fence-run").await;
    let newer = FenceToken::none();
    newer.set(11);
    admin(&s, &newer)
        .set_weight(Weight::from_percent(40.0).unwrap(), Some("r-new:1"))
        .await
        .unwrap();
    let token = FenceToken::none();
    token.set(3);
    let dir = tempfile::tempdir().unwrap();
    let plan = r#"
[deployment]
id = "fence-run"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
error_rate = { max = "50%" }

[[stages]]
weight = 100
duration = "30s"
"#;
    let config = RunConfig {
        plan: Arc::new(parse_plan(plan, "test.toml").unwrap()),
        plan_path: "test.toml".into(),
        plan_text: plan.into(),
        base_dir: ".".into(),
        journal: dir.path().join("journal.db"),
        router: admin(&s, &token).into(),
        control_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        control_token: None,
        metrics_token: None,
        rehearsal: None,
        ofrep_listener: None,
        ofrep_token: None,
        halt_on_interrupt: None,
        new_run: true,
        fence: token.clone(),
    };
    let started = Instant::now();
    let mut on = |_: ramp_live::Progress<'_>| {};
    let end = tokio::time::timeout(
        Duration::from_secs(20),
        ramp_live::run(config, &mut on, std::future::pending()),
    )
    .await
    .expect("the run ends by itself");
    match end {
        Err(LiveError::Superseded { reason }) => {
            assert!(reason.contains("fence 3"), "{reason}")
        }
        other => panic!("expected a superseded run, got {other:?}"),
    }
    // One attempt, no five-fold retry with pauses.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(admin(&s, &newer).read().await.unwrap().canary_bp, 4000);
}
