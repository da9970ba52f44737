//! After the recovery: verifying the cluster until every check holds or the settle time runs out
//! (which measures the RTO), and recording the verdict in the run's journal.

use std::time::{Duration, Instant};

use super::{CALL_TIMEOUT, Drill, DrillError, PreparedDrill, Target, count_keys};
use crate::etcd::{self, EtcdAccess};
use crate::exec::progress::Reporter;
use crate::exec::{self, ExecError, RunSummary};
use crate::inventory::Cluster;
use crate::journal::{DrillCheck, DrillRpo, DrillStage, Event, JournalWriter, RunResult};
use crate::report::{DrillFacts, Verification};
use crate::runbook::action::{
    Action, NoArgs, VerifyHealthyArgs, VerifyKeyArgs, VerifyLeaderArgs, VerifyMemberCountArgs,
};

/// What the recovered cluster must hold.
pub(super) struct Expected<'s> {
    /// The canary, a key and its value, written before the disaster.
    pub(super) canary: &'s (String, String),
    /// A key written after the snapshot, which must be gone.
    pub(super) doomed: Option<&'s str>,
    /// The number of keys before the disaster.
    pub(super) keys: i64,
}

/// Verifies until everything holds or the settle time is over; the checks as last run, and the
/// RTO (from `declared`) if they all held.
pub(super) async fn until_settled(
    target: &Target<'_>,
    expected: &Expected<'_>,
    declared: Instant,
    run: &RunSummary,
) -> (Vec<Verification>, Option<Duration>) {
    let (cluster, drill) = (target.cluster, target.drill);
    let deadline = declared.elapsed() + drill.expect.settle.0;
    let members = drill.expect.members.unwrap_or(cluster.nodes.len() as u32);
    let mut verifications;
    let mut rto = None;
    loop {
        verifications = verify(
            &target.access,
            cluster,
            &target.endpoints,
            members,
            drill,
            expected.canary,
            expected.doomed,
            expected.keys,
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
    (verifications, rto)
}

/// Appends the verdict to the run's journal, so that its report can always be made again. Still
/// under the run's lock (held by `run` until the drill ends).
pub(super) fn record_verdict(
    prepared: &PreparedDrill,
    run: &RunSummary,
    facts: &DrillFacts,
    reporter: &mut Reporter,
) -> Result<(), DrillError> {
    let (mut journal, _) =
        JournalWriter::resume(&run.dir.journal(), &run.dir.id).map_err(ExecError::from)?;
    let record = journal
        .append(Event::Drill {
            stage: verified(facts),
        })
        .map_err(ExecError::from)?;
    reporter.record(&prepared.plan, &record);
    Ok(())
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
