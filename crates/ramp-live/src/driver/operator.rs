//! The control API's requests as the driver answers them: status, and operator verbs that
//! are journaled and fed to the engine like any other input, or refused with a reason.

use super::feed::CursorChange;
use super::{Driver, LiveError};
use crate::control::{ActionBody, DriverRequest, Refusal, Verb};
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::status::StatusView;
use ramp_core::engine::{Input, State};

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Answers one control API request.
    pub(super) async fn command(
        &mut self,
        request: DriverRequest,
    ) -> Result<Result<StatusView, Refusal>, LiveError> {
        let (verb, body) = match request {
            DriverRequest::Status => return Ok(Ok(self.status())),
            DriverRequest::Dashboard { actions_need_token } => {
                let mut view = self.status();
                view.history = Some(crate::dashboard::History::of(
                    &self.engine,
                    actions_need_token,
                ));
                return Ok(Ok(view));
            }
            DriverRequest::Act(verb, body) => (verb, body),
        };
        if let Some(message) = self.refusal(&verb, &body) {
            return Ok(Err(Refusal {
                status: 409,
                message,
            }));
        }
        let t = self.plan_now().max(self.engine.now());
        self.event(t, "operator", &serde_json::json!({"verb": verb.key(), "who": body.who, "reason": body.reason, "full": body.full, "stage": body.stage}))?;
        let reason_note = if body.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", body.reason)
        };
        self.line(
            t,
            format!("Operator {} {}{}", body.who, verb.key(), reason_note),
        );
        let ActionBody {
            who,
            reason,
            full,
            stage,
        } = body;
        let input = match verb {
            Verb::Pause => Input::Pause { who, reason },
            Verb::Resume => Input::Resume { who, reason },
            Verb::Promote => Input::Promote { who, reason, full },
            Verb::Abort => Input::Abort { who, reason },
            Verb::Approve => Input::Approve { who, reason, stage },
        };
        self.feed_at(t, input, CursorChange::Keep).await?;
        Ok(Ok(self.status()))
    }

    /// Why `verb` does not apply now, as a sentence; `None` when it does.
    fn refusal(&self, verb: &Verb, body: &ActionBody) -> Option<String> {
        let state = self.engine.state();
        if let State::Finished(o) = state {
            return Some(format!("the rollout is already finished ({})", o.key()));
        }
        match verb {
            Verb::Pause => self
                .engine
                .paused()
                .map(|p| format!("the rollout is already paused ({p})")),
            Verb::Resume => self
                .engine
                .paused()
                .is_none()
                .then(|| "the rollout is not paused".to_string()),
            Verb::Abort => None,
            Verb::Promote => self.promote_refusal(state, body.full),
            Verb::Approve => self.approve_refusal(state, body),
        }
    }

    /// Why a promotion does not apply now: no stage runs yet, or a stage it would start
    /// still needs approvals.
    fn promote_refusal(&self, state: State, full: bool) -> Option<String> {
        let State::Running { index } = state else {
            return Some("no stage is running yet".into());
        };
        let last = self.plan.stages.len() - 1;
        let range = if full {
            index + 1..=last
        } else {
            index + 1..=(index + 1).min(last)
        };
        for i in range {
            if i > index {
                let missing = self.engine.missing_approvals(i);
                if !missing.is_empty() {
                    return Some(format!(
                        "stage {} needs approval from {} first (ramp approve --as NAME --stage {})",
                        i + 1,
                        missing.join(", "),
                        i + 1
                    ));
                }
            }
        }
        None
    }

    /// Why an approval does not apply: no stage still to come waits for this approver.
    fn approve_refusal(&self, state: State, body: &ActionBody) -> Option<String> {
        if self.engine.approval_target(&body.who, body.stage).is_some() {
            return None;
        }
        let last = self.plan.stages.len();
        let pending: Vec<String> = (0..last)
            .filter(|&i| match state {
                State::Running { index } => i > index,
                State::Pending | State::Finished(_) => true,
            })
            .filter_map(|i| {
                let missing = self.engine.missing_approvals(i);
                (!missing.is_empty()).then(|| format!("stage {}: {}", i + 1, missing.join(", ")))
            })
            .collect();
        Some(match (body.stage, pending.is_empty()) {
            (_, true) => "no stage still to come is waiting for approvals".into(),
            (Some(n), false) => format!(
                "stage {n} is not still to come or does not wait for {} (waiting: {})",
                body.who,
                pending.join("; ")
            ),
            (None, false) => format!(
                "{} is not an approver any stage still to come is waiting for (waiting: {})",
                body.who,
                pending.join("; ")
            ),
        })
    }

    /// What `ramp status` shows.
    pub(super) fn status(&self) -> StatusView {
        let mut view = StatusView::of(
            &self.engine,
            self.journal.run_id,
            self.metrics.problem.clone(),
        );
        view.flags = self.flag_usage_now();
        view.metrics_incomplete = self.metrics.incomplete.clone();
        view.members = self.routing.router.members();
        view
    }
}
