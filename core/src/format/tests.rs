//! Snapshots of every format for one small plan that uses most of what a plan can say, and
//! checks that hostile names stay inert in each format.

use super::Format;
use crate::inventory::Cluster;
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
name: replace-member
summary: Replace a failed member, keeping a snapshot first
params:
  snapshot: {type: path, description: Where the snapshot goes on the controller}
  token: {type: string, secret: true, default: hunter2}
  rehearse: {type: bool, default: false}
steady_state:
  - {id: healthy, title: Every member is healthy, action: verify.healthy, check: before}
steps:
  - id: survivor-check
    title: The survivors hold quorum
    on: cluster
    action: verify.healthy
    with: {min_healthy: 2}
    retries: 3
  - id: page
    title: Page the on-call person
    on: controller
    action: shell
    with: {run: "echo 'quorum lost' >&2\nexit 1"}
    needs: [{step: survivor-check, outcome: failure}]
  - id: save
    title: Save a snapshot from the leader
    on: leader
    action: etcd.snapshot.save
    with: {path: '{{params.snapshot}}'}
    needs: [survivor-check]
  - id: remove
    title: Remove the failed member
    on: node:cp2
    action: etcd.member.remove
    with: {name: cp2}
    confirm: Is cp2 gone for good?
    needs: [{step: save, pairing: all}]
  - id: push
    title: Copy the snapshot to cp2
    on: node:cp2
    action: file.copy
    with: {from: '{{steps.save.outputs.path}}', to: /var/backups/etcd/restore.db}
    needs: [remove, {step: save, pairing: all}]
  - id: rehearsal
    title: Rehearse a restore
    on: node:cp2
    action: etcd.snapshot.restore
    when: params.rehearse
    with: {snapshot: /var/backups/etcd/restore.db, data_dir: /var/lib/etcd-rehearsal, cluster_token: '{{params.token}}'}
    needs: [push]
  - id: stop
    title: Stop cp2
    on: node:cp2
    action: etcd.stop_member
    needs: [push]
  - id: note
    title: Note the revision
    on: controller
    action: shell
    when: (ne steps.save.outputs.revision "0")
    with: {run: 'echo saved at {{steps.save.outputs.revision}}'}
    outputs: {line: last_line}
    needs: [{step: stop, outcome: always}, {step: save, pairing: all}]
"#;

/// Compiles `runbook` against `inventory`, with `-p` style parameters.
pub(crate) fn plan(runbook: &str, inventory: &str, params: &[(&str, &str)]) -> Plan {
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

fn sample() -> Plan {
    plan(
        RUNBOOK,
        INVENTORY,
        &[("snapshot", "/var/backups/etcd/snapshot.db")],
    )
}

#[test]
fn text() {
    insta::assert_snapshot!(Format::Text.render(&sample()));
}

#[test]
fn markdown() {
    insta::assert_snapshot!(Format::Markdown.render(&sample()));
}

#[test]
fn json() {
    insta::assert_snapshot!(Format::Json.render(&sample()));
}

#[test]
fn dot() {
    insta::assert_snapshot!(Format::Dot.render(&sample()));
}

#[test]
fn mermaid() {
    insta::assert_snapshot!(Format::Mermaid.render(&sample()));
}

#[test]
fn json_is_the_plan_document() {
    let plan = sample();
    let parsed: serde_json::Value = serde_json::from_str(&Format::Json.render(&plan)).unwrap();
    assert_eq!(parsed, serde_json::to_value(plan.document()).unwrap());
}

#[test]
fn secrets_stay_masked_in_every_format() {
    let plan = sample();
    for format in [
        Format::Text,
        Format::Markdown,
        Format::Json,
        Format::Dot,
        Format::Mermaid,
    ] {
        let out = format.render(&plan);
        assert!(!out.contains("hunter2"), "{format:?} shows a secret");
    }
    for format in [Format::Text, Format::Markdown, Format::Json] {
        assert!(format.render(&plan).contains("\"********\""), "{format:?}");
    }
}

/// A node name that tries to close a label, start markup, break a line and move the cursor.
const HOSTILE: &str = "x\\\"]; s0-->s1 %% <b>|`#\n\u{1b}[2J";

fn hostile() -> Plan {
    let inventory = INVENTORY.replace(
        "name: cp1,",
        &format!("name: {},", serde_json::to_string(HOSTILE).unwrap()),
    );
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: stop, title: Stop, on: each, action: etcd.stop_member}\n";
    plan(runbook, &inventory, &[])
}

#[test]
fn hostile_names_stay_inert() {
    let plan = hostile();
    let cases: [(Format, &[&str]); 5] = [
        (
            Format::Text,
            &["stop@x\\\"]; s0-->s1 %% <b>|`#\\n\\u{1b}[2J: Stop"],
        ),
        (
            Format::Markdown,
            &["### ``stop@x\\\"]; s0-->s1 %% <b>|`#\\n\\u{1b}[2J``: Stop"],
        ),
        (
            Format::Json,
            &[r#""key": "stop@x\\\"]; s0-->s1 %% <b>|`#\n\u001b[2J""#],
        ),
        (
            Format::Dot,
            &[r#"[label="stop@x\\\"]; s0-->s1 %% <b>|`#\\n\\u{1b}[2J\nStop"];"#],
        ),
        (
            Format::Mermaid,
            &[r#"s0["stop@x\#quot;]; s0--#gt;s1 %% #lt;b#gt;|#96;#35;\n\u{1b}[2J<br/>Stop"]"#],
        ),
    ];
    for (format, expected) in cases {
        let out = format.render(&plan);
        assert!(
            !out.contains('\u{1b}'),
            "{format:?} let an escape character through:\n{out}"
        );
        for needle in expected {
            assert!(out.contains(needle), "{format:?} lacks {needle}:\n{out}");
        }
    }
}
