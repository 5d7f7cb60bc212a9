//! The driver's side of notifications: a note composed for each action it carries out,
//! offered to the notifiers without waiting, and every delivery's result journaled as a
//! `notification` event (an event, never an input, so replay neither reads nor resends it).

use super::{Driver, LiveError};
use crate::clock;
use crate::notify::{compose, Context, Delivery, DeliveryOutcome};
use crate::seams::{JournalStore, MetricsSource, Router};
use ramp_core::engine::Action;
use ramp_core::PlanTime;

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Offers the notes of `actions`, taken at `t`, to the notifiers; drops (a full queue)
    /// are journaled at once. Never waits on a notifier.
    pub(super) fn notify(&mut self, t: PlanTime, actions: &[Action]) -> Result<(), LiveError> {
        if !self.notify.any() || actions.iter().all(|a| matches!(a, Action::SetWeight(_))) {
            return Ok(());
        }
        let summary = self.engine.summary();
        let cx = Context {
            plan: &self.plan,
            summary: &summary,
            t,
            unix_ms: clock::unix_ms(),
            run_id: self.journal.run_id,
            rehearsal: self.rehearsal.is_some(),
        };
        let notes: Vec<_> = actions
            .iter()
            .filter_map(|a| compose(a, &cx, &mut self.notify.breaches))
            .collect();
        for note in notes {
            for dropped in self.notify.offer(note) {
                let total = self.notify.dropped();
                self.delivered(&dropped, total)?;
            }
        }
        Ok(())
    }

    /// A result that came back from a notifier's task.
    pub(super) fn notification_done(&mut self, d: Delivery) -> Result<(), LiveError> {
        let total = self.notify.returned(&d);
        self.delivered(&d, total)
    }

    /// Journals a delivery's result and says it; the URL is never part of either.
    fn delivered(&mut self, d: &Delivery, dropped_total: u64) -> Result<(), LiveError> {
        let t = self.plan_now();
        self.event(t, "notification", &d.journal_body(dropped_total))?;
        let mark = match d.outcome {
            DeliveryOutcome::Delivered { .. } => "✓",
            DeliveryOutcome::Failed { .. } | DeliveryOutcome::Dropped { .. } => "✗",
        };
        self.line(
            t,
            format!(
                "{mark} notify {} ({}, {}): {}",
                d.notifier,
                d.kind,
                d.event.key(),
                d.summary()
            ),
        );
        Ok(())
    }
}
