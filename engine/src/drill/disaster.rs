//! Before the recovery: seeding data and a canary, then staging the disaster: for a restore drill,
//! a snapshot and a write past it that the restore must lose; for a lost member or a lost
//! majority, a small runbook that stops the members and deletes their data.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{
    CALL_TIMEOUT, DisasterKind, Drill, DrillError, Executor, PREFIX, RestoreDisaster, Seed, Target,
    count_keys, etcd_error,
};
use crate::etcd::{self, EtcdAccess, EtcdError};
use crate::exec::progress::Reporter;
use crate::exec::run_dir::RunRecord;
use crate::exec::{self, ExecError, RunInputs};
use crate::inventory::Cluster;
use crate::journal::{DrillStage, Event, RunResult};
use crate::plan::compile;
use crate::report::RpoFacts;
use crate::runbook::Runbook;
use crate::runbook::action::{Action, KvPutArgs, SnapshotSaveArgs};
use crate::source::SourceFile;

/// The drill's own keys: its id (their prefix under [`PREFIX`]) and the canary, a key and its
/// value, written before the disaster.
pub(super) struct Seeded {
    pub(super) id: String,
    pub(super) canary: (String, String),
}

/// What staging the disaster leaves for the recovery and its verification.
pub(super) struct Staged {
    /// Journaled at the start of the runbook's run.
    pub(super) prologue: Vec<Event>,
    /// The keys the cluster held before the disaster: what the recovery must bring back.
    pub(super) expected_keys: i64,
    /// The recovery point of a restore drill.
    pub(super) rpo: Option<RpoFacts>,
    /// The key a restore drill wrote after its snapshot, which the restore must lose.
    pub(super) doomed: Option<String>,
}

/// Seeds the drill's data and writes the canary.
pub(super) async fn seed(
    target: &Target<'_>,
    reporter: &mut Reporter,
) -> Result<Seeded, DrillError> {
    let drill = target.drill;
    let id: String = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    reporter.note(&format!(
        "drill `{}`: seeding {} keys",
        drill.name, drill.seed.keys
    ));
    write_seed(&target.access, &target.endpoints, &id, &drill.seed)
        .await
        .map_err(etcd_error("seed data"))?;
    let canary = (
        format!("{PREFIX}{id}/canary"),
        format!("before the disaster, {id}"),
    );
    target
        .call(Action::EtcdKvPut(KvPutArgs {
            key: canary.0.clone(),
            value: canary.1.clone(),
        }))
        .await
        .map_err(etcd_error("write the canary"))?;
    Ok(Seeded { id, canary })
}

/// Stages the disaster. What happens before the runbook's run is journaled at its start.
pub(super) async fn stage(
    target: &Target<'_>,
    seeded: &Seeded,
    executor: &mut Executor<'_>,
) -> Result<Staged, DrillError> {
    let prepared = target.prepared;
    let mut prologue = Vec::new();
    if !prepared.facts.is_empty() {
        prologue.push(Event::NodeFacts {
            facts: prepared.facts.clone(),
        });
    }
    match &prepared.disaster {
        DisasterKind::Restore(restore) => {
            stage_restore(target, seeded, restore, prologue, executor.reporter).await
        }
        _ => stage_member_loss(target, seeded, prologue, executor).await,
    }
}

/// The journal's stage for the seeded data, with the key count before the disaster.
fn seeded_event(drill: &Drill, canary: &(String, String), keys_before: i64) -> Event {
    Event::Drill {
        stage: DrillStage::Seeded {
            drill: drill.name.clone(),
            keys: drill.seed.keys,
            canary: canary.0.clone(),
            keys_before,
        },
    }
}

/// A restore drill: saves the snapshot, then writes a key past it (the restore must lose it) and
/// measures the recovery point.
async fn stage_restore(
    target: &Target<'_>,
    seeded: &Seeded,
    restore: &RestoreDisaster,
    mut prologue: Vec<Event>,
    reporter: &mut Reporter,
) -> Result<Staged, DrillError> {
    let (prepared, cluster, access) = (target.prepared, target.cluster, &target.access);
    let id = &seeded.id;
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
    let expected_keys = count_keys(access, &target.endpoints)
        .await
        .map_err(etcd_error("count keys"))?;
    prologue.push(seeded_event(target.drill, &seeded.canary, expected_keys));
    let from = restore
        .from
        .as_deref()
        .and_then(|n| cluster.node(n))
        .unwrap_or(&cluster.nodes[0]);
    let saved_at = SystemTime::now();
    let saved = etcd::execute(
        access,
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
    let written = target
        .call(Action::EtcdKvPut(KvPutArgs {
            key: key.clone(),
            value: "written after the snapshot: must vanish".into(),
        }))
        .await
        .map_err(etcd_error("write past the snapshot"))?;
    let snapshot_revision: Option<u64> = saved.outputs.get("revision").and_then(|r| r.parse().ok());
    let disaster_revision: Option<u64> =
        written.outputs.get("revision").and_then(|r| r.parse().ok());
    let rpo = Some(RpoFacts {
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
    Ok(Staged {
        prologue,
        expected_keys,
        rpo,
        doomed: Some(key),
    })
}

/// A lost member or a lost majority: runs the [`disaster_runbook`] through the executor.
async fn stage_member_loss(
    target: &Target<'_>,
    seeded: &Seeded,
    mut prologue: Vec<Event>,
    executor: &mut Executor<'_>,
) -> Result<Staged, DrillError> {
    let (prepared, cluster) = (target.prepared, target.cluster);
    let expected_keys = count_keys(&target.access, &target.endpoints)
        .await
        .map_err(etcd_error("count keys"))?;
    prologue.push(seeded_event(target.drill, &seeded.canary, expected_keys));
    let text = disaster_runbook(&prepared.disaster, cluster)
        .expect("a member-loss disaster has a runbook");
    let disaster = Runbook::load(SourceFile::new("(drill disaster)", text))?;
    let plan = compile(&disaster, cluster, &[])?;
    executor.reporter.note("drill: staging the disaster");
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
        executor.options.clone(),
        executor.prompter,
        executor.reporter,
        executor.work_dir,
        |dir| {
            RunRecord::new(
                &dir.id,
                Path::new("(drill disaster)"),
                &prepared.paths.1,
                false,
            )
        },
        executor.shutdown.clone(),
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
    Ok(Staged {
        prologue,
        expected_keys,
        rpo: None,
        doomed: None,
    })
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

/// Writes the seed keys under the drill's prefix.
async fn write_seed(
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
    use crate::drill::LoseMajority;

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
