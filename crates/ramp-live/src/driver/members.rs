//! A fleet's members per stage: what each member served between the reading its stage
//! started from and the one it was decided on, journaled at the stage's end (a
//! `fleet_members` event) so that the summary, the report and a resumed controller's summary
//! have it, and a skewed fleet is visible after the run as it is in `ramp status`.
//!
//! The counts are each member's own counters (`/snapshot`), as last read by the fleet's
//! metrics source: the stage starts after the reading that ended the previous stage, and is
//! decided on a reading, so the two are the readings the engine's slots were cut from. A
//! member that restarted during the stage counts from its restart (and says so). The counts
//! a stage starts from are journaled too (a `fleet_members_start` event), so a controller
//! killed mid-stage and resumed still reports the stage's counts (the members kept
//! counting); one that finds no start for its stage records nothing for it: absent, never a
//! guess.

use super::Driver;
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::status::MemberView;
use ramp_core::summary::{MemberStageSummary, Summary};
use ramp_core::PlanTime;
use serde::{Deserialize, Serialize};

/// The journaled event kind of a stage's counts.
const EVENT: &str = "fleet_members";

/// The journaled event kind of the counts a stage starts from.
const START_EVENT: &str = "fleet_members_start";

/// The body of a `fleet_members_start` event.
#[derive(Debug, Serialize, Deserialize)]
struct StageStart {
    /// The stage, 1-based.
    stage: usize,
    /// Each member's cumulative counts and process start, in plan order.
    members: Vec<MemberCounts>,
}

/// One member's cumulative counts as read, with the process start they belong to.
#[derive(Debug, Serialize, Deserialize)]
struct MemberCounts {
    /// Its admin API.
    url: String,
    /// Requests completed since it started, when it had been read.
    requests: Option<u64>,
    /// Errors among them.
    errors: Option<u64>,
    /// Its `instance.boot_id`.
    boot_id: Option<String>,
}

impl From<&MemberView> for MemberCounts {
    fn from(m: &MemberView) -> MemberCounts {
        MemberCounts {
            url: m.url.clone(),
            requests: m.requests,
            errors: m.errors,
            boot_id: m.boot_id.clone(),
        }
    }
}

impl From<MemberCounts> for MemberView {
    fn from(m: MemberCounts) -> MemberView {
        MemberView {
            url: m.url,
            requests: m.requests,
            errors: m.errors,
            boot_id: m.boot_id,
            ..MemberView::default()
        }
    }
}

/// The body of a `fleet_members` event.
#[derive(Debug, Serialize, Deserialize)]
struct StageMembers {
    /// The stage, 1-based.
    stage: usize,
    /// Each member's counts, in plan order.
    members: Vec<MemberStageSummary>,
}

/// Each member's counts from `start` to `end` (the same members, in plan order); a member
/// never read at either end is left out.
fn served(start: &[MemberView], end: &[MemberView]) -> Vec<MemberStageSummary> {
    start
        .iter()
        .zip(end)
        .filter_map(|(a, b)| {
            let (r0, r1) = (a.requests?, b.requests?);
            let (e0, e1) = (a.errors.unwrap_or(0), b.errors.unwrap_or(0));
            let restarted = a.boot_id != b.boot_id || r1 < r0 || e1 < e0;
            Some(if restarted {
                MemberStageSummary {
                    url: b.url.clone(),
                    requests: r1,
                    errors: e1,
                    restarted: true,
                }
            } else {
                MemberStageSummary {
                    url: b.url.clone(),
                    requests: r1 - r0,
                    errors: e1 - e0,
                    restarted: false,
                }
            })
        })
        .collect()
}

/// Puts the journaled `fleet_members` events (their bodies) into the summary's stages.
pub(super) fn attach<'a>(summary: &mut Summary, bodies: impl Iterator<Item = &'a str>) {
    for body in bodies {
        let Ok(row) = serde_json::from_str::<StageMembers>(body) else {
            continue;
        };
        if let Some(stage) = summary.stages.iter_mut().find(|s| s.index == row.stage) {
            stage.members = row.members;
        }
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// At stage `stage`'s start: the members as last read, which its counts start from
    /// (journaled, for a controller resumed in the stage).
    pub(super) fn members_at_stage_start(&mut self, t: PlanTime, stage: usize) {
        let seen = self.routing.router.members();
        if seen.is_empty() {
            self.routing.members_start = None;
            return;
        }
        let body = StageStart {
            stage,
            members: seen.iter().map(MemberCounts::from).collect(),
        };
        if let Err(e) = self.event(t, START_EVENT, &body) {
            tracing::warn!(error = %e, "cannot journal the fleet members' counts");
        }
        self.routing.members_start = Some((stage, seen));
    }

    /// A resumed controller in stage `stage`: the counts it started from, from the journal.
    pub(super) fn resume_members(&mut self, stage: usize) {
        let Ok(events) = self.journal.store.events(self.journal.run_id, 0) else {
            return;
        };
        let start = events
            .iter()
            .rev()
            .filter(|e| e.kind == START_EVENT)
            .filter_map(|e| serde_json::from_str::<StageStart>(&e.body).ok())
            .find(|s| s.stage == stage);
        if let Some(s) = start {
            let views = s.members.into_iter().map(MemberView::from).collect();
            self.routing.members_start = Some((stage, views));
        }
    }

    /// At stage `stage`'s end (its decision, a rollback's included): journals what each
    /// member served during it, when this controller saw it start.
    pub(super) fn record_members(&mut self, t: PlanTime, stage: usize) {
        let Some((started, start)) = self.routing.members_start.take() else {
            return;
        };
        if started != stage {
            return;
        }
        let members = served(&start, &self.routing.router.members());
        if members.is_empty() {
            return;
        }
        if let Err(e) = self.event(t, EVENT, &StageMembers { stage, members }) {
            tracing::warn!(error = %e, "cannot journal the fleet members' counts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(url: &str, requests: u64, errors: u64, boot: &str) -> MemberView {
        MemberView {
            url: url.into(),
            requests: Some(requests),
            errors: Some(errors),
            boot_id: Some(boot.into()),
            ..MemberView::default()
        }
    }

    #[test]
    fn a_stage_counts_each_member_from_its_start_and_a_restart_from_zero() {
        let start = [view("a", 100, 1, "x"), view("b", 500, 0, "y"), {
            let mut never = view("c", 0, 0, "z");
            never.requests = None;
            never
        }];
        let end = [
            view("a", 400, 4, "x"),
            view("b", 20, 2, "y2"),
            view("c", 9, 0, "z"),
        ];
        let rows = served(&start, &end);
        assert_eq!(rows.len(), 2, "a member never read is left out: {rows:?}");
        assert_eq!(
            (rows[0].requests, rows[0].errors, rows[0].restarted),
            (300, 3, false)
        );
        assert_eq!(
            (rows[1].requests, rows[1].errors, rows[1].restarted),
            (20, 2, true)
        );
    }
}
