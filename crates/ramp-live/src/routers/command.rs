//! The command router (`[router] kind = "command"`): programs that set and read the canary's
//! weight, for routers Ramp has no client of its own for (a cloud load balancer's CLI,
//! `kubectl patch` of a service mesh's route).
//!
//! The contract: `set_weight` is run with its placeholders filled in (`{weight}` the percent,
//! `{weight_bp}` basis points, `{deployment}`, `{run}`), never through a shell, in the plan's
//! directory with stdin closed; exit 0 means the router applies the weight from its next
//! request, any other exit is an error quoting the last line it printed on stderr. The
//! optional `get_weight` prints the weight in force as a percent (a number from 0 to 100,
//! surrounding whitespace ignored); anything else is an error naming what it printed.
//! Without `get_weight` the weight in force is taken as the last one this process set, so a
//! restarted controller knows none and sets its stage's weight again (the driver re-asserts
//! a weight it cannot confirm). Every program is killed at the router's `timeout`, and only
//! the last 64 KiB of its output are kept.

use crate::checks::{run_program, OUTPUT_LIMIT};
use crate::seams::{Router, RouterIdentity};
use crate::source::{FaultRequest, SourceError};
use ramp_core::argv::{render, ArgValues};
use ramp_core::plan::CommandRouter as Plan;
use ramp_core::Weight;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A router driven by the plan's commands.
#[derive(Debug, Clone)]
pub struct CommandRouter {
    /// The commands and their timeout.
    plan: Plan,
    /// Where the programs run and relative program paths are found.
    base_dir: PathBuf,
    /// `{deployment}`.
    deployment: String,
    /// "command router (`program`)", for messages.
    location: String,
    /// The last weight `set_weight` applied (basis points), the weight in force without
    /// `get_weight`.
    last: Arc<Mutex<Option<u32>>>,
}

impl CommandRouter {
    /// The router of the plan's `[router] kind = "command"`, its programs run in `base_dir`.
    pub fn new(plan: Plan, base_dir: PathBuf, deployment: &str) -> CommandRouter {
        let program = plan.set_weight.first().cloned().unwrap_or_default();
        CommandRouter {
            location: format!("command router ({program})"),
            plan,
            base_dir,
            deployment: deployment.to_string(),
            last: Arc::default(),
        }
    }

    /// An error of this router.
    fn error(&self, message: String) -> SourceError {
        SourceError::Router {
            router: self.location.clone(),
            message,
        }
    }

    /// The last weight set by this process.
    fn last(&self) -> Option<u32> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one template with `values` filled in.
    async fn run(&self, template: &[String], values: &ArgValues<'_>) -> crate::checks::Ran {
        let argv: Vec<String> = template.iter().map(|a| render(a, values)).collect();
        let timeout = Duration::from_millis(self.plan.timeout.0);
        run_program(&argv, &self.base_dir, None, timeout, 1).await
    }
}

/// The weight a `get_weight` program printed, in basis points: a percent from 0 to 100.
fn parse_percent(printed: &str) -> Result<u32, String> {
    let text = printed.trim();
    text.parse::<f64>()
        .ok()
        .and_then(Weight::from_percent)
        .map(|w| u32::from(w.basis_points()))
        .ok_or_else(|| {
            let shown: String = text.chars().take(80).collect();
            format!("get_weight printed {shown:?}; expected the canary's weight as a percent from 0 to 100, such as \"5\" or \"2.5\"")
        })
}

impl Router for CommandRouter {
    fn location(&self) -> &str {
        &self.location
    }

    fn noun(&self) -> &'static str {
        "the command router"
    }

    /// Commands cannot say which deployment they route nor which run set the weight: see
    /// the module documentation of [`crate::routers`].
    async fn identity(&self) -> Result<RouterIdentity, SourceError> {
        Ok(RouterIdentity::default())
    }

    async fn weight(&self) -> Result<u32, SourceError> {
        let Some(get) = &self.plan.get_weight else {
            return self.last().ok_or_else(|| {
                self.error("no weight set by this controller yet, and the plan has no get_weight to read it".into())
            });
        };
        let values = ArgValues {
            weight: None,
            deployment: &self.deployment,
            run: "",
        };
        let ran = self.run(get, &values).await;
        if !ran.ok {
            return Err(self.error(format!("get_weight failed: {}", ran.detail)));
        }
        if ran.stdout.len() >= OUTPUT_LIMIT {
            return Err(self.error(format!(
                "get_weight printed more than {OUTPUT_LIMIT} bytes; expected one number"
            )));
        }
        parse_percent(&ran.stdout).map_err(|e| self.error(e))
    }

    async fn set_weight(&self, weight: Weight, run: &str) -> Result<(), SourceError> {
        let values = ArgValues {
            weight: Some(weight),
            deployment: &self.deployment,
            run,
        };
        let ran = self.run(&self.plan.set_weight, &values).await;
        if !ran.ok {
            return Err(self.error(format!("set_weight {weight} failed: {}", ran.detail)));
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(u32::from(weight.basis_points()));
        Ok(())
    }

    async fn add_fault(&self, _fault: &FaultRequest) -> Result<String, SourceError> {
        Err(self
            .error("the command router cannot inject faults; rehearse through a Ramp proxy".into()))
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        Err(self
            .error("the command router cannot inject faults; rehearse through a Ramp proxy".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_weight_prints_a_percent_and_nothing_else() {
        assert_eq!(parse_percent(" 5\n"), Ok(500));
        assert_eq!(parse_percent("2.5"), Ok(250));
        assert_eq!(parse_percent("100"), Ok(10_000));
        for bad in ["", "101", "-1", "5%", "five", "0.001"] {
            let e = parse_percent(bad).unwrap_err();
            assert!(e.contains(&format!("{:?}", bad.trim())), "{e}");
        }
    }
}
