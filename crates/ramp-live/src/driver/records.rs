//! What the journal's records say: the kind of each input, the event of each action, a check
//! or hook outcome as JSON, and the formats of times and latencies in messages.

use crate::checks;
use ramp_core::engine::{Action, Input};
use ramp_core::summary::CheckSummary;

/// The engine input's journal kind.
pub(super) fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Start => "start",
        Input::Tick(_) => "tick",
        Input::Gap { .. } => "gap",
        Input::Abort { .. } => "abort",
        Input::Pause { .. } => "pause",
        Input::Resume { .. } => "resume",
        Input::Promote { .. } => "promote",
        Input::Approve { .. } => "approve",
        Input::Halt { .. } => "halt",
        Input::Query { .. } => "query",
    }
}

/// The journal event of an action, when it is one worth recording (weights are recorded
/// with their decisions).
pub(super) fn action_event(a: &Action) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    Some(match a {
        Action::SetWeight(w) => ("set_weight", json!({"weight": w.percent()})),
        Action::StageStarted { index, weight } => (
            "stage_started",
            json!({"stage": index, "weight": weight.percent()}),
        ),
        Action::Checkpoint(r) => (
            "checkpoint",
            json!({"stage": r.stage, "checkpoint": r.checkpoint}),
        ),
        Action::StageDecided {
            index,
            decision,
            reasons,
        } => (
            "stage_decided",
            json!({"stage": index, "decision": decision.key(), "reasons": reasons}),
        ),
        Action::RollbackInitiated { stage, reason } => (
            "rollback_initiated",
            json!({"stage": stage, "reason": reason}),
        ),
        Action::AwaitingApproval { stage, missing } => (
            "awaiting_approval",
            json!({"stage": stage, "missing": missing}),
        ),
        Action::Finished(o) => ("finished", json!({"outcome": o.key()})),
    })
}

/// A check's or hook's outcome as the journal records it.
pub(super) fn outcome_json(o: &checks::ProbeOutcome) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "ok": o.ok,
        "detail": o.detail,
        "elapsed_s": o.elapsed.as_secs_f64(),
    })
}

/// The pre-deployment checks a run's journal records (its `check` events), in order, as the
/// summary's checklist: a resumed run and `ramp report` of a run in progress read the same
/// record as the run that ran them. An unreadable event is left out, not invented.
pub fn checks_from_events(events: &[ramp_store::EventRecord]) -> Vec<CheckSummary> {
    /// The body of a `check` event ([`outcome_json`]).
    #[derive(serde::Deserialize)]
    struct Body {
        name: String,
        ok: bool,
        detail: String,
        elapsed_s: f64,
    }
    events
        .iter()
        .filter(|e| e.kind == "check")
        .filter_map(|e| {
            let b: Body = serde_json::from_str(&e.body).ok()?;
            Some(CheckSummary {
                name: b.name,
                ok: b.ok,
                detail: b.detail,
                t_s: ramp_core::PlanTime(e.plan_ms).as_secs_f64(),
                elapsed_s: b.elapsed_s,
            })
        })
        .collect()
}

/// A latency for a message: "850ms", or "n/a".
pub(super) fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}ms"))
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (seconds precision): a run's start, as
/// the plan, the summary and `ramp history` show it.
pub fn rfc3339(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_759_773_600_000), "2025-10-06T18:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
