//! Where the verbs read a journal: the SQLite file `ramp run` writes by default, or a
//! deployment's journal in etcd (`--etcd`, for plans with `[store] etcd`).

use crate::Invalid;
use anyhow::Context;
use clap::Args;
use ramp_etcd::{EtcdConfig, Keys};
use ramp_live::seams::JournalStore;
use ramp_live::stores::{Bridge, Controller, EtcdJournal};
use ramp_store::{Journal, RunRecord};
use std::path::Path;
use std::sync::Arc;

/// The etcd options of the verbs, `status`, `history` and `report`.
#[derive(Args, Debug, Clone, Default)]
pub struct EtcdTarget {
    /// Read the journal from this etcd cluster (client URLs, comma-separated) instead of the
    /// SQLite file: for plans with `[store] etcd`. Needs --deployment.
    #[arg(long, value_delimiter = ',', value_name = "URL,…")]
    pub etcd: Vec<String>,
    /// The key prefix of the plan's `[store] prefix`.
    #[arg(long, default_value = "/ramp", value_name = "PREFIX")]
    pub prefix: String,
}

/// An open journal of either kind.
pub enum Source {
    /// The SQLite file.
    Sqlite(Journal),
    /// One deployment's journal in etcd, with the connection's bridge and the deployment's
    /// keys (for its controllers).
    Etcd(EtcdJournal, Arc<Bridge>, Keys),
}

impl Source {
    /// Opens the journal the options name: etcd when `--etcd` is given (for `deployment`),
    /// else the SQLite file, which must exist.
    pub fn open(
        journal: &Path,
        store: &EtcdTarget,
        deployment: Option<&str>,
    ) -> anyhow::Result<Source> {
        if store.etcd.is_empty() {
            if !journal.exists() {
                return Err(Invalid(format!(
                    "{}: no journal here; pass --journal FILE (the one `ramp run` writes), or --etcd URL,… for a plan with [store] etcd",
                    journal.display()
                ))
                .into());
            }
            return Ok(Source::Sqlite(Journal::open(journal)?));
        }
        let Some(deployment) = deployment else {
            return Err(Invalid(
                "--etcd needs --deployment: the journal in etcd is kept per deployment".into(),
            )
            .into());
        };
        let mut config = EtcdConfig::new(store.etcd.clone());
        config.prefix = store.prefix.clone();
        let bridge = Arc::new(
            Bridge::connect(&config)
                .with_context(|| format!("cannot reach etcd at {}", store.etcd.join(",")))?,
        );
        let keys = Keys::new(&config.prefix, deployment);
        let journal = EtcdJournal::new(Arc::clone(&bridge), &config, deployment, None);
        Ok(Source::Etcd(journal, bridge, keys))
    }

    /// The journal as the seam reads it.
    pub fn store(&self) -> &dyn JournalStore {
        match self {
            Source::Sqlite(j) => j,
            Source::Etcd(j, ..) => j,
        }
    }

    /// Where the journal is, for messages.
    pub fn name(&self) -> String {
        self.store().location()
    }

    /// The runs, newest first, of `deployment` (every deployment of an SQLite file when
    /// `None`).
    pub fn runs(&self, deployment: Option<&str>) -> anyhow::Result<Vec<RunRecord>> {
        Ok(match self {
            Source::Sqlite(j) => j.runs(deployment)?,
            Source::Etcd(j, ..) => {
                let mut runs = j.runs()?;
                runs.reverse();
                runs
            }
        })
    }

    /// One run, if the journal holds it.
    pub fn run(&self, id: i64) -> anyhow::Result<Option<RunRecord>> {
        Ok(match self {
            Source::Sqlite(j) => j.run(id)?,
            Source::Etcd(j, ..) => j.run(id)?,
        })
    }

    /// The deployment's controllers, leader first, when the journal is in etcd.
    pub fn controllers(&self) -> anyhow::Result<Option<Vec<Controller>>> {
        match self {
            Source::Sqlite(_) => Ok(None),
            Source::Etcd(_, bridge, keys) => Ok(Some(
                ramp_live::stores::controllers(bridge, keys)
                    .context("cannot read the deployment's election in etcd")?,
            )),
        }
    }
}
