//! Report queries in a live run (`[[report.queries]]`): the infrastructure impact of each
//! stage, sampled from the plan's Prometheus and journaled, never part of a decision.
//!
//! Each query is sampled "before" a stage, evaluated at the instant the stage started (so it
//! reads the series as they stood before the stage's weight took effect, whenever the answer
//! comes), and "during" it, at every checkpoint of the stage (or every half of the stage when
//! that is shorter). The samples are asked in the background: the engine's tick only spawns
//! them and journals those that have come back, so a slow Prometheus never delays a tick,
//! and each answer is bounded by the client's timeout. Every sample is journaled as a
//! `report_query` event, a failed one with its error and no value, so that a resumed run and
//! `ramp report` of a journal build the same summary ([`infra_from_events`]).

use super::{Driver, LiveError};
use crate::prometheus::{PromClient, PromError};
use crate::seams::{JournalStore, MetricsSource, Router};
use ramp_core::plan::{Plan, ReportQuery};
use ramp_core::promql::{render, Values};
use ramp_core::summary::InfraSummary;
use ramp_core::units::Span;
use ramp_core::PlanTime;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;
use tokio::task::JoinSet;

/// The journal kind of one sample.
const KIND: &str = "report_query";

/// The longest error text journaled with a failed sample.
const MAX_ERROR: usize = 400;

/// The longest time the end of a run waits for samples still in flight.
const END_GRACE: Duration = Duration::from_secs(5);

/// When a sample was taken relative to its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// At the stage's start, before its weight took effect.
    Before,
    /// While the stage ran.
    During,
}

/// One sample as the journal records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SampleBody {
    /// The query's name.
    name: String,
    /// Its position in the plan's `[[report.queries]]`, to order the summary.
    order: usize,
    /// Its unit.
    #[serde(default)]
    unit: Option<String>,
    /// The stage, 1-based.
    stage: usize,
    /// Before or during.
    phase: Phase,
    /// The plan time the query was evaluated at, seconds.
    at_s: f64,
    /// The scaled value; `None` when the sample failed.
    value: Option<f64>,
    /// Why the sample failed.
    #[serde(default)]
    error: Option<String>,
    /// The Prometheus server's host and port.
    source: String,
}

/// The plan's report queries, their client and what has been asked.
pub(super) struct InfraSampler {
    /// The Prometheus server's client, bounded by the plan's timeout.
    client: PromClient,
    /// Each query with its expression, placeholders filled in.
    queries: Vec<(ReportQuery, String)>,
    /// The server's host and port, for the report.
    source: String,
    /// The stages (0-based) whose "before" samples were asked, by this run or (read from the
    /// journal on the first tick) by the run it resumes.
    before_asked: Option<HashSet<usize>>,
    /// The stage (0-based) and plan time of the last "during" samples.
    last_during: Option<(usize, PlanTime)>,
    /// The samples in flight.
    asked: JoinSet<SampleBody>,
}

impl InfraSampler {
    /// The report queries of `plan` asked through `client`; `None` when it has none. A
    /// query that does not render is a plan error the loader reported already; it is
    /// refused all the same rather than sent half-filled.
    pub(super) fn new(plan: &Plan, client: PromClient) -> Result<Option<InfraSampler>, LiveError> {
        if plan.report_queries.is_empty() {
            return Ok(None);
        }
        let values = Values::of(&plan.deployment, None, plan.evaluate_every);
        let url = plan
            .prometheus
            .as_ref()
            .map_or_else(String::new, |p| p.url.clone());
        let mut queries = Vec::new();
        for q in &plan.report_queries {
            let text = render(&q.query, &values).map_err(|e| LiveError::Prometheus {
                what: format!("report query {}", q.name),
                source: PromError::Config {
                    url: url.clone(),
                    message: e.to_string(),
                },
            })?;
            queries.push((q.clone(), text));
        }
        Ok(Some(InfraSampler {
            client,
            queries,
            source: host_of(&url),
            before_asked: None,
            last_during: None,
            asked: JoinSet::new(),
        }))
    }

    /// Spawns one sample of every query at `time_ms` (Unix) for `stage` (0-based).
    fn ask(&mut self, stage: usize, phase: Phase, at: PlanTime, time_ms: i64) {
        for (order, (q, text)) in self.queries.iter().enumerate() {
            let client = self.client.clone();
            let text = text.clone();
            let (name, unit, scale) = (q.name.clone(), q.unit.clone(), q.scale);
            let source = self.source.clone();
            self.asked.spawn(async move {
                let answer = client.scalar(&text, time_ms).await;
                let (value, error) = match answer {
                    Ok(v) => (Some(v * scale), None),
                    Err(e) => (None, Some(bounded(&e.to_string()))),
                };
                SampleBody {
                    name,
                    order,
                    unit,
                    stage: stage + 1,
                    phase,
                    at_s: at.as_secs_f64(),
                    value,
                    error,
                    source,
                }
            });
        }
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Journals the samples that came back, then asks those due at `now` while a stage runs:
    /// the stage's "before" samples once, and its "during" samples at every interval.
    pub(super) fn sample_infra(&mut self, now: PlanTime) -> Result<(), LiveError> {
        if self.metrics.infra.is_none() {
            return Ok(());
        }
        self.journal_samples()?;
        let Some(view) = self.engine.live_view() else {
            return Ok(());
        };
        let Some(stage) = self.plan.stages.get(view.index) else {
            return Ok(());
        };
        let every = during_every(stage.checkpoint, stage.duration, self.plan.evaluate_every);
        let asked_before = self.before_asked()?;
        let origin = self.journal.started_unix_ms;
        let Some(s) = &mut self.metrics.infra else {
            return Ok(());
        };
        if !asked_before.contains(&view.index) {
            s.ask(
                view.index,
                Phase::Before,
                view.started,
                origin + view.started.0 as i64,
            );
            if let Some(set) = &mut s.before_asked {
                set.insert(view.index);
            }
        }
        let last = match s.last_during {
            Some((i, t)) if i == view.index => t,
            _ => view.started,
        };
        if now.since(last) >= every {
            s.ask(view.index, Phase::During, now, origin + now.0 as i64);
            s.last_during = Some((view.index, now));
        }
        Ok(())
    }

    /// The stages whose "before" samples were asked, read from the journal the first time.
    fn before_asked(&mut self) -> Result<HashSet<usize>, LiveError> {
        if let Some(Some(set)) = self.metrics.infra.as_ref().map(|s| &s.before_asked) {
            return Ok(set.clone());
        }
        let events = self.journal.store.events(self.journal.run_id, 0)?;
        let set: HashSet<usize> = samples(&events)
            .filter(|b| b.phase == Phase::Before)
            .map(|b| b.stage.saturating_sub(1))
            .collect();
        if let Some(s) = &mut self.metrics.infra {
            s.before_asked = Some(set.clone());
        }
        Ok(set)
    }

    /// Journals every sample that has come back, without waiting for the others.
    fn journal_samples(&mut self) -> Result<(), LiveError> {
        let mut done = Vec::new();
        if let Some(s) = &mut self.metrics.infra {
            while let Some(joined) = s.asked.try_join_next() {
                if let Ok(body) = joined {
                    done.push(body);
                }
            }
        }
        // Journaled when it came back; `at_s` in the body says when it was evaluated.
        let t = self.plan_now();
        for body in done {
            self.event(t, KIND, &body)?;
        }
        Ok(())
    }

    /// At the end of a run: waits (at most [`END_GRACE`]) for the samples still in flight
    /// and journals them; those not back by then are left out, not invented.
    pub(super) async fn finish_samples(&mut self) -> Result<(), LiveError> {
        let Some(s) = &mut self.metrics.infra else {
            return Ok(());
        };
        let deadline = crate::clock::now() + END_GRACE;
        let mut done = Vec::new();
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, s.asked.join_next()).await {
            if let Ok(body) = joined {
                done.push(body);
            }
        }
        s.asked.abort_all();
        // Journaled when it came back; `at_s` in the body says when it was evaluated.
        let t = self.plan_now();
        for body in done {
            self.event(t, KIND, &body)?;
        }
        Ok(())
    }
}

/// How often "during" samples are taken: every checkpoint of the stage, or every half of
/// the stage when that is shorter, and never more often than the engine evaluates.
fn during_every(checkpoint: Span, duration: Span, evaluate_every: Span) -> Span {
    Span(checkpoint.0.min(duration.0 / 2).max(evaluate_every.0))
}

/// An error message cut to [`MAX_ERROR`] characters.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The host and port of a URL, without scheme, credentials or path: what the report may
/// say about where its numbers come from.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_string()
}

/// The readable `report_query` events of a journal.
fn samples(events: &[ramp_store::EventRecord]) -> impl Iterator<Item = SampleBody> + '_ {
    events
        .iter()
        .filter(|e| e.kind == KIND)
        .filter_map(|e| serde_json::from_str(&e.body).ok())
}

/// The infrastructure impact a run's journal records (its `report_query` events), per query
/// (in plan order) and stage: a resumed run and `ramp report` of a run in progress read the
/// same record as the run that sampled it. A failed sample counts as missing; an unreadable
/// event is left out; nothing is invented.
pub fn infra_from_events(events: &[ramp_store::EventRecord]) -> Vec<InfraSummary> {
    /// What is gathered for one query and stage.
    struct Acc {
        order: usize,
        row: InfraSummary,
        during: Vec<f64>,
    }
    let mut rows: Vec<Acc> = Vec::new();
    for b in samples(events) {
        let i = match rows
            .iter()
            .position(|a| a.row.name == b.name && a.row.stage == b.stage)
        {
            Some(i) => i,
            None => {
                rows.push(Acc {
                    order: b.order,
                    row: InfraSummary {
                        name: b.name.clone(),
                        unit: b.unit.clone(),
                        stage: b.stage,
                        before: None,
                        during_mean: None,
                        during_max: None,
                        samples: 0,
                        missing: 0,
                        source: b.source.clone(),
                    },
                    during: Vec::new(),
                });
                rows.len() - 1
            }
        };
        let a = &mut rows[i];
        match b.value.filter(|v| v.is_finite()) {
            None => a.row.missing += 1,
            Some(v) => {
                a.row.samples += 1;
                match b.phase {
                    Phase::Before => {
                        a.row.before.get_or_insert(v);
                    }
                    Phase::During => a.during.push(v),
                }
            }
        }
    }
    rows.sort_by_key(|a| (a.order, a.row.stage));
    rows.into_iter()
        .map(|mut a| {
            if !a.during.is_empty() {
                let n = a.during.len() as f64;
                a.row.during_mean = Some(a.during.iter().sum::<f64>() / n);
                a.row.during_max = a.during.iter().copied().reduce(f64::max);
            }
            a.row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, body: serde_json::Value) -> ramp_store::EventRecord {
        ramp_store::EventRecord {
            seq,
            plan_ms: 0,
            unix_ms: 0,
            kind: KIND.into(),
            body: body.to_string(),
        }
    }

    #[test]
    fn samples_become_rows_with_missing_ones_counted_not_zeroed() {
        let s = |seq, name: &str, order, stage, phase: &str, value: Option<f64>| {
            event(
                seq,
                serde_json::json!({"name": name, "order": order, "unit": "rps", "stage": stage,
                    "phase": phase, "at_s": 1.0, "value": value,
                    "error": value.is_none().then_some("no data"), "source": "127.0.0.1:9090"}),
            )
        };
        let events = vec![
            s(1, "none", 1, 1, "before", None),
            s(2, "rate", 0, 1, "before", Some(10.0)),
            s(3, "rate", 0, 1, "during", Some(20.0)),
            s(4, "rate", 0, 1, "during", Some(40.0)),
            s(5, "rate", 0, 2, "before", Some(30.0)),
            s(6, "none", 1, 1, "during", None),
        ];
        let rows = infra_from_events(&events);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].name.as_str(), rows[0].stage), ("rate", 1));
        assert_eq!(rows[0].before, Some(10.0));
        assert_eq!(rows[0].during_mean, Some(30.0));
        assert_eq!(rows[0].during_max, Some(40.0));
        assert_eq!((rows[0].samples, rows[0].missing), (3, 0));
        assert_eq!((rows[1].name.as_str(), rows[1].stage), ("rate", 2));
        assert_eq!(rows[1].during_mean, None);
        assert_eq!(rows[2].name, "none");
        assert_eq!(
            (rows[2].before, rows[2].during_mean, rows[2].during_max),
            (None, None, None)
        );
        assert_eq!((rows[2].samples, rows[2].missing), (0, 2));
    }

    #[test]
    fn the_source_is_host_and_port_only() {
        assert_eq!(host_of("http://127.0.0.1:9090"), "127.0.0.1:9090");
        assert_eq!(
            host_of("http://user:secret@prom.internal:9090/prefix?x=1"),
            "prom.internal:9090"
        );
    }

    #[test]
    fn during_samples_come_at_checkpoints_or_half_stages() {
        assert_eq!(
            during_every(Span(60_000), Span(600_000), Span(5_000)),
            Span(60_000)
        );
        assert_eq!(
            during_every(Span(60_000), Span(60_000), Span(5_000)),
            Span(30_000)
        );
        assert_eq!(
            during_every(Span(1_000), Span(2_000), Span(5_000)),
            Span(5_000)
        );
    }
}
