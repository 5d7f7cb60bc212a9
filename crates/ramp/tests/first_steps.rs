//! A newcomer's first steps with the real binary (issue 17): `ramp init` writes a plan that
//! validates and simulates as written, shell completions and manual pages come from the CLI
//! definition, the console shows a panel per change rather than per checkpoint, and a
//! duration written in English reads as one.

mod common;

use common::{arg, code, ramp, stderr, stdout, TempDir};

#[test]
fn init_writes_a_plan_that_validates_and_simulates_as_written() {
    let dir = TempDir::new("init");
    let out = ramp(&["init"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    // Every section is explained, and the optional ones are shown commented out.
    for part in [
        "[deployment]",
        "[gates]",
        "[[stages]]",
        "[simulation]",
        "# [[rehearsals]]",
        "# [[simulation.faults]]",
    ] {
        assert!(text.contains(part), "no {part} in the starter plan");
    }
    let plan = dir.path("plan.toml");
    std::fs::write(&plan, &text).unwrap();
    let out = ramp(&["validate", &arg(&plan)]);
    assert_eq!(code(&out), 0, "validate: {}", stderr(&out));
    assert!(stdout(&out).contains("4 stages"), "{}", stdout(&out));
    let out = ramp(&["simulate", &arg(&plan), "-q"]);
    assert_eq!(code(&out), 0, "simulate: {}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Outcome: promoted"),
        "{}",
        stdout(&out)
    );

    // Uncommenting the example fault shows a rollback, as its comment promises.
    let faulted = text
        .replace("# [[simulation.faults]]", "[[simulation.faults]]")
        .replace("# cohort = \"canary\"", "cohort = \"canary\"")
        .replace("# at = \"20m\"", "at = \"20m\"")
        .replace("# error_rate = \"3%\"", "error_rate = \"3%\"");
    let plan = dir.path("faulted.toml");
    std::fs::write(&plan, faulted).unwrap();
    let out = ramp(&["simulate", &arg(&plan), "-q"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn init_into_a_file_keeps_an_existing_one() {
    let dir = TempDir::new("init-file");
    let plan = dir.path("plan.toml");
    let out = ramp(&["init", &arg(&plan)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read_to_string(&plan)
        .unwrap()
        .contains("[deployment]"));

    std::fs::write(&plan, "mine").unwrap();
    let out = ramp(&["init", &arg(&plan)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&plan).unwrap(), "mine", "lost");

    let out = ramp(&["init", &arg(&plan), "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read_to_string(&plan)
        .unwrap()
        .contains("[deployment]"));
}

#[test]
fn completions_and_manual_pages_come_from_the_cli() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef ramp"),
        ("fish", "complete -c ramp"),
    ] {
        let out = ramp(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        // Subcommands and their flags are in it.
        assert!(
            text.contains("simulate") && text.contains("all-panels"),
            "{shell}"
        );
    }
    let out = ramp(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2, "an unknown shell is a usage error");

    let out = ramp(&["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH ramp 1"), "{page}");
    assert!(page.contains("simulate"), "{page}");

    let dir = TempDir::new("man");
    let out = ramp(&["man", "--dir", &arg(&dir.path("man1"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path("man1/ramp-simulate.1")).unwrap();
    assert!(page.contains("all\\-panels"), "{page}");
}

#[test]
fn all_panels_prints_one_panel_per_checkpoint() {
    let staging = format!(
        "{}/../../examples/phase8-staging.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = ramp(&["simulate", &staging, "--all-panels"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // 4 + 4 + 4 + 24 checkpoints, each with its panel.
    assert_eq!(stdout(&out).matches("SLO MONITORING").count(), 36);
    assert!(!stdout(&out).contains(" · gates "), "no checkpoint lines");
}

/// "120 minutes" was refused as "a number without a unit" (it failed so before issue 17).
#[test]
fn durations_read_in_english() {
    let dir = TempDir::new("durations");
    let plan = dir.path("plan.toml");
    let text = ramp(&["init"]).stdout;
    let text = String::from_utf8(text)
        .unwrap()
        .replace("duration = \"30m\"", "duration = \"120 minutes\"");
    std::fs::write(&plan, text).unwrap();
    let out = ramp(&["validate", &arg(&plan)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("160 min total"), "{}", stdout(&out));
}
