//! HAProxy's own counters as a live run's metrics source (`[metrics] source = "proxy"` or
//! `"router"` with a HAProxy router), and the parsers of the runtime API's answers.
//!
//! A reading is `show info` (the process's `Pid` and `Start_time_sec`: a new HAProxy process,
//! after a restart or a reload, counts from zero, so they are the counters' epoch and a change
//! is a gap) and `show stat BACKEND 4 -1` (the backend's servers, CSV), summed per side:
//! - requests: every response a server gave (`hrsp_1xx` to `hrsp_5xx` and `hrsp_other`) plus
//!   every request that got none (`econ`, a failed connection to the server; `eresp`, an
//!   error or abort while reading its response);
//! - errors: `hrsp_5xx` + `econ` + `eresp`;
//! - in flight: `scur`, the server's current sessions;
//! - no latency: HAProxy keeps averages, not a distribution, so latency gates have no data
//!   (the plan loader refuses them with this source; `[metrics] source = "prometheus"`
//!   judges latency).
//!
//! The canary weight is not part of a reading: the driver asks the router.

use super::runtime::Runtime;
use crate::seams::{MetricsSource, Reading};
use crate::source::{CohortCounters, Counters, SourceError};
use ramp_core::plan::HaproxyRouter as Plan;

/// The columns of `show stat` a response is counted from.
const RESPONSES: [&str; 6] = [
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
];

/// The columns of `show stat` counted as requests that failed without a response.
const FAILURES: [&str; 2] = ["econ", "eresp"];

/// HAProxy's counters of the plan's servers.
#[derive(Debug, Clone)]
pub struct HaproxyStats {
    /// The runtime API.
    runtime: Runtime,
    /// The backend and its two sides.
    plan: Plan,
}

impl HaproxyStats {
    /// The counters of the servers of `plan`, read through `runtime`.
    pub(super) fn new(runtime: Runtime, plan: Plan) -> HaproxyStats {
        HaproxyStats { runtime, plan }
    }

    /// One side's counters summed over its servers, each server required.
    fn side(&self, rows: &[Row], names: &[String]) -> Result<CohortCounters, SourceError> {
        let mut sum = CohortCounters::default();
        for name in names {
            let row = rows.iter().find(|r| r.server == *name).ok_or_else(|| {
                self.runtime.error(format!(
                    "show stat has no server {name:?} in backend {:?}",
                    self.plan.backend
                ))
            })?;
            sum.completed += row.responses + row.failures;
            sum.errors += row.errors;
            sum.in_flight += row.in_flight;
        }
        Ok(sum)
    }
}

impl MetricsSource for HaproxyStats {
    fn noun(&self) -> &'static str {
        "HAProxy"
    }

    async fn read(&self) -> Result<Reading, SourceError> {
        let info = self.runtime.ask("show info").await?;
        let epoch = epoch(&info).map_err(|e| self.runtime.error(format!("show info: {e}")))?;
        let backend = &self.plan.backend;
        let csv = self
            .runtime
            .ask(&format!("show stat {backend} 4 -1"))
            .await?;
        let rows = stat_rows(&csv, backend)
            .map_err(|e| self.runtime.error(format!("show stat {backend}: {e}")))?;
        Ok(Reading {
            counters: Counters {
                epoch: Some(epoch),
                stable: self.side(&rows, &self.plan.stable)?,
                canary: self.side(&rows, &self.plan.canary)?,
            },
            canary_bp: None,
        })
    }
}

/// One server's line of `show stat`, as far as a reading needs it.
#[derive(Debug, PartialEq)]
pub(super) struct Row {
    /// `svname`.
    server: String,
    /// The sum of the `hrsp_*` columns.
    responses: u64,
    /// `econ` + `eresp`.
    failures: u64,
    /// `hrsp_5xx` + `econ` + `eresp`.
    errors: u64,
    /// `scur`.
    in_flight: i64,
}

/// The counters' epoch from `show info`: `haproxy:PID:START` (the process and when it
/// started), new with every HAProxy process.
pub(super) fn epoch(info: &str) -> Result<String, String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("no {name} in the answer: {}", excerpt(info)))
    };
    Ok(format!(
        "haproxy:{}:{}",
        field("Pid")?,
        field("Start_time_sec")?
    ))
}

/// The server lines of `backend` in `show stat`'s CSV, by the column names of its header.
pub(super) fn stat_rows(csv: &str, backend: &str) -> Result<Vec<Row>, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| format!("HAProxy answered: {}", excerpt(csv)))?;
    let names: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("the CSV has no {name} column"))
    };
    let (px, sv, scur) = (col("pxname")?, col("svname")?, col("scur")?);
    let responses = RESPONSES.map(col);
    let failures = FAILURES.map(col);
    let five = col("hrsp_5xx")?;
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.get(px) != Some(&backend)
            || matches!(cells.get(sv), Some(&"BACKEND" | &"FRONTEND"))
        {
            continue;
        }
        let number = |i: &Result<usize, String>| -> Result<u64, String> {
            let i = i.clone()?;
            let cell = cells.get(i).copied().unwrap_or("");
            if cell.is_empty() {
                return Ok(0);
            }
            cell.parse::<u64>()
                .map_err(|_| format!("{:?} is not a count in column {}", cell, names[i]))
        };
        let responses = responses.iter().map(number).sum::<Result<u64, String>>()?;
        let failures = failures.iter().map(number).sum::<Result<u64, String>>()?;
        rows.push(Row {
            server: cells.get(sv).copied().unwrap_or("").to_string(),
            responses,
            failures,
            errors: number(&Ok(five))? + failures,
            in_flight: i64::try_from(number(&Ok(scur))?).unwrap_or(i64::MAX),
        });
    }
    Ok(rows)
}

/// The servers of `show servers state BACKEND` with their weight in force (`srv_uweight`).
pub(super) fn servers_state(answer: &str) -> Result<Vec<(String, u32)>, String> {
    let mut lines = answer.lines();
    if lines.next().map(str::trim) != Some("1") {
        return Err(format!("HAProxy answered: {}", excerpt(answer)));
    }
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or("the answer has no header line")?
        .split_whitespace()
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|n| *n == name)
            .ok_or(format!("the answer has no {name} column"))
    };
    let (name, weight) = (col("srv_name")?, col("srv_uweight")?);
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let server = cells.get(name).ok_or("a server line is cut short")?;
            let w = cells
                .get(weight)
                .and_then(|w| w.parse::<u32>().ok())
                .ok_or_else(|| format!("server {server:?} has no weight"))?;
            Ok((server.to_string(), w))
        })
        .collect()
}

/// The start of an answer, on one line, for messages.
fn excerpt(answer: &str) -> String {
    let one: String = answer
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(120)
        .collect();
    if one.is_empty() {
        "nothing".into()
    } else {
        format!("{one:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_their_column_names() {
        let state = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n3 app 1 s1 127.0.0.1 2 0 247 100\n3 app 2 c1 127.0.0.1 2 0 13 0\n\n";
        assert_eq!(
            servers_state(state).unwrap(),
            [("s1".to_string(), 247), ("c1".to_string(), 13)]
        );
        assert_eq!(
            servers_state("Can't find backend.\n\n").unwrap_err(),
            "HAProxy answered: \"Can't find backend.\""
        );
        let csv = "# pxname,svname,scur,econ,eresp,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,\napp,s1,2,1,0,0,90,0,3,6,0,\napp,BACKEND,0,1,0,0,90,0,3,6,0,\nother,s1,0,0,0,0,5,0,0,0,0,\n";
        assert_eq!(
            stat_rows(csv, "app").unwrap(),
            [Row {
                server: "s1".into(),
                responses: 99,
                failures: 1,
                errors: 7,
                in_flight: 2
            }]
        );
        assert!(stat_rows("No such backend.\n", "app")
            .unwrap_err()
            .contains("No such backend"));
        assert_eq!(
            epoch("Name: HAProxy\nPid: 42\nStart_time_sec: 1700000000\n").unwrap(),
            "haproxy:42:1700000000"
        );
        assert!(epoch("Name: HAProxy\n").unwrap_err().contains("no Pid"));
    }
}
