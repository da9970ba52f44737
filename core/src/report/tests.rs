//! Reports of synthetic journals over a plan compiled in-test: success, failure with rollback, a
//! resumed run, skips, retries and timeouts, hostile names and secrets; snapshots of the Markdown
//! and JSON; and the HTML page rendered by a real headless Chromium.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::inventory::Cluster;
use crate::journal::{
    Event, JOURNAL_FORMAT, JOURNAL_VERSION, Journal, JournalHeader, Record, RunResult, SkipReason,
    StepResult,
};
use crate::plan::{ParamInput, Plan, compile};
use crate::runbook::Runbook;
use crate::source::SourceFile;

const INVENTORY: &str = "\
name: lab
defaults:
  etcd:
    management: {static_pod: {}}
nodes:
  - {name: cp1, address: 10.0.0.1}
  - {name: cp2, address: 10.0.0.2}
  - {name: cp3, address: 10.0.0.3}
";

const RUNBOOK: &str = r#"
name: drill-restore
summary: Restore every member from one snapshot
params:
  snapshot: {type: path, description: The snapshot on the controller}
  token: {type: string, secret: true, default: hunter2-secret}
steady_state:
  - {id: healthy, title: Every member is healthy, action: verify.healthy, check: before}
steps:
  - id: verify-snapshot
    title: Verify the snapshot
    on: controller
    action: etcd.snapshot.verify
    with: {path: '{{params.snapshot}}'}
  - id: stop
    title: Stop the member
    on: each
    action: etcd.stop_member
    needs: [verify-snapshot]
  - id: restore
    title: Restore the snapshot
    on: each
    action: shell
    with: {run: "etcdutl snapshot restore {{params.snapshot}} --initial-cluster-token {{params.token}}\necho restored"}
    needs: [{step: stop, pairing: all}]
    retries: 2
  - id: start
    title: Start the member
    on: each
    action: etcd.start_member
    needs: [{step: restore, pairing: all}]
  - id: wait
    title: Wait until every member is healthy
    on: cluster
    action: wait.healthy
    needs: [start]
  - id: verify-leader
    title: A leader is elected
    on: cluster
    action: verify.leader
    needs: [wait]
"#;

const SECRET: &str = "hunter2-secret";

fn compile_plan(runbook: &str, inventory: &str, params: &[(&str, &str)]) -> Plan {
    let runbook =
        Runbook::load(SourceFile::new("rb.yaml", runbook)).unwrap_or_else(|e| panic!("{e}"));
    let cluster =
        Cluster::load(SourceFile::new("inv.yaml", inventory)).unwrap_or_else(|e| panic!("{e}"));
    let source = SourceFile::new("command line", "");
    let inputs: Vec<ParamInput> = params
        .iter()
        .map(|(name, value)| ParamInput {
            name: name.to_string(),
            value: serde_yaml::Value::String(value.to_string()),
            source: source.clone(),
            location: None,
        })
        .collect();
    compile(&runbook, &cluster, &inputs).unwrap_or_else(|e| panic!("{e}"))
}

fn sample_plan() -> Plan {
    compile_plan(RUNBOOK, INVENTORY, &[("snapshot", "/backups/snap.db")])
}

/// 2026-01-01T00:00:00Z.
const EPOCH_MS: u64 = 1_767_225_600_000;

fn ts(ms: u64) -> Timestamp {
    Timestamp(UNIX_EPOCH + Duration::from_millis(EPOCH_MS + ms))
}

const RUN_ID: &str = "20260101T000000Z-drill-restore-a1b2c3";

/// A journal built by hand, with fixed times.
struct Script {
    records: Vec<Record>,
}

impl Script {
    fn new() -> Self {
        Self {
            records: Vec::new(),
        }
    }

    fn event(&mut self, ms: u64, event: Event) -> &mut Self {
        self.records.push(Record {
            seq: self.records.len() as u64 + 1,
            at: ts(ms),
            event,
        });
        self
    }

    fn started(&mut self, ms: u64) -> &mut Self {
        self.event(
            ms,
            Event::RunStarted {
                runbook: "drill-restore".into(),
                inventory: "lab".into(),
                check: false,
                etcdrill: "0.1.0".into(),
            },
        )
    }

    fn attempt(
        &mut self,
        key: &str,
        attempt: u32,
        start: u64,
        duration: u64,
        result: StepResult,
    ) -> &mut Self {
        let tail = match &result {
            StepResult::Failed { error } => format!("etcdutl: {error}\n"),
            _ => String::new(),
        };
        self.event(
            start,
            Event::StepStarted {
                step: key.into(),
                attempt,
            },
        )
        .event(
            start + duration,
            Event::StepFinished {
                step: key.into(),
                attempt,
                result,
                duration_ms: duration,
                exit_status: None,
                outputs: Default::default(),
                output_tail: tail,
            },
        )
    }

    fn ok(&mut self, key: &str, start: u64, duration: u64) -> &mut Self {
        self.attempt(key, 1, start, duration, StepResult::Succeeded)
    }

    fn skipped(&mut self, key: &str, ms: u64, reason: SkipReason) -> &mut Self {
        self.event(
            ms,
            Event::StepSkipped {
                step: key.into(),
                reason,
            },
        )
    }

    fn finished(&mut self, ms: u64, result: RunResult) -> &mut Self {
        self.event(ms, Event::RunFinished { result })
    }

    fn journal(&self, plan: &Plan) -> Journal {
        Journal {
            header: JournalHeader {
                format: JOURNAL_FORMAT.into(),
                version: JOURNAL_VERSION,
                minor: 0,
                run_id: RUN_ID.into(),
                plan_digest: plan.digest(),
                created_at: ts(0),
            },
            records: self.records.clone(),
            torn_tail: false,
        }
    }
}

fn failed(error: &str) -> StepResult {
    StepResult::Failed {
        error: error.into(),
    }
}

fn record() -> RunRecord {
    let mut record = RunRecord::new(
        RUN_ID,
        Path::new("runbooks/drill-restore.yaml"),
        Path::new("inventories/lab.yaml"),
        false,
    );
    record.add_param("snapshot", &"/backups/snap.db".into(), false);
    record.add_param("token", &SECRET.into(), true);
    record
}

fn context(drill: Option<DrillFacts>) -> ReportContext {
    ReportContext {
        run_dir: Some(PathBuf::from("/var/lib/etcdrill/runs").join(RUN_ID)),
        record: Some(record()),
        drill,
        generated_at: Some(ts(120_000)),
        secrets: vec![SECRET.into()],
    }
}

fn drill_facts() -> DrillFacts {
    DrillFacts {
        rto: Some(Duration::from_millis(58_400)),
        rpo: Some(RpoFacts {
            snapshot_age: Duration::from_secs(300),
            revisions_lost: Some(120),
        }),
        verifications: vec![
            Verification {
                name: "canary keys readable".into(),
                passed: true,
                detail: "300 of 300 keys".into(),
            },
            Verification {
                name: "revision bumped".into(),
                passed: true,
                detail: "revision 1000000450 > 450".into(),
            },
        ],
    }
}

/// A successful drill: one restore needed a retry, one took over 30 s.
fn success_journal(plan: &Plan) -> Journal {
    let mut s = Script::new();
    s.started(0)
        .ok("steady-before.healthy", 100, 400)
        .ok("verify-snapshot", 600, 2_300)
        .ok("stop@cp1", 3_000, 1_200)
        .ok("stop@cp2", 4_300, 1_100)
        .ok("stop@cp3", 5_500, 1_300)
        .ok("restore@cp1", 7_000, 35_000)
        .attempt(
            "restore@cp2",
            1,
            7_000,
            900,
            failed("exit status 1: snapshot restore: file exists"),
        )
        .attempt("restore@cp2", 2, 9_000, 8_000, StepResult::Succeeded)
        .ok("restore@cp3", 7_000, 9_500)
        .ok("start@cp1", 42_100, 1_000)
        .ok("start@cp2", 42_100, 1_400)
        .ok("start@cp3", 42_100, 1_200)
        .ok("wait", 43_600, 4_700)
        .ok("verify-leader", 48_400, 300)
        .finished(48_800, RunResult::Succeeded);
    s.journal(plan)
}

/// A failed run: a restore times out, the stops are rolled back and one rollback fails.
fn failure_journal(plan: &Plan) -> Journal {
    let mut s = Script::new();
    s.started(0)
        .ok("steady-before.healthy", 100, 400)
        .ok("verify-snapshot", 600, 2_300)
        .ok("stop@cp1", 3_000, 1_200)
        .ok("stop@cp2", 4_300, 1_100)
        .ok("stop@cp3", 5_500, 1_300)
        .ok("restore@cp1", 7_000, 5_000)
        .ok("restore@cp3", 7_000, 5_500)
        .attempt("restore@cp2", 1, 7_000, 20_000, StepResult::TimedOut)
        .attempt("restore@cp2", 2, 28_000, 20_000, StepResult::TimedOut)
        .attempt(
            "restore@cp2",
            3,
            50_000,
            1_000,
            failed("exit status 2: no space left on device"),
        )
        .skipped("start@cp1", 51_000, SkipReason::FailFast)
        .skipped("start@cp2", 51_000, SkipReason::FailFast)
        .skipped("start@cp3", 51_000, SkipReason::FailFast)
        .event(
            51_100,
            Event::RollbackStarted {
                step: "stop@cp3".into(),
            },
        )
        .event(
            52_100,
            Event::RollbackFinished {
                step: "stop@cp3".into(),
                result: StepResult::Succeeded,
                duration_ms: 1_000,
                output_tail: String::new(),
            },
        )
        .event(
            52_200,
            Event::RollbackStarted {
                step: "stop@cp2".into(),
            },
        )
        .event(
            55_200,
            Event::RollbackFinished {
                step: "stop@cp2".into(),
                result: failed("etcd did not start: data dir is empty"),
                duration_ms: 3_000,
                output_tail: "static pod manifest restored\netcd exited 1\n".into(),
            },
        )
        .event(
            55_300,
            Event::RollbackStarted {
                step: "stop@cp1".into(),
            },
        )
        .event(
            56_300,
            Event::RollbackFinished {
                step: "stop@cp1".into(),
                result: StepResult::Succeeded,
                duration_ms: 1_000,
                output_tail: String::new(),
            },
        )
        .finished(56_400, RunResult::RollbackFailed);
    s.journal(plan)
}

/// A run whose controller died during the restores and was resumed two minutes later.
fn resumed_journal(plan: &Plan) -> Journal {
    let mut s = Script::new();
    s.started(0)
        .ok("steady-before.healthy", 100, 400)
        .ok("verify-snapshot", 600, 2_300)
        .ok("stop@cp1", 3_000, 1_200)
        .ok("stop@cp2", 4_300, 1_100)
        .ok("stop@cp3", 5_500, 1_300)
        .ok("restore@cp1", 7_000, 3_000)
        .event(
            7_000,
            Event::StepStarted {
                step: "restore@cp2".into(),
                attempt: 1,
            },
        )
        .ok("restore@cp3", 7_000, 3_500)
        // The controller dies at 10.5 s; another continues at 130 s.
        .event(
            130_000,
            Event::RunResumed {
                previous_records: 15,
            },
        )
        .ok("restore@cp2", 130_200, 2_800)
        .ok("start@cp1", 133_100, 1_000)
        .ok("start@cp2", 133_100, 1_000)
        .ok("start@cp3", 133_100, 1_000)
        .ok("wait", 134_200, 2_000)
        .ok("verify-leader", 136_300, 200)
        .finished(136_600, RunResult::Succeeded);
    s.journal(plan)
}

/// A run stopped by Ctrl-C after the stops, with a leader check skipped by its condition.
fn interrupted_journal(plan: &Plan) -> Journal {
    let mut s = Script::new();
    s.started(0)
        .ok("steady-before.healthy", 100, 400)
        .ok("verify-snapshot", 600, 2_300)
        .ok("stop@cp1", 3_000, 1_200)
        .ok("stop@cp2", 4_300, 1_100)
        .event(
            5_000,
            Event::Interrupted {
                reason: "stop requested (Ctrl-C or SIGTERM)".into(),
            },
        )
        .skipped("stop@cp3", 5_400, SkipReason::Interrupted)
        .finished(5_500, RunResult::Interrupted);
    s.journal(plan)
}

fn success() -> Report {
    let plan = sample_plan();
    Report::build(&plan, &success_journal(&plan), context(Some(drill_facts())))
}

fn failure() -> Report {
    let plan = sample_plan();
    Report::build(&plan, &failure_journal(&plan), context(None))
}

fn all_formats(report: &Report) -> [(&'static str, String); 4] {
    [
        ("markdown", markdown::render(report)),
        ("html", html::render(report)),
        ("json", json::render(report)),
        ("junit", junit::render(report)),
    ]
}

/// Pins a rendered report; the plan digest changes with every compiler change, so it is masked.
fn snapshot(name: &str, text: String) {
    insta::with_settings!({filters => vec![
        (r"[0-9a-f]{64}", "[plan digest]"),
        (r"`[0-9a-f]{12}`", "`[plan digest]`"),
    ]}, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn markdown_of_a_successful_drill() {
    snapshot(
        "markdown_of_a_successful_drill",
        markdown::render(&success()),
    );
}

#[test]
fn json_of_a_successful_drill() {
    snapshot("json_of_a_successful_drill", json::render(&success()));
}

#[test]
fn markdown_of_a_failed_run_with_a_failed_rollback() {
    snapshot(
        "markdown_of_a_failed_run_with_a_failed_rollback",
        markdown::render(&failure()),
    );
}

#[test]
fn json_of_a_failed_run_with_a_failed_rollback() {
    snapshot(
        "json_of_a_failed_run_with_a_failed_rollback",
        json::render(&failure()),
    );
}

#[test]
fn a_successful_drill_states_its_verdict_timings_and_findings() {
    let report = success();
    assert_eq!(report.format, REPORT_FORMAT);
    assert_eq!(report.verdict.outcome, Outcome::Succeeded);
    assert_eq!(report.verdict.title, "Drill SUCCEEDED");
    assert!(markdown::render(&report).starts_with("# Drill SUCCEEDED\n"));
    assert_eq!(report.timing.total_ms, 48_800);
    assert_eq!(report.timing.sessions, 1);
    assert_eq!(
        report.lanes,
        ["controller", "cluster", "cp1", "cp2", "cp3"],
        "controller and cluster lanes, then every node"
    );

    let restore = report.step("restore@cp2").unwrap();
    assert_eq!(restore.status, StepStatus::Succeeded);
    assert_eq!(restore.attempts.len(), 2);
    assert_eq!(
        (restore.start_ms, restore.end_ms, restore.duration_ms),
        (Some(7_000), Some(17_000), Some(10_000))
    );
    assert_eq!(restore.lane, "cp2");
    assert_eq!(restore.node.as_deref(), Some("cp2"));
    assert!(
        restore
            .operation
            .script
            .as_deref()
            .unwrap()
            .contains("etcdutl snapshot restore")
    );

    let downtime = report.downtime.as_ref().unwrap();
    assert_eq!(downtime.label, "downtime (first member stop to healthy)");
    assert_eq!(
        (
            downtime.start_ms,
            downtime.end_ms,
            downtime.to_step.as_deref()
        ),
        (3_000, Some(48_700), Some("verify-leader"))
    );

    let kinds = |kind| {
        report
            .findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.step.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(FindingKind::Retried), ["restore@cp2"]);
    assert_eq!(
        kinds(FindingKind::Slow),
        ["restore@cp1", "restore@cp2", "restore@cp3"],
        "the three slowest"
    );
    assert!(
        report.findings.iter().any(|f| f
            .message
            .contains("`restore@cp1` took 35.0 s, 71% of the run (over 30 s)")),
        "{:#?}",
        report.findings
    );
    let main = &report.time_spent.by_phase[1];
    assert_eq!(main.name, "main steps");
    assert_eq!(main.span_ms, 48_700 - 600);
    assert_eq!(report.time_spent.by_step[0].name, "restore");
    assert!(report.reproduce.resume.is_none());
}

#[test]
fn a_failed_run_names_the_failure_rollbacks_and_fail_fast_skips() {
    let report = failure();
    assert_eq!(report.verdict.outcome, Outcome::RollbackFailed);
    assert_eq!(report.verdict.title, "Run FAILED, ROLLBACK FAILED");
    assert_eq!(
        report.verdict.reason.as_deref(),
        Some(
            "`restore@cp2` failed: exit status 2: no space left on device; the rollback of `stop@cp2` failed: the cluster needs a person"
        )
    );
    let restore = report.step("restore@cp2").unwrap();
    assert_eq!(restore.status, StepStatus::Failed);
    assert_eq!(restore.attempts.len(), 3);
    let stop = report.step("stop@cp2").unwrap();
    let rollback = stop.rollback.as_ref().unwrap();
    assert_eq!(rollback.start_ms, 52_200);
    assert!(rollback.operation.is_some(), "a stop is undone by a start");
    let start = report.step("start@cp1").unwrap();
    assert_eq!(start.status, StepStatus::Skipped);
    assert_eq!(start.skip, Some(SkipReason::FailFast));
    let wait = report.step("wait").unwrap();
    assert_eq!(wait.status, StepStatus::NotRun);

    let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    for kind in [
        FindingKind::Failed,
        FindingKind::RollbackFailed,
        FindingKind::TimedOut,
        FindingKind::Retried,
        FindingKind::SkippedByFailFast,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    let downtime = report.downtime.as_ref().unwrap();
    assert_eq!(downtime.end_ms, None, "never healthy again");
    assert!(
        report
            .time_spent
            .by_phase
            .iter()
            .any(|p| p.name == "rollback")
    );

    let md = markdown::render(&report);
    assert!(
        md.starts_with("# Run FAILED, ROLLBACK FAILED: `restore@cp2` failed"),
        "{md}"
    );
    assert!(
        md.contains("Not a drill: no RTO or RPO was measured."),
        "{md}"
    );
    let junit = junit::render(&report);
    assert!(
        junit.contains(
            r#"<failure message="exit status 2: no space left on device" type="failed">"#
        ),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<skipped message="an earlier step failed (fail-fast)"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"classname="drill-restore.rollback" name="stop@cp2""#),
        "{junit}"
    );
}

#[test]
fn a_resumed_run_is_one_run_with_a_resume_marker() {
    let plan = sample_plan();
    let report = Report::build(&plan, &resumed_journal(&plan), context(None));
    assert_eq!(report.verdict.outcome, Outcome::Succeeded);
    assert_eq!(report.verdict.title, "Run SUCCEEDED");
    assert_eq!(report.timing.sessions, 2);
    assert_eq!(report.timing.total_ms, 136_600);
    let resumed: Vec<&Marker> = report
        .markers
        .iter()
        .filter(|m| m.kind == MarkerKind::Resumed)
        .collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].at_ms, 130_000);

    let restore = report.step("restore@cp2").unwrap();
    assert_eq!(restore.status, StepStatus::Succeeded);
    assert_eq!(
        restore.attempts.len(),
        2,
        "the abandoned attempt and the new one"
    );
    assert_eq!(restore.attempts[0].result, None);
    assert_eq!(
        restore.attempts[0].duration_ms,
        10_500 - 7_000,
        "an abandoned attempt lasts until its session's last record"
    );
    assert_eq!(restore.attempts[1].result, Some(StepResult::Succeeded));
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Succeeded)
    );

    let md = markdown::render(&report);
    assert!(md.contains("(2 sessions: resumed 1 times)"), "{md}");
    assert!(md.contains("resumed after 15 records"), "{md}");
    let page = html::render(&report);
    assert!(page.contains("<g class=\"marker resumed\">"), "{page}");
}

#[test]
fn interrupted_and_unfinished_runs_say_how_to_go_on() {
    let plan = sample_plan();
    let journal = interrupted_journal(&plan);
    let report = Report::build(&plan, &journal, context(None));
    assert_eq!(report.verdict.outcome, Outcome::Interrupted);
    assert_eq!(
        report.verdict.reason.as_deref(),
        Some("stopped before the end: stop requested (Ctrl-C or SIGTERM)")
    );
    assert_eq!(
        report.step("stop@cp3").unwrap().skip,
        Some(SkipReason::Interrupted)
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::SkippedByInterruption)
    );
    let dir = format!("/var/lib/etcdrill/runs/{RUN_ID}");
    assert_eq!(
        report.reproduce.resume,
        Some(format!("etcdrill resume {dir} -p token=..."))
    );
    assert_eq!(
        report.reproduce.rollback,
        Some(format!("etcdrill rollback {dir} -p token=..."))
    );

    // The same journal without its end: a controller that died.
    let mut cut = journal.clone();
    cut.records.truncate(cut.records.len() - 3);
    cut.records.push(Record {
        seq: 99,
        at: ts(4_000),
        event: Event::StepStarted {
            step: "stop@cp3".into(),
            attempt: 1,
        },
    });
    cut.torn_tail = true;
    let report = Report::build(&plan, &cut, context(None));
    assert_eq!(report.verdict.outcome, Outcome::Incomplete);
    assert_eq!(report.verdict.title, "Run INCOMPLETE");
    assert_eq!(
        report.step("stop@cp3").unwrap().status,
        StepStatus::NoRecordedEnd
    );
    let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::NoRecordedEnd), "{kinds:?}");
    assert!(kinds.contains(&FindingKind::TornJournal), "{kinds:?}");
    assert!(report.reproduce.resume.is_some());
    assert!(junit::render(&report).contains("<error message=\"started and has no recorded end\""));
}

#[test]
fn skips_by_condition_and_shown_steps_in_check_mode() {
    let plan = sample_plan();
    let mut s = Script::new();
    s.event(
        0,
        Event::RunStarted {
            runbook: "drill-restore".into(),
            inventory: "lab".into(),
            check: true,
            etcdrill: "0.1.0".into(),
        },
    )
    .ok("steady-before.healthy", 100, 400)
    .attempt("verify-snapshot", 1, 600, 0, StepResult::Shown)
    .skipped(
        "verify-leader",
        700,
        SkipReason::Condition {
            expression: "params.leader".into(),
        },
    )
    .finished(800, RunResult::Succeeded);
    let report = Report::build(&plan, &s.journal(&plan), context(None));
    assert_eq!(report.verdict.title, "Check run SUCCEEDED");
    assert!(report.run.check);
    assert_eq!(
        report.step("verify-snapshot").unwrap().status,
        StepStatus::Shown
    );
    assert_eq!(
        report.step("verify-leader").unwrap().status,
        StepStatus::Skipped
    );
    assert!(
        report
            .reproduce
            .run
            .as_deref()
            .unwrap()
            .ends_with(" --check")
    );
    assert!(report.reproduce.rollback.is_none());
    let md = markdown::render(&report);
    assert!(
        md.contains("skipped: condition `params.leader` was false"),
        "{md}"
    );
}

#[test]
fn failed_drill_verifications_fail_the_drill() {
    let plan = sample_plan();
    let mut facts = drill_facts();
    facts.verifications[1] = Verification {
        name: "revision bumped".into(),
        passed: false,
        detail: "revision 450 went backwards".into(),
    };
    let report = Report::build(&plan, &success_journal(&plan), context(Some(facts)));
    assert_eq!(report.verdict.title, "Drill FAILED");
    assert_eq!(
        report.verdict.reason.as_deref(),
        Some("verification `revision bumped` failed: revision 450 went backwards")
    );
    let junit = junit::render(&report);
    assert!(
        junit.contains(r#"<testcase classname="drill-restore.verification" name="revision bumped" time="0.000">"#),
        "{junit}"
    );
    assert!(junit.contains(r#"type="verification_failed""#), "{junit}");
}

#[test]
fn reproduce_commands_keep_secrets_out() {
    let report = success();
    assert_eq!(
        report.reproduce.run.as_deref(),
        Some(
            "etcdrill run runbooks/drill-restore.yaml -i inventories/lab.yaml -p snapshot=/backups/snap.db -p token=..."
        )
    );
    assert_eq!(report.reproduce.secret_params, ["token"]);
    assert_eq!(
        report.reproduce.files,
        ["run.json", "plan.json", "journal.jsonl"]
            .map(|f| format!("/var/lib/etcdrill/runs/{RUN_ID}/{f}"))
    );

    // Without a run record, the plan's parameters stand in, secrets as placeholders.
    let plan = sample_plan();
    let bare = Report::build(&plan, &success_journal(&plan), ReportContext::default());
    assert_eq!(
        bare.reproduce.run.as_deref(),
        Some("etcdrill run rb.yaml -i inv.yaml -p snapshot=/backups/snap.db -p token=...")
    );
}

#[test]
fn secrets_never_appear_in_any_format() {
    let plan = sample_plan();
    let mut journal = failure_journal(&plan);
    // Even if a secret slipped into the journal, the report masks it.
    if let Event::StepFinished { output_tail, .. } = &mut journal.records[4].event {
        *output_tail = format!("using token {SECRET}\n");
    }
    let report = Report::build(&plan, &journal, context(Some(drill_facts())));
    for (format, text) in all_formats(&report) {
        assert!(!text.contains(SECRET), "{format} shows a secret:\n{text}");
        assert!(
            !text.contains("hunter2"),
            "{format} shows a secret:\n{text}"
        );
    }
    assert!(json::render(&report).contains("using token ********"));
}

/// A node name that tries to close markup, start a script, break a line and run a command.
const HOSTILE: &str = "n1; rm -rf / <script>alert(1)</script>\"'&`|\n\u{1b}[2J";

fn hostile_report() -> Report {
    let inventory = INVENTORY.replace(
        "name: cp1,",
        &format!("name: {},", serde_json::to_string(HOSTILE).unwrap()),
    );
    let plan = compile_plan(RUNBOOK, &inventory, &[("snapshot", "/backups/snap.db")]);
    let stop = format!("stop@{HOSTILE}");
    let mut s = Script::new();
    s.started(0)
        .ok(&stop, 1_000, 2_000)
        .attempt(
            &format!("restore@{HOSTILE}"),
            1,
            3_000,
            1_000,
            failed("</failure><script>alert(2)</script>"),
        )
        .event(4_100, Event::RollbackStarted { step: stop.clone() })
        .event(
            4_600,
            Event::RollbackFinished {
                step: stop,
                result: StepResult::Succeeded,
                duration_ms: 500,
                output_tail: "<b>bold</b>".into(),
            },
        )
        .finished(4_700, RunResult::RolledBack);
    let journal = s.journal(&plan);
    Report::build(&plan, &journal, context(None))
}

#[test]
fn hostile_names_stay_inert_in_every_format() {
    let report = hostile_report();
    assert!(report.lanes.iter().any(|l| l == HOSTILE));
    for (format, text) in all_formats(&report) {
        assert!(
            !text.contains('\u{1b}'),
            "{format} let an escape character through"
        );
        let outside_code = match format {
            // Code spans show their text as it is, markup included.
            "markdown" => without_code_spans(&text),
            "json" => continue,
            _ => text.clone(),
        };
        assert!(
            !outside_code.contains("<script>"),
            "{format} holds a raw <script>:\n{outside_code}"
        );
        assert!(
            !outside_code.contains("<b>bold"),
            "{format} holds raw markup"
        );
    }
    let page = html::render(&report);
    assert!(
        page.contains("data-lane=\"n1; rm -rf / &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;`|\\n\\u{1b}[2J\""),
        "{page}"
    );
    let junit = junit::render(&report);
    assert!(
        junit.contains("name=\"stop@n1; rm -rf / &lt;script&gt;alert(1)&lt;/script&gt;&quot;&apos;&amp;`|&#10;\\u{1b}[2J\""),
        "{junit}"
    );
    assert!(junit.contains("&lt;/failure&gt;&lt;script&gt;"), "{junit}");
    assert_well_formed(&junit);
    let md = markdown::render(&report);
    assert!(
        md.contains("### ``stop@n1; rm -rf / <script>alert(1)</script>\"'&`|\\n\\u{1b}[2J`` on"),
        "{md}"
    );
}

#[test]
fn invisible_and_forbidden_characters_are_escaped_in_every_format() {
    // A node name that reads reversed, and a failure that also holds what XML cannot.
    let name = "cp\u{202e}1\u{2066}\u{200b}";
    let inventory = INVENTORY.replace(
        "name: cp1,",
        &format!("name: {},", serde_json::to_string(name).unwrap()),
    );
    let plan = compile_plan(RUNBOOK, &inventory, &[("snapshot", "/backups/snap.db")]);
    let mut s = Script::new();
    s.started(0)
        .attempt(
            &format!("restore@{name}"),
            1,
            1_000,
            1_000,
            failed("removed txt.\u{202e}gol \u{fffe}\u{0}\u{7}\u{1b}[2J"),
        )
        .finished(2_100, RunResult::Failed);
    let report = Report::build(&plan, &s.journal(&plan), context(None));
    assert!(report.lanes.iter().any(|l| l == name));
    for (format, text) in all_formats(&report) {
        for hidden in [
            '\u{202e}', '\u{2066}', '\u{200b}', '\u{0}', '\u{7}', '\u{1b}',
        ] {
            assert!(!text.contains(hidden), "{format} shows {hidden:?} raw");
        }
    }
    assert!(html::render(&report).contains("cp\\u{202e}1"));
    let junit = junit::render(&report);
    assert!(junit.contains("txt.\\u{202e}gol \\u{fffe}"), "{junit}");
    assert_well_formed(&junit);
}

/// Markdown with its code spans and fenced blocks removed: what a renderer reads as markup.
fn without_code_spans(markdown: &str) -> String {
    let chars: Vec<char> = markdown.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            out.push(chars[i]);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // The closing run: exactly as many backticks.
        let mut j = i + run;
        let mut end = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|&&c| c == '`').count();
                if other == run {
                    end = Some(j + other);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match end {
            Some(end) => i = end,
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// Checks that every tag of an XML document is closed in order and that no text holds a raw `<`
/// or `&` that is not a reference.
fn assert_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("an XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        for (i, _) in text.match_indices('&') {
            let reference = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|r| reference.starts_with(r)),
                "a raw & in {text:?}"
            );
        }
        let close = rest[open..].find('>').expect("a tag ends") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "a raw < inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or_default();
            stack.push(name.to_string());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
}

#[test]
fn junit_is_well_formed_and_counts_cases() {
    for report in [success(), failure(), hostile_report()] {
        let junit = junit::render(&report);
        assert_well_formed(&junit);
    }
    let junit = junit::render(&failure());
    // 13 steps and 3 rollbacks: the restore and a rollback failed; 3 starts skipped, 2 not run.
    assert!(
        junit.contains(r#"<testsuite name="etcdrill: drill-restore" tests="16" failures="2" errors="0" skipped="5" time="56.400" timestamp="2026-01-01T00:00:00" id="20260101T000000Z-drill-restore-a1b2c3">"#),
        "{junit}"
    );
    assert!(junit.contains(r#"<property name="verdict" value="rollback_failed"/>"#));
    let junit = junit::render(&success());
    assert!(
        junit.contains(r#"<property name="rto_ms" value="58400"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="downtime_ms" value="45700"/>"#),
        "{junit}"
    );
}

#[test]
fn reports_round_trip_through_json() {
    for report in [success(), failure(), hostile_report()] {
        let back: Report = serde_json::from_str(&json::render(&report)).unwrap();
        assert_eq!(back, report);
    }
}

#[test]
fn write_all_writes_every_format_into_the_run_dir() {
    let dir = tempfile::tempdir().unwrap();
    let report = success();
    let written = write_all(dir.path(), &report).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, REPORT_FILES);
    for path in &written {
        assert!(std::fs::metadata(path).unwrap().len() > 100, "{path:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("report.md")).unwrap(),
        markdown::render(&report)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
    // Written again over the first ones.
    write_all(dir.path(), &report).unwrap();
}

#[test]
fn the_html_page_is_self_contained() {
    for report in [success(), failure(), hostile_report()] {
        let page = html::render(&report);
        assert!(page.starts_with("<!DOCTYPE html>"));
        for external in [
            "<script", "<link", "<img", "<iframe", "src=", "href=", "@import", "url(",
        ] {
            assert!(
                !page.contains(external),
                "the page refers to something outside itself: {external}"
            );
        }
        assert_eq!(
            page.matches("<g class=\"lane\"").count(),
            report.lanes.len()
        );
    }
}

/// Whether a missing browser must fail the test rather than skip it.
fn browser_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("ETCDRILL_TESTBED_REQUIRED").as_deref() == Ok("1")
}

/// Debian's `chromium`, if installed.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    })
}

/// Runs headless Chromium on a local file with `args`, with a throwaway profile and no network.
fn run_chromium(browser: &Path, page: &Path, args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null());
    let output = command.output().expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_html_page_renders_its_timeline_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            !browser_required(),
            "chromium is required here (CI or ETCDRILL_TESTBED_REQUIRED=1): apt-get install chromium"
        );
        eprintln!(
            "skipped: no `chromium` on PATH (apt-get install -y --no-install-recommends chromium)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = std::env::var_os("ETCDRILL_REPORT_SCREENSHOTS").map(PathBuf::from);
    for (name, report) in [
        ("success", success()),
        ("failure", failure()),
        ("hostile", hostile_report()),
    ] {
        let page = dir.path().join(format!("{name}.html"));
        std::fs::write(&page, html::render(&report)).unwrap();

        let dom = run_chromium(&browser, &page, &["--dump-dom".into()]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert!(
            dom.contains("<svg class=\"timeline\""),
            "{name}: no timeline:\n{dom}"
        );
        assert_eq!(
            dom.matches("<g class=\"lane\"").count(),
            report.lanes.len(),
            "{name}: one lane per host"
        );
        for lane in &report.lanes {
            let escaped = lane
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            let attribute = escaped.replace('\n', "\\n").replace('\u{1b}', "\\u{1b}");
            assert!(
                dom.contains(&format!("data-lane=\"{attribute}\"")),
                "{name}: no lane for {lane:?}"
            );
        }
        let bars = dom.matches("<g class=\"bar ").count();
        let expected: usize = report
            .steps
            .iter()
            .map(|s| s.attempts.len() + usize::from(s.rollback.is_some()))
            .sum();
        assert_eq!(bars, expected, "{name}: a bar per attempt and rollback");
        assert!(
            !dom.contains("<script"),
            "{name}: the browser found a script element"
        );
        assert!(dom.contains(&format!("<h1>{}</h1>", report.verdict.title)));

        let png = dir.path().join(format!("{name}.png"));
        run_chromium(
            &browser,
            &page,
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,900".into(),
                "--hide-scrollbars".into(),
            ],
        );
        let bytes = std::fs::read(&png).expect("chromium wrote a screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "{name}: not a PNG");
        assert!(
            bytes.len() > 30_000,
            "{name}: a {} byte screenshot is nearly blank",
            bytes.len()
        );
        if let Some(out) = &out_dir {
            std::fs::create_dir_all(out).unwrap();
            std::fs::copy(&page, out.join(format!("{name}.html"))).unwrap();
            std::fs::copy(&png, out.join(format!("{name}.png"))).unwrap();
        }
    }
}

/// The drill's stages as the journal carries them, equal to `drill_facts()`.
fn drill_stages(s: &mut Script) -> &mut Script {
    use crate::journal::{DrillCheck, DrillRpo, DrillStage};
    s.event(
        1,
        Event::Drill {
            stage: DrillStage::Declared {
                disaster: "restore".into(),
            },
        },
    )
    .event(
        60_000,
        Event::Drill {
            stage: DrillStage::Verified {
                rto_ms: Some(58_400),
                rpo: Some(DrillRpo {
                    snapshot_age_ms: 300_000,
                    revisions_lost: Some(120),
                }),
                checks: drill_facts()
                    .verifications
                    .iter()
                    .map(|v| DrillCheck {
                        name: v.name.clone(),
                        passed: v.passed,
                        detail: v.detail.clone(),
                    })
                    .collect(),
            },
        },
    )
}

#[test]
fn a_drill_report_is_rebuilt_from_its_journal_alone() {
    let plan = sample_plan();
    let mut with_stages = Script::new();
    with_stages.records = success_journal(&plan).records;
    drill_stages(&mut with_stages);
    let from_journal = Report::build(&plan, &with_stages.journal(&plan), context(None));
    assert!(from_journal.verdict.drill, "{:?}", from_journal.verdict);
    assert_eq!(from_journal.drill, Some(drill_facts()));
    assert_eq!(from_journal.verdict.title, "Drill SUCCEEDED");
    // The same facts given by the drill itself make the same report, but for the journal's
    // last record (the verification), which ends the run's timing later.
    let mut given = Report::build(
        &plan,
        &with_stages.journal(&plan),
        context(Some(drill_facts())),
    );
    given.timing = from_journal.timing.clone();
    assert_eq!(given, from_journal);
    // A drill that never got to its checks is still a drill.
    let mut declared_only = Script::new();
    declared_only.records = with_stages.records[..with_stages.records.len() - 1].to_vec();
    let unverified = Report::build(&plan, &declared_only.journal(&plan), context(None));
    assert!(unverified.verdict.drill);
    assert_eq!(unverified.drill, Some(DrillFacts::default()));
}

#[test]
fn a_rollback_of_a_succeeded_run_says_what_it_undid_and_what_it_left() {
    use crate::journal::RollbackSkip;
    let plan = sample_plan();
    let mut s = Script::new();
    s.records = success_journal(&plan).records;
    s.event(
        60_000,
        Event::RollbackRequested {
            previous: Some(RunResult::Succeeded),
        },
    )
    .event(
        60_100,
        Event::RollbackStarted {
            step: "start@cp1".into(),
        },
    )
    .event(
        61_000,
        Event::RollbackFinished {
            step: "start@cp1".into(),
            result: StepResult::Succeeded,
            duration_ms: 900,
            output_tail: String::new(),
        },
    )
    .event(
        61_100,
        Event::RollbackSkipped {
            step: "restore@cp1".into(),
            reason: RollbackSkip::Declined,
        },
    )
    .event(
        61_200,
        Event::RollbackSkipped {
            step: "verify-snapshot".into(),
            reason: RollbackSkip::NothingToUndo,
        },
    )
    .finished(61_300, RunResult::RolledBack);
    let report = Report::build(&plan, &s.journal(&plan), context(None));
    assert_eq!(report.verdict.title, "Run SUCCEEDED, then ROLLED BACK");
    let reason = report.verdict.reason.clone().unwrap();
    assert_eq!(
        reason,
        "the run had succeeded; `etcdrill rollback` then undid 1 step(s): `start@cp1`; NOT \
         undone: `restore@cp1` (the runbook does not undo this step)"
    );
    assert!(!reason.contains("every completed step"), "{reason}");
    assert_eq!(
        report.step("restore@cp1").unwrap().rollback_skipped,
        Some(RollbackSkip::Declined)
    );
    let markdown = markdown::render(&report);
    assert!(
        markdown.contains("left as it was by the rollback: the runbook does not undo this step"),
        "{markdown}"
    );
    let page = html::render(&report);
    assert!(
        page.contains("left as it was by the rollback: the runbook does not undo this step")
            && page.contains("Run SUCCEEDED, then ROLLED BACK"),
        "{page}"
    );

    // Nothing undone at all is said so, never "every completed step was rolled back".
    let mut nothing = Script::new();
    nothing.records = success_journal(&plan).records;
    nothing
        .event(
            60_000,
            Event::RollbackRequested {
                previous: Some(RunResult::Succeeded),
            },
        )
        .event(
            61_100,
            Event::RollbackSkipped {
                step: "restore@cp1".into(),
                reason: RollbackSkip::Declined,
            },
        )
        .finished(61_300, RunResult::RolledBack);
    let report = Report::build(&plan, &nothing.journal(&plan), context(None));
    assert_eq!(
        report.verdict.reason.as_deref(),
        Some(
            "the run had succeeded; `etcdrill rollback` then undid nothing; NOT undone: \
             `restore@cp1` (the runbook does not undo this step)"
        )
    );
}

#[test]
fn probes_not_run_in_check_mode_say_which_action_they_wait_for() {
    let plan = sample_plan();
    let mut s = Script::new();
    s.event(
        0,
        Event::RunStarted {
            runbook: "drill-restore".into(),
            inventory: "lab".into(),
            check: true,
            etcdrill: "0.1.0".into(),
        },
    )
    .skipped(
        "wait",
        10,
        SkipReason::CheckMode {
            dependency: "start".into(),
        },
    )
    .finished(20, RunResult::Succeeded);
    let report = Report::build(&plan, &s.journal(&plan), context(None));
    assert_eq!(report.verdict.title, "Check run SUCCEEDED");
    let wait = report.step("wait").unwrap();
    assert_eq!(wait.status, StepStatus::Skipped);
    let markdown = markdown::render(&report);
    assert!(
        markdown.contains("not run in check mode: depends on `start`"),
        "{markdown}"
    );
}

#[test]
fn node_facts_rows_say_where_the_data_is_and_what_uses_it() {
    use crate::facts::{DirFacts, NodeFacts, ProcessFacts};
    let dir = |mount_point| DirFacts {
        path: "/var/lib/etcd-restore-1".into(),
        exists: true,
        mount_point,
        filesystem: "xfs".into(),
        free_bytes: Some(3 << 30),
        member: None,
    };
    let facts = |data_dir, process, uses| NodeFacts {
        node: "cp1".into(),
        uid: Some(0),
        config_source: Some("/etc/kubernetes/manifests/etcd.yaml".into()),
        config: Default::default(),
        data_dir,
        backup_dir: None,
        etcdctl_version: None,
        etcdutl_version: None,
        process,
        process_looked_for: true,
        process_uses_data_dir: uses,
        config_problem: None,
    };
    let process = ProcessFacts {
        pid: 42,
        running_for_s: 7,
        cmdline: b"etcd".to_vec(),
        member: None,
    };
    let cases = [
        (
            facts(Some(dir(true)), Some(process.clone()), Some(true)),
            "xfs, its own mount point, 3.0 GiB free",
            "pid 42, on this data dir",
        ),
        (
            facts(Some(dir(false)), Some(process), Some(false)),
            "xfs, 3.0 GiB free",
            "pid 42, on ANOTHER data dir",
        ),
        (facts(None, None, None), "", "not running"),
    ];
    for (facts, filesystem, process) in cases {
        let row = FactsRow::of(&facts);
        assert_eq!(
            (row.filesystem.as_str(), row.process.as_str()),
            (filesystem, process)
        );
        assert_eq!(row.etcdutl, "not found");
        assert_eq!(
            row.configuration.as_deref(),
            Some("/etc/kubernetes/manifests/etcd.yaml")
        );
    }
}
