use std::collections::BTreeMap;

use super::*;

fn finished(step: &str) -> Event {
    Event::StepFinished {
        step: step.into(),
        attempt: 1,
        result: StepResult::Failed {
            error: "exit 3".into(),
        },
        duration_ms: 1500,
        exit_status: Some(3),
        outputs: [("leader".to_string(), "cp1".to_string())].into(),
        output_tail: "boom".into(),
    }
}

/// One event of every type (and every drill stage), as `fixtures/2.0.jsonl` pins them.
fn samples() -> Vec<Event> {
    vec![
        Event::RunStarted {
            runbook: "r".into(),
            inventory: "i".into(),
            check: false,
            etcdrill: "0.1.0".into(),
        },
        Event::RunResumed {
            previous_records: 4,
        },
        Event::RolesResolved {
            leader: Some("cp1".into()),
            followers: vec!["cp2".into()],
        },
        Event::StepStarted {
            step: "stop@cp1".into(),
            attempt: 2,
        },
        finished("stop@cp1"),
        Event::StepSkipped {
            step: "a".into(),
            reason: SkipReason::Condition {
                expression: "params.x".into(),
            },
        },
        Event::StepSkipped {
            step: "b".into(),
            reason: SkipReason::Dependency {
                dependency: "a".into(),
            },
        },
        Event::Confirmed {
            step: "c".into(),
            answer: true,
            by: "--yes".into(),
        },
        Event::RollbackStarted { step: "c".into() },
        Event::RollbackFinished {
            step: "c".into(),
            result: StepResult::TimedOut,
            duration_ms: 3,
            output_tail: String::new(),
        },
        Event::Interrupted {
            reason: "SIGINT".into(),
        },
        Event::StepSkipped {
            step: "verify-copies@cp1".into(),
            reason: SkipReason::CheckMode {
                dependency: "copy-snapshot".into(),
            },
        },
        Event::RollbackRequested {
            previous: Some(RunResult::Succeeded),
        },
        Event::RollbackRequested { previous: None },
        Event::RollbackSkipped {
            step: "chown@cp1".into(),
            reason: RollbackSkip::Declined,
        },
        Event::RollbackSkipped {
            step: "copy@cp1".into(),
            reason: RollbackSkip::NothingToUndo,
        },
        Event::Drill {
            stage: DrillStage::Seeded {
                drill: "d".into(),
                keys: 200,
                canary: "/etcdrill/drill/1/canary".into(),
                keys_before: 306,
            },
        },
        Event::Drill {
            stage: DrillStage::SnapshotSaved {
                path: "/w/drills/d.db".into(),
                bytes: Some(20512),
                revision: None,
            },
        },
        Event::Drill {
            stage: DrillStage::DisasterStaged {
                lost: vec!["cp2".into(), "cp3".into()],
                run: "/w/runs/r1".into(),
            },
        },
        Event::Drill {
            stage: DrillStage::Declared {
                disaster: "restore".into(),
            },
        },
        Event::Drill {
            stage: DrillStage::Verified {
                rto_ms: Some(4700),
                rpo: Some(DrillRpo {
                    snapshot_age_ms: 120,
                    revisions_lost: Some(1),
                }),
                checks: vec![DrillCheck {
                    name: "a leader is elected".into(),
                    passed: true,
                    detail: "cp1 leads".into(),
                }],
            },
        },
        Event::Drill {
            stage: DrillStage::Verified {
                rto_ms: None,
                rpo: None,
                checks: vec![],
            },
        },
        Event::NodeFacts {
            facts: vec![crate::facts::NodeFacts {
                node: "cp1".into(),
                uid: Some(0),
                config_source: Some("/etc/kubernetes/manifests/etcd.yaml".into()),
                config: Default::default(),
                data_dir: None,
                backup_dir: None,
                etcdctl_version: Some("3.5.1".into()),
                etcdutl_version: Some("3.5.1".into()),
                process: None,
                process_looked_for: true,
                process_uses_data_dir: None,
                config_problem: None,
            }],
        },
        Event::ClusterIdentified {
            cluster_id: "a1b2".into(),
        },
        Event::ClusterIdChanged {
            from: "a1b2".into(),
            to: "c3d4".into(),
        },
        Event::RunFinished {
            result: RunResult::RollbackFailed,
        },
        // Then every other kind of the nested enums, so that each is pinned too.
        Event::StepSkipped {
            step: "leader-only@cp2".into(),
            reason: SkipReason::Role {
                wanted: "leader".into(),
            },
        },
        Event::StepSkipped {
            step: "gate".into(),
            reason: SkipReason::Declined,
        },
        Event::StepSkipped {
            step: "later".into(),
            reason: SkipReason::Interrupted,
        },
        Event::StepSkipped {
            step: "after-failure".into(),
            reason: SkipReason::FailFast,
        },
        Event::StepFinished {
            step: "save".into(),
            attempt: 1,
            result: StepResult::Succeeded,
            duration_ms: 1200,
            exit_status: Some(0),
            outputs: [("revision".to_string(), "42".to_string())].into(),
            output_tail: String::new(),
        },
        Event::StepFinished {
            step: "stop@cp1".into(),
            attempt: 1,
            result: StepResult::Shown,
            duration_ms: 0,
            exit_status: None,
            outputs: BTreeMap::new(),
            output_tail: String::new(),
        },
        Event::RunFinished {
            result: RunResult::Succeeded,
        },
        Event::RunFinished {
            result: RunResult::Failed,
        },
        Event::RunFinished {
            result: RunResult::RolledBack,
        },
        Event::RunFinished {
            result: RunResult::Interrupted,
        },
    ]
}

/// Where an event type's first line is in `fixtures/2.0.jsonl`. The match is exhaustive: a new
/// event type does not compile here until it has a pinned line.
fn pinned_line(event: &Event) -> usize {
    match event {
        Event::RunStarted { .. } => 1,
        Event::RunResumed { .. } => 2,
        Event::RolesResolved { .. } => 3,
        Event::StepStarted { .. } => 4,
        Event::StepFinished { .. } => 5,
        Event::StepSkipped { .. } => 6,
        Event::Confirmed { .. } => 8,
        Event::RollbackStarted { .. } => 9,
        Event::RollbackFinished { .. } => 10,
        Event::Interrupted { .. } => 11,
        Event::RollbackRequested { .. } => 13,
        Event::RollbackSkipped { .. } => 15,
        Event::Drill { .. } => 17,
        Event::NodeFacts { .. } => 23,
        Event::ClusterIdentified { .. } => 24,
        Event::ClusterIdChanged { .. } => 25,
        Event::RunFinished { .. } => 26,
        Event::Unknown => unreachable!("never written"),
    }
}

/// The samples as a journal of this build, one second apart from a fixed origin.
fn pinned_journal() -> Journal {
    let origin = humantime::parse_rfc3339("2026-12-02T00:00:00Z").unwrap();
    Journal {
        header: JournalHeader {
            format: JOURNAL_FORMAT.into(),
            version: JOURNAL_VERSION,
            minor: JOURNAL_MINOR,
            run_id: "20261202-000000-pinned".into(),
            plan_digest: "0123456789abcdef".into(),
            created_at: Timestamp(origin),
        },
        records: samples()
            .into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                seq: i as u64 + 1,
                at: Timestamp(origin + Duration::from_secs(i as u64 + 1)),
                event,
            })
            .collect(),
        torn_tail: false,
    }
}

fn lines_of(journal: &Journal) -> String {
    let mut text = serde_json::to_string(&journal.header).unwrap() + "\n";
    for record in &journal.records {
        text += &(serde_json::to_string(record).unwrap() + "\n");
    }
    text
}

const PINNED: &str = include_str!("fixtures/2.0.jsonl");

#[test]
fn every_event_type_is_written_and_read_as_its_pinned_line() {
    let journal = pinned_journal();
    assert_eq!(
        lines_of(&journal),
        PINNED,
        "the writer changed a pinned line"
    );
    let read = Journal::parse(Path::new("2.0.jsonl"), PINNED).unwrap();
    assert_eq!(read, journal, "the reader changed");
    for (i, record) in journal.records.iter().enumerate() {
        let line = pinned_line(&record.event);
        assert!(
            std::mem::discriminant(&journal.records[line - 1].event)
                == std::mem::discriminant(&record.event),
            "record {} is not where pinned_line says its type starts",
            i + 1
        );
    }
}

#[test]
fn a_version_1_journal_reads_as_it_is() {
    let text = include_str!("fixtures/1.jsonl");
    let journal = Journal::parse(Path::new("1.jsonl"), text).unwrap();
    assert_eq!((journal.header.version, journal.header.minor), (1, 0));
    assert_eq!(journal.records.len(), 4);
    assert_eq!(
        journal.records[3].event,
        Event::RunFinished {
            result: RunResult::Succeeded
        }
    );
}

#[test]
fn a_newer_minor_version_reads_with_its_new_events_and_fields_passed_over() {
    let text = include_str!("fixtures/2.7-newer-minor.jsonl");
    let journal = Journal::parse(Path::new("2.7.jsonl"), text).unwrap();
    assert_eq!((journal.header.version, journal.header.minor), (2, 7));
    let events: Vec<&Event> = journal.records.iter().map(|r| &r.event).collect();
    assert_eq!(
        events[1],
        &Event::Unknown,
        "an event type of the newer minor"
    );
    assert_eq!(
        events[2],
        &Event::StepFinished {
            step: "save".into(),
            attempt: 1,
            result: StepResult::Succeeded,
            duration_ms: 1200,
            exit_status: None,
            outputs: BTreeMap::new(),
            output_tail: String::new(),
        },
        "a field of the newer minor is passed over"
    );
    let state = crate::run_state::RunState::replay(&journal);
    assert_eq!(state.completed, ["save"]);
}

#[test]
fn a_journal_is_written_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let mut writer = JournalWriter::create(&path, "run-1", "abc").unwrap();
    writer
        .append(Event::StepStarted {
            step: "a".into(),
            attempt: 1,
        })
        .unwrap();
    writer.append(finished("a")).unwrap();
    let journal = Journal::read(&path).unwrap();
    assert_eq!(journal.header.plan_digest, "abc");
    assert_eq!(
        journal.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(!journal.torn_tail);
    assert!(
        JournalWriter::create(&path, "run-1", "abc").is_err(),
        "a journal is never overwritten"
    );
}

#[test]
fn a_torn_last_line_is_dropped_and_resume_continues_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let mut writer = JournalWriter::create(&path, "run-1", "abc").unwrap();
    writer
        .append(Event::StepStarted {
            step: "a".into(),
            attempt: 1,
        })
        .unwrap();
    drop(writer);
    // A crash in the middle of a write.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"seq\":2,\"at\":")
        .unwrap();
    let journal = Journal::read(&path).unwrap();
    assert!(journal.torn_tail);
    assert_eq!(journal.records.len(), 1);

    let (mut writer, before) = JournalWriter::resume(&path, "run-1").unwrap();
    assert_eq!(before.records.len(), 1);
    writer
        .append(Event::RunResumed {
            previous_records: 1,
        })
        .unwrap();
    let after = Journal::read(&path).unwrap();
    assert!(!after.torn_tail);
    assert_eq!(
        after.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn repeated_or_skipped_sequence_numbers_and_another_runs_journal_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let mut writer = JournalWriter::create(&path, "run-1", "abc").unwrap();
    for step in ["a", "b", "c"] {
        writer
            .append(Event::StepStarted {
                step: step.into(),
                attempt: 1,
            })
            .unwrap();
    }
    drop(writer);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // Two controllers appending at once: 1, 2, 3, 2.
    let repeated = format!("{text}{}\n", lines[2]);
    std::fs::write(&path, &repeated).unwrap();
    let err = JournalWriter::resume(&path, "run-1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 5 has sequence number 2 where 4 was due"),
        "{err}"
    );
    let skipped = [lines[0], lines[1], lines[3]].join("\n") + "\n";
    std::fs::write(&path, &skipped).unwrap();
    let err = Journal::read(&path).unwrap_err().to_string();
    assert!(err.contains("sequence number 3 where 2 was due"), "{err}");

    // A journal copied in from another run.
    std::fs::write(&path, &text).unwrap();
    let err = JournalWriter::resume(&path, "run-2")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("its header names run `run-1`, not `run-2`"),
        "{err}"
    );
    assert!(JournalWriter::resume(&path, "run-1").is_ok());
}

#[test]
fn damage_in_the_middle_and_unknown_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let mut writer = JournalWriter::create(&path, "run-1", "abc").unwrap();
    writer
        .append(Event::StepStarted {
            step: "a".into(),
            attempt: 1,
        })
        .unwrap();
    writer
        .append(Event::StepStarted {
            step: "b".into(),
            attempt: 1,
        })
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged = text.replacen("\"seq\":1", "\"seq\":\"one\"", 1);
    std::fs::write(&path, damaged).unwrap();
    assert!(matches!(
        Journal::read(&path),
        Err(JournalError::Damaged { line: 2, .. })
    ));

    // Version 2 only added events: a version 1 journal reads as it is.
    let older = text.replacen("\"version\":2", "\"version\":1", 1);
    std::fs::write(&path, older).unwrap();
    assert_eq!(Journal::read(&path).unwrap().records.len(), 2);

    let future = text.replacen("\"version\":2", "\"version\":99", 1);
    std::fs::write(&path, future).unwrap();
    let err = Journal::read(&path).unwrap_err().to_string();
    assert!(
        err.contains(
            "not an etcdrill journal of major version 1 to 2, any minor (format `etcdrill-journal` version 99.0)"
        ),
        "{err}"
    );
}

#[test]
fn tails_cut_at_character_boundaries() {
    assert_eq!(tail("short", 10), "short");
    let cut = tail("ééééé", 5);
    assert!(cut.ends_with("éé"), "{cut}");
    assert!(cut.starts_with("[… 6 bytes cut …]"), "{cut}");
}
