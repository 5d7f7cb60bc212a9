//! The `ramp` child processes: started, killed with SIGKILL, and never left behind.
//!
//! The soak kills its children on purpose (`kill -9` is the fault under test), and must also
//! kill them when it ends for any reason: normally, on Ctrl-C or SIGTERM, or on a panic.
//! Each child is owned by a [`Proc`], which kills and reaps it when dropped; every child is
//! also listed in a process-wide registry that the panic hook and the signal path empty with
//! [`kill_all`], because a panic on another thread does not run the main thread's drops.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Every child started and not yet reaped, for [`kill_all`].
fn registry() -> &'static Mutex<Vec<Weak<Mutex<Child>>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Weak<Mutex<Child>>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

/// Kills every child still running (SIGKILL) and reaps it. Called by the panic hook and on
/// Ctrl-C; it only ever waits for children it has just killed, so it returns at once, and it
/// skips a child whose lock another thread holds rather than wait for it.
pub fn kill_all() {
    let Ok(mut children) = registry().try_lock() else {
        return;
    };
    for weak in children.drain(..) {
        if let Some(child) = weak.upgrade() {
            if let Ok(mut child) = child.try_lock() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One `ramp` child process, with its output in two files of the work directory. Dropping
/// it kills (SIGKILL) and reaps the process.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages ("proxy #2").
    pub label: String,
    /// The process, shared with the registry.
    child: Arc<Mutex<Child>>,
    /// Its process id, for the record.
    pub pid: u32,
    /// Where its standard error goes (standard output goes beside it, `.out`).
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `program args…` in `cwd`, stdin closed, standard output and error in
    /// `<cwd>/<file_stem>.out` and `.err`, with the extra environment `env`.
    pub fn spawn(
        program: &Path,
        args: &[&str],
        cwd: &Path,
        label: &str,
        file_stem: &str,
        env: &[(&str, &str)],
    ) -> Result<Proc> {
        let stdout = cwd.join(format!("{file_stem}.out"));
        let stderr = cwd.join(format!("{file_stem}.err"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).context("cannot create an output file")?)
            .stderr(std::fs::File::create(&stderr).context("cannot create an output file")?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {} ({label})", program.display()))?;
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        let mut list = registry().lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&child));
        Ok(Proc {
            label: label.to_string(),
            child,
            pid,
            stderr,
        })
    }

    /// `kill -9`: SIGKILL, then reap, so that the process is gone (and its ports and locks
    /// released by the kernel) when this returns.
    pub fn kill9(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The exit status if the process has ended, without waiting.
    pub fn exited(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of its standard error, for messages when it ends unexpectedly.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}
