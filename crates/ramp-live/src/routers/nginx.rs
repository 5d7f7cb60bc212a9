//! nginx as a router: Ramp owns one include file holding an `upstream` block, writes it
//! atomically with the canary's weight, checks it with nginx's configuration test, reloads
//! nginx and confirms that a new worker generation started.
//!
//! Weights: the canary's basis points are the canary side's total nginx `weight=` and the
//! rest of 10,000 the stable side's, each side split evenly over its servers (the remainder
//! to the first ones), so the share is exact to the basis point. A server whose weight would
//! be 0 is written `down` (nginx has no weight 0): at 0 % every canary server is `down`, at
//! 100 % every stable one.
//!
//! The file's first line is a comment naming the deployment, the run that wrote it and the
//! weight (`# ramp: {"deployment":…,"run":…,"weight_bp":…}`): nginx cannot hold a run token,
//! but the file can, so a controller tells its own file from another deployment's or
//! another run's, as with a Ramp proxy.

use crate::checks::run_program;
use crate::clock;
use crate::seams::{Router, RouterIdentity};
use crate::source::{FaultRequest, SourceError};
use ramp_core::plan::NginxRouter;
use ramp_core::Weight;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The largest upstream file or pid file read back.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How often the reload's confirmation looks for the new workers.
const CONFIRM_POLL: Duration = Duration::from_millis(20);

/// How long a confirmed reload waits for the old workers to exit.
const OLD_WORKERS_GRACE: Duration = Duration::from_secs(1);

/// How many lines of nginx's output an error quotes.
const OUTPUT_LINES: usize = 3;

/// Why nginx could not be driven.
#[derive(Debug, Error)]
pub enum NginxError {
    /// The upstream file could not be read, written or replaced.
    #[error("nginx upstream file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// nginx's configuration test refused the new file: the old one was put back and nginx
    /// was not reloaded.
    #[error("nginx refused the new upstream file (the old one was put back, nothing was applied): {output}")]
    Test {
        /// What the test command said.
        output: String,
    },
    /// The reload command failed: the old file was put back.
    #[error("nginx reload failed (the old upstream file was put back): {output}")]
    Reload {
        /// What the reload command said.
        output: String,
    },
    /// nginx is not running: the pid file names no live master.
    #[error("nginx is not running: {message}")]
    NotRunning {
        /// Which pid file and what was found.
        message: String,
    },
    /// No new worker generation appeared within the timeout after the reload.
    #[error("nginx master {pid} started no new workers within {timeout:?} of the reload (the old upstream file was put back); its error log says why")]
    Unconfirmed {
        /// The master's pid.
        pid: u32,
        /// The wait.
        timeout: Duration,
    },
}

/// The first line of the file Ramp writes.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Mark {
    /// The deployment whose canary this upstream routes to.
    deployment: String,
    /// The run that wrote it (`token:seq`).
    run: String,
    /// The canary weight written, basis points.
    weight_bp: u32,
}

/// The prefix of the mark's comment line.
const MARK_PREFIX: &str = "# ramp: ";

/// nginx driven through the upstream file the plan names.
#[derive(Debug, Clone)]
pub struct Nginx {
    /// The plan's settings.
    plan: NginxRouter,
    /// The upstream file, resolved against the plan's directory.
    file: PathBuf,
    /// The pid file, resolved likewise.
    pid_file: Option<PathBuf>,
    /// The directory commands run in (the plan's).
    base_dir: PathBuf,
    /// The plan's deployment: a file Ramp never wrote is taken as this deployment's.
    deployment: String,
    /// The file's path as text, for messages.
    location: String,
}

impl Nginx {
    /// nginx as the plan configures it, paths relative to `base_dir`.
    pub fn new(plan: &NginxRouter, base_dir: &Path, deployment: &str) -> Nginx {
        let file = base_dir.join(&plan.upstream_file);
        Nginx {
            location: format!("nginx upstream {} in {}", plan.upstream, file.display()),
            pid_file: plan.pid_file.as_ref().map(|p| base_dir.join(p)),
            file,
            plan: plan.clone(),
            base_dir: base_dir.to_path_buf(),
            deployment: deployment.to_string(),
        }
    }

    /// The most the test, the reload and its confirmation may each take.
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.plan.timeout.0)
    }

    /// The mark of the file as it is, `None` when Ramp has not written it (or it is absent).
    fn mark(&self) -> Result<Option<Mark>, NginxError> {
        let Some(text) = read_bounded(&self.file).map_err(|e| self.file_error(e))? else {
            return Ok(None);
        };
        let Some(line) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix(MARK_PREFIX))
        else {
            return Ok(None);
        };
        serde_json::from_str(line)
            .map(Some)
            .map_err(|e| self.file_error(format!("its ramp line is unreadable: {e}")))
    }

    /// A file error of the upstream file.
    fn file_error(&self, message: impl ToString) -> NginxError {
        NginxError::File {
            path: self.file.display().to_string(),
            message: message.to_string(),
        }
    }

    /// The master's pid from the pid file, checked alive; `None` without a pid file.
    fn master(&self) -> Result<Option<u32>, NginxError> {
        let Some(pid_file) = &self.pid_file else {
            return Ok(None);
        };
        let not_running = |message: String| NginxError::NotRunning { message };
        let text = read_bounded(pid_file)
            .map_err(|e| not_running(format!("{}: {e}", pid_file.display())))?
            .ok_or_else(|| not_running(format!("{} does not exist", pid_file.display())))?;
        let pid: u32 = text.trim().parse().map_err(|_| {
            not_running(format!(
                "{} holds {:?}, not a pid",
                pid_file.display(),
                text.trim()
            ))
        })?;
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(not_running(format!(
                "{} names pid {pid}, which is not running",
                pid_file.display()
            )));
        }
        Ok(Some(pid))
    }

    /// Replaces the upstream file with `text` atomically: a temporary file in the same
    /// directory, written and synced, renamed over it, and the directory synced.
    fn replace(&self, text: &str) -> Result<(), NginxError> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.ramp-tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.file_error(e)
        })
    }

    /// Puts the file back as it was (`None`: it did not exist).
    fn restore(&self, old: Option<&str>) {
        let _ = match old {
            Some(text) => self.replace(text),
            None => std::fs::remove_file(&self.file).map_err(|e| self.file_error(e)),
        };
    }

    /// Runs an argv with the timeout; its output on failure.
    async fn command(&self, argv: &[String]) -> Result<(), String> {
        let ran = run_program(argv, &self.base_dir, None, self.timeout(), OUTPUT_LINES).await;
        if ran.ok {
            Ok(())
        } else {
            Err(format!("`{}`: {}", argv.join(" "), ran.detail))
        }
    }

    /// Waits until the master runs a worker that was not among `before` (the reload read
    /// the new configuration: a master whose reload fails keeps its old workers), then until
    /// the old workers are gone, for at most [`OLD_WORKERS_GRACE`] more: an old worker still
    /// accepts a connection or two until it handles its shutdown signal, and one holding
    /// long keep-alive connections serves only those until it exits.
    async fn confirm(&self, pid: u32, before: &BTreeSet<u32>) -> Result<(), NginxError> {
        let deadline = clock::now() + self.timeout();
        let mut new_since = None;
        loop {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(NginxError::NotRunning {
                    message: format!("master {pid} exited during the reload"),
                });
            }
            let now_children = children(pid);
            if new_since.is_none() && now_children.iter().any(|c| !before.contains(c)) {
                new_since = Some(clock::now());
            }
            if let Some(since) = new_since {
                let old_gone = !now_children.iter().any(|c| before.contains(c));
                if old_gone || clock::now() >= since + OLD_WORKERS_GRACE {
                    return Ok(());
                }
            }
            if clock::now() >= deadline {
                return Err(NginxError::Unconfirmed {
                    pid,
                    timeout: self.timeout(),
                });
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }

    /// Writes, tests, reloads and confirms `weight`; on any failure the old file is back.
    async fn apply(&self, weight: Weight, run: &str) -> Result<(), NginxError> {
        let master = self.master()?;
        let old = read_bounded(&self.file).map_err(|e| self.file_error(e))?;
        let mark = Mark {
            deployment: self.deployment.clone(),
            run: run.to_string(),
            weight_bp: u32::from(weight.basis_points()),
        };
        self.replace(&render(&self.plan, &mark))?;
        if let Err(output) = self.command(&self.plan.test).await {
            self.restore(old.as_deref());
            return Err(NginxError::Test { output });
        }
        let before = master.map(children).unwrap_or_default();
        if let Err(output) = self.command(&self.plan.reload).await {
            self.restore(old.as_deref());
            return Err(NginxError::Reload { output });
        }
        if let Some(pid) = master {
            if let Err(e) = self.confirm(pid, &before).await {
                self.restore(old.as_deref());
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The upstream file for `mark`: the mark line, then the block.
fn render(plan: &NginxRouter, mark: &Mark) -> String {
    let mut text = format!(
        "{MARK_PREFIX}{}\n# Written by Ramp for each weight change: edit the plan, not this file.\nupstream {} {{\n",
        serde_json::to_string(mark).unwrap_or_default(),
        plan.upstream
    );
    let canary = mark.weight_bp.min(10_000);
    for (servers, total) in [(&plan.stable, 10_000 - canary), (&plan.canary, canary)] {
        for (server, w) in servers.iter().zip(split(total, servers.len())) {
            if w == 0 {
                text.push_str(&format!("    server {server} down;\n"));
            } else {
                text.push_str(&format!("    server {server} weight={w};\n"));
            }
        }
    }
    text.push_str("}\n");
    text
}

/// `total` split over `n` servers as evenly as integers allow, the remainder to the first.
fn split(total: u32, n: usize) -> Vec<u32> {
    let n32 = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let (each, rest) = (total / n32, total % n32);
    (0..n32).map(|i| each + u32::from(i < rest)).collect()
}

/// Reads a file of at most [`MAX_FILE_BYTES`]; `None` when it does not exist.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = String::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(Some(text))
}

/// The pids whose parent is `pid`, from `/proc/*/stat` (field 4, after the command name's
/// closing parenthesis, which the name itself may contain).
fn children(pid: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.insert(child);
        }
    }
    out
}

impl Router for Nginx {
    fn location(&self) -> &str {
        &self.location
    }

    fn noun(&self) -> &'static str {
        "nginx"
    }

    /// The deployment and run of the file's mark; a file Ramp never wrote is this
    /// deployment's, set by no run. nginx must be running (when a pid file is named).
    async fn identity(&self) -> Result<RouterIdentity, SourceError> {
        self.master()?;
        Ok(match self.mark()? {
            Some(mark) => RouterIdentity {
                deployment: Some(mark.deployment),
                set_by: Some(mark.run),
                conflict: None,
            },
            None => RouterIdentity {
                deployment: Some(self.deployment.clone()),
                set_by: None,
                conflict: None,
            },
        })
    }

    /// The weight of the file Ramp last wrote and nginx took (a failed change puts the old
    /// file back, so the driver sees the old weight and sets it again).
    async fn weight(&self) -> Result<u32, SourceError> {
        self.master()?;
        match self.mark()? {
            Some(mark) => Ok(mark.weight_bp),
            None => Err(self
                .file_error("Ramp has not written it yet (no ramp line)")
                .into()),
        }
    }

    async fn set_weight(&self, weight: Weight, run: &str) -> Result<(), SourceError> {
        Ok(self.apply(weight, run).await?)
    }

    async fn add_fault(&self, _fault: &FaultRequest) -> Result<String, SourceError> {
        Err(SourceError::Unsupported(
            "nginx cannot inject a rehearsal's fault: rehearse through a Ramp proxy".into(),
        ))
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(
            "nginx cannot inject or clear faults: rehearse through a Ramp proxy".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(stable: &[&str], canary: &[&str]) -> NginxRouter {
        NginxRouter {
            upstream_file: "up.conf".into(),
            upstream: "app".into(),
            stable: stable.iter().map(|s| s.to_string()).collect(),
            canary: canary.iter().map(|s| s.to_string()).collect(),
            test: vec!["nginx".into(), "-t".into()],
            reload: vec!["nginx".into(), "-s".into(), "reload".into()],
            pid_file: None,
            timeout: ramp_core::Span(5000),
        }
    }

    fn mark(bp: u32) -> Mark {
        Mark {
            deployment: "d \"x\"".into(),
            run: "tok:3".into(),
            weight_bp: bp,
        }
    }

    #[test]
    fn weights_are_basis_points_and_zero_is_down() {
        let p = plan(&["127.0.0.1:1"], &["127.0.0.1:2", "127.0.0.1:3"]);
        let t = render(&p, &mark(2001));
        assert!(t.contains("server 127.0.0.1:1 weight=7999;"), "{t}");
        assert!(t.contains("server 127.0.0.1:2 weight=1001;"), "{t}");
        assert!(t.contains("server 127.0.0.1:3 weight=1000;"), "{t}");
        let zero = render(&p, &mark(0));
        assert!(zero.contains("server 127.0.0.1:2 down;"), "{zero}");
        assert!(zero.contains("server 127.0.0.1:1 weight=10000;"), "{zero}");
        let full = render(&p, &mark(10_000));
        assert!(full.contains("server 127.0.0.1:1 down;"), "{full}");
        // The mark reads back, quotes and all.
        let line = t.lines().next().unwrap().strip_prefix(MARK_PREFIX).unwrap();
        assert_eq!(serde_json::from_str::<Mark>(line).unwrap(), mark(2001));
    }

    #[test]
    fn a_split_sums_to_its_total() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(1, 2), vec![1, 0]);
        assert_eq!(split(0, 1), vec![0]);
    }
}
