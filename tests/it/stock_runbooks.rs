//! The stock runbooks in `runbooks/` compiled against the sample inventories in
//! `drills/inventories/`: they compile with only their required parameters, their scripts are
//! valid POSIX sh, values stay quoted, and the plans keep the guarantees each procedure promises
//! (what is verified before what, what runs in parallel, what asks first, what undoes what).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use etcdrill::inventory::Cluster;
use etcdrill::journal::SkipReason;
use etcdrill::plan::{
    Condition, Host, Operation, ParamInput, Phase, Plan, PlanStep, RoleGuard, Rollback, compile,
};
use etcdrill::runbook::Runbook;
use etcdrill::runbook::action::{Action, ActionKind};
use etcdrill::runbook::param::ParamType;
use etcdrill::runbook::step::Outcome;
use etcdrill::schedule::{Decision, Schedule, StepState};
use etcdrill::source::SourceFile;
use petgraph::Direction;
use petgraph::graph::NodeIndex;

use crate::support::repo;

const RUNBOOK_MODELINE: &str = "# yaml-language-server: $schema=../schemas/runbook.schema.json";
const INVENTORY_MODELINE: &str =
    "# yaml-language-server: $schema=../../schemas/inventory.schema.json";
const SNAPSHOT: &str = "/srv/etcd/snapshots/2024-05-01T03-00.db";
const HOSTILE: &str = "n1; rm -rf /";
const HOSTILE_DIR: &str = "/srv/etcd data; rm -rf ~";

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn runbook(name: &str) -> PathBuf {
    repo().join("runbooks").join(format!("{name}.yaml"))
}

fn inventories() -> Vec<PathBuf> {
    yaml_files("drills/inventories")
}

fn load_cluster(path: &Path) -> Cluster {
    Cluster::load(SourceFile::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()))
}

fn load_runbook(path: &Path) -> etcdrill::document::Document<Runbook> {
    Runbook::load(SourceFile::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()))
}

/// Values for the runbook's required parameters only; a `node` parameter gets the inventory's
/// second node, so "the chosen node" is not simply the first one.
fn required_params(runbook: &Runbook, cluster: &Cluster) -> Vec<(String, String)> {
    runbook
        .params
        .iter()
        .filter(|(_, spec)| spec.default.is_none())
        .map(|(name, spec)| {
            let value = match spec.kind {
                ParamType::Node => cluster.nodes[1].name.clone(),
                ParamType::Path => SNAPSHOT.to_string(),
                ParamType::Choice => spec.choices[0].clone(),
                ParamType::String if name.as_str() == "copy_to" => {
                    "s3://etcd-backups/prod ssh://backup@10.0.0.9/srv/etcd".to_string()
                }
                other => panic!("no sample value for a required `{other}` parameter `{name}`"),
            };
            (name.clone(), value)
        })
        .collect()
}

fn try_compile(
    runbook_path: &Path,
    cluster: &Cluster,
    extra: &[(&str, &str)],
) -> Result<Plan, String> {
    let document = load_runbook(runbook_path);
    let mut params = required_params(&document.value, cluster);
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        params.push((name.to_string(), value.to_string()));
    }
    let line: Vec<String> = params.iter().map(|(k, v)| format!("-p {k}={v}")).collect();
    let source = SourceFile::new("command line", line.join(" "));
    let inputs: Vec<ParamInput> = params
        .into_iter()
        .map(|(name, value)| ParamInput {
            name,
            value: serde_yaml::Value::String(value),
            source: source.clone(),
            location: None,
        })
        .collect();
    compile(&document, cluster, &inputs).map_err(|e| e.to_string())
}

fn compile_with(runbook_path: &Path, cluster: &Cluster, extra: &[(&str, &str)]) -> Plan {
    try_compile(runbook_path, cluster, extra).unwrap_or_else(|e| {
        panic!(
            "{} against {}:\n{e}",
            runbook_path.display(),
            cluster.inventory().name
        )
    })
}

/// The kubeadm sample inventory with two more control-plane nodes, `cp4` and `cp5`: the larger
/// cluster runbook `scale` grows to or shrinks from.
fn five_nodes() -> Cluster {
    let path = repo().join("drills/inventories/kubeadm-3.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for i in [4, 5] {
        text.push_str(&format!(
            "  - name: cp{i}\n    address: 10.0.0.1{i}\n    groups: [control-plane]\n"
        ));
    }
    Cluster::load(SourceFile::new("kubeadm-5", text)).unwrap_or_else(|e| panic!("{e}"))
}

/// The sample inventories, and the five-node one, with a label.
fn sample_clusters() -> Vec<(String, Cluster)> {
    let mut clusters: Vec<(String, Cluster)> = inventories()
        .iter()
        .map(|path| (path.display().to_string(), load_cluster(path)))
        .collect();
    clusters.push(("kubeadm-5 (kubeadm-3 and cp4, cp5)".into(), five_nodes()));
    clusters
}

/// Whether a runbook's topology admits a cluster of `nodes` nodes.
fn fits(runbook: &Runbook, nodes: usize) -> bool {
    let topology = &runbook.topology;
    let nodes = nodes as u32;
    !(topology.odd_members && nodes % 2 == 0)
        && topology.min_members.is_none_or(|min| nodes >= min)
        && topology.max_members.is_none_or(|max| nodes <= max)
}

/// Every stock runbook compiled with its required parameters against every sample inventory its
/// topology admits.
fn all_plans() -> Vec<(String, Plan)> {
    let mut plans = Vec::new();
    for runbook_path in yaml_files("runbooks") {
        let runbook = load_runbook(&runbook_path).value;
        for (name, cluster) in sample_clusters() {
            if !fits(&runbook, cluster.nodes.len()) {
                continue;
            }
            let label = format!("{} on {name}", runbook_path.display());
            plans.push((label, compile_with(&runbook_path, &cluster, &[])));
        }
    }
    plans
}

/// The runbooks for a cluster that lost something, which start from a broken cluster.
const RECOVERY_RUNBOOKS: &[&str] = &["restore-3-node", "replace-member", "quorum-recovery"];

fn step<'p>(plan: &'p Plan, key: &str) -> &'p PlanStep {
    &plan.graph[index(plan, key)]
}

fn index(plan: &Plan, key: &str) -> NodeIndex {
    plan.find(key)
        .unwrap_or_else(|| panic!("no step `{key}` in the plan"))
}

/// The instances of a runbook step, in plan order.
fn instances(plan: &Plan, step_id: &str) -> Vec<NodeIndex> {
    let found: Vec<NodeIndex> = plan
        .steps()
        .filter(|(_, s)| s.step == step_id && s.phase == Phase::Main)
        .map(|(i, _)| i)
        .collect();
    assert!(!found.is_empty(), "no instance of step `{step_id}`");
    found
}

/// Every step `index` waits for, directly or not, whatever the outcome.
fn ancestors(plan: &Plan, index: NodeIndex) -> HashSet<NodeIndex> {
    let mut seen = HashSet::new();
    let mut stack = vec![index];
    while let Some(i) = stack.pop() {
        for dependency in plan.graph.neighbors_directed(i, Direction::Incoming) {
            if seen.insert(dependency) {
                stack.push(dependency);
            }
        }
    }
    seen
}

fn wave_of(plan: &Plan, index: NodeIndex) -> usize {
    plan.waves()
        .iter()
        .position(|wave| wave.contains(&index))
        .unwrap()
}

fn scripts(step: &PlanStep) -> Vec<&str> {
    let mut out = Vec::new();
    if let Operation::Script { script } = &step.operation {
        out.push(script.as_str());
    }
    if let Rollback::Run {
        operation: Operation::Script { script },
    } = &step.rollback
    {
        out.push(script.as_str());
    }
    out
}

fn script_of(step: &PlanStep) -> &str {
    match &step.operation {
        Operation::Script { script } => script,
        other => panic!("`{}` is not a script: {other:?}", step.key),
    }
}

fn sh_syntax_error(script: &str) -> Option<String> {
    let out = Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

fn runs(step: &PlanStep) -> bool {
    !matches!(step.when, Condition::SkippedAtCompile(_))
}

#[test]
fn stock_files_carry_their_schema_modelines() {
    let runbooks = yaml_files("runbooks");
    let names: BTreeSet<String> = runbooks
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["restore-3-node", "replace-member", "quorum-recovery"] {
        assert!(
            names.contains(expected),
            "runbooks/{expected}.yaml is missing: {names:?}"
        );
    }
    assert!(
        inventories().len() >= 2,
        "expected the kubeadm and external sample inventories"
    );
    for (files, modeline) in [
        (runbooks, RUNBOOK_MODELINE),
        (inventories(), INVENTORY_MODELINE),
    ] {
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().next(), Some(modeline), "{}", path.display());
        }
    }
}

#[test]
fn the_sample_inventories_cover_both_ways_of_managing_etcd() {
    let kinds: BTreeSet<String> = inventories()
        .iter()
        .flat_map(|p| {
            let cluster = load_cluster(p);
            assert_eq!(cluster.nodes.len(), 3, "{}", p.display());
            assert!(
                !cluster.inventory().production,
                "{}: sample inventories are not production",
                p.display()
            );
            assert!(
                cluster.inventory().controller.tls.is_some(),
                "{}: controller TLS",
                p.display()
            );
            cluster
                .nodes
                .iter()
                .map(|n| match n.etcd.management {
                    etcdrill::inventory::Management::StaticPod(_) => "static_pod".to_string(),
                    etcdrill::inventory::Management::External(_) => "external".to_string(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["external".to_string(), "static_pod".to_string()])
    );
}

#[test]
fn every_stock_runbook_compiles_against_every_sample_inventory() {
    let plans = all_plans();
    for runbook_path in yaml_files("runbooks") {
        let planned = plans
            .iter()
            .filter(|(label, _)| label.starts_with(&runbook_path.display().to_string()))
            .count();
        assert!(
            planned > 0,
            "{} fits no sample inventory",
            runbook_path.display()
        );
    }
    for (label, plan) in &plans {
        // A defragmentation rewrites the same data and a backup only reads the cluster (pruning
        // old copies is retention, not destruction): the stock runbooks that destroy nothing.
        if label.contains("defrag-rolling") || label.contains("backup.yaml") {
            assert_eq!(plan.summary().destructive, 0, "{label}");
            continue;
        }
        assert!(
            plan.summary().destructive > 0,
            "{label}: a stock runbook that destroys nothing?"
        );
    }
}

#[test]
fn every_rendered_script_is_valid_posix_sh() {
    for (label, plan) in all_plans() {
        for (_, step) in plan.steps() {
            for script in scripts(step) {
                if let Some(err) = sh_syntax_error(script) {
                    panic!("{label}: `{}` is not valid sh: {err}\n{script}", step.key);
                }
            }
        }
    }
}

#[test]
fn destructive_steps_ask_first_and_can_be_undone_or_say_why_not() {
    for (label, plan) in all_plans() {
        for (index, step) in plan.steps() {
            let gated = step.destructive || step.action == ActionKind::EtcdSnapshotRestore;
            if !gated {
                continue;
            }
            let asked = step.confirm.is_some()
                || ancestors(&plan, index)
                    .iter()
                    .any(|&a| plan.graph[a].confirm.is_some());
            assert!(
                asked,
                "{label}: destructive `{}` has no confirmation on it or before it",
                step.key
            );
            assert_ne!(
                step.rollback,
                Rollback::Declined,
                "{label}: destructive `{}` declines its rollback",
                step.key
            );
        }
    }
}

#[test]
fn recovery_runbooks_check_steady_state_only_after_the_run() {
    for (label, plan) in all_plans() {
        if !RECOVERY_RUNBOOKS
            .iter()
            .any(|r| label.contains(&format!("/{r}.yaml")))
        {
            continue;
        }
        assert!(
            plan.steps().all(|(_, s)| s.phase != Phase::SteadyBefore),
            "{label}: these runbooks start from a broken cluster; a steady state checked before would block them"
        );
    }
}

// ---- restore-3-node -----------------------------------------------------------------------

#[test]
fn restore_streams_the_snapshot_once_checked_and_restores_before_any_downtime() {
    for inventory in inventories() {
        let cluster = load_cluster(&inventory);
        let plan = compile_with(&runbook("restore-3-node"), &cluster, &[]);
        // One step puts the snapshot on every node, checked on both ends: no separate verify
        // pass on the controller or on the copies.
        for gone in ["verify-snapshot", "copy-snapshot", "verify-copies"] {
            assert!(
                plan.steps().all(|(_, s)| s.step != gone),
                "`{gone}` is still in the plan"
            );
        }
        let copies = instances(&plan, "distribute-snapshot");
        assert_eq!(copies.len(), cluster.nodes.len());
        for &copy in &copies {
            let Host::Node(node) = &plan.graph[copy].host else {
                panic!("{}", plan.graph[copy].key)
            };
            let Operation::Distribute {
                from,
                to,
                save_from,
            } = &plan.graph[copy].operation
            else {
                panic!("{:?}", plan.graph[copy].operation)
            };
            assert!(from.ends_with(".db"), "{from}");
            assert!(
                save_from.is_empty(),
                "the runbook restores the file it is given"
            );
            assert!(
                to.ends_with(&format!("/etcdrill-restore-{node}.db")),
                "{to}"
            );
        }
        let restores = instances(&plan, "restore");
        assert_eq!(restores.len(), cluster.nodes.len());
        for stop in instances(&plan, "stop") {
            assert_eq!(plan.graph[stop].action, ActionKind::EtcdStopMember);
            let before = ancestors(&plan, stop);
            for check in copies.iter().chain(&restores) {
                assert!(
                    before.contains(check),
                    "`{}` does not wait for `{}`",
                    plan.graph[stop].key,
                    plan.graph[*check].key
                );
            }
        }
        // Each restore waits for its own node's copy only: it starts as soon as that is there.
        for &restore in &restores {
            let before = ancestors(&plan, restore);
            let own: Vec<_> = copies
                .iter()
                .filter(|&&c| plan.graph[c].host == plan.graph[restore].host)
                .collect();
            assert_eq!(own.len(), 1);
            for copy in &copies {
                assert_eq!(
                    before.contains(copy),
                    own.contains(&copy),
                    "{} and {}",
                    plan.graph[restore].key,
                    plan.graph[*copy].key
                );
            }
            let Operation::Script { script } = &plan.graph[restore].operation else {
                panic!()
            };
            assert!(
                script.contains("--bump-revision 1000000000 --mark-compacted"),
                "{script}"
            );
            assert!(
                script.contains("--initial-cluster-token 'etcd-restored-⟨run.id⟩'"),
                "{script}"
            );
            assert!(
                script.contains(&format!(
                    "--initial-cluster {}",
                    etcdrill::render::shell_quote(&cluster.initial_cluster())
                )),
                "{script}"
            );
        }
    }
}

#[test]
fn restore_stops_one_by_one_but_restores_and_starts_together() {
    for inventory in inventories() {
        let cluster = load_cluster(&inventory);
        let plan = compile_with(&runbook("restore-3-node"), &cluster, &[]);
        for parallel in ["restore", "swap-data-dir", "start"] {
            let waves: BTreeSet<usize> = instances(&plan, parallel)
                .into_iter()
                .map(|i| wave_of(&plan, i))
                .collect();
            assert_eq!(waves.len(), 1, "`{parallel}` instances are not in one wave");
        }
        let stops = instances(&plan, "stop");
        let waves: BTreeSet<usize> = stops.iter().map(|&i| wave_of(&plan, i)).collect();
        assert_eq!(waves.len(), stops.len(), "stops must not run together");
        for pair in stops.windows(2) {
            assert!(
                plan.graph.contains_edge(pair[0], pair[1]),
                "stops are not chained"
            );
        }
        // Every data dir is swapped only once every member is down; starts wait for every swap.
        let swaps = instances(&plan, "swap-data-dir");
        for &swap in &swaps {
            assert!(stops.iter().all(|s| ancestors(&plan, swap).contains(s)));
        }
        for start in instances(&plan, "start") {
            assert!(
                swaps.iter().all(|s| ancestors(&plan, start).contains(s)),
                "a member starts before every data dir is in place"
            );
        }
        let downtime_gate = index(&plan, "confirm-downtime");
        assert!(plan.graph[downtime_gate].confirm.is_some());
        assert!(ancestors(&plan, stops[0]).contains(&downtime_gate));
    }
}

#[test]
fn restore_is_verified_after_the_members_are_healthy() {
    let cluster = load_cluster(&inventories()[0]);
    let plan = compile_with(&runbook("restore-3-node"), &cluster, &[]);
    let wait = index(&plan, "wait-healthy");
    for start in instances(&plan, "start") {
        assert!(ancestors(&plan, wait).contains(&start));
    }
    for (check, kind) in [
        ("verify-members", ActionKind::VerifyMemberCount),
        ("verify-hashkv", ActionKind::VerifyHashKv),
        ("verify-no-alarms", ActionKind::VerifyNoAlarms),
        ("verify-leader", ActionKind::VerifyLeader),
    ] {
        assert_eq!(step(&plan, check).action, kind);
        assert!(
            ancestors(&plan, index(&plan, check)).contains(&wait),
            "{check}"
        );
    }
    let Operation::Etcd {
        call: Action::VerifyMemberCount(args),
        ..
    } = &step(&plan, "verify-members").operation
    else {
        panic!()
    };
    assert_eq!(
        (args.voting as usize, args.learners),
        (cluster.nodes.len(), 0)
    );
    let after: Vec<&str> = plan
        .steps()
        .filter(|(_, s)| s.phase == Phase::SteadyAfter)
        .map(|(_, s)| s.step.as_str())
        .collect();
    assert!(!after.is_empty());
}

#[test]
fn old_versions_restore_without_the_revision_bump() {
    let cluster = load_cluster(&inventories()[0]);
    let plan = compile_with(
        &runbook("restore-3-node"),
        &cluster,
        &[("bump_revision", "0"), ("mark_compacted", "false")],
    );
    let script = script_of(&plan.graph[instances(&plan, "restore")[0]]);
    assert!(
        !script.contains("--bump-revision") && !script.contains("--mark-compacted"),
        "{script}"
    );
    // etcdutl takes --mark-compacted exactly with --bump-revision: half of it is refused.
    let err = try_compile(
        &runbook("restore-3-node"),
        &cluster,
        &[("bump_revision", "0")],
    )
    .unwrap_err();
    assert!(err.contains("--mark-compacted"), "{err}");
    let plan = compile_with(
        &runbook("restore-3-node"),
        &cluster,
        &[("cluster_token", "drill-7")],
    );
    assert!(
        script_of(&plan.graph[instances(&plan, "restore")[0]])
            .contains("--initial-cluster-token drill-7")
    );
}

/// Runs `script` with `⟨run.id⟩` as `run-1`. As root, it runs with `data_dir` made a mount point
/// of its own (a bind mount in a private mount namespace), as a dedicated etcd disk is: renaming
/// the data dir itself then fails with EBUSY, and renames into it from outside with EXDEV.
fn run_on_data_dir(data_dir: &Path, script: &str) -> Result<(), String> {
    let script = script.replace("⟨run.id⟩", "run-1");
    let root = unsafe { libc::geteuid() } == 0;
    let out = if root {
        let dir = data_dir.to_str().unwrap();
        let wrapped = format!(
            "set -e\nmount --bind {d} {d}\nmountpoint -q {d}\n{script}",
            d = etcdrill::render::shell_quote(dir)
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &wrapped])
            .output()
            .unwrap()
    } else {
        Command::new("sh").arg("-c").arg(&script).output().unwrap()
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs the swap and then the natural rollbacks of the restore steps in reverse order, on a
/// sandbox data dir that is a mount point: the old data must be back in place and the restored
/// copy gone, and nothing may rename the data dir itself.
#[test]
fn restore_rollbacks_chain_back_to_the_old_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("etcd data");
    let inventory = format!(
        "name: sandbox\ndefaults:\n  etcd:\n    management: {{static_pod: {{}}}}\n    data_dir: '{}'\nnodes:\n  - {{name: n1, address: 10.0.0.1}}\n",
        data_dir.display()
    );
    let cluster = Cluster::load(SourceFile::new("sandbox.yaml", inventory)).unwrap();
    let plan = compile_with(&runbook("restore-3-node"), &cluster, &[]);
    let run = |script: &str| run_on_data_dir(&data_dir, script).unwrap();
    let rollback = |key: &str| match &step(&plan, key).rollback {
        Rollback::Run {
            operation: Operation::Script { script },
        } => script.clone(),
        other => panic!("`{key}` has no script rollback: {other:?}"),
    };
    // The restored copy lives inside the data dir, on its filesystem.
    let restored = data_dir.join(".etcdrill-restore-run-1");
    let kept = data_dir.join(".etcdrill-before-restore-run-1");
    std::fs::create_dir_all(data_dir.join("member")).unwrap();
    std::fs::write(data_dir.join("member/old"), "old").unwrap();
    // What etcdutl would have made.
    std::fs::create_dir_all(restored.join("member")).unwrap();
    std::fs::write(restored.join("member/new"), "new").unwrap();

    run(script_of(step(&plan, "swap-data-dir@n1")));
    assert!(data_dir.join("member/new").exists() && !restored.exists());
    assert!(kept.join("member/old").exists());
    // Run again (a controller killed before it recorded the end): the swap is recognised.
    run(script_of(step(&plan, "swap-data-dir@n1")));
    assert!(data_dir.join("member/new").exists() && kept.join("member/old").exists());

    // Undo in reverse order: the swap, then the restore.
    run(&rollback("swap-data-dir@n1"));
    run(&rollback("restore@n1"));
    assert!(
        data_dir.join("member/old").exists(),
        "the old data is not back"
    );
    assert!(!restored.exists(), "the restored copy was left behind");
    assert!(!kept.exists());

    // The other undoing steps: a start for each stop, a stop for each start.
    assert!(rollback("stop@n1").contains("mv -f \"$parked\" \"$manifest\""));
    assert!(rollback("start@n1").contains("pgrep -x etcd"));
}

/// Every stock runbook that sets member data aside does it inside the data dir, so it works when
/// the data dir is a mount point; the rollback puts the data back.
#[test]
fn member_data_is_set_aside_inside_a_data_dir_that_is_a_mount_point() {
    for (runbook_name, key, aside, params) in [
        (
            "replace-member",
            "set-aside@n2",
            ".etcdrill-failed-run-1",
            vec![("node", "n2")],
        ),
        (
            "quorum-recovery",
            "lost-set-aside@n2",
            ".etcdrill-lost-run-1",
            vec![("survivor", "n1")],
        ),
        (
            "scale",
            "set-aside-first@n2",
            ".etcdrill-removed-run-1",
            vec![("direction", "shrink"), ("first", "n2"), ("second", "n3")],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("etcd data");
        let nodes: String = (1..=5)
            .map(|i| format!("  - {{name: n{i}, address: 10.0.0.{i}}}\n"))
            .collect();
        let inventory = format!(
            "name: sandbox\ndefaults:\n  etcd:\n    management: {{static_pod: {{}}}}\n    data_dir: '{}'\nnodes:\n{nodes}",
            data_dir.display()
        );
        let cluster = Cluster::load(SourceFile::new("sandbox.yaml", inventory)).unwrap();
        let plan = compile_with(&runbook(runbook_name), &cluster, &params);
        let set_aside = step(&plan, key);
        assert_eq!(
            set_aside.action,
            ActionKind::EtcdDataDirSetAside,
            "{runbook_name}"
        );
        std::fs::create_dir_all(data_dir.join("member/wal")).unwrap();
        run_on_data_dir(&data_dir, script_of(set_aside)).unwrap();
        assert!(!data_dir.join("member").exists(), "{runbook_name}");
        assert!(
            data_dir.join(aside).join("member/wal").exists(),
            "{runbook_name}"
        );
        // Again: nothing left to set aside, and what was set aside stays.
        run_on_data_dir(&data_dir, script_of(set_aside)).unwrap();
        assert!(
            data_dir.join(aside).join("member/wal").exists(),
            "{runbook_name}"
        );
        if let Rollback::Run {
            operation: Operation::Script { script },
        } = &set_aside.rollback
        {
            run_on_data_dir(&data_dir, script).unwrap();
            assert!(data_dir.join("member/wal").exists(), "{runbook_name}");
        }
    }
}

// ---- replace-member -----------------------------------------------------------------------

#[test]
fn replace_member_touches_only_the_chosen_node() {
    for inventory in inventories() {
        let cluster = load_cluster(&inventory);
        let chosen = cluster.nodes[1].name.clone();
        let plan = compile_with(&runbook("replace-member"), &cluster, &[]);
        for (_, s) in plan.steps() {
            let Host::Node(name) = &s.host else { continue };
            if s.step == "others-healthy" {
                assert_eq!(runs(s), *name != chosen, "{}", s.key);
            } else {
                assert_eq!(
                    runs(s),
                    *name == chosen,
                    "`{}` must run on the chosen node only",
                    s.key
                );
            }
        }
        // Nothing changes before every other member proved healthy.
        let stop = index(&plan, &format!("stop-failed@{chosen}"));
        let before = ancestors(&plan, stop);
        for check in instances(&plan, "others-healthy") {
            assert!(
                before.contains(&check),
                "`stop-failed` does not wait for `{}`",
                plan.graph[check].key
            );
        }
        let remove = step(&plan, &format!("remove@{chosen}"));
        assert!(remove.destructive && remove.confirm.is_some());
        assert_eq!(remove.rollback, Rollback::Irreversible);
        // Membership calls go to the members that remain.
        let chosen_url = &cluster.node(&chosen).unwrap().etcd.client_url;
        for id in ["remove", "add", "promote"] {
            let Operation::Etcd { endpoints, .. } =
                &step(&plan, &format!("{id}@{chosen}")).operation
            else {
                panic!()
            };
            assert!(
                !endpoints.contains(chosen_url),
                "{id} is sent to the member it concerns"
            );
        }
        let Operation::Etcd {
            call: Action::EtcdMemberAdd(add),
            ..
        } = &step(&plan, &format!("add@{chosen}")).operation
        else {
            panic!()
        };
        assert!(add.learner, "a replacement joins as a learner");
        assert!(
            step(&plan, &format!("add@{chosen}")).retries.attempts >= 5,
            "etcd refuses an add until the receiving member has been connected to every voting \
             member for 5 s (strict reconfig check), e.g. right after the removal"
        );
        let promote = step(&plan, &format!("promote@{chosen}"));
        assert!(
            promote.retries.attempts >= 10,
            "promote is refused until the learner caught up"
        );
        let configure = script_of(step(&plan, &format!("configure@{chosen}")));
        assert!(
            configure.contains("initial-cluster-state=existing")
                || configure.contains("ETCD_INITIAL_CLUSTER_STATE=existing"),
            "{configure}"
        );
        assert_eq!(initial_cluster_in(configure), cluster.initial_cluster());
    }
}

/// The `--initial-cluster` value a configure script writes, into a manifest or an env file.
fn initial_cluster_in(script: &str) -> &str {
    let start = [
        "initial-cluster=",
        "ETCD_INITIAL_CLUSTER='",
        "ETCD_INITIAL_CLUSTER=",
    ]
    .iter()
    .find_map(|mark| script.find(mark).map(|at| at + mark.len()))
    .unwrap_or_else(|| panic!("no initial-cluster in\n{script}"));
    let rest = &script[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || ":/.=,-_[]".contains(c)))
        .unwrap_or(rest.len());
    &rest[..end]
}

// ---- quorum-recovery ----------------------------------------------------------------------

#[test]
fn quorum_recovery_has_both_paths_in_the_plan() {
    for inventory in inventories() {
        let cluster = load_cluster(&inventory);
        let plan = compile_with(
            &runbook("quorum-recovery"),
            &cluster,
            &[("snapshot", SNAPSHOT)],
        );
        let checks = instances(&plan, "survivor-check");
        let check_keys: BTreeSet<&str> =
            checks.iter().map(|&i| plan.graph[i].key.as_str()).collect();
        // The alternative path starts on the survivor check's failure, the main one on its success.
        let entry = index(&plan, "fb-snapshot-given");
        let needs: Vec<_> = plan
            .needs(entry)
            .into_iter()
            .map(|(s, o)| (s.key.clone(), o))
            .collect();
        assert_eq!(needs.len(), checks.len());
        assert!(
            needs
                .iter()
                .all(|(k, o)| check_keys.contains(k.as_str()) && *o == Outcome::Failure),
            "{needs:?}"
        );
        for stop in instances(&plan, "stop-all") {
            for (dependency, outcome) in plan.needs(stop) {
                if dependency.step == "survivor-check" {
                    assert_eq!(outcome, Outcome::Success);
                }
            }
        }
        // Everything else on the alternative path comes after its entry.
        for (i, s) in plan.steps().filter(|(_, s)| s.step.starts_with("fb-")) {
            assert!(
                runs(s),
                "`{}` is skipped although a snapshot was given",
                s.key
            );
            if i != entry {
                assert!(
                    ancestors(&plan, i).contains(&entry),
                    "`{}` does not follow the entry",
                    s.key
                );
                assert!(
                    !ancestors(&plan, i)
                        .iter()
                        .any(|&a| plan.graph[a].step == "stop-all")
                );
            }
        }
        // The alternative path is the whole-cluster restore.
        for id in ["fb-restore", "fb-stop", "fb-swap-data-dir", "fb-start"] {
            assert_eq!(instances(&plan, id).len(), cluster.nodes.len());
        }
        let fb_stops = instances(&plan, "fb-stop");
        for pair in fb_stops.windows(2) {
            assert!(
                plan.graph.contains_edge(pair[0], pair[1]),
                "fb-stop is not serial"
            );
        }
        let gate = index(&plan, "fb-confirm-downtime");
        assert!(
            plan.graph[gate].confirm.is_some() && ancestors(&plan, fb_stops[0]).contains(&gate)
        );
    }
}

/// Without a snapshot, a failed survivor check must end the run failed at the alternative path's
/// entry (a failure an edge waits for is "handled", so an entirely skipped path would read as
/// success).
#[test]
fn quorum_recovery_without_a_snapshot_fails_at_the_alternative_path() {
    let cluster = load_cluster(&inventories()[0]);
    let run = |plan: &Plan| {
        let script = script_of(step(plan, "fb-snapshot-given"));
        Command::new("sh").arg("-c").arg(script).output().unwrap()
    };
    let plan = compile_with(&runbook("quorum-recovery"), &cluster, &[]);
    assert!(runs(step(&plan, "fb-snapshot-given")));
    let out = run(&plan);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snapshot was given"));
    for (_, s) in plan
        .steps()
        .filter(|(_, s)| s.step.starts_with("fb-") && s.step != "fb-snapshot-given")
    {
        assert!(!runs(s), "`{}` runs without a snapshot", s.key);
    }
    let plan = compile_with(
        &runbook("quorum-recovery"),
        &cluster,
        &[("snapshot", SNAPSHOT)],
    );
    assert!(run(&plan).status.success());
}

/// Settles the instances of `survivor-check`: the survivor's as given, the others as the
/// executor records a compile-time `when` that was false.
fn settle_survivor_check(
    plan: &Plan,
    schedule: &mut Schedule<'_>,
    survivor: &str,
    state: StepState,
) {
    let decided = schedule.decide();
    for i in instances(plan, "survivor-check") {
        assert!(decided.contains(&Decision::Run(i)));
        let s = &plan.graph[i];
        let settled = match &s.when {
            Condition::SkippedAtCompile(expression) => StepState::Skipped(SkipReason::Condition {
                expression: expression.clone(),
            }),
            _ => {
                assert_eq!(s.host, Host::Node(survivor.to_string()));
                state.clone()
            }
        };
        schedule.finish(i, settled);
    }
}

#[test]
fn quorum_recovery_takes_the_main_path_when_the_survivor_is_usable() {
    let cluster = load_cluster(&inventories()[0]);
    let survivor = cluster.nodes[1].name.clone();
    let plan = compile_with(&runbook("quorum-recovery"), &cluster, &[]);
    let mut schedule = Schedule::new(&plan);
    settle_survivor_check(&plan, &mut schedule, &survivor, StepState::Succeeded);
    let decided = schedule.decide();
    assert!(
        decided.contains(&Decision::Run(instances(&plan, "stop-all")[0])),
        "{decided:?}"
    );
    assert!(!decided.contains(&Decision::Run(index(&plan, "fb-snapshot-given"))));
}

/// The alternative path hangs on the failure of the survivor's instance of `survivor-check`; the
/// other instances are not part of the run (their `when` was false when the plan was compiled),
/// so they do not count: the survivor's failure alone decides.
#[test]
fn quorum_recovery_takes_the_alternative_path_when_the_survivor_is_not_usable() {
    let cluster = load_cluster(&inventories()[0]);
    let survivor = cluster.nodes[1].name.clone();
    let plan = compile_with(
        &runbook("quorum-recovery"),
        &cluster,
        &[("snapshot", SNAPSHOT)],
    );
    let mut schedule = Schedule::new(&plan);
    settle_survivor_check(&plan, &mut schedule, &survivor, StepState::Failed);
    let decided = schedule.decide();
    assert!(
        decided.contains(&Decision::Run(index(&plan, "fb-snapshot-given"))),
        "{decided:?}"
    );
}

#[test]
fn quorum_recovery_forces_the_survivor_only_and_re_adds_the_others_one_by_one() {
    for inventory in inventories() {
        let cluster = load_cluster(&inventory);
        let survivor = cluster.nodes[1].name.clone();
        let plan = compile_with(&runbook("quorum-recovery"), &cluster, &[]);
        for (_, s) in plan.steps() {
            let Host::Node(name) = &s.host else { continue };
            let on_survivor = *name == survivor;
            if s.step.starts_with("survivor-") || s.step == "force-new-cluster" {
                assert_eq!(runs(s), on_survivor, "{}", s.key);
            } else if s.step.starts_with("lost-") {
                assert_eq!(runs(s), !on_survivor, "{}", s.key);
            }
        }
        let force = step(&plan, &format!("force-new-cluster@{survivor}"));
        assert!(force.destructive && force.confirm.is_some());
        assert_eq!(force.rollback, Rollback::Irreversible);
        // Every member is down before the survivor is forced.
        let force_index = index(&plan, &format!("force-new-cluster@{survivor}"));
        for stop in instances(&plan, "stop-all") {
            assert!(ancestors(&plan, force_index).contains(&stop));
        }
        // The flag is taken away again before anyone is re-added.
        let unforce = script_of(step(&plan, &format!("survivor-unforce@{survivor}")));
        assert!(
            unforce.contains("force-new-cluster") || unforce.contains("FORCE_NEW_CLUSTER"),
            "{unforce}"
        );
        let first_add = instances(&plan, "lost-add")[0];
        assert!(
            ancestors(&plan, first_add)
                .contains(&index(&plan, &format!("survivor-start@{survivor}")))
        );
        // One by one: each re-add step is chained in inventory order.
        for id in [
            "lost-set-aside",
            "lost-add",
            "lost-configure",
            "lost-start",
            "lost-promote",
            "lost-healthy",
        ] {
            let chain = instances(&plan, id);
            for pair in chain.windows(2) {
                assert!(
                    plan.graph.contains_edge(pair[0], pair[1]),
                    "`{id}` is not serial"
                );
            }
        }
        // Each joining member's --initial-cluster is the survivor, those re-added before it, and itself.
        let url = |name: &str| cluster.node(name).unwrap().etcd.peer_url.clone();
        let mut expected = vec![format!("{survivor}={}", url(&survivor))];
        for node in cluster.nodes.iter().filter(|n| n.name != survivor) {
            expected.push(format!("{}={}", node.name, url(&node.name)));
            let script = script_of(step(&plan, &format!("lost-configure@{}", node.name)));
            let got: BTreeSet<&str> = initial_cluster_in(script).split(',').collect();
            let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
            assert_eq!(got, want, "initial-cluster of {}", node.name);
        }
    }
}

/// The compile-time `--initial-cluster` looks peer URLs up by member name among the nodes, so an
/// inventory whose member names differ from its node names must be refused, never rendered
/// with a wrong list. (It goes away once `etcd.configure_member` takes the output of `member add`.)
#[test]
fn quorum_recovery_refuses_member_names_that_differ_from_node_names() {
    let text = "name: c\ndefaults:\n  etcd:\n    management: {static_pod: {}}\nnodes:\n  - {name: cp1, address: 10.0.0.1, etcd: {member: m1}}\n  - {name: cp2, address: 10.0.0.2}\n  - {name: cp3, address: 10.0.0.3}\n";
    let cluster = Cluster::load(SourceFile::new("renamed.yaml", text)).unwrap();
    let err = try_compile(
        &runbook("quorum-recovery"),
        &cluster,
        &[("survivor", "cp2")],
    )
    .unwrap_err();
    assert!(err.contains("quorum-recovery.yaml"), "{err}");
}

// ---- quoting --------------------------------------------------------------------------------

/// For each byte of a shell script, whether it is inside single quotes.
fn single_quoted(script: &str) -> Vec<bool> {
    #[derive(PartialEq)]
    enum State {
        Plain,
        Single,
        Double,
    }
    let bytes = script.as_bytes();
    let mut state = State::Plain;
    let mut inside = vec![false; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::Plain => match b {
                b'\'' => state = State::Single,
                b'"' => state = State::Double,
                b'\\' => i += 1,
                _ => {}
            },
            State::Single if b == b'\'' => state = State::Plain,
            State::Single => inside[i] = true,
            State::Double => match b {
                b'"' => state = State::Plain,
                b'\\' => i += 1,
                _ => {}
            },
        }
        i += 1;
    }
    inside
}

fn hostile_inventory(member_override: bool, nodes: usize) -> Cluster {
    let member = if member_override {
        format!(", etcd: {{member: m1, data_dir: '{HOSTILE_DIR}'}}")
    } else {
        String::new()
    };
    let text = format!(
        "name: hostile\ndefaults:\n  etcd:\n    management: {{static_pod: {{}}}}\nnodes:\n  - {{name: '{HOSTILE}', address: 10.0.0.1{member}}}\n  - {{name: cp2, address: 10.0.0.2}}\n  - {{name: cp3, address: 10.0.0.3}}\n"
    );
    let text = (4..=nodes).fold(text, |text, i| {
        text + &format!("  - {{name: cp{i}, address: 10.0.0.{i}}}\n")
    });
    Cluster::load(SourceFile::new("hostile.yaml", text)).unwrap()
}

/// A node named `n1; rm -rf /` (chosen as the `node`/`survivor` parameter too), and in a second
/// inventory a data dir `/srv/etcd data; rm -rf ~`, stay inside single quotes wherever they reach
/// a script, or the compiler refuses the plan.
#[test]
fn a_hostile_node_name_stays_one_quoted_word_in_every_script() {
    let mut compiled = 0;
    for member_override in [false, true] {
        for runbook_path in yaml_files("runbooks") {
            let document = load_runbook(&runbook_path);
            let cluster = if fits(&document.value, 3) {
                hostile_inventory(member_override, 3)
            } else {
                hostile_inventory(member_override, 5)
            };
            let node_params: Vec<&str> = document
                .value
                .params
                .iter()
                .filter(|(_, s)| s.kind == ParamType::Node)
                .map(|(n, _)| n.as_str())
                .collect();
            let extra: Vec<(&str, &str)> = node_params.iter().map(|&n| (n, HOSTILE)).collect();
            let plan = match try_compile(&runbook_path, &cluster, &extra) {
                Ok(plan) => plan,
                Err(err) => {
                    // The only acceptable refusal: a member name that cannot go into a manifest flag.
                    assert!(
                        err.contains("cannot go into a manifest"),
                        "{}:\n{err}",
                        runbook_path.display()
                    );
                    continue;
                }
            };
            compiled += 1;
            let mut seen = false;
            for (_, s) in plan.steps() {
                for script in scripts(s) {
                    if let Some(err) = sh_syntax_error(script) {
                        panic!(
                            "{}: `{}` is not valid sh: {err}\n{script}",
                            runbook_path.display(),
                            s.key
                        );
                    }
                    let quoted = single_quoted(script);
                    for (at, text) in script
                        .match_indices(HOSTILE)
                        .chain(script.match_indices(HOSTILE_DIR))
                    {
                        seen = true;
                        assert!(
                            quoted[at..at + text.len()].iter().all(|&q| q),
                            "{}: `{}` holds the node name unquoted:\n{script}",
                            runbook_path.display(),
                            s.key
                        );
                    }
                }
            }
            // A runbook of etcd API calls only (compact) has no script to reach.
            if plan.steps().any(|(_, s)| !scripts(s).is_empty()) {
                assert!(
                    seen,
                    "{}: the hostile name never reached a script; the test proves nothing",
                    runbook_path.display()
                );
            }
        }
    }
    assert!(
        compiled >= 3,
        "too few stock runbooks compiled with a hostile inventory"
    );
}

#[test]
fn the_quote_scanner_tells_quoted_from_bare_text() {
    let script = "echo 'a b' \"c 'd'\" e\\'f";
    let quoted = single_quoted(script);
    assert!(quoted[6] && quoted[8]);
    assert!(!quoted[13] && !quoted[17] && !quoted[21]);
}

// ---- defrag-rolling ---------------------------------------------------------------------------

#[test]
fn defrag_rolling_does_followers_one_by_one_then_the_old_leader_after_a_hand_over() {
    for inventory in inventories() {
        let cluster = load_cluster(&inventory);
        let plan = compile_with(&runbook("defrag-rolling"), &cluster, &[]);
        let followers = instances(&plan, "defrag-follower");
        assert_eq!(followers.len(), cluster.nodes.len());
        for (k, &f) in followers.iter().enumerate() {
            let s = &plan.graph[f];
            assert_eq!(s.role, Some(RoleGuard::Follower), "{}", s.key);
            assert!(
                matches!(&s.when, Condition::AtRunTime(e) if e.contains("verdict")),
                "{}: skipped below the threshold at run time",
                s.key
            );
            // One at a time: each waits for the previous one.
            if k > 0 {
                assert!(ancestors(&plan, f).contains(&followers[k - 1]), "{}", s.key);
            }
        }
        for node in &cluster.nodes {
            let old_leader = index(&plan, &format!("defrag-old-leader@{}", node.name));
            assert_eq!(plan.graph[old_leader].role, Some(RoleGuard::Leader));
            let before = ancestors(&plan, old_leader);
            for key in ["move-leader", "leader-moved", "successor"] {
                assert!(
                    before.contains(&index(&plan, &format!("{key}@{}", node.name))),
                    "the old leader is defragmented after `{key}`"
                );
            }
            for f in &followers {
                assert!(
                    before.contains(f),
                    "the old leader comes after every follower"
                );
            }
            let Operation::Etcd { endpoints, .. } = &plan.graph[old_leader].operation else {
                panic!()
            };
            assert_eq!(endpoints, std::slice::from_ref(&node.etcd.client_url));
        }
        // The alarm is disarmed only after every member, and only if nothing but NOSPACE is on.
        let disarm = ancestors(&plan, index(&plan, "disarm"));
        for i in instances(&plan, "defrag-old-leader")
            .into_iter()
            .chain(followers.iter().copied())
        {
            assert!(disarm.contains(&i));
        }
        assert!(disarm.contains(&index(&plan, "only-nospace-after")));
        assert_eq!(plan.summary().destructive, 0);
    }
}

#[test]
fn defrag_rolling_reads_fragmentation_and_refuses_other_alarms_in_sh() {
    let cluster = load_cluster(&inventories()[0]);
    let plan = compile_with(
        &runbook("defrag-rolling"),
        &cluster,
        &[("min_free_mb", "8")],
    );
    let node = &cluster.nodes[0].name;
    let probe = script_of(step(&plan, &format!("fragmentation@{node}")));
    assert!(probe.contains("min_mb=8"), "{probe}");
    // The probe's decision on a canned `endpoint status`, run with a stub etcdctl.
    let dir = tempfile::tempdir().unwrap();
    for (size, in_use, verdict) in [(30 << 20, 1 << 20, "defrag"), (30 << 20, 25 << 20, "skip")] {
        let status = format!(
            r#"[{{"Endpoint":"x","Status":{{"header":{{"revision":5}},"dbSize":{size},"dbSizeInUse":{in_use}}}}}]"#
        );
        let call = probe.lines().find(|l| l.starts_with("status=$(")).unwrap();
        let script = probe.replace(call, "status=$(printf '%s' \"$STATUS\")");
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("STATUS", &status)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{script}\n{stdout}");
        assert!(
            stdout.contains(&format!(r#""verdict":"{verdict}""#))
                && stdout.contains(&format!(r#""reclaimable":{}"#, size - in_use)),
            "{stdout}"
        );
    }
    let guard = script_of(step(&plan, "only-nospace-before"));
    for (alarms, ok) in [
        ("none", true),
        ("NOSPACE@cp1,NOSPACE@cp2", true),
        ("NOSPACE@cp1,CORRUPT@cp2", false),
    ] {
        let script = guard.replace("'⟨steps.alarms-before.outputs.alarms⟩'", alarms);
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert_eq!(out.status.success(), ok, "{alarms}");
    }
}

// ---- compact ------------------------------------------------------------------------------------

#[test]
fn compact_keeps_a_window_asks_first_and_cannot_be_undone() {
    let cluster = load_cluster(&inventories()[0]);
    let plan = compile_with(&runbook("compact"), &cluster, &[]);
    let compact = step(&plan, "compact");
    assert!(runs(compact) && compact.destructive && compact.confirm.is_some());
    assert_eq!(compact.rollback, Rollback::Irreversible);
    let Operation::Etcd {
        call: Action::EtcdCompact(args),
        ..
    } = &compact.operation
    else {
        panic!()
    };
    assert_eq!(
        (args.keep_revisions, args.revision, args.physical),
        (10000, None, true)
    );
    assert!(!runs(step(&plan, "compact-to")));

    let plan = compile_with(
        &runbook("compact"),
        &cluster,
        &[("revision", "4000"), ("keep_revisions", "500")],
    );
    assert!(!runs(step(&plan, "compact")));
    let to = step(&plan, "compact-to");
    assert!(runs(to) && to.confirm.is_some());
    let Operation::Etcd {
        call: Action::EtcdCompact(args),
        ..
    } = &to.operation
    else {
        panic!()
    };
    assert_eq!((args.keep_revisions, args.revision), (500, Some(4000)));
}

// ---- scale --------------------------------------------------------------------------------------

#[test]
fn scale_refuses_an_even_or_small_inventory() {
    let three = load_cluster(&inventories()[0]);
    let params = [("direction", "grow"), ("first", "cp2"), ("second", "cp3")];
    let err = try_compile(&runbook("scale"), &three, &params).unwrap_err();
    assert!(err.contains("at least 5"), "{err}");
    let five = five_nodes();
    let mut text =
        std::fs::read_to_string(repo().join("drills/inventories/kubeadm-3.yaml")).unwrap();
    text.push_str("  - name: cp4\n    address: 10.0.0.14\n");
    let four = Cluster::load(SourceFile::new("kubeadm-4", text)).unwrap();
    let err = try_compile(&runbook("scale"), &four, &params).unwrap_err();
    assert!(err.contains("odd"), "{err}");
    compile_with(&runbook("scale"), &five, &params);
}

/// A defragmentation or a compaction changes no membership and is most needed in an emergency:
/// an even member count is warned about, not refused; membership-changing runbooks still refuse it.
#[test]
fn defrag_and_compact_run_on_an_even_count_with_a_warning() {
    let mut text =
        std::fs::read_to_string(repo().join("drills/inventories/kubeadm-3.yaml")).unwrap();
    text.push_str("  - name: cp4\n    address: 10.0.0.14\n");
    let four = Cluster::load(SourceFile::new("kubeadm-4", text)).unwrap();
    let defrag = compile_with(&runbook("defrag-rolling"), &four, &[]);
    let warn = script_of(step(&defrag, "member-count"));
    let out = Command::new("sh").arg("-c").arg(warn).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: the cluster has 4 members"),
        "{warn}"
    );
    compile_with(&runbook("compact"), &four, &[]);
    for refusing in ["replace-member", "quorum-recovery", "restore-3-node"] {
        let err = try_compile(&runbook(refusing), &four, &[]).unwrap_err();
        assert!(err.contains("odd"), "{refusing}: {err}");
    }
}

#[test]
fn scale_grows_one_learner_at_a_time() {
    let cluster = five_nodes();
    let plan = compile_with(
        &runbook("scale"),
        &cluster,
        &[("direction", "grow"), ("first", "cp4"), ("second", "cp5")],
    );
    for (_, s) in plan.steps() {
        if s.step.starts_with("shrink") || s.step.starts_with("remove") {
            assert!(!runs(s), "{} runs on a grow", s.key);
        }
    }
    for (id, node) in [
        ("add-first", "cp4"),
        ("configure-first", "cp4"),
        ("start-first", "cp4"),
        ("promote-first", "cp4"),
        ("add-second", "cp5"),
        ("configure-second", "cp5"),
        ("start-second", "cp5"),
        ("promote-second", "cp5"),
    ] {
        for i in instances(&plan, id) {
            let s = &plan.graph[i];
            assert_eq!(runs(s), s.host == Host::Node(node.into()), "{}", s.key);
        }
    }
    let add = step(&plan, "add-first@cp4");
    let Operation::Etcd {
        call: Action::EtcdMemberAdd(args),
        endpoints,
    } = &add.operation
    else {
        panic!()
    };
    assert!(args.learner && add.confirm.is_some() && add.retries.attempts >= 5);
    assert!(!endpoints.contains(&cluster.node("cp4").unwrap().etcd.client_url));
    assert!(step(&plan, "promote-first@cp4").retries.attempts >= 10);
    // The first joins the three members; the second, all four.
    let first = script_of(step(&plan, "configure-first@cp4"));
    let mut joined: Vec<&str> = initial_cluster_in(first).split(',').collect();
    joined.sort();
    let mut expected: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.name != "cp5")
        .map(|n| format!("{}={}", n.etcd.member, n.etcd.peer_url))
        .collect();
    expected.sort();
    assert_eq!(joined, expected);
    let second = script_of(step(&plan, "configure-second@cp5"));
    assert_eq!(initial_cluster_in(second), cluster.initial_cluster());
    assert!(first.contains("initial-cluster-state=existing"));
    // The second is added only once the first is promoted and every member is healthy.
    let add_second = ancestors(&plan, index(&plan, "add-second@cp5"));
    assert!(add_second.contains(&index(&plan, "promote-first@cp4")));
    for i in instances(&plan, "first-joined") {
        assert!(add_second.contains(&i));
    }
    // Nothing is added before the membership and every member's health are checked.
    let add_first = ancestors(&plan, index(&plan, "add-first@cp4"));
    assert!(add_first.contains(&index(&plan, "grow-membership")));
    for i in instances(&plan, "grow-healthy") {
        assert!(add_first.contains(&i));
    }
}

#[test]
fn scale_shrinks_one_member_at_a_time_never_the_leader() {
    let cluster = five_nodes();
    let plan = compile_with(
        &runbook("scale"),
        &cluster,
        &[("direction", "shrink"), ("first", "cp4"), ("second", "cp5")],
    );
    for (_, s) in plan.steps() {
        if s.step.starts_with("grow") || s.step.starts_with("add") {
            assert!(!runs(s), "{} runs on a shrink", s.key);
        }
    }
    let remove_first = index(&plan, "remove-first@cp4");
    let remove_second = index(&plan, "remove-second@cp5");
    for i in [remove_first, remove_second] {
        let s = &plan.graph[i];
        assert!(s.destructive && s.retries.attempts >= 5, "{}", s.key);
        assert_eq!(s.rollback, Rollback::Irreversible);
    }
    assert!(plan.graph[remove_first].confirm.is_some());
    // Leadership leaves a leaving member first; the members must be all there and healthy.
    let before_first = ancestors(&plan, remove_first);
    for key in [
        "shrink-membership",
        "shrink-healthy",
        "move-leader@cp4",
        "move-leader@cp5",
        "leader-stays@cp5",
    ] {
        assert!(before_first.contains(&index(&plan, key)), "{key}");
    }
    assert!(!runs(step(&plan, "move-leader@cp1")));
    assert_eq!(step(&plan, "move-leader@cp4").role, Some(RoleGuard::Leader));
    // The second goes only once the first is stopped and the rest are healthy.
    let before_second = ancestors(&plan, remove_second);
    assert!(before_second.contains(&index(&plan, "stop-first@cp4")));
    for i in instances(&plan, "first-gone") {
        assert!(before_second.contains(&i));
    }
    let successor = script_of(step(&plan, "successor"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(successor)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cp1");
    // Same node twice is refused at run time, before anything.
    let twice = compile_with(
        &runbook("scale"),
        &cluster,
        &[("direction", "shrink"), ("first", "cp4"), ("second", "cp4")],
    );
    let check = script_of(step(&twice, "two-nodes"));
    assert!(
        !Command::new("sh")
            .arg("-c")
            .arg(check)
            .status()
            .unwrap()
            .success()
    );
}
