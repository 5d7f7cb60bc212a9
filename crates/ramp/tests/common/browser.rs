//! Headless Chromium for the tests that look at a page as a person would (the HTML report,
//! the live dashboard): Debian's `chromium`, which scripts/bootstrap.sh installs. Without it
//! a test says loudly that it was skipped, except under CI (the `CI` variable set), where it
//! fails: CI must not pass by skipping them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Chromium, or `None` (after failing under CI, or saying why the test is skipped).
pub fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_some() {
        return found;
    }
    let message = "no chromium in /usr/bin: run scripts/bootstrap.sh (apt-get install chromium)";
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI is set, so the HTML report's browser test may not be skipped: {message}");
    }
    eprintln!("SKIPPED (a browser test): {message}");
    None
}

/// The page Chromium built from `url`: its DOM serialized after parsing (and after `extra`
/// flags such as a virtual time budget for a page's scripts), bounded at 120 s.
pub fn dump_dom(chromium: &Path, url: &str, profile: &Path, extra: &[&str]) -> String {
    // The DOM goes to a file, not a pipe: a page larger than the pipe's buffer would block
    // Chromium until someone read it.
    let dom_path = profile.with_extension("dom.html");
    let dom_file = std::fs::File::create(&dom_path).expect("create the DOM file");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
        ])
        .args(extra)
        .arg(url)
        .stdout(Stdio::from(dom_file))
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // Polled every 100 ms, at most 1,200 times: about two minutes.
    let mut polls = 0;
    loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            assert!(status.success(), "chromium failed on {url}: {status}");
            break;
        }
        polls += 1;
        if polls > 1200 {
            let _ = child.kill();
            panic!("chromium did not finish loading {url} within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&dom_path).expect("read the DOM Chromium wrote")
}
