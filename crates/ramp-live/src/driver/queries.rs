//! Query gates in a live run: each `[[gates.query]]` expression is evaluated against the
//! plan's Prometheus at its interval, and its number (or why there was none) is journaled and
//! fed to the engine as `Input::Query`, which judges it.
//!
//! The driver only asks and reports; the verdict (consecutive failures, no data at a stage
//! end) is the engine's, so a resumed run replays the same verdicts from the journal.

use super::feed::CursorChange;
use super::{Driver, LiveError};
use crate::prometheus::{PromClient, PromError};
use crate::seams::{JournalStore, MetricsSource, Router};
use ramp_core::engine::{Input, State};
use ramp_core::plan::{Plan, QueryGate};
use ramp_core::promql::{render, Values};
use ramp_core::PlanTime;

/// The plan's query gates, their rendered expressions and when each was last evaluated.
pub(super) struct QueryGates {
    /// The Prometheus server's client.
    client: PromClient,
    /// Each gate with its expression, placeholders filled in.
    gates: Vec<(QueryGate, String)>,
    /// When each gate was last evaluated (plan time), in the order of `gates`.
    last: Vec<Option<PlanTime>>,
}

impl QueryGates {
    /// The gates of `plan` asked through `client`; `None` when the plan has none. A query
    /// that does not render is a plan error the loader already reported, so it cannot be
    /// here; it is refused all the same rather than sent half-filled.
    pub(super) fn new(plan: &Plan, client: PromClient) -> Result<Option<QueryGates>, LiveError> {
        if plan.queries.is_empty() {
            return Ok(None);
        }
        let values = Values::of(&plan.deployment, None, plan.evaluate_every);
        let mut gates = Vec::new();
        for g in &plan.queries {
            let text = render(&g.query, &values).map_err(|e| LiveError::Prometheus {
                what: format!("query gate {}", g.name),
                source: PromError::Config {
                    url: plan
                        .prometheus
                        .as_ref()
                        .map_or_else(String::new, |p| p.url.clone()),
                    message: e.to_string(),
                },
            })?;
            gates.push((g.clone(), text));
        }
        let last = vec![None; gates.len()];
        Ok(Some(QueryGates {
            client,
            gates,
            last,
        }))
    }

    /// Evaluates every gate once, before any weight moves: a query Prometheus refuses as
    /// malformed stops the run (exit 2); any other failure is only said, since the gate
    /// will report it as no data while it lasts.
    pub(super) async fn check(&self, time_ms: i64) -> Result<Vec<String>, LiveError> {
        let mut said = Vec::new();
        for (g, text) in &self.gates {
            match self.client.scalar(text, time_ms).await {
                Ok(_) => {}
                Err(e) if e.is_bad_query() => {
                    return Err(LiveError::Prometheus {
                        what: format!("query gate {}", g.name),
                        source: e,
                    })
                }
                Err(e) => said.push(format!("query gate {}: {e}", g.name)),
            }
        }
        Ok(said)
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Evaluates the query gates that are due at `now` and feeds what they returned, while
    /// a stage runs.
    pub(super) async fn evaluate_queries(&mut self, now: PlanTime) -> Result<(), LiveError> {
        let Some(q) = &self.metrics.queries else {
            return Ok(());
        };
        let time_ms = self.journal.started_unix_ms + now.0 as i64;
        // The due queries go out together, so a slow Prometheus costs one timeout per tick,
        // not one per gate; each answer is bounded by the client's timeout.
        let mut asked = tokio::task::JoinSet::new();
        for (i, (g, text)) in q.gates.iter().enumerate() {
            if q.last[i].is_none_or(|t| now.since(t) >= g.interval) {
                let (client, text, name) = (q.client.clone(), text.clone(), g.name.clone());
                asked.spawn(async move { (i, name, client.scalar(&text, time_ms).await) });
            }
        }
        let mut answers = Vec::new();
        while let Some(done) = asked.join_next().await {
            if let Ok(answer) = done {
                answers.push(answer);
            }
        }
        // Fed in plan order, whatever order they came back in, so a replay reads the same.
        answers.sort_by_key(|(i, _, _)| *i);
        for (i, name, answer) in answers {
            if !matches!(self.engine.state(), State::Running { .. }) {
                break;
            }
            if let Some(q) = &mut self.metrics.queries {
                q.last[i] = Some(now);
            }
            let input = match answer {
                Ok(v) => Input::Query {
                    name,
                    value: Some(v),
                    no_data: None,
                },
                Err(e) => Input::Query {
                    name,
                    value: None,
                    no_data: Some(e.to_string()),
                },
            };
            self.feed_at(now, input, CursorChange::Keep).await?;
        }
        Ok(())
    }
}
