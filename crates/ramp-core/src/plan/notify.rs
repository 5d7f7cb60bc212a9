//! Notifications (`[[notify]]`): who is told what while a live rollout runs.
//!
//! A notifier informs; it never changes a decision. The live driver builds one sentence per
//! event and hands it to each notifier whose `on` list holds the event; delivery, retries and
//! rate limits are the live driver's (`ramp_live::notify`). A simulation ignores notifiers.

use crate::units::Span;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One `[[notify]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    /// What the log and the journal call it (unique); a URL is never shown, so this is how
    /// an operator tells targets apart.
    pub name: String,
    /// Where the message goes and in which format.
    pub target: NotifyTarget,
    /// The events sent to it (every event when the plan does not say).
    pub on: Vec<NotifyEvent>,
    /// The most one delivery attempt may take, connection and answer included.
    pub timeout: Span,
    /// Delivery attempts per message, the first included (a failed attempt is retried after
    /// an exponential backoff).
    pub attempts: u32,
    /// The most messages sent to this target per minute; more are dropped and journaled so.
    pub per_minute: u32,
    /// A dashboard or report link added to every message, when the plan gives one.
    pub link: Option<String>,
}

/// Where a notifier's messages go: the kind decides the payload's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A Slack-compatible incoming webhook: `text` plus `blocks`.
    Slack(UrlSource),
    /// A Microsoft Teams incoming webhook: a MessageCard.
    Teams(UrlSource),
    /// Any HTTP endpoint: Ramp's own JSON (event, deployment, stage, numbers, sentence).
    Webhook(UrlSource),
    /// A program run directly (never through a shell): the webhook JSON on stdin, the main
    /// fields in `RAMP_NOTIFY_*` environment variables; exit 0 is delivered.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
}

impl NotifyTarget {
    /// The plan's name of the kind (`kind = "slack"`), for logs and the journal.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyTarget::Slack(_) => "slack",
            NotifyTarget::Teams(_) => "teams",
            NotifyTarget::Webhook(_) => "webhook",
            NotifyTarget::Command { .. } => "command",
        }
    }
}

/// Where a webhook's URL comes from. A webhook URL often holds its secret in its path, so a
/// plan may keep it in a file rather than in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// Written in the plan (`url`), already checked.
    Inline(String),
    /// Read from this file when the run starts (`url_file`), relative to the plan's
    /// directory; checked then by the same rule.
    File(PathBuf),
}

/// What a notifier can be told about. Closed: a message builder matches every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A stage began: its weight was set.
    StageStarted,
    /// A stage ended and passed (proceed, or monitor with a caveat).
    StageEnded,
    /// A gate warned or failed on its window during a stage (once per gate and stage).
    Breach,
    /// A rollback was initiated: the canary's weight goes to 0.
    Rollback,
    /// The next stage waits for approvers.
    ApprovalNeeded,
    /// The rollout halted: the engine could not decide and waits for a human.
    Halted,
    /// The rollout ended promoted or rolled back (a halt is `Halted`).
    Finished,
}

impl NotifyEvent {
    /// Every event, in the order a rollout meets them: the default of `on`.
    pub const ALL: [NotifyEvent; 7] = [
        NotifyEvent::StageStarted,
        NotifyEvent::StageEnded,
        NotifyEvent::Breach,
        NotifyEvent::Rollback,
        NotifyEvent::ApprovalNeeded,
        NotifyEvent::Halted,
        NotifyEvent::Finished,
    ];

    /// The plan's and the payloads' name of the event.
    pub fn key(self) -> &'static str {
        match self {
            NotifyEvent::StageStarted => "stage_started",
            NotifyEvent::StageEnded => "stage_ended",
            NotifyEvent::Breach => "breach",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::ApprovalNeeded => "approval_needed",
            NotifyEvent::Halted => "halted",
            NotifyEvent::Finished => "finished",
        }
    }
}
