//! Restore drills: stage a disaster on a non-production cluster, run the runbook that recovers from
//! it, and prove the recovery — the data is back as of the snapshot, nothing after it survived,
//! every member agrees — measuring RTO and RPO for the report.
//!
//! The flow: compile everything first (no side effect before every input is valid); check the
//! cluster is healthy; seed data and a canary; stage the disaster (save a snapshot and write past
//! it, or lose a member, or lose the majority); declare the disaster (RTO starts); run the runbook
//! through the executor; verify until everything holds or the settle time runs out (RTO ends).

use etcdrill_core::drill as spec;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

pub use spec::{
    Disaster, DisasterKind, Drill, Expectations, LoseMajority, LoseMember, RestoreDisaster, Seed,
};

use crate::diagnostic::Diagnostics;
use crate::document::Document;
use crate::etcd::{self, EtcdAccess, EtcdError};
use crate::exec::progress::Reporter;
use crate::exec::run_dir::RunRecord;
use crate::exec::{self, ExecError, Prompter, RunInputs, RunOptions, RunSummary};
use crate::inventory::Cluster;
use crate::journal::{DrillCheck, DrillRpo, DrillStage, Event, JournalWriter, RunResult};
use crate::plan::{ParamInput, Plan, compile};
use crate::report::{DrillFacts, RpoFacts, Verification};
use crate::runbook::Runbook;
use crate::runbook::action::{
    Action, KvPutArgs, NoArgs, SnapshotSaveArgs, VerifyHealthyArgs, VerifyKeyArgs,
    VerifyLeaderArgs, VerifyMemberCountArgs,
};
use crate::source::{SourceFile, YamlPath};

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

fn read(path: &Path) -> Result<SourceFile, DrillError> {
    SourceFile::read(path).map_err(|source| DrillError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads a drill and everything it names, and compiles the runbook: every input is checked here,
/// before the drill touches anything.
pub fn prepare(drill_path: &Path, work_dir: Option<&Path>) -> Result<PreparedDrill, DrillError> {
    let drill = Drill::load(read(drill_path)?)?;
    let disaster = drill.value.disaster_kind(&drill)?;
    let base = drill_path.parent().unwrap_or(Path::new("."));
    let inventory_path = base.join(&drill.value.inventory);
    let runbook_path = base.join(&drill.value.runbook);
    let cluster = Cluster::load(read(&inventory_path)?);
    let runbook = Runbook::load(read(&runbook_path)?);
    let (cluster, runbook) = match (cluster, runbook) {
        (Ok(c), Ok(r)) => (c, r),
        (c, r) => {
            let all = [c.err(), r.err()]
                .into_iter()
                .flatten()
                .flat_map(|d| d.iter().cloned().collect::<Vec<_>>());
            return Err(Diagnostics::new(all.collect()).into());
        }
    };
    check_nodes(&drill, &disaster, &cluster)?;
    let work_dir = work_dir
        .map(Path::to_owned)
        .or_else(|| {
            cluster
                .inventory()
                .controller
                .work_dir
                .clone()
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(".etcdrill"));
    let mut params: Vec<ParamInput> = drill
        .value
        .params
        .iter()
        .map(|(name, value)| ParamInput {
            name: name.clone(),
            value: value.clone(),
            source: drill.source.clone(),
            location: drill.map.value(&YamlPath::root().key("params").key(name)),
        })
        .collect();
    let snapshot = match &disaster {
        DisasterKind::Restore(restore) => {
            let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let path = absolute(
                &work_dir
                    .join("drills")
                    .join(format!("{}-{stamp}.db", drill.value.name)),
            );
            params.push(ParamInput {
                name: restore.snapshot_param.clone(),
                value: serde_yaml::Value::String(path.display().to_string()),
                source: drill.source.clone(),
                location: drill
                    .map
                    .value(&YamlPath::root().key("disaster").key("restore")),
            });
            Some(path)
        }
        _ => None,
    };
    let plan = compile(&runbook, &cluster, &params)?;
    Ok(PreparedDrill {
        drill,
        disaster,
        cluster,
        runbook,
        params,
        plan,
        snapshot,
        paths: (runbook_path, inventory_path),
        facts: Vec::new(),
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Every node a drill names must be in the inventory.
fn check_nodes(
    drill: &Document<Drill>,
    disaster: &DisasterKind,
    cluster: &Cluster,
) -> Result<(), Diagnostics> {
    let named: Vec<(&str, YamlPath)> = match disaster {
        DisasterKind::Restore(r) => r
            .from
            .iter()
            .map(|n| {
                (
                    n.as_str(),
                    YamlPath::root().key("disaster").key("restore").key("from"),
                )
            })
            .collect(),
        DisasterKind::LoseMember(l) => vec![(
            l.node.as_str(),
            YamlPath::root()
                .key("disaster")
                .key("lose_member")
                .key("node"),
        )],
        DisasterKind::LoseMajority(l) => vec![(
            l.survivor.as_str(),
            YamlPath::root()
                .key("disaster")
                .key("lose_majority")
                .key("survivor"),
        )],
    };
    let leader = drill
        .value
        .expect
        .leader
        .iter()
        .map(|n| (n.as_str(), YamlPath::root().key("expect").key("leader")));
    let mut problems = Vec::new();
    for (node, path) in named.into_iter().chain(leader) {
        if cluster.node(node).is_none() {
            let names = cluster.nodes.iter().map(|n| n.name.as_str());
            problems.push(
                drill
                    .error_at(
                        &path,
                        format!(
                            "no node `{node}` in inventory `{}`",
                            cluster.inventory().name
                        ),
                    )
                    .suggest(node, names),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics::new(problems))
    }
}

/// The runbook that stages a lost member or a lost majority: stop each lost member and delete its
/// data dir, one node at a time.
fn disaster_runbook(disaster: &DisasterKind, cluster: &Cluster) -> Option<String> {
    if matches!(disaster, DisasterKind::Restore(_)) {
        return None;
    }
    let lost = lost_nodes(disaster, cluster);
    let quoted = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut text = String::from(
        "name: drill-disaster\nsummary: stage the loss of members for a drill\nsteps:\n",
    );
    for (i, node) in lost.iter().enumerate() {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [wipe-{}]", i - 1)
        };
        let target = quoted(&format!("node:{node}"));
        text.push_str(&format!(
            "  - {{id: stop-{i}, title: Stop the member (disaster), on: {target}, action: etcd.stop_member{needs}}}\n  - {{id: wipe-{i}, title: Delete its data for good (disaster), on: {target}, action: shell, needs: [stop-{i}], destructive: true, rollback: none, with: {{run: 'd={{{{node.data_dir}}}}; if [ -d \"$d\" ]; then find \"$d\" -mindepth 1 -maxdepth 1 -exec rm -rf -- {{}} +; fi'}}}}\n"
        ));
    }
    Some(text)
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

/// Runs a prepared drill.
pub async fn run(
    prepared: &PreparedDrill,
    options: RunOptions,
    prompter: &mut dyn Prompter,
    reporter: &mut Reporter,
    work_dir: &Path,
    shutdown: watch::Receiver<u32>,
) -> Result<DrillOutcome, DrillError> {
    let cluster = &prepared.cluster;
    let drill = &prepared.drill.value;
    let access = EtcdAccess::resolve(cluster.inventory().controller.tls.as_ref())
        .map_err(ExecError::Access)?;
    let endpoints: Vec<String> = cluster.client_urls();
    let etcd_error = |what: &str| {
        let what = what.to_string();
        move |source| DrillError::Etcd {
            what: what.clone(),
            source,
        }
    };
    let call = |action: Action| {
        let endpoints = endpoints.clone();
        let access = &access;
        async move { etcd::execute(access, cluster, &endpoints, &action, CALL_TIMEOUT, None).await }
    };

    // A drill starts from a healthy cluster, so that the recovery is what it measures.
    for check in [
        Action::VerifyHealthy(VerifyHealthyArgs::default()),
        Action::VerifyNoAlarms(NoArgs {}),
    ] {
        call(check)
            .await
            .map_err(|err| DrillError::Unhealthy(exec::error_chain(&err)))?;
    }
    let id: String = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    reporter.note(&format!(
        "drill `{}`: seeding {} keys",
        drill.name, drill.seed.keys
    ));
    seed(&access, &endpoints, &id, &drill.seed)
        .await
        .map_err(etcd_error("seed data"))?;
    let canary = (
        format!("{PREFIX}{id}/canary"),
        format!("before the disaster, {id}"),
    );
    call(Action::EtcdKvPut(KvPutArgs {
        key: canary.0.clone(),
        value: canary.1.clone(),
    }))
    .await
    .map_err(etcd_error("write the canary"))?;

    // Stage the disaster. What happens before the runbook's run is journaled at its start.
    let mut rpo = None;
    let mut doomed = None;
    let expected_keys;
    let mut prologue = Vec::new();
    if !prepared.facts.is_empty() {
        prologue.push(Event::NodeFacts {
            facts: prepared.facts.clone(),
        });
    }
    let seeded = |keys_before: i64| Event::Drill {
        stage: DrillStage::Seeded {
            drill: drill.name.clone(),
            keys: drill.seed.keys,
            canary: canary.0.clone(),
            keys_before,
        },
    };
    match &prepared.disaster {
        DisasterKind::Restore(restore) => {
            let path = prepared
                .snapshot
                .as_ref()
                .expect("a restore drill has a snapshot path");
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| DrillError::Read {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            expected_keys = count_keys(&access, &endpoints)
                .await
                .map_err(etcd_error("count keys"))?;
            prologue.push(seeded(expected_keys));
            let from = restore
                .from
                .as_deref()
                .and_then(|n| cluster.node(n))
                .unwrap_or(&cluster.nodes[0]);
            let saved_at = SystemTime::now();
            let saved = etcd::execute(
                &access,
                cluster,
                std::slice::from_ref(&from.etcd.client_url),
                &Action::EtcdSnapshotSave(SnapshotSaveArgs {
                    path: path.display().to_string(),
                }),
                Duration::from_secs(600),
                None,
            )
            .await
            .map_err(etcd_error("save the snapshot"))?;
            reporter.note(&format!(
                "drill: snapshot saved to {} ({} bytes)",
                path.display(),
                saved.outputs.get("size").map_or("?", String::as_str)
            ));
            let key = format!("{PREFIX}{id}/after-snapshot");
            let written = call(Action::EtcdKvPut(KvPutArgs {
                key: key.clone(),
                value: "written after the snapshot: must vanish".into(),
            }))
            .await
            .map_err(etcd_error("write past the snapshot"))?;
            let snapshot_revision: Option<u64> =
                saved.outputs.get("revision").and_then(|r| r.parse().ok());
            let disaster_revision: Option<u64> =
                written.outputs.get("revision").and_then(|r| r.parse().ok());
            rpo = Some(RpoFacts {
                snapshot_age: saved_at.elapsed().unwrap_or_default(),
                revisions_lost: snapshot_revision
                    .zip(disaster_revision)
                    .map(|(s, d)| d.saturating_sub(s)),
            });
            prologue.push(Event::Drill {
                stage: DrillStage::SnapshotSaved {
                    path: path.display().to_string(),
                    bytes: saved.outputs.get("size").and_then(|s| s.parse().ok()),
                    revision: snapshot_revision,
                },
            });
            doomed = Some(key);
        }
        _ => {
            expected_keys = count_keys(&access, &endpoints)
                .await
                .map_err(etcd_error("count keys"))?;
            prologue.push(seeded(expected_keys));
            let text = disaster_runbook(&prepared.disaster, cluster)
                .expect("a member-loss disaster has a runbook");
            let disaster = Runbook::load(SourceFile::new("(drill disaster)", text))?;
            let plan = compile(&disaster, cluster, &[])?;
            reporter.note("drill: staging the disaster");
            let inputs = RunInputs {
                runbook: &disaster,
                cluster,
                params: &[],
                plan: &plan,
                secrets: vec![],
                prologue: Vec::new(),
            };
            let staged = exec::run(
                inputs,
                options.clone(),
                prompter,
                reporter,
                work_dir,
                |dir| {
                    RunRecord::new(
                        &dir.id,
                        Path::new("(drill disaster)"),
                        &prepared.paths.1,
                        false,
                    )
                },
                shutdown.clone(),
            )
            .await?;
            if staged.result != RunResult::Succeeded {
                return Err(ExecError::Refused(format!(
                    "the disaster could not be staged (run {})",
                    staged.dir.path.display()
                ))
                .into());
            }
            prologue.push(Event::Drill {
                stage: DrillStage::DisasterStaged {
                    lost: lost_nodes(&prepared.disaster, cluster),
                    run: staged.dir.path.display().to_string(),
                },
            });
        }
    }

    // Disaster declared: the recovery clock starts.
    let declared = Instant::now();
    prologue.push(Event::Drill {
        stage: DrillStage::Declared {
            disaster: prepared.disaster.name().into(),
        },
    });
    reporter.note("drill: disaster declared; running the runbook");
    let inputs = RunInputs {
        runbook: &prepared.runbook,
        cluster,
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
        inputs, options, prompter, reporter, work_dir, record, shutdown,
    )
    .await?;

    // Verify until everything holds or the settle time is over.
    let deadline = declared.elapsed() + drill.expect.settle.0;
    let members = drill.expect.members.unwrap_or(cluster.nodes.len() as u32);
    let mut verifications;
    let mut rto = None;
    loop {
        verifications = verify(
            &access,
            cluster,
            &endpoints,
            members,
            drill,
            &canary,
            doomed.as_deref(),
            expected_keys,
        )
        .await;
        if verifications.iter().all(|v| v.passed) {
            rto = Some(declared.elapsed());
            break;
        }
        if run.result != RunResult::Succeeded || declared.elapsed() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let facts = DrillFacts {
        rto,
        rpo,
        verifications,
    };
    // The verdict goes into the run's journal, so that its report can always be made again.
    // Still under the run's lock (held by `run` until the drill ends).
    let (mut journal, _) =
        JournalWriter::resume(&run.dir.journal(), &run.dir.id).map_err(ExecError::from)?;
    let record = journal
        .append(Event::Drill {
            stage: verified(&facts),
        })
        .map_err(ExecError::from)?;
    reporter.record(&prepared.plan, &record);
    Ok(DrillOutcome { run, facts })
}

/// The journal's stage for a drill's checks and measurements.
fn verified(facts: &DrillFacts) -> DrillStage {
    DrillStage::Verified {
        rto_ms: facts.rto.map(|rto| rto.as_millis() as u64),
        rpo: facts.rpo.as_ref().map(|rpo| DrillRpo {
            snapshot_age_ms: rpo.snapshot_age.as_millis() as u64,
            revisions_lost: rpo.revisions_lost,
        }),
        checks: facts
            .verifications
            .iter()
            .map(|v| DrillCheck {
                name: v.name.clone(),
                passed: v.passed,
                detail: v.detail.clone(),
            })
            .collect(),
    }
}

/// The nodes a member-loss disaster stops and wipes, in inventory order.
fn lost_nodes(disaster: &DisasterKind, cluster: &Cluster) -> Vec<String> {
    match disaster {
        DisasterKind::Restore(_) => Vec::new(),
        DisasterKind::LoseMember(l) => vec![l.node.clone()],
        DisasterKind::LoseMajority(l) => cluster
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| *n != l.survivor)
            .collect(),
    }
}

/// Checks the recovered cluster.
#[allow(clippy::too_many_arguments)]
async fn verify(
    access: &EtcdAccess,
    cluster: &Cluster,
    endpoints: &[String],
    members: u32,
    drill: &Drill,
    canary: &(String, String),
    doomed: Option<&str>,
    expected_keys: i64,
) -> Vec<Verification> {
    let mut checks: Vec<(String, Action)> = vec![
        (
            "every endpoint is healthy".into(),
            Action::VerifyHealthy(VerifyHealthyArgs::default()),
        ),
        (
            "no alarm is active".into(),
            Action::VerifyNoAlarms(NoArgs {}),
        ),
        (
            format!("{members} voting members, no learner"),
            Action::VerifyMemberCount(VerifyMemberCountArgs {
                voting: members,
                learners: 0,
            }),
        ),
        (
            match &drill.expect.leader {
                Some(node) => format!("`{node}` leads"),
                None => "a leader is elected".into(),
            },
            Action::VerifyLeader(VerifyLeaderArgs {
                node: drill.expect.leader.clone(),
            }),
        ),
        (
            "every member holds the same data (hash-kv)".into(),
            Action::VerifyHashKv(NoArgs {}),
        ),
        (
            "the canary written before the disaster is back".into(),
            Action::VerifyKey(VerifyKeyArgs {
                key: canary.0.clone(),
                value: Some(canary.1.clone()),
                present: true,
            }),
        ),
    ];
    if let Some(key) = doomed {
        checks.push((
            "the key written after the snapshot is gone".into(),
            Action::VerifyKey(VerifyKeyArgs {
                key: key.to_string(),
                value: None,
                present: false,
            }),
        ));
    }
    let mut results = Vec::new();
    for (name, action) in checks {
        let outcome = etcd::execute(access, cluster, endpoints, &action, CALL_TIMEOUT, None).await;
        results.push(Verification {
            name,
            passed: outcome.is_ok(),
            detail: match outcome {
                Ok(done) => done.summary,
                Err(err) => exec::error_chain(&err),
            },
        });
    }
    let count = count_keys(access, endpoints).await;
    let name = if doomed.is_some() {
        "the key count is the snapshot's"
    } else {
        "no key was lost"
    };
    results.push(Verification {
        name: name.into(),
        passed: matches!(count, Ok(n) if n == expected_keys),
        detail: match count {
            Ok(n) => format!("{n} keys, expected {expected_keys}"),
            Err(err) => exec::error_chain(&err),
        },
    });
    results
}

async fn seed(
    access: &EtcdAccess,
    endpoints: &[String],
    id: &str,
    seed: &Seed,
) -> Result<(), EtcdError> {
    let mut client = access.client(endpoints).await?;
    for i in 0..seed.keys {
        let value: String = (0..seed.value_bytes)
            .map(|j| char::from(b'a' + ((i + j) % 26) as u8))
            .collect();
        tokio::time::timeout(
            CALL_TIMEOUT,
            client.put(format!("{PREFIX}{id}/seed/{i:06}"), value, None),
        )
        .await
        .map_err(|_| EtcdError::Timeout {
            what: "seed".into(),
            timeout: CALL_TIMEOUT,
        })?
        .map_err(|source| EtcdError::Call {
            what: "seed".into(),
            source: source.into(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_loss_disasters_compile_to_stop_and_wipe() {
        let cluster = Cluster::load(SourceFile::new(
            "inv.yaml",
            "name: c\ndefaults: {etcd: {management: {static_pod: {}}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n  - {name: 'b; x', address: 10.0.0.2}\n  - {name: c, address: 10.0.0.3}\n",
        ))
        .unwrap();
        let text = disaster_runbook(
            &DisasterKind::LoseMajority(LoseMajority {
                survivor: "a".into(),
            }),
            &cluster,
        )
        .unwrap();
        let runbook = Runbook::load(SourceFile::new("d.yaml", text)).unwrap();
        let plan = compile(&runbook, &cluster, &[]).unwrap();
        let keys: Vec<String> = plan.steps().map(|(_, s)| s.key.clone()).collect();
        assert_eq!(keys, ["stop-0@b; x", "wipe-0@b; x", "stop-1@c", "wipe-1@c"]);
        assert!(plan.graph.node_weights().filter(|s| s.destructive).count() == 2);
        assert!(
            disaster_runbook(
                &DisasterKind::Restore(RestoreDisaster {
                    snapshot_param: "s".into(),
                    from: None
                }),
                &cluster
            )
            .is_none()
        );
    }
}
