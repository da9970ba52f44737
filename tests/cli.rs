//! Drives the real `etcdrill` binary through a small builder, in the style of just's tests:
//! `Test::new().file(..).args([..]).run().success()`. Outputs are pinned with insta snapshots
//! after temp paths and file digests are redacted.
//!
//! Also plans every stock runbook in `runbooks/` against every inventory in
//! `drills/inventories/`, so the examples are always compiled by CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use etcdrill::inventory::Cluster;
use etcdrill::runbook::Runbook;
use etcdrill::runbook::param::ParamType;
use etcdrill::source::SourceFile;
use tempfile::TempDir;

/// One run of the binary, being set up.
struct Test {
    dir: TempDir,
    current_dir: Option<PathBuf>,
    args: Vec<String>,
}

/// What a run produced.
struct Output {
    status: i32,
    stdout: String,
    stderr: String,
    dir: TempDir,
}

impl Test {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temp dir"),
            current_dir: None,
            args: Vec::new(),
        }
    }

    /// Writes a file into the run's temp dir (the working directory by default).
    fn file(self, name: &str, text: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
        self
    }

    /// Runs in `dir` instead of the temp dir.
    fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_owned());
        self
    }

    fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    fn run(self) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_etcdrill"))
            .args(&self.args)
            .current_dir(self.current_dir.as_deref().unwrap_or(self.dir.path()))
            .output()
            .expect("etcdrill runs");
        Output {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
            dir: self.dir,
        }
    }
}

impl Output {
    #[track_caller]
    fn status(self, expected: i32) -> Self {
        assert_eq!(
            self.status, expected,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    fn success(self) -> Self {
        self.status(0)
    }

    #[track_caller]
    fn failure(self) -> Self {
        self.status(1)
    }

    /// Status, stdout and stderr in one text, with the temp dir redacted.
    fn snapshot(&self) -> String {
        redact(
            &format!(
                "status: {}\n--- stdout\n{}--- stderr\n{}",
                self.status, self.stdout, self.stderr
            ),
            self.dir.path(),
        )
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

/// Replaces the temp dir with `[TEMP]`.
fn redact(text: &str, dir: &Path) -> String {
    let dir = dir.display().to_string();
    let canonical = std::fs::canonicalize(&dir)
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    text.replace(&canonical, "[TEMP]").replace(&dir, "[TEMP]")
}

/// Digests change with every comment; the plan is what is reviewed.
macro_rules! assert_plan_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![(r"(sha256 `?)[0-9a-f]{12}", "${1}[sha256]")]}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

const RUNBOOK: &str = "\
name: defrag
summary: Defragment members one at a time
params:
  snapshot: {type: path, description: Where the snapshot goes}
  rehearse: {type: bool, default: false}
steps:
  - {id: check, title: Check status, on: cluster, action: etcd.status}
  - id: save
    title: Save a snapshot
    on: cluster
    action: etcd.snapshot.save
    with: {path: '{{params.snapshot}}'}
    needs: [check]
  - {id: defrag, title: Defragment, on: each, action: etcd.defrag, needs: [save], serial: true}
  - id: compact
    title: Compact history
    on: cluster
    action: etcd.compact
    with: {keep_revisions: 1000}
    when: params.rehearse
    needs: [{step: defrag, pairing: all}]
";

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

fn planned() -> Test {
    Test::new()
        .file("rb.yaml", RUNBOOK)
        .file("inv.yaml", INVENTORY)
}

#[test]
fn plan_prints_text_by_default() {
    let output = planned()
        .args([
            "plan",
            "rb.yaml",
            "-i",
            "inv.yaml",
            "-p",
            "snapshot=/var/backups/etcd/s.db",
        ])
        .run()
        .success();
    assert!(output.stderr.is_empty(), "{}", output.stderr);
    assert_plan_snapshot!("plan_text", output.snapshot());
}

/// A property a format's output must have.
type Check = fn(&str) -> bool;

#[test]
fn every_format_renders_and_can_go_to_a_file() {
    let checks: [(&str, Check); 5] = [
        ("text", |out| {
            out.starts_with("Plan: runbook `defrag` on inventory `lab`")
        }),
        ("markdown", |out| {
            out.starts_with("# Plan: `defrag` on `lab`")
        }),
        ("json", |out| {
            let document: serde_json::Value = serde_json::from_str(out).unwrap();
            document["format"] == 1 && document["steps"].as_array().unwrap().len() == 6
        }),
        ("dot", |out| {
            out.starts_with("digraph plan {") && out.ends_with("}\n")
        }),
        ("mermaid", |out| {
            out.starts_with("flowchart TD\n") && out.contains("class s5 destructive")
        }),
    ];
    for (format, check) in checks {
        let args = [
            "plan",
            "rb.yaml",
            "-i",
            "inv.yaml",
            "-p",
            "snapshot=/s.db",
            "--format",
            format,
        ];
        let printed = planned().args(args).run().success();
        assert!(check(&printed.stdout), "{format}:\n{}", printed.stdout);
        let written = planned()
            .args(args)
            .args(["--out", "plan.out"])
            .run()
            .success();
        assert_eq!(written.stdout, "", "{format}");
        assert_eq!(written.read("plan.out"), printed.stdout, "{format}");
    }
}

#[test]
fn unknown_formats_are_usage_errors() {
    let output = planned()
        .args(["plan", "rb.yaml", "-i", "inv.yaml", "--format", "yaml"])
        .run()
        .status(2);
    assert!(
        output
            .stderr
            .contains("invalid value 'yaml' for '--format <FORMAT>'"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_param_without_a_value_is_shown_with_a_caret() {
    let output = planned()
        .args([
            "plan",
            "rb.yaml",
            "-i",
            "inv.yaml",
            "-p",
            "snapshot=/s.db",
            "-p",
            "rehearse",
        ])
        .run()
        .failure();
    insta::assert_snapshot!("param_without_value", output.snapshot());
}

#[test]
fn bad_param_values_are_located_on_the_command_line() {
    let output = planned()
        .args([
            "plan",
            "rb.yaml",
            "-i",
            "inv.yaml",
            "-p",
            "snapshot=/s.db",
            "-p",
            "rehersae=true",
            "-p",
            "rehearse=maybe",
        ])
        .run()
        .failure();
    insta::assert_snapshot!("bad_param_values", output.snapshot());
}

#[test]
fn problems_in_both_files_are_reported_together() {
    let output = Test::new()
        .file(
            "rb.yaml",
            &RUNBOOK.replace("needs: [check]", "needs: [chek]"),
        )
        .file("inv.yaml", &INVENTORY.replace("name: lab", "nam: lab"))
        .args(["plan", "rb.yaml", "-i", "inv.yaml"])
        .run()
        .failure();
    insta::assert_snapshot!("problems_in_both_files", output.snapshot());
}

#[test]
fn a_missing_file_names_the_file_and_the_cause() {
    let output = planned()
        .args(["plan", "nope.yaml", "-i", "inv.yaml"])
        .run()
        .failure();
    assert_eq!(
        output.stderr,
        "error: failed to read `nope.yaml`\n  caused by: No such file or directory (os error 2)\n"
    );
}

#[test]
fn validate_reports_each_file() {
    let output = planned()
        .file(
            "drill.yaml",
            "name: d\nsummary: s\nrunbook: rb.yaml\ninventory: inv.yaml\nparams: {snapshot: /b/s.db}\ndisaster: {lose_member: {node: cp2}}\n",
        )
        .args(["validate", "rb.yaml", "inv.yaml", "drill.yaml"])
        .run()
        .success();
    insta::assert_snapshot!("validate_ok", output.snapshot());
}

#[test]
fn validate_fails_when_any_file_fails() {
    let output = planned()
        .file("broken.yaml", "name: x\nsummary: y\nsteps:\n  - {id: a, title: A, on: everywhere, action: etcd.status}\n")
        .file("unknown.yaml", "colour: red\n")
        .file("syntax.yaml", "steps: [a, b\n")
        .args(["validate", "rb.yaml", "broken.yaml", "unknown.yaml", "syntax.yaml", "missing.yaml"])
        .run()
        .failure();
    insta::assert_snapshot!("validate_failing", output.snapshot());
}

#[test]
fn schema_writes_the_checked_in_schemas() {
    let output = Test::new().args(["schema", "--out", "out"]).run().success();
    assert_eq!(
        output.stdout,
        "wrote out/runbook.schema.json\nwrote out/inventory.schema.json\nwrote out/drill.schema.json\n"
    );
    for name in [
        "runbook.schema.json",
        "inventory.schema.json",
        "drill.schema.json",
    ] {
        let checked_in =
            std::fs::read_to_string(repo_root().join("schemas").join(name)).unwrap_or_default();
        assert!(
            output.read(&format!("out/{name}")) == checked_in,
            "schemas/{name} is out of date; run `cargo run -- schema` at the repository root"
        );
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `.yaml` files of a directory of the repository, sorted; none if it does not exist.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo_root().join(dir)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| Path::new(dir).join(path.file_name().unwrap()))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// `-p` arguments for every required parameter without a default: a plausible value of its type.
fn placeholder_params(runbook: &Runbook, cluster: &Cluster) -> Vec<String> {
    runbook
        .params
        .iter()
        .filter(|(_, spec)| spec.default.is_none())
        .flat_map(|(name, spec)| {
            let value = match spec.kind {
                ParamType::Path => "/var/backups/etcd/snapshot.db".to_string(),
                ParamType::Node => cluster.nodes[0].name.clone(),
                ParamType::Int => spec.min.unwrap_or(1).to_string(),
                ParamType::Bool => "false".to_string(),
                ParamType::Duration => "30s".to_string(),
                ParamType::Choice => spec.choices.first().cloned().unwrap_or_default(),
                // Strings that name backup destinations must parse as destinations.
                ParamType::String if name.as_str() == "copy_to" => {
                    "s3://etcd-backups/prod ssh://backup@10.0.0.9/srv/etcd".to_string()
                }
                ParamType::String => "x".to_string(),
            };
            ["-p".to_string(), format!("{name}={value}")]
        })
        .collect()
}

/// Whether the runbook's topology admits a cluster of `members`.
fn fits(runbook: &Runbook, members: usize) -> bool {
    let topology = &runbook.topology;
    let members = members as u32;
    !(topology.odd_members && members % 2 == 0)
        && topology.min_members.is_none_or(|min| members >= min)
        && topology.max_members.is_none_or(|max| members <= max)
}

#[test]
fn stock_runbooks_plan_against_every_inventory() {
    let root = repo_root();
    let mut planned = 0;
    for runbook_path in yaml_files("runbooks") {
        let runbook = Runbook::load(SourceFile::read(&root.join(&runbook_path)).unwrap())
            .unwrap_or_else(|e| panic!("{e}"))
            .value;
        for inventory_path in yaml_files("drills/inventories") {
            let cluster = Cluster::load(SourceFile::read(&root.join(&inventory_path)).unwrap())
                .unwrap_or_else(|e| panic!("{e}"));
            if !fits(&runbook, cluster.nodes.len()) {
                continue;
            }
            let params = placeholder_params(&runbook, &cluster);
            for format in ["text", "markdown"] {
                let output = Test::new()
                    .current_dir(&root)
                    .args([
                        "plan",
                        &runbook_path.to_string_lossy(),
                        "-i",
                        &inventory_path.to_string_lossy(),
                    ])
                    .args(["--format", format])
                    .args(&params)
                    .run()
                    .success();
                let name = format!(
                    "plan__{}__{}__{format}",
                    stem(&runbook_path),
                    stem(&inventory_path)
                );
                assert_plan_snapshot!(
                    name,
                    output.stdout.replace(&root.display().to_string(), "[ROOT]")
                );
            }
            planned += 1;
        }
    }
    eprintln!("planned {planned} stock runbook and inventory pairs");
}
