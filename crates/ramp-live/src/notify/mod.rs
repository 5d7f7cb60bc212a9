//! Notifications (`[[notify]]`): a live run tells Slack, Teams, a webhook or a program about
//! its stages, breaches, rollbacks, approvals and its end, one sentence per event.
//!
//! They never block or change a decision. The driver composes a [`Note`] for each action it
//! carries out (`message`) and offers it to each notifier whose `on` holds the event with a
//! `try_send` into that notifier's bounded queue: a full queue drops the note at once, and the
//! drop is returned to be journaled. Each notifier has its own task (`deliver`) that drains
//! its queue in order, holds a rate limit, and tries each note a bounded number of times
//! with exponential backoff and a deadline per attempt; every note ends in one [`Delivery`]
//! sent back to the driver, which journals it (`notification` events, never inputs: replay
//! reads only inputs, and replayed actions are not carried out, so a resumed run does not
//! notify again). `payload` puts a note in each target's format.
//!
//! A webhook URL often holds its secret in its path, so nothing here logs or journals it:
//! a target is named by its notifier's name.

mod deliver;
pub mod message;
pub mod payload;

pub use message::{compose, Breaches, Context, Note};

use deliver::{Target, Transport};
use ramp_core::load::check_notify_url;
use ramp_core::plan::{Notifier, NotifyEvent, NotifyTarget, UrlSource};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many notes wait for one target at most; more are dropped (and journaled so) rather
/// than delaying anything.
pub const QUEUE: usize = 32;

/// Why the notifiers could not be set up (before anything of the run happened).
#[derive(Debug, Error)]
#[error("notifier {name:?}: {message}")]
pub struct NotifyError {
    /// The notifier's name.
    pub name: String,
    /// What is wrong (a `url_file` that cannot be read or holds no valid URL, no TLS roots);
    /// never the URL's path.
    pub message: String,
}

/// How one note ended for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The target accepted it (a 2xx answer, or the program exited 0).
    Delivered {
        /// Attempts it took, the successful one included.
        attempts: u32,
        /// From the first attempt to the acceptance.
        elapsed: Duration,
    },
    /// Every attempt failed.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        reason: String,
    },
    /// It was never tried: the queue was full, the rate limit was reached, or the run ended
    /// first.
    Dropped {
        /// Which of those.
        reason: String,
    },
}

/// One note's fate at one target, for the journal and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The notifier's name.
    pub notifier: String,
    /// Its kind ("slack", …).
    pub kind: &'static str,
    /// The note's event.
    pub event: NotifyEvent,
    /// The note's stage, when it has one.
    pub stage: Option<usize>,
    /// The sentence that was (or was not) sent.
    pub sentence: String,
    /// How it ended.
    pub outcome: DeliveryOutcome,
}

impl Delivery {
    /// The delivery of `note` to `notifier`.
    fn of(notifier: &Notifier, note: &Note, outcome: DeliveryOutcome) -> Delivery {
        Delivery {
            notifier: notifier.name.clone(),
            kind: notifier.target.kind(),
            event: note.event,
            stage: note.stage,
            sentence: note.sentence.clone(),
            outcome,
        }
    }

    /// "delivered after 3 attempts", "failed after 3 attempts: HTTP 500", "dropped: …".
    pub fn summary(&self) -> String {
        match &self.outcome {
            DeliveryOutcome::Delivered { attempts: 1, .. } => "delivered".into(),
            DeliveryOutcome::Delivered { attempts, .. } => {
                format!("delivered after {attempts} attempts")
            }
            DeliveryOutcome::Failed { attempts, reason } => {
                format!(
                    "failed after {attempts} attempt{}: {reason}",
                    if *attempts == 1 { "" } else { "s" }
                )
            }
            DeliveryOutcome::Dropped { reason } => format!("dropped: {reason}"),
        }
    }

    /// The body of its `notification` journal event.
    pub fn journal_body(&self, dropped_total: u64) -> serde_json::Value {
        let (result, attempts, elapsed_s) = match &self.outcome {
            DeliveryOutcome::Delivered { attempts, elapsed } => {
                ("delivered", *attempts, Some(elapsed.as_secs_f64()))
            }
            DeliveryOutcome::Failed { attempts, .. } => ("failed", *attempts, None),
            DeliveryOutcome::Dropped { .. } => ("dropped", 0, None),
        };
        serde_json::json!({
            "notifier": self.notifier,
            "kind": self.kind,
            "event": self.event.key(),
            "stage": self.stage,
            "result": result,
            "attempts": attempts,
            "elapsed_s": elapsed_s,
            "detail": self.summary(),
            "sentence": self.sentence,
            "dropped_total": dropped_total,
        })
    }
}

/// One notifier's queue, as the driver holds it.
struct Queue {
    /// The notifier.
    notifier: Notifier,
    /// Its task's queue; `None` once closed.
    tx: Option<mpsc::Sender<Arc<Note>>>,
}

/// The run's notifiers: their queues, what is still owed a result, and the drops counted.
pub struct Notifications {
    /// One queue per notifier, in plan order.
    queues: Vec<Queue>,
    /// The notifiers' tasks.
    tasks: Vec<JoinHandle<()>>,
    /// Notes queued whose result has not come back yet.
    pending: usize,
    /// Notes dropped so far (queue full, rate limit, end of the run).
    dropped: u64,
    /// Breaches already told, per stage.
    pub breaches: Breaches,
}

impl Notifications {
    /// Sets up the plan's notifiers: reads each `url_file` (relative to `base_dir`) and
    /// checks the URL it holds by the plan's rule, builds each client, and starts one task
    /// per notifier. Their results arrive on the returned receiver.
    pub fn start(
        notifiers: &[Notifier],
        base_dir: &Path,
    ) -> Result<(Notifications, mpsc::Receiver<Delivery>), NotifyError> {
        let (results_tx, results_rx) = mpsc::channel(QUEUE * notifiers.len().max(1));
        let mut queues = Vec::with_capacity(notifiers.len());
        let mut tasks = Vec::with_capacity(notifiers.len());
        for n in notifiers {
            let fail = |message: String| NotifyError {
                name: n.name.clone(),
                message,
            };
            let timeout = Duration::from_millis(n.timeout.0);
            let transport = match &n.target {
                NotifyTarget::Slack(src)
                | NotifyTarget::Teams(src)
                | NotifyTarget::Webhook(src) => {
                    let url = resolve_url(src, base_dir).map_err(fail)?;
                    let https = url.to_ascii_lowercase().starts_with("https://");
                    let client = deliver::client(https, timeout).map_err(fail)?;
                    let url = url
                        .parse()
                        .map_err(|_| fail("its URL is not one an HTTP client can use".into()))?;
                    Transport::Http {
                        client: Box::new(client),
                        url,
                    }
                }
                NotifyTarget::Command { argv } => Transport::Command {
                    argv: argv.clone(),
                    base_dir: base_dir.to_path_buf(),
                },
            };
            let (tx, rx) = mpsc::channel(QUEUE);
            let target = Target {
                notifier: n.clone(),
                transport,
            };
            tasks.push(tokio::spawn(deliver::serve(target, rx, results_tx.clone())));
            queues.push(Queue {
                notifier: n.clone(),
                tx: Some(tx),
            });
        }
        let notifications = Notifications {
            queues,
            tasks,
            pending: 0,
            dropped: 0,
            breaches: Breaches::default(),
        };
        Ok((notifications, results_rx))
    }

    /// Whether any notifier is configured (composing a note is skipped otherwise).
    pub fn any(&self) -> bool {
        !self.queues.is_empty()
    }

    /// Offers `note` to every notifier that wants its event, without waiting: a full queue
    /// drops it for that notifier, and the drops are returned for the journal.
    pub fn offer(&mut self, note: Note) -> Vec<Delivery> {
        let note = Arc::new(note);
        let mut drops = Vec::new();
        for q in &self.queues {
            if !q.notifier.on.contains(&note.event) {
                continue;
            }
            let Some(tx) = &q.tx else { continue };
            match tx.try_send(Arc::clone(&note)) {
                Ok(()) => self.pending += 1,
                Err(mpsc::error::TrySendError::Full(_)) => drops.push(Delivery::of(
                    &q.notifier,
                    &note,
                    DeliveryOutcome::Dropped {
                        reason: format!("the queue of {QUEUE} notes for this target was full"),
                    },
                )),
                Err(mpsc::error::TrySendError::Closed(_)) => drops.push(Delivery::of(
                    &q.notifier,
                    &note,
                    DeliveryOutcome::Dropped {
                        reason: "the notifier's task has stopped".into(),
                    },
                )),
            }
        }
        self.dropped += drops.len() as u64;
        drops
    }

    /// Counts a result that came back from a notifier's task; returns the drops so far.
    pub fn returned(&mut self, d: &Delivery) -> u64 {
        self.pending = self.pending.saturating_sub(1);
        if matches!(d.outcome, DeliveryOutcome::Dropped { .. }) {
            self.dropped += 1;
        }
        self.dropped
    }

    /// Counts drops the driver journals itself (from [`Notifications::offer`]); returns the
    /// drops so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Notes queued whose result has not come back.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Closes every queue: each task finishes what it holds, then ends.
    pub fn close(&mut self) {
        for q in &mut self.queues {
            q.tx = None;
        }
    }

    /// Stops every task now (at the end of the run, after a bounded wait); notes still owed
    /// a result are abandoned and their number returned.
    pub fn abandon(&mut self) -> usize {
        for t in &self.tasks {
            t.abort();
        }
        let left = self.pending;
        self.dropped += left as u64;
        self.pending = 0;
        left
    }
}

/// A webhook URL from the plan or from its file, checked by the plan's rule.
fn resolve_url(src: &UrlSource, base_dir: &Path) -> Result<String, String> {
    let url = match src {
        UrlSource::Inline(url) => url.clone(),
        UrlSource::File(path) => {
            let path = base_dir.join(path);
            // A URL is short; a large file is not one.
            let text = std::fs::read(&path)
                .map_err(|e| format!("cannot read url_file {}: {e}", path.display()))?;
            if text.len() > 8192 {
                return Err(format!(
                    "url_file {} holds {} bytes; expected one URL",
                    path.display(),
                    text.len()
                ));
            }
            let text = String::from_utf8(text)
                .map_err(|_| format!("url_file {} is not UTF-8 text", path.display()))?;
            text.trim().to_string()
        }
    };
    check_notify_url(&url).map_err(|e| match src {
        UrlSource::Inline(_) => e,
        UrlSource::File(path) => format!("url_file {}: {e}", path.display()),
    })?;
    Ok(url)
}
