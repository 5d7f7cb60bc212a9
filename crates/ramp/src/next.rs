//! The plan to follow (`[next] plan = "…"`): loaded when its plan is read, so that a missing
//! or invalid one is an input error before any work (exit 2, naming both files), and
//! previewed after a run: its stages and one simulated run of it go into the summary, for the
//! report's "Plan to follow" section.

use crate::Invalid;
use ramp_core::engine::Engine;
use ramp_core::summary::{NextPreview, NextSummary};
use ramp_core::{load_plan, Plan};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The plan to follow, loaded.
pub struct Next {
    /// Its file, relative to where ramp runs (so that the report's command can be run
    /// from there as written).
    path: PathBuf,
    /// The plan.
    plan: Arc<Plan>,
}

/// Loads the plan that `plan` (read from `plan_path`) names in `[next]`, relative to its
/// directory; `None` when it names none. A file that cannot be read or is not a valid plan,
/// or the plan naming itself, is an input error.
pub fn load(plan_path: &Path, plan: &Plan) -> anyhow::Result<Option<Next>> {
    let Some(written) = &plan.next else {
        return Ok(None);
    };
    let base = plan_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = base.join(written);
    let same = match (path.canonicalize(), plan_path.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(Invalid(format!(
            "{}: next.plan names this plan itself; name the plan that follows it",
            plan_path.display()
        ))
        .into());
    }
    let next = load_plan(&path).map_err(|e| {
        Invalid(format!(
            "{}: next.plan = {:?}: {e}",
            plan_path.display(),
            written.display()
        ))
    })?;
    Ok(Some(Next {
        path,
        plan: Arc::new(next),
    }))
}

/// The summary's record of `next`: its stages as planned, and one simulated run with
/// `seed` when it has a simulation model (none otherwise: nothing is invented).
pub fn preview(next: &Next, seed: u64) -> NextSummary {
    let planned = Engine::new(Arc::clone(&next.plan)).summary().plan;
    let preview = next
        .plan
        .simulation
        .as_ref()
        .and_then(|_| {
            ramp_sim::simulate_with(
                Arc::clone(&next.plan),
                seed,
                ramp_sim::Options::default(),
                &mut |_| {},
            )
            .ok()
        })
        .map(|s| NextPreview {
            seed,
            outcome: s.outcome,
            stages_run: s.stages.len(),
            duration_s: s.totals.duration_s,
            requests: s.totals.requests,
            reason: s.rollback.as_ref().map(|r| r.reason.clone()).or_else(|| {
                s.stages
                    .last()
                    .filter(|st| st.decision == Some(ramp_core::summary::Decision::Halt))
                    .and_then(|st| st.reasons.first().cloned())
            }),
        });
    NextSummary {
        plan: next.path.display().to_string(),
        deployment_id: next.plan.deployment.id.clone(),
        environment: next.plan.deployment.environment.clone(),
        stages: planned,
        preview,
    }
}
