//! Restore drills: stage a disaster on a non-production cluster, run the runbook that recovers from
//! it, and prove the recovery — the data is back as of the snapshot, nothing after it survived,
//! every member agrees — measuring RTO and RPO for the report.
//!
//! The flow, one phase per file: compile everything first (`prepare`: no side effect before every
//! input is valid); check the cluster is healthy; seed data and a canary and stage the disaster
//! (`disaster`: save a snapshot and write past it, or lose a member, or lose the majority); declare
//! the disaster (RTO starts); run the runbook through the executor; verify until everything holds
//! or the settle time runs out (`verify`: RTO ends).

mod disaster;
mod prepare;
mod verify;

use etcdrill_core::drill as spec;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use prepare::prepare;
pub use spec::{
    Disaster, DisasterKind, Drill, Expectations, LoseMajority, LoseMember, RestoreDisaster, Seed,
};

use crate::diagnostic::Diagnostics;
use crate::document::Document;
use crate::etcd::{self, CallOutcome, EtcdAccess, EtcdError};
use crate::exec::progress::Reporter;
use crate::exec::run_dir::RunRecord;
use crate::exec::{self, ExecError, Prompter, RunInputs, RunOptions, RunSummary};
use crate::inventory::Cluster;
use crate::journal::{DrillStage, Event, RunResult};
use crate::plan::{ParamInput, Plan};
use crate::report::DrillFacts;
use crate::runbook::Runbook;
use crate::runbook::action::{Action, NoArgs, VerifyHealthyArgs};

/// Where the drill writes its canaries and seed data.
const PREFIX: &str = "/etcdrill/drill/";
/// How long one etcd call of the drill may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a drill could not run, or stopped without a verdict.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// A file could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The drill, its inventory or its runbook is invalid.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
    /// The cluster was not healthy before the drill: a drill starts from a healthy cluster.
    #[error("nothing was run: the cluster is not healthy before the drill: {0}")]
    Unhealthy(String),
    /// An etcd call of the drill itself failed.
    #[error("the drill's own etcd call failed: {what}")]
    Etcd {
        /// What the drill was doing.
        what: String,
        /// Why.
        #[source]
        source: EtcdError,
    },
    /// The executor could not run the disaster or the runbook.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// A drill loaded with everything it names, compiled and ready.
pub struct PreparedDrill {
    /// The drill file.
    pub drill: Document<Drill>,
    /// Its disaster.
    pub disaster: DisasterKind,
    /// The inventory.
    pub cluster: Cluster,
    /// The runbook.
    pub runbook: Document<Runbook>,
    /// The runbook's parameters, the snapshot's path included.
    pub params: Vec<ParamInput>,
    /// The compiled runbook.
    pub plan: Plan,
    /// Where the drill's snapshot goes, for a restore drill.
    pub snapshot: Option<PathBuf>,
    /// The runbook and inventory paths, for the run record.
    pub paths: (PathBuf, PathBuf),
    /// What the nodes said before the drill touched them, once gathered (the inventory is then
    /// reconciled with them and the plan compiled again); journaled at the run's start.
    pub facts: Vec<crate::facts::NodeFacts>,
}

/// How a drill ended.
#[derive(Debug)]
pub struct DrillOutcome {
    /// The runbook's run.
    pub run: RunSummary,
    /// What was measured and checked.
    pub facts: DrillFacts,
}

impl DrillOutcome {
    /// Whether the drill passed: the runbook succeeded and every check held.
    pub fn passed(&self) -> bool {
        self.run.result == RunResult::Succeeded && self.facts.verifications.iter().all(|v| v.passed)
    }
}

/// Runs a prepared drill, phase by phase: the cluster must be healthy, data and a canary are
/// seeded, the disaster is staged and declared, the runbook recovers, and the recovery is verified
/// (the verdict goes into the run's journal).
pub async fn run(
    prepared: &PreparedDrill,
    options: RunOptions,
    prompter: &mut dyn Prompter,
    reporter: &mut Reporter,
    work_dir: &Path,
    shutdown: watch::Receiver<u32>,
) -> Result<DrillOutcome, DrillError> {
    let target = Target::new(prepared)?;
    let mut executor = Executor {
        options,
        prompter,
        reporter,
        work_dir,
        shutdown,
    };
    target.check_healthy().await?;
    let seeded = disaster::seed(&target, executor.reporter).await?;
    let staged = disaster::stage(&target, &seeded, &mut executor).await?;
    let (declared, run) = recover(prepared, staged.prologue, &mut executor).await?;
    let expected = verify::Expected {
        canary: &seeded.canary,
        doomed: staged.doomed.as_deref(),
        keys: staged.expected_keys,
    };
    let (verifications, rto) = verify::until_settled(&target, &expected, declared, &run).await;
    let facts = DrillFacts {
        rto,
        rpo: staged.rpo,
        verifications,
    };
    verify::record_verdict(prepared, &run, &facts, executor.reporter)?;
    Ok(DrillOutcome { run, facts })
}

/// The cluster a drill runs against and how to reach it.
struct Target<'p> {
    prepared: &'p PreparedDrill,
    cluster: &'p Cluster,
    drill: &'p Drill,
    access: EtcdAccess,
    endpoints: Vec<String>,
}

impl<'p> Target<'p> {
    fn new(prepared: &'p PreparedDrill) -> Result<Self, DrillError> {
        let cluster = &prepared.cluster;
        let access = EtcdAccess::resolve(cluster.inventory().controller.tls.as_ref())
            .map_err(ExecError::Access)?;
        Ok(Target {
            prepared,
            cluster,
            drill: &prepared.drill.value,
            access,
            endpoints: cluster.client_urls(),
        })
    }

    /// Runs one etcd action against every member, within [`CALL_TIMEOUT`].
    async fn call(&self, action: Action) -> Result<CallOutcome, EtcdError> {
        etcd::execute(
            &self.access,
            self.cluster,
            &self.endpoints,
            &action,
            CALL_TIMEOUT,
            None,
        )
        .await
    }

    /// A drill starts from a healthy cluster, so that the recovery is what it measures.
    async fn check_healthy(&self) -> Result<(), DrillError> {
        for check in [
            Action::VerifyHealthy(VerifyHealthyArgs::default()),
            Action::VerifyNoAlarms(NoArgs {}),
        ] {
            self.call(check)
                .await
                .map_err(|err| DrillError::Unhealthy(exec::error_chain(&err)))?;
        }
        Ok(())
    }
}

/// What running a runbook through the executor needs, lent to the phases that run one.
struct Executor<'a> {
    options: RunOptions,
    prompter: &'a mut dyn Prompter,
    reporter: &'a mut Reporter,
    work_dir: &'a Path,
    shutdown: watch::Receiver<u32>,
}

/// Turns a failure of the drill's own etcd call into a [`DrillError`] saying what it was doing.
fn etcd_error(what: &str) -> impl Fn(EtcdError) -> DrillError {
    let what = what.to_string();
    move |source| DrillError::Etcd {
        what: what.clone(),
        source,
    }
}

/// Declares the disaster (the recovery clock starts) and runs the drill's runbook; `prologue` is
/// journaled at the start of its run.
async fn recover(
    prepared: &PreparedDrill,
    mut prologue: Vec<Event>,
    executor: &mut Executor<'_>,
) -> Result<(Instant, RunSummary), DrillError> {
    let declared = Instant::now();
    prologue.push(Event::Drill {
        stage: DrillStage::Declared {
            disaster: prepared.disaster.name().into(),
        },
    });
    executor
        .reporter
        .note("drill: disaster declared; running the runbook");
    let inputs = RunInputs {
        runbook: &prepared.runbook,
        cluster: &prepared.cluster,
        params: &prepared.params,
        plan: &prepared.plan,
        secrets: crate::redact::secret_values(&prepared.runbook.value, &prepared.params),
        prologue,
    };
    let record = |dir: &crate::exec::run_dir::RunDir| {
        // Beside the plan they shaped, as `run` keeps them (best effort: the run does not depend
        // on the copy; `report` reads it to compile the same plan again).
        let _ = crate::facts::write(&dir.path, &prepared.facts);
        RunRecord::with_params(
            &dir.id,
            (&prepared.paths.0, &prepared.paths.1),
            false,
            &prepared.runbook.value,
            &prepared.params,
        )
    };
    let run = exec::run(
        inputs,
        executor.options.clone(),
        executor.prompter,
        executor.reporter,
        executor.work_dir,
        record,
        executor.shutdown.clone(),
    )
    .await?;
    Ok((declared, run))
}

/// The cluster's total number of keys.
async fn count_keys(access: &EtcdAccess, endpoints: &[String]) -> Result<i64, EtcdError> {
    let mut client = access.client(endpoints).await?;
    let options = etcd_client::GetOptions::new()
        .with_all_keys()
        .with_count_only();
    let response = tokio::time::timeout(CALL_TIMEOUT, client.get("", Some(options)))
        .await
        .map_err(|_| EtcdError::Timeout {
            what: "count keys".into(),
            timeout: CALL_TIMEOUT,
        })?
        .map_err(|source| EtcdError::Call {
            what: "count keys".into(),
            source: source.into(),
        })?;
    Ok(response.count())
}
