//! A note in each target's format: Slack's incoming-webhook JSON (`text` plus `blocks`), a
//! Teams Adaptive Card, Ramp's own webhook JSON, and a command's environment.
//!
//! Every format carries the same sentence; the link, when the plan gives one, is added as a
//! link rather than inside the sentence.

use super::message::Note;
use crate::driver::rfc3339;
use serde_json::{json, Value};

/// Slack's incoming-webhook payload: `text` (the notification's and the fallback's text)
/// and `blocks` (a section with the sentence, a context line with the stage and the link).
/// `&`, `<` and `>` are escaped as Slack's formatting reference requires, so a reason can
/// never become a mention or a link.
pub fn slack(note: &Note, link: Option<&str>) -> Value {
    let sentence = slack_escape(&note.sentence);
    let mut context = vec![format!(
        "{} · run {}{}",
        slack_escape(note.event.key()),
        note.run_id,
        note.stage
            .map(|s| format!(" · stage {s} of {}", note.stages))
            .unwrap_or_default()
    )];
    let mut text = sentence.clone();
    if let Some(l) = link {
        context.push(format!("<{}|Dashboard>", slack_escape(l)));
        text.push_str(&format!(" <{}|Dashboard>", slack_escape(l)));
    }
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": sentence}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context.join(" · ")}]},
        ],
    })
}

/// A Teams incoming-webhook message holding one Adaptive Card (version 1.2, which both the
/// Workflows webhooks and the older connectors render): the sentence, a line naming the
/// event and stage, and an "Open dashboard" action when there is a link.
pub fn teams(note: &Note, link: Option<&str>) -> Value {
    let facts = format!(
        "{} · run {}{}",
        note.event.key(),
        note.run_id,
        note.stage
            .map(|s| format!(" · stage {s} of {}", note.stages))
            .unwrap_or_default()
    );
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": [
            {"type": "TextBlock", "text": note.sentence, "wrap": true},
            {"type": "TextBlock", "text": facts, "isSubtle": true, "spacing": "None", "wrap": true},
        ],
    });
    if let Some(l) = link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open dashboard", "url": l}]);
    }
    json!({
        "type": "message",
        "summary": note.sentence,
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// Ramp's own JSON, for `kind = "webhook"` and on a command's stdin: the event, the
/// deployment, the stage and its weight, the numbers, the sentence and the time.
pub fn webhook(note: &Note, link: Option<&str>) -> Value {
    json!({
        "event": note.event.key(),
        "deployment": note.deployment,
        "run_id": note.run_id,
        "rehearsal": note.rehearsal,
        "stage": note.stage,
        "stages": note.stages,
        "weight_percent": note.weight_percent,
        "gate": note.gate,
        "numbers": note.numbers,
        "sentence": note.sentence,
        "link": link,
        "t_s": note.t_s,
        "time": rfc3339(note.unix_ms),
    })
}

/// The environment a command notifier gets besides its stdin.
pub fn command_env(note: &Note, link: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("RAMP_NOTIFY_EVENT", note.event.key().to_string()),
        ("RAMP_NOTIFY_DEPLOYMENT", note.deployment.clone()),
        ("RAMP_NOTIFY_RUN", note.run_id.to_string()),
        ("RAMP_NOTIFY_TEXT", note.sentence.clone()),
    ];
    if let Some(s) = note.stage {
        env.push(("RAMP_NOTIFY_STAGE", s.to_string()));
    }
    if let Some(w) = note.weight_percent {
        env.push(("RAMP_NOTIFY_WEIGHT", w.to_string()));
    }
    if let Some(l) = link {
        env.push(("RAMP_NOTIFY_LINK", l.to_string()));
    }
    env
}

/// Slack's three control characters as HTML entities.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_core::plan::NotifyEvent;

    fn note() -> Note {
        Note {
            event: NotifyEvent::Rollback,
            deployment: "checkout".into(),
            run_id: 3,
            stage: Some(2),
            stages: 4,
            weight_percent: Some(25.0),
            gate: Some("canary error_rate".into()),
            numbers: [("observed", 0.302)].into_iter().collect(),
            sentence: "checkout: rolled back at stage 2 of 4 (25 %) after 4.1 s: errors <b> & co."
                .into(),
            t_s: 64.1,
            unix_ms: 1_759_773_600_000,
            rehearsal: false,
        }
    }

    #[test]
    fn slack_escapes_its_control_characters_and_links_the_dashboard() {
        let v = slack(&note(), Some("https://grafana.example.com/d/1"));
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("errors &lt;b&gt; &amp; co."), "{text}");
        assert!(
            text.ends_with("<https://grafana.example.com/d/1|Dashboard>"),
            "{text}"
        );
        assert_eq!(v["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(
            v["blocks"][1]["elements"][0]["text"],
            "rollback · run 3 · stage 2 of 4 · <https://grafana.example.com/d/1|Dashboard>"
        );
    }

    #[test]
    fn teams_gets_an_adaptive_card_and_the_webhook_its_numbers() {
        let v = teams(&note(), None);
        let card = &v["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["body"][0]["text"], note().sentence);
        assert!(card["content"].get("actions").is_none());
        let w = webhook(&note(), None);
        assert_eq!(w["event"], "rollback");
        assert_eq!(w["numbers"]["observed"], 0.302);
        assert_eq!(w["time"], "2025-10-06T18:00:00Z");
        let env = command_env(&note(), Some("https://l/"));
        assert!(env.contains(&("RAMP_NOTIFY_STAGE", "2".into())));
        assert!(env.contains(&("RAMP_NOTIFY_LINK", "https://l/".into())));
    }
}
