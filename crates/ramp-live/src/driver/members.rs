//! A fleet's members per stage: what each member served between the reading its stage
//! started from and the one it was decided on, journaled at the stage's end (a
//! `fleet_members` event) so that the summary, the report and a resumed controller's summary
//! have it, and a skewed fleet is visible after the run as it is in `ramp status`.
//!
//! The counts are each member's own counters (`/snapshot`), as last read by the fleet's
//! metrics source: the stage starts after the reading that ended the previous stage, and is
//! decided on a reading, so the two are the readings the engine's slots were cut from. A
//! member that restarted during the stage counts from its restart (and says so). A
//! controller that did not see the stage start (it was resumed mid-stage) records nothing for
//! it: absent, never a guess.

use super::Driver;
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::status::MemberView;
use ramp_core::summary::{MemberStageSummary, Summary};
use ramp_core::PlanTime;
use serde::{Deserialize, Serialize};

/// The journaled event kind.
const EVENT: &str = "fleet_members";

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
    /// At stage `stage`'s start: the members as last read, which its counts start from.
    pub(super) fn members_at_stage_start(&mut self, stage: usize) {
        let seen = self.routing.router.members();
        self.routing.members_start = (!seen.is_empty()).then_some((stage, seen));
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
