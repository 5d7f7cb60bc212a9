//! Which sampler a simulation uses, and why (docs/simulation.md, "Sampling").
//!
//! The aggregated sampler is the default wherever it is exact in distribution; the
//! per-request sampler stays for what needs individual requests: a plan with flags, whose
//! requests belong to simulated users (the distinct users per flag are counted user by
//! user), and a plan where so many latency faults can overlap on one cohort that the mixture
//! of their combinations would be too large to tabulate. A plan (`simulation.sampler`) or the
//! command line (`--sampler`) can force either; forcing the aggregated sampler where it
//! cannot run is an error, not a silent fallback.

use crate::driver::SimError;
use ramp_core::summary::Sampling;
use ramp_core::{Cohort, FaultEffect, Plan, SamplingMethod};

/// Most latency faults that may act on one cohort at once for the aggregated sampler: their
/// combinations make a mixture of up to 2¹⁰ components, each tabulated over the histogram's
/// buckets.
pub const MAX_OVERLAPPING_LATENCY_FAULTS: usize = 10;

/// Options of a simulation beyond its plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// A sampler forced from the command line (`--sampler`), over the plan's
    /// `simulation.sampler`; `None` leaves the choice to the plan or the simulator.
    pub sampler: Option<SamplingMethod>,
}

/// The sampler for `plan` with `forced` from the command line, and the reason the summary
/// records; an error when the aggregated sampler is asked for a plan it cannot simulate.
pub fn sampling(plan: &Plan, forced: Option<SamplingMethod>) -> Result<Sampling, SimError> {
    let sim = plan.simulation.as_ref().ok_or(SimError::NoSimulation)?;
    let has_users = !plan.flags.flags().is_empty();
    let latency_faults = |cohort: Cohort| {
        let main = sim
            .faults
            .iter()
            .filter(|f| f.cohort == cohort && matches!(f.effect, FaultEffect::AddLatency { .. }))
            .count();
        // A rehearsal's fork adds one fault of its own.
        let rehearsal = plan.rehearsals.iter().any(|r| {
            r.fault.cohort == cohort && matches!(r.fault.effect, FaultEffect::AddLatency { .. })
        });
        main + usize::from(rehearsal)
    };
    let too_many = latency_faults(Cohort::Canary).max(latency_faults(Cohort::Stable))
        > MAX_OVERLAPPING_LATENCY_FAULTS;
    let asked = match (forced, sim.sampler) {
        (Some(m), _) => Some((m, "set on the command line (--sampler)")),
        (None, Some(m)) => Some((m, "set in the plan (simulation.sampler)")),
        (None, None) => None,
    };
    let step_s = Some(plan.evaluate_every.as_secs_f64());
    let (method, reason) = match asked {
        Some((SamplingMethod::Aggregated, from)) if has_users => {
            return Err(SimError::Sampler(format!(
                "the aggregated sampler ({from}) cannot simulate this plan: its flags are counted over simulated users, whose requests are drawn one by one; use the \"request\" sampler or let the simulator choose"
            )));
        }
        Some((SamplingMethod::Aggregated, from)) if too_many => {
            return Err(SimError::Sampler(format!(
                "the aggregated sampler ({from}) cannot simulate this plan: more than {MAX_OVERLAPPING_LATENCY_FAULTS} latency faults can act on one cohort at once; use the \"request\" sampler or let the simulator choose"
            )));
        }
        Some((method, from)) => (method, from.to_string()),
        None if has_users => (
            SamplingMethod::PerRequest,
            "chosen automatically: the plan's flags are counted over simulated users, one request at a time".to_string(),
        ),
        None if too_many => (
            SamplingMethod::PerRequest,
            format!("chosen automatically: more than {MAX_OVERLAPPING_LATENCY_FAULTS} latency faults can act on one cohort at once"),
        ),
        None => (
            SamplingMethod::Aggregated,
            "chosen automatically: no simulated users, so counts are drawn per tick".to_string(),
        ),
    };
    Ok(Sampling {
        method,
        step_s: (method == SamplingMethod::Aggregated)
            .then_some(step_s)
            .flatten(),
        reason,
    })
}
