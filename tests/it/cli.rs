//! Drives the real `etcdrill` binary through the tests' builder, in the style of just's tests:
//! `Etcdrill::in_temp_dir().file(..).args([..]).run().success()`. Outputs are pinned with insta
//! snapshots after temp paths and file digests are redacted.
//!
//! Also plans every stock runbook in `runbooks/` against every inventory in
//! `drills/inventories/`, so the examples are always compiled by CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use etcdrill::inventory::Cluster;
use etcdrill::runbook::Runbook;
use etcdrill::runbook::param::ParamType;
use etcdrill::source::SourceFile;

use crate::support::{Etcdrill, repo};

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

fn planned() -> Etcdrill {
    Etcdrill::in_temp_dir()
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
    assert!(output.stderr().is_empty(), "{}", output.stderr());
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
        assert!(check(&printed.stdout()), "{format}:\n{}", printed.stdout());
        let written = planned()
            .args(args)
            .args(["--out", "plan.out"])
            .run()
            .success();
        assert_eq!(written.stdout(), "", "{format}");
        assert_eq!(written.read("plan.out"), printed.stdout(), "{format}");
    }
}

#[test]
fn unknown_formats_are_usage_errors() {
    let output = planned()
        .args(["plan", "rb.yaml", "-i", "inv.yaml", "--format", "yaml"])
        .run()
        .expect_code(2);
    assert!(
        output
            .stderr()
            .contains("invalid value 'yaml' for '--format <FORMAT>'"),
        "{}",
        output.stderr()
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
    let output = Etcdrill::in_temp_dir()
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
        output.stderr(),
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
    let output = Etcdrill::in_temp_dir()
        .args(["schema", "--out", "out"])
        .run()
        .success();
    assert_eq!(
        output.stdout(),
        "wrote out/runbook.schema.json\nwrote out/inventory.schema.json\nwrote out/drill.schema.json\n"
    );
    for name in [
        "runbook.schema.json",
        "inventory.schema.json",
        "drill.schema.json",
    ] {
        let checked_in =
            std::fs::read_to_string(repo().join("schemas").join(name)).unwrap_or_default();
        assert!(
            output.read(&format!("out/{name}")) == checked_in,
            "schemas/{name} is out of date; run `cargo run -- schema` at the repository root"
        );
    }
}

/// The `.yaml` files of a directory of the repository, sorted; none if it does not exist.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
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
    let root = repo();
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
                let output = Etcdrill::in_temp_dir()
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
                    output
                        .stdout()
                        .replace(&root.display().to_string(), "[ROOT]")
                );
            }
            planned += 1;
        }
    }
    eprintln!("planned {planned} stock runbook and inventory pairs");
}

/// Every subcommand path, e.g. `["snapshot", "save"]`, from the command definitions.
fn subcommand_paths() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, prefix: &[String], paths: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            paths.push(path.clone());
            walk(sub, &path, paths);
        }
    }
    let mut paths = Vec::new();
    walk(
        &<etcdrill::cli::Cli as clap::CommandFactory>::command(),
        &[],
        &mut paths,
    );
    paths
}

#[test]
fn the_bash_completion_script_loads_and_names_every_subcommand() {
    let output = Etcdrill::in_temp_dir()
        .args(["completions", "bash"])
        .run()
        .success();
    for path in subcommand_paths() {
        let name = path.last().unwrap();
        assert!(
            output.stdout().contains(name.as_str()),
            "{name} is not completed:\n{}",
            output.stdout()
        );
    }
    let script = output.dir().join("etcdrill.bash");
    std::fs::write(&script, output.stdout()).unwrap();
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p etcdrill",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(
        loaded.status.success() && String::from_utf8_lossy(&loaded.stdout).contains("etcdrill"),
        "{loaded:?}"
    );
    for shell in ["zsh", "fish"] {
        let output = Etcdrill::in_temp_dir()
            .args(["completions", shell])
            .run()
            .success();
        assert!(output.stdout().contains("move-leader"), "{shell}");
    }
}

#[test]
fn the_man_pages_render_and_name_every_subcommand() {
    let output = Etcdrill::in_temp_dir().args(["man"]).run().success();
    assert!(output.stdout().starts_with(".ie"), "{}", output.stdout());
    // Rendered as a person reads it, when groff is there.
    let rendered = Command::new("groff")
        .args(["-man", "-Tutf8"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()
        .map(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(output.stdout().as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        });
    let page = match &rendered {
        Some(done) if done.status.success() => {
            assert!(
                done.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
            String::from_utf8_lossy(&done.stdout).into_owned()
        }
        _ => output.stdout(),
    };
    for path in subcommand_paths().iter().filter(|p| p.len() == 1) {
        assert!(
            page.contains(path[0].as_str()),
            "{} is not in the man page",
            path[0]
        );
    }
    assert!(page.contains("Exit codes"), "{page}");

    let written = Etcdrill::in_temp_dir()
        .args(["man", "--out", "man"])
        .run()
        .success();
    for path in subcommand_paths() {
        let name = format!("man/etcdrill-{}.1", path.join("-"));
        assert!(
            written.dir().join(&name).is_file(),
            "{name} not written:\n{}",
            written.stdout()
        );
    }
    assert!(
        written.stdout().contains("wrote man/etcdrill.1\n"),
        "{}",
        written.stdout()
    );
}

#[test]
fn every_command_shows_examples_in_its_help() {
    for path in subcommand_paths() {
        // `help` is clap's own.
        if path.last().unwrap() == "help" {
            continue;
        }
        let output = Etcdrill::in_temp_dir()
            .args(&path)
            .arg("--help")
            .run()
            .success();
        assert!(
            output.stdout().contains("Examples:\n  etcdrill "),
            "`etcdrill {} --help` shows no examples:\n{}",
            path.join(" "),
            output.stdout()
        );
    }
}

#[test]
fn the_exit_codes_are_in_the_help_and_in_the_readme() {
    let help = Etcdrill::in_temp_dir()
        .args(["--help"])
        .run()
        .success()
        .stdout();
    assert!(help.contains(etcdrill::cli::EXIT_CODES), "{help}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for line in etcdrill::cli::EXIT_CODES.lines().skip(1) {
        let (code, meaning) = line.trim().split_once("  ").unwrap();
        let row = format!("| {code} | {} |", meaning.trim());
        assert!(readme.contains(&row), "the README has no row `{row}`");
    }
}

#[test]
fn a_flag_a_subcommand_does_not_use_is_a_usage_error() {
    let cases: &[&[&str]] = &[
        &["report", "run-1", "--yes"],
        &["report", "run-1", "--concurrency", "2"],
        &["report", "run-1", "--output", "json"],
        &["rollback", "run-1", "--yes"],
        &["rollback", "run-1", "--on-failure", "stop"],
        &["drill", "run", "d.yaml", "--metrics-textfile", "m.prom"],
        &["defrag", "cp1", "-i", "inv.yaml", "--yes"],
        &["move-leader", "cp1", "-i", "inv.yaml", "--concurrency", "2"],
        &["plan", "rb.yaml", "-i", "inv.yaml", "--yes"],
        &["health", "--yes"],
        &["--quiet", "--verbose", "health"],
    ];
    for args in cases {
        let output = Etcdrill::in_temp_dir().args(*args).run().expect_code(2);
        assert!(
            output.stderr().contains("error: unexpected argument")
                || output.stderr().contains("cannot be used with"),
            "{args:?}: {}",
            output.stderr()
        );
    }
}

#[test]
fn every_read_command_takes_the_same_output_option() {
    let read_commands: &[&[&str]] = &[
        &["health"],
        &["status"],
        &["members"],
        &["diagnose"],
        &["alarm", "list"],
        &["snapshot", "save"],
        &["snapshot", "verify"],
        &["snapshot", "status"],
        &["snapshot", "ship"],
        &["snapshot", "list"],
        &["snapshot", "prune"],
        &["sandbox", "status"],
    ];
    for path in read_commands {
        let help = Etcdrill::in_temp_dir()
            .args(*path)
            .arg("--help")
            .run()
            .success()
            .stdout();
        assert!(
            help.contains("-o, --output <FORMAT>")
                && help.contains("[aliases: -w, --write-out]")
                && help.contains("- table: ")
                && help.contains("- json: ")
                && help.contains("- yaml: "),
            "{path:?}:\n{help}"
        );
    }
    let plan = Etcdrill::in_temp_dir()
        .args(["plan"])
        .arg("--help")
        .run()
        .success()
        .stdout();
    assert!(plan.contains("-o, --format <FORMAT>"), "{plan}");
    let run = Etcdrill::in_temp_dir()
        .args(["run"])
        .arg("--help")
        .run()
        .success()
        .stdout();
    assert!(run.contains("-o, --output <FORMAT>"), "{run}");
}

#[test]
fn a_missing_inventory_says_what_an_inventory_is() {
    let output = planned()
        .args(["plan", "rb.yaml", "-i", "nope.yaml"])
        .run()
        .failure();
    insta::assert_snapshot!("missing_inventory", output.snapshot());
    let output = Etcdrill::in_temp_dir()
        .args(["defrag", "cp1", "-i", "nope.yaml"])
        .run()
        .failure();
    assert!(
        output.stderr().contains("hint: -i names the inventory"),
        "{}",
        output.stderr()
    );
}

#[test]
fn a_missing_run_lists_the_newest_runs() {
    let output = Etcdrill::in_temp_dir()
        .args(["report", "20261126T001500Z-restore-3-node-1a2b3c"])
        .run()
        .failure();
    insta::assert_snapshot!("missing_run_none_there", output.snapshot());
    let output = Etcdrill::in_temp_dir()
        .file(
            ".etcdrill/runs/20261201T101500Z-defrag-aaaaaa/run.json",
            "{}",
        )
        .file(
            ".etcdrill/runs/20261202T101500Z-compact-bbbbbb/run.json",
            "{}",
        )
        .args(["resume", "20261126T001500Z-restore-3-node-1a2b3c"])
        .run()
        .failure();
    insta::assert_snapshot!("missing_run_others_there", output.snapshot());
}

#[test]
fn a_day2_command_names_the_nodes_of_the_inventory() {
    let output = planned()
        .args(["defrag", "cp4", "-i", "inv.yaml"])
        .run()
        .failure();
    insta::assert_snapshot!("day2_unknown_node", output.snapshot());
}

#[test]
fn the_builtin_runbooks_plan_on_one_and_three_nodes() {
    let one = INVENTORY.replace(
        "  - {name: cp2, address: 10.0.0.2}\n  - {name: cp3, address: 10.0.0.3}\n",
        "",
    );
    for (inventory, nodes) in [(INVENTORY.to_string(), 3), (one, 1)] {
        for (runbook, params) in [
            ("defrag", &["-p", "node=cp1"][..]),
            ("move-leader", &["-p", "node=cp1"][..]),
            ("alarm-disarm", &[][..]),
        ] {
            let output = Etcdrill::in_temp_dir()
                .file("inv.yaml", &inventory)
                .args([
                    "plan",
                    &repo()
                        .join(format!("runbooks/builtin/{runbook}.yaml"))
                        .display()
                        .to_string(),
                    "-i",
                    "inv.yaml",
                ])
                .args(params)
                .run()
                .success();
            assert_plan_snapshot!(
                format!("builtin__{runbook}__{nodes}_nodes"),
                output
                    .stdout()
                    .replace(&repo().display().to_string(), "[ROOT]")
            );
        }
    }
}

/// A runbook whose steps all run on the controller: it runs anywhere, without SSH or etcd.
const LOCAL_RUNBOOK: &str = "\
name: local
summary: Steps on the controller only
params:
  fail: {type: bool, default: false}
steps:
  - {id: hello, title: Say hello, on: controller, action: shell, probe: true, with: {run: 'echo hello from the controller'}}
  - id: broken
    title: Fail when asked
    on: controller
    action: shell
    probe: true
    needs: [hello]
    when: params.fail
    with: {run: 'echo it broke >&2; exit 3'}
";

#[test]
fn quiet_shows_failures_and_the_result_and_verbose_shows_operations_and_output() {
    let run = |flags: &[&str], fail: bool| {
        planned()
            .file("local.yaml", LOCAL_RUNBOOK)
            .args(["run", "local.yaml", "-i", "inv.yaml", "--work-dir", "w"])
            .args(["-p", &format!("fail={fail}")])
            .args(flags)
            .run()
    };
    let normal = run(&[], false).success();
    assert!(
        normal.stderr().contains("ok      hello"),
        "{}",
        normal.stderr()
    );
    // Without a terminal a step's start is a line of its own; only verbose adds the operation.
    assert!(
        normal.stderr().contains("start   hello: Say hello"),
        "{}",
        normal.stderr()
    );
    assert!(
        !normal.stderr().contains("shell script on the controller"),
        "{}",
        normal.stderr()
    );

    let verbose = run(&["--verbose"], false).success();
    for shown in [
        "start   hello: Say hello",
        "shell script on the controller",
        "echo hello from the controller",
        "\n        hello from the controller",
    ] {
        assert!(
            verbose.stderr().contains(shown),
            "{shown}:\n{}",
            verbose.stderr()
        );
    }

    let quiet = run(&["-q"], false).success();
    assert!(!quiet.stderr().contains("hello"), "{}", quiet.stderr());
    assert!(
        quiet.stderr().contains("result: SUCCEEDED"),
        "{}",
        quiet.stderr()
    );

    let failed = run(&["--quiet"], true).failure();
    assert!(
        !failed.stderr().contains("ok      hello"),
        "{}",
        failed.stderr()
    );
    assert!(
        failed.stderr().contains("FAILED  broken"),
        "{}",
        failed.stderr()
    );
    assert!(failed.stderr().contains("it broke"), "{}", failed.stderr());
    assert!(
        failed.stderr().contains("result: FAILED"),
        "{}",
        failed.stderr()
    );
}
