//! The journal and the deployment lock through their public API, as the controller uses them.

use std::path::{Path, PathBuf};

use ramp_store::{DeploymentLock, Journal, RunStatus, StoreError, SCHEMA_VERSION};

/// A temporary directory and the path of a journal inside it (not yet created).
fn journal_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("journal.db");
    (dir, path)
}

/// Opens the journal, failing the test with the error's message if it cannot.
fn open(path: &Path) -> Journal {
    Journal::open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()))
}

#[test]
fn inputs_events_and_cursor_round_trip() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    let run = journal
        .begin_run(
            "web",
            "plans/web.toml",
            "[rollout]\nname = \"web\"\n",
            1_700_000_000_000,
        )
        .expect("begin");
    assert_eq!(journal.cursor(run).expect("cursor"), None);

    let inputs = [
        (0, "start", r#"{"seed":1}"#, Some(r#"{"snap":0}"#)),
        (5_000, "tick", r#"{"requests":10}"#, Some(r#"{"snap":1}"#)),
        (5_000, "pause", r#"{"who":"ana","why":"looking"}"#, None),
        (
            10_000,
            "tick",
            r#"{"requests":"ünïcode ✓"}"#,
            Some(r#"{"snap":2}"#),
        ),
    ];
    for (i, (plan_ms, kind, body, cursor)) in inputs.iter().enumerate() {
        let seq = journal
            .append_input(run, *plan_ms, kind, body, *cursor)
            .expect("append input");
        assert_eq!(seq, i as u64 + 1, "input sequence numbers count from 1");
    }
    let read = journal.inputs(run).expect("inputs");
    assert_eq!(read.len(), inputs.len());
    for (i, (record, (plan_ms, kind, body, _))) in read.iter().zip(&inputs).enumerate() {
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(record.plan_ms, *plan_ms);
        assert_eq!(record.kind, *kind);
        assert_eq!(record.body, *body);
    }
    // The pause carried no cursor, so the last one given wins.
    assert_eq!(
        journal.cursor(run).expect("cursor").as_deref(),
        Some(r#"{"snap":2}"#)
    );

    let events = [
        (0, 1_700_000_000_010, "stage_started", r#"{"stage":1}"#),
        (
            5_000,
            1_700_000_005_010,
            "operator",
            r#"{"who":"ana","why":"looking"}"#,
        ),
        (
            10_000,
            1_700_000_010_010,
            "decision",
            r#"{"decision":"proceed"}"#,
        ),
    ];
    for (i, (plan_ms, unix_ms, kind, body)) in events.iter().enumerate() {
        let seq = journal
            .append_event(run, *plan_ms, *unix_ms, kind, body)
            .expect("append event");
        assert_eq!(seq, i as u64 + 1, "event sequence numbers count from 1");
    }
    let read = journal.events(run, 0).expect("events");
    assert_eq!(read.len(), events.len());
    for (i, (record, (plan_ms, unix_ms, kind, body))) in read.iter().zip(&events).enumerate() {
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(record.plan_ms, *plan_ms);
        assert_eq!(record.unix_ms, *unix_ms);
        assert_eq!(record.kind, *kind);
        assert_eq!(record.body, *body);
    }

    // A follower reads only what is new.
    let new = journal.events(run, 2).expect("events after 2");
    assert_eq!(new.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    assert!(journal.events(run, 3).expect("events after 3").is_empty());
    assert!(journal
        .events(run, u64::MAX)
        .expect("events after max")
        .is_empty());
}

#[test]
fn sequence_numbers_are_per_run_and_per_table() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    let a = journal.begin_run("a", "a.toml", "", 1).expect("begin a");
    let b = journal.begin_run("b", "b.toml", "", 2).expect("begin b");
    assert_ne!(a, b);
    assert_eq!(
        journal.append_input(a, 0, "start", "{}", None).expect("a1"),
        1
    );
    assert_eq!(
        journal.append_input(b, 0, "start", "{}", None).expect("b1"),
        1
    );
    assert_eq!(
        journal.append_input(a, 1, "tick", "{}", None).expect("a2"),
        2
    );
    // Events count separately from inputs.
    assert_eq!(
        journal
            .append_event(a, 1, 10, "decision", "{}")
            .expect("e1"),
        1
    );
    assert_eq!(
        journal.append_input(a, 2, "tick", "{}", None).expect("a3"),
        3
    );
    assert_eq!(
        journal
            .append_event(a, 2, 20, "decision", "{}")
            .expect("e2"),
        2
    );
    assert_eq!(journal.inputs(b).expect("b inputs").len(), 1);
    // Cursors are per run too.
    journal
        .append_input(b, 1, "tick", "{}", Some("b-cursor"))
        .expect("b2");
    assert_eq!(journal.cursor(a).expect("a cursor"), None);
    assert_eq!(
        journal.cursor(b).expect("b cursor").as_deref(),
        Some("b-cursor")
    );
}

#[test]
fn begin_run_refuses_a_second_running_run_of_a_deployment() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    let first = journal.begin_run("web", "web.toml", "", 1).expect("begin");
    match journal.begin_run("web", "web.toml", "", 2) {
        Err(StoreError::Active {
            deployment,
            run,
            path: error_path,
        }) => {
            assert_eq!(deployment, "web");
            assert_eq!(run, first);
            assert_eq!(error_path, path);
        }
        other => panic!("expected Active, got {other:?}"),
    }
    // Another deployment is not affected.
    journal
        .begin_run("api", "api.toml", "", 3)
        .expect("another deployment");
    // Once the first run is finished, the deployment can run again.
    journal
        .finish_run(first, "promoted", 4, "{}")
        .expect("finish");
    let second = journal
        .begin_run("web", "web.toml", "", 5)
        .expect("begin again");
    assert!(second > first);
    assert_eq!(journal.runs(Some("web")).expect("runs").len(), 2);
}

#[test]
fn a_crashed_run_is_found_again_after_reopening() {
    let (_dir, path) = journal_path();
    let run = {
        let mut journal = open(&path);
        let run = journal
            .begin_run("web", "plans/web.toml", "plan text", 1_000)
            .expect("begin");
        journal
            .set_control(run, "127.0.0.1:7070", 4242)
            .expect("control");
        journal
            .append_input(run, 0, "start", "{}", Some("cursor-1"))
            .expect("input 1");
        journal
            .append_input(run, 5_000, "tick", "{\"n\":1}", Some("cursor-2"))
            .expect("input 2");
        journal
            .append_event(run, 5_000, 1_005, "checkpoint", "{}")
            .expect("event");
        // The controller dies here: the journal is dropped without finish_run.
        run
    };

    let mut journal = open(&path);
    let active = journal
        .active_run("web")
        .expect("active run")
        .expect("the run is still running");
    assert_eq!(active.run_id, run);
    assert_eq!(active.status, RunStatus::Running);
    assert_eq!(active.plan_path, "plans/web.toml");
    assert_eq!(active.plan_toml, "plan text");
    assert_eq!(active.started_unix_ms, 1_000);
    assert_eq!(active.control_addr.as_deref(), Some("127.0.0.1:7070"));
    assert_eq!(active.controller_pid, Some(4242));
    assert_eq!(active.outcome, None);
    let inputs = journal.inputs(run).expect("inputs");
    assert_eq!(inputs.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(
        journal.cursor(run).expect("cursor").as_deref(),
        Some("cursor-2")
    );
    assert_eq!(journal.events(run, 0).expect("events").len(), 1);
    assert!(journal
        .active_run("api")
        .expect("other deployment")
        .is_none());

    // The resumed controller records its new address and carries on numbering.
    journal
        .set_control(run, "127.0.0.1:7171", 5151)
        .expect("new control");
    assert_eq!(
        journal
            .append_input(run, 10_000, "tick", "{}", None)
            .expect("input 3"),
        3
    );
    let record = journal.run(run).expect("run").expect("exists");
    assert_eq!(record.control_addr.as_deref(), Some("127.0.0.1:7171"));
    assert_eq!(record.controller_pid, Some(5151));
}

#[test]
fn a_failed_append_leaves_neither_input_nor_cursor() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    let run = journal.begin_run("web", "web.toml", "", 1).expect("begin");
    journal
        .append_input(run, 0, "start", "{}", Some("cursor-1"))
        .expect("input");

    // A plan time SQLite cannot store is refused before anything is written.
    match journal.append_input(run, u64::MAX, "tick", "{}", Some("cursor-2")) {
        Err(StoreError::OutOfRange { value, .. }) => assert_eq!(value, u64::MAX),
        other => panic!("expected OutOfRange, got {other:?}"),
    }
    assert_eq!(journal.inputs(run).expect("inputs").len(), 1);
    assert_eq!(
        journal.cursor(run).expect("cursor").as_deref(),
        Some("cursor-1")
    );

    // Appending to a finished run is refused, and its cursor stays as it was.
    journal
        .finish_run(run, "promoted", 2, "{}")
        .expect("finish");
    match journal.append_input(run, 1_000, "tick", "{}", Some("cursor-3")) {
        Err(StoreError::Finished { run: finished, .. }) => assert_eq!(finished, run),
        other => panic!("expected Finished, got {other:?}"),
    }
    assert_eq!(journal.inputs(run).expect("inputs").len(), 1);
    assert_eq!(
        journal.cursor(run).expect("cursor").as_deref(),
        Some("cursor-1")
    );
    // Reopening shows the same: nothing half-written reached the disk.
    drop(journal);
    let journal = open(&path);
    assert_eq!(journal.inputs(run).expect("inputs").len(), 1);
    assert_eq!(
        journal.cursor(run).expect("cursor").as_deref(),
        Some("cursor-1")
    );
}

#[test]
fn unknown_and_finished_runs_are_refused() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    let missing = 99;
    assert!(matches!(
        journal.append_input(missing, 0, "start", "{}", None),
        Err(StoreError::NoSuchRun { run: 99, .. })
    ));
    assert!(matches!(
        journal.append_event(missing, 0, 0, "decision", "{}"),
        Err(StoreError::NoSuchRun { run: 99, .. })
    ));
    assert!(matches!(
        journal.inputs(missing),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert!(matches!(
        journal.events(missing, 0),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert!(matches!(
        journal.cursor(missing),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert!(matches!(
        journal.set_control(missing, "x", 1),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert!(matches!(
        journal.finish_run(missing, "promoted", 0, "{}"),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert_eq!(journal.run(missing).expect("run"), None);

    let run = journal.begin_run("web", "web.toml", "", 1).expect("begin");
    journal.finish_run(run, "halted", 2, "{}").expect("finish");
    assert!(matches!(
        journal.append_event(run, 0, 0, "decision", "{}"),
        Err(StoreError::Finished { .. })
    ));
    assert!(matches!(
        journal.set_control(run, "x", 1),
        Err(StoreError::Finished { .. })
    ));
    assert!(matches!(
        journal.finish_run(run, "promoted", 3, "{}"),
        Err(StoreError::Finished { .. })
    ));
    // The refused second finish did not overwrite the outcome.
    let record = journal.run(run).expect("run").expect("exists");
    assert_eq!(record.outcome.as_deref(), Some("halted"));
    // A finished run's history is still readable.
    assert!(journal.inputs(run).expect("inputs").is_empty());
    // Errors name the journal.
    let message = journal.cursor(missing).expect_err("missing").to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn finish_run_records_the_outcome_and_ends_the_run() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    let run = journal
        .begin_run("web", "web.toml", "plan", 1_000)
        .expect("begin");
    journal
        .set_control(run, "127.0.0.1:7070", 77)
        .expect("control");
    journal
        .finish_run(run, "rolled_back", 9_000, r#"{"outcome":"rolled_back"}"#)
        .expect("finish");
    assert!(journal.active_run("web").expect("active").is_none());
    let record = journal.run(run).expect("run").expect("exists");
    assert_eq!(record.status, RunStatus::Finished);
    assert_eq!(record.status.as_str(), "finished");
    assert_eq!(record.outcome.as_deref(), Some("rolled_back"));
    assert_eq!(record.finished_unix_ms, Some(9_000));
    assert_eq!(
        record.summary_json.as_deref(),
        Some(r#"{"outcome":"rolled_back"}"#)
    );
    // Where the controller was stays on record.
    assert_eq!(record.control_addr.as_deref(), Some("127.0.0.1:7070"));
    assert_eq!(record.controller_pid, Some(77));
}

#[test]
fn runs_are_listed_newest_first_and_filtered_by_deployment() {
    let (_dir, path) = journal_path();
    let mut journal = open(&path);
    // Wall-clock starts deliberately out of order: the order is the order of creation.
    let web1 = journal
        .begin_run("web", "web.toml", "", 3_000)
        .expect("web1");
    journal
        .finish_run(web1, "promoted", 3_500, "{}")
        .expect("finish web1");
    let api1 = journal
        .begin_run("api", "api.toml", "", 1_000)
        .expect("api1");
    let web2 = journal
        .begin_run("web", "web.toml", "", 2_000)
        .expect("web2");

    let all = journal.runs(None).expect("all runs");
    assert_eq!(
        all.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        vec![web2, api1, web1]
    );
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![RunStatus::Running, RunStatus::Running, RunStatus::Finished]
    );
    let web = journal.runs(Some("web")).expect("web runs");
    assert_eq!(
        web.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        vec![web2, web1]
    );
    assert!(web.iter().all(|r| r.deployment_id == "web"));
    let api = journal.runs(Some("api")).expect("api runs");
    assert_eq!(api.iter().map(|r| r.run_id).collect::<Vec<_>>(), vec![api1]);
    assert!(journal.runs(Some("nope")).expect("no runs").is_empty());
    assert_eq!(journal.run(api1).expect("run"), Some(api[0].clone()));
}

#[test]
fn a_journal_from_a_newer_ramp_is_refused() {
    let (_dir, path) = journal_path();
    drop(open(&path));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 98)
            .expect("bump the version");
    }
    match Journal::open(&path) {
        Err(StoreError::NewerSchema {
            path: error_path,
            found,
            supported,
        }) => {
            assert_eq!(error_path, path);
            assert_eq!(found, SCHEMA_VERSION + 98);
            assert_eq!(supported, SCHEMA_VERSION);
            let message = Journal::open(&path).expect_err("still newer").to_string();
            assert!(message.contains("newer"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn reopening_a_current_journal_keeps_its_data() {
    let (_dir, path) = journal_path();
    let run = {
        let mut journal = open(&path);
        let run = journal.begin_run("web", "web.toml", "", 1).expect("begin");
        journal
            .finish_run(run, "promoted", 2, "{\"ok\":true}")
            .expect("finish");
        run
    };
    let journal = open(&path);
    let record = journal.run(run).expect("run").expect("exists");
    assert_eq!(record.summary_json.as_deref(), Some("{\"ok\":true}"));
    let version: i64 = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |row| row.get(0)))
        .expect("read the version");
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn other_files_are_not_taken_for_journals() {
    let (dir, path) = journal_path();
    // Another application's database.
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
            .expect("create table");
    }
    assert!(
        matches!(Journal::open(&path), Err(StoreError::NotAJournal { .. })),
        "a foreign database must be refused"
    );
    // Its tables are untouched: no `runs` table was added.
    let tables: i64 = rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'",
                [],
                |row| row.get(0),
            )
        })
        .expect("count tables");
    assert_eq!(tables, 0);

    // A file that is not a database at all.
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text long enough to matter\n".repeat(20),
    )
    .expect("write text");
    match Journal::open(&text) {
        Err(StoreError::Open {
            path: error_path, ..
        }) => assert_eq!(error_path, text),
        other => panic!("expected Open, got {other:?}"),
    }

    // A directory that does not exist.
    let missing = dir.path().join("no/such/dir/journal.db");
    assert!(matches!(
        Journal::open(&missing),
        Err(StoreError::Open { .. })
    ));
}

#[test]
fn two_connections_see_each_others_commits() {
    let (_dir, path) = journal_path();
    let mut controller = open(&path);
    let follower = open(&path);
    let run = controller
        .begin_run("web", "web.toml", "", 1)
        .expect("begin");
    controller
        .append_event(run, 0, 1, "decision", "{}")
        .expect("event 1");
    assert_eq!(follower.events(run, 0).expect("events").len(), 1);
    controller
        .append_event(run, 1, 2, "decision", "{}")
        .expect("event 2");
    let new = follower.events(run, 1).expect("new events");
    assert_eq!(new.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
    assert_eq!(
        follower
            .active_run("web")
            .expect("active")
            .map(|r| r.run_id),
        Some(run)
    );
}

#[test]
fn a_deployment_lock_excludes_a_second_holder_until_dropped() {
    let (_dir, path) = journal_path();
    let first = DeploymentLock::acquire(&path, "web").expect("first acquire");
    // Within one process too: the lock is per open file, not per process.
    match DeploymentLock::acquire(&path, "web") {
        Err(StoreError::Locked {
            deployment,
            pid,
            path: error_path,
            lock_path,
        }) => {
            assert_eq!(deployment, "web");
            assert_eq!(pid, Some(std::process::id()));
            assert_eq!(error_path, path);
            assert_eq!(lock_path, first.lock_path());
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = DeploymentLock::acquire(&path, "web")
        .expect_err("still locked")
        .to_string();
    assert!(
        message.starts_with(&format!(
            "deployment web is already being run by another controller (pid {}); stop it or \
             wait for it to finish",
            std::process::id()
        )),
        "{message}"
    );

    // Other deployments, and the same deployment of another journal, are independent.
    let other = DeploymentLock::acquire(&path, "api").expect("another deployment");
    assert_ne!(other.lock_path(), first.lock_path());
    let other_journal = path.with_file_name("other.db");
    let _elsewhere = DeploymentLock::acquire(&other_journal, "web").expect("another journal");
    // Ids that sanitise to the same characters still get their own locks.
    let _slash = DeploymentLock::acquire(&path, "team/web").expect("team/web");
    let _underscore = DeploymentLock::acquire(&path, "team_web").expect("team_web");

    drop(first);
    let again = DeploymentLock::acquire(&path, "web").expect("acquire after drop");
    assert_eq!(
        std::fs::read_to_string(again.lock_path())
            .expect("read")
            .trim(),
        std::process::id().to_string()
    );
}

/// The environment variable that makes this test binary a lock holder: its value is the
/// journal path, and the child holds the lock of deployment "web" until it is killed.
#[cfg(unix)]
const CHILD_ENV: &str = "RAMP_STORE_TEST_LOCK_HOLDER";

/// What the child prints once it holds the lock, so the parent knows when to look.
#[cfg(unix)]
const CHILD_READY: &str = "ramp-store-lock-held";

/// Kills the child when the test ends, even by a failed assertion, so that no holder outlives
/// the test.
#[cfg(unix)]
struct KillOnDrop(std::process::Child);

#[cfg(unix)]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[test]
fn a_lock_held_by_a_killed_process_can_be_taken() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    // In the child: take the lock, say so, and hold it until killed (with a bound, so that a
    // parent that dies without killing us does not leave us behind for long).
    if let Some(journal) = std::env::var_os(CHILD_ENV) {
        let _lock = DeploymentLock::acquire(Path::new(&journal), "web").expect("child acquire");
        println!("{CHILD_READY}");
        std::thread::sleep(Duration::from_secs(30));
        return;
    }

    let (_dir, path) = journal_path();
    let exe = std::env::current_exe().expect("test executable");
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([
                "--exact",
                "a_lock_held_by_a_killed_process_can_be_taken",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the lock holder"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(CHILD_READY));
    assert!(ready, "the child exited without taking the lock");

    match DeploymentLock::acquire(&path, "web") {
        Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, Some(child.0.id())),
        other => panic!("expected Locked by the child, got {other:?}"),
    }

    // SIGKILL: the child gets no chance to clean up; the OS releases its lock.
    child.0.kill().expect("kill the child");
    child.0.wait().expect("reap the child");
    let lock = DeploymentLock::acquire(&path, "web").expect("acquire after the holder died");
    assert_eq!(
        std::fs::read_to_string(lock.lock_path())
            .expect("read")
            .trim(),
        std::process::id().to_string(),
        "the dead holder's pid is replaced by ours"
    );
}

/// Issue 12: every run has a random token, unique across journals, found by
/// `run_by_token`; a journal that does not hold a run says so.
#[test]
fn every_run_has_a_token_that_finds_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut one = Journal::open(&dir.path().join("one.db")).expect("open one");
    let mut two = Journal::open(&dir.path().join("two.db")).expect("open two");
    let a = one.begin_run("web", "web.toml", "", 1).expect("begin a");
    let b = two.begin_run("web", "web.toml", "", 1).expect("begin b");
    let ta = one.run(a).expect("read").expect("run a").token;
    let tb = two.run(b).expect("read").expect("run b").token;
    assert_eq!(a, b, "both journals number their first run 1");
    assert_ne!(ta, tb, "but their tokens differ");
    for t in [&ta, &tb] {
        assert_eq!(t.len(), 32, "{t}");
        assert!(t.bytes().all(|c| c.is_ascii_hexdigit()), "{t}");
    }
    assert_eq!(
        one.run_by_token(&ta).expect("look up").map(|r| r.run_id),
        Some(a)
    );
    assert_eq!(one.run_by_token(&tb).expect("look up"), None);
}

/// Issue 12: a journal written before run tokens existed (schema 1) is migrated, and its runs
/// get tokens of their own.
#[test]
fn a_schema_one_journal_gets_legacy_tokens() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("old.db");
    let run = {
        let mut journal = Journal::open(&path).expect("open");
        journal
            .begin_run("web", "web.toml", "", 1_234)
            .expect("begin")
    };
    // Take the file back to schema 1 as an older Ramp wrote it (without version 3's
    // snapshots table, too).
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute_batch(
        "DROP TABLE snapshots; DROP INDEX runs_token; ALTER TABLE runs DROP COLUMN token; \
         PRAGMA user_version = 1;",
    )
    .expect("downgrade");
    drop(conn);
    let journal = Journal::open(&path).expect("reopen and migrate");
    let record = journal.run(run).expect("read").expect("the run survives");
    assert_eq!(record.token, format!("legacy-{run}-1234"));
    assert_eq!(
        journal
            .run_by_token(&record.token)
            .expect("look up")
            .map(|r| r.run_id),
        Some(run)
    );
}

/// Several processes open a new journal at once (a controller starting while `ramp status`
/// polls it): every open succeeds. Failed before the fix (found while testing issue 12)
/// with "could not switch to WAL mode: database is locked", because SQLite answers the
/// switch to WAL with SQLITE_BUSY without calling the busy handler while another connection
/// holds a lock.
#[test]
fn a_new_journal_opened_at_once_by_many_succeeds_for_all() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(format!("race-{round}.db"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                let barrier = std::sync::Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let journal = Journal::open(&path).map_err(|e| e.to_string())?;
                    journal.runs(None).map_err(|e| e.to_string()).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .expect("no panic")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}
