//! The servers that run beside the driver for as long as it runs: the control API (operator
//! verbs and status) and, when the plan has flags, the OFREP server that serves them.

use super::{LiveError, Progress};
use crate::control::{self, Command};
use crate::seams::JournalStore;
use ramp_core::plan::Plan;
use ramp_core::PlanTime;
use ramp_flags::flags::FlagState;
use ramp_flags::ofrep;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long the OFREP server keeps answering after the rollout finished.
const FLAGS_LINGER: Duration = Duration::from_secs(2);

/// The control API's server task.
pub(super) struct ControlServer {
    /// Where it listens.
    url: String,
    /// Stops it.
    stop: oneshot::Sender<()>,
    /// Its task.
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Journals where the control API listens (so that operator verbs find it), then serves
    /// it; requests reach the driver through the returned receiver.
    pub(super) fn start<J: JournalStore>(
        listener: TcpListener,
        run_label: String,
        token: Option<String>,
        metrics: control::MetricsEndpoint,
        store: &mut J,
        run_id: i64,
    ) -> Result<(ControlServer, mpsc::Receiver<Command>), LiveError> {
        let addr = listener.local_addr().map_err(LiveError::Control)?;
        let url = format!("http://{addr}");
        store.set_control(run_id, &url, std::process::id())?;
        let (to_driver, commands) = mpsc::channel::<Command>(16);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(control::serve(
            listener,
            run_label,
            token,
            metrics,
            to_driver,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok((ControlServer { url, stop, task }, commands))
    }

    /// Where the control API listens.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server and waits for it.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The OFREP server of the plan's flags.
pub(super) struct FlagsServer {
    /// The flags it serves: the driver moves their weight and schedules.
    pub(super) state: Arc<FlagState>,
    /// Its counters of distinct users per flag.
    pub(super) stats: Option<ofrep::Stats>,
    /// Stops it.
    stop: oneshot::Sender<()>,
    /// Its task.
    task: JoinHandle<()>,
}

impl FlagsServer {
    /// Serves the plan's flags on `listener`, when the plan has flags and a listener is given.
    pub(super) fn start(
        plan: &Plan,
        listener: Option<TcpListener>,
        token: Option<&str>,
        on: &mut (dyn FnMut(Progress<'_>) + Send),
        now: PlanTime,
    ) -> Option<FlagsServer> {
        let listener = listener.filter(|_| !plan.flags.flags().is_empty())?;
        let state = Arc::new(FlagState::new(plan.flags.clone()));
        let mut options = ofrep::ServeOptions::default();
        if let Some(t) = token {
            options.token = ofrep::ApiToken::new(t).ok();
        }
        let stats = options.stats.clone();
        if let Ok(addr) = listener.local_addr() {
            on(Progress::Line(
                now,
                format!(
                    "Serving {} {} over OFREP at http://{addr}/ofrep/v1/evaluate/flags",
                    plan.flags.flags().len(),
                    if plan.flags.flags().len() == 1 {
                        "flag"
                    } else {
                        "flags"
                    }
                ),
            ));
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ofrep::serve(
            listener,
            Arc::clone(&state),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Some(FlagsServer {
            state,
            stats,
            stop,
            task,
        })
    }

    /// Stops the server and waits for it; with `linger`, first gives clients that poll a
    /// moment to see the final flags (all off after a rollback).
    pub(super) async fn stop(self, linger: bool) {
        if linger {
            tokio::time::sleep(FLAGS_LINGER).await;
        }
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
