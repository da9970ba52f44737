use super::*;
use crate::plan::{Condition, Operation, Rollback};
use crate::runbook::Runbook;
use crate::runbook::action::Action;

const INVENTORY: &str = "\
name: lab
defaults:
  etcd:
    management: {static_pod: {}}
nodes:
  - {name: cp1, address: 10.0.0.1, groups: [a]}
  - {name: cp2, address: 10.0.0.2, groups: [a]}
  - {name: cp3, address: 10.0.0.3}
";

fn cluster(text: &str) -> Cluster {
    Cluster::load(SourceFile::new("inv.yaml", text)).unwrap()
}

fn compile_text(runbook: &str, inventory: &str, params: &[(&str, &str)]) -> Result<Plan, String> {
    let runbook = Runbook::load(SourceFile::new("rb.yaml", runbook)).map_err(|e| e.to_string())?;
    let line = params
        .iter()
        .map(|(k, v)| format!("-p {k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let source = SourceFile::new("command line", line);
    let inputs: Vec<ParamInput> = params
        .iter()
        .map(|(k, v)| ParamInput {
            name: k.to_string(),
            value: serde_yaml::Value::String(v.to_string()),
            source: source.clone(),
            location: None,
        })
        .collect();
    compile(&runbook, &cluster(inventory), &inputs).map_err(|e| e.to_string())
}

fn keys(plan: &Plan) -> Vec<Vec<String>> {
    plan.waves()
        .into_iter()
        .map(|w| w.into_iter().map(|i| plan.graph[i].key.clone()).collect())
        .collect()
}

fn needs_of(plan: &Plan, key: &str) -> Vec<String> {
    plan.needs(plan.find(key).unwrap())
        .into_iter()
        .map(|(s, o)| format!("{}:{o}", s.key))
        .collect()
}

const PIPELINE: &str = "\
name: t
summary: s
steady_state:
  - {id: healthy, title: H, action: verify.healthy}
steps:
  - {id: check, title: C, on: cluster, action: etcd.status}
  - {id: stop, title: S, on: each, action: etcd.stop_member, needs: [check]}
  - {id: restore, title: R, on: each, action: shell, with: {run: 'echo {{node.name}}'}, needs: [stop]}
  - {id: start, title: St, on: each, action: etcd.start_member, needs: [{step: restore, pairing: all}]}
  - {id: wait, title: W, on: cluster, action: wait.healthy, needs: [start]}
";

#[test]
fn per_node_steps_pair_node_to_node_and_fan_in_to_cluster_steps() {
    let plan = compile_text(PIPELINE, INVENTORY, &[]).unwrap();
    assert_eq!(
        keys(&plan),
        [
            vec!["steady-before.healthy"],
            vec!["check"],
            vec!["stop@cp1", "stop@cp2", "stop@cp3"],
            vec!["restore@cp1", "restore@cp2", "restore@cp3"],
            vec!["start@cp1", "start@cp2", "start@cp3"],
            vec!["wait"],
            vec!["steady-after.healthy"],
        ]
    );
    assert_eq!(needs_of(&plan, "restore@cp2"), ["stop@cp2:success"]);
    assert_eq!(
        needs_of(&plan, "start@cp1"),
        [
            "restore@cp1:success",
            "restore@cp2:success",
            "restore@cp3:success"
        ]
    );
    assert_eq!(needs_of(&plan, "wait").len(), 3);
    let summary = plan.summary();
    assert_eq!(
        (summary.steps, summary.nodes, summary.destructive),
        (13, 3, 0)
    );
}

#[test]
fn serial_steps_chain_in_inventory_order() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: d, title: D, on: each, action: etcd.defrag, serial: true}\n";
    let plan = compile_text(runbook, INVENTORY, &[]).unwrap();
    assert_eq!(keys(&plan), [vec!["d@cp1"], vec!["d@cp2"], vec!["d@cp3"]]);
}

#[test]
fn hostile_node_names_stay_one_quoted_word() {
    let inventory = INVENTORY.replace("name: cp1,", "name: \"n1; rm -rf / $(id) 'q'\",");
    let plan = compile_text(PIPELINE, &inventory, &[]).unwrap();
    let step = &plan.graph[plan.find("restore@n1; rm -rf / $(id) 'q'").unwrap()];
    let Operation::Script { script } = &step.operation else {
        panic!()
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n1; rm -rf / $(id) 'q'\n"
    );
}

#[test]
fn run_time_values_stay_visible_placeholders() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: save, title: S, on: cluster, action: etcd.snapshot.save, with: {path: '/b/{{run.id}}.db'}}\n  - {id: check, title: C, on: each, action: etcd.snapshot.verify, with: {path: '{{steps.save.outputs.path}}'}, needs: [save]}\n";
    let plan = compile_text(runbook, INVENTORY, &[]).unwrap();
    let save = &plan.graph[plan.find("save").unwrap()];
    let check = &plan.graph[plan.find("check@cp1").unwrap()];
    let Operation::Script { script } = &check.operation else {
        panic!()
    };
    assert!(script.contains("f='⟨steps.save.outputs.path⟩'"), "{script}");
    assert!(save.operation.is_deferred() && check.template.is_some());
}

#[test]
fn outputs_of_steps_that_are_not_dependencies_are_refused() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: save, title: S, on: cluster, action: etcd.snapshot.save, with: {path: /b.db}}\n  - {id: check, title: C, on: each, action: etcd.snapshot.verify, with: {path: '{{steps.save.outputs.path}}'}}\n";
    let err = compile_text(runbook, INVENTORY, &[]).unwrap_err();
    assert!(
        err.contains("unknown variable `steps.save.outputs.path`"),
        "{err}"
    );
    assert!(err.contains("is not a dependency of this step"), "{err}");
    assert!(err.contains("rb.yaml:5:"), "{err}");
}

#[test]
fn per_node_steps_that_pair_with_nothing_are_refused() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: a, title: A, on: 'group:a', action: etcd.stop_member}\n  - {id: b, title: B, on: each, action: etcd.start_member, needs: [a]}\n";
    let err = compile_text(runbook, INVENTORY, &[]).unwrap_err();
    assert!(
        err.contains("`b` on node `cp3` pairs with no instance of `a`"),
        "{err}"
    );
    assert!(err.contains("set `pairing: all`"), "{err}");
}

#[test]
fn parameters_are_typed_required_and_secret() {
    let runbook = "name: t\nsummary: s\nparams:\n  snap: {type: path}\n  token: {type: string, secret: true, default: hunter2}\n  bump: {type: int, default: 5}\nsteps:\n  - {id: r, title: R, on: each, action: etcd.snapshot.restore, with: {snapshot: '{{params.snap}}', data_dir: /d, cluster_token: '{{params.token}}', bump_revision: '{{params.bump}}', mark_compacted: true}}\n";
    let err = compile_text(runbook, INVENTORY, &[]).unwrap_err();
    assert!(err.contains("parameter `snap` is required"), "{err}");
    let err = compile_text(runbook, INVENTORY, &[("snap", "/s.db"), ("bump", "x")]).unwrap_err();
    assert!(err.contains("`x` is not a whole number"), "{err}");
    let err = compile_text(runbook, INVENTORY, &[("snap", "/s.db"), ("snp", "1")]).unwrap_err();
    assert!(err.contains("did you mean `snap`?"), "{err}");

    let plan = compile_text(runbook, INVENTORY, &[("snap", "/s.db")]).unwrap();
    let json = serde_json::to_string(&plan.document()).unwrap();
    assert!(!json.contains("hunter2"), "a secret reached the plan");
    assert!(json.contains("⟨secret.token⟩"));
    let Operation::Script { script } = &plan.graph[plan.find("r@cp1").unwrap()].operation else {
        panic!()
    };
    assert!(
        script.contains("--bump-revision 5 --mark-compacted"),
        "{script}"
    );
    assert!(plan.graph[plan.find("r@cp1").unwrap()].destructive);
}

#[test]
fn an_even_member_count_is_refused_when_the_runbook_needs_odd() {
    let runbook = "name: t\nsummary: s\ntopology: {odd_members: true}\nsteps:\n  - {id: a, title: A, on: cluster, action: etcd.health}\n";
    let inventory = INVENTORY.replace("  - {name: cp3, address: 10.0.0.3}\n", "");
    let err = compile_text(runbook, &inventory, &[]).unwrap_err();
    assert!(
        err.contains("the inventory has 2 members, but runbook `t` needs an odd count"),
        "{err}"
    );
    assert!(
        err.contains("inv.yaml:6:3") && err.contains("rb.yaml:3:11"),
        "{err}"
    );
}

#[test]
fn compile_time_conditions_skip_visibly() {
    let runbook = "name: t\nsummary: s\nparams:\n  rehearse: {type: bool, default: false}\nsteps:\n  - {id: a, title: A, on: cluster, action: etcd.health, when: params.rehearse}\n";
    let plan = compile_text(runbook, INVENTORY, &[]).unwrap();
    assert_eq!(
        plan.graph[plan.find("a").unwrap()].when,
        Condition::SkippedAtCompile("params.rehearse".into())
    );
    let plan = compile_text(runbook, INVENTORY, &[("rehearse", "true")]).unwrap();
    assert_eq!(plan.graph[plan.find("a").unwrap()].when, Condition::Always);
}

#[test]
fn force_new_cluster_is_destructive_and_irreversible() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: f, title: F, on: 'node:cp1', action: etcd.start_member, with: {force_new_cluster: true}}\n";
    let plan = compile_text(runbook, INVENTORY, &[]).unwrap();
    let step = &plan.graph[plan.find("f@cp1").unwrap()];
    assert!(step.destructive);
    assert_eq!(step.rollback, Rollback::Irreversible);
}

#[test]
fn external_members_need_an_env_file_to_change_flags() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: c, title: C, on: each, action: etcd.configure_member, with: {set: {initial-cluster-state: existing}}}\n";
    let inventory = INVENTORY.replace(
        "{static_pod: {}}",
        "{external: {start: systemctl start etcd, stop: systemctl stop etcd}}",
    );
    let err = compile_text(runbook, &inventory, &[]).unwrap_err();
    assert!(err.contains("without `env_file`"), "{err}");
    assert!(err.contains("inv.yaml:6:"), "{err}");
}

#[test]
fn member_changes_go_to_the_other_members() {
    let runbook = "name: t\nsummary: s\nsteps:\n  - {id: add, title: A, on: 'node:cp3', action: etcd.member.add, with: {name: '{{node.member}}', peer_url: '{{node.peer_url}}'}}\n";
    let plan = compile_text(runbook, INVENTORY, &[]).unwrap();
    let step = &plan.graph[plan.find("add@cp3").unwrap()];
    let Operation::Etcd { endpoints, .. } = &step.operation else {
        panic!()
    };
    assert_eq!(
        endpoints,
        &["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    );
    assert!(matches!(
        &step.rollback,
        Rollback::Run {
            operation: Operation::Etcd {
                call: Action::EtcdMemberRemove(_),
                ..
            }
        }
    ));
}

#[test]
fn the_digest_changes_with_the_plan() {
    let a = compile_text(PIPELINE, INVENTORY, &[]).unwrap();
    let b = compile_text(PIPELINE, INVENTORY, &[]).unwrap();
    let c = compile_text(
        &PIPELINE.replace("echo {{node.name}}", "echo {{node.address}}"),
        INVENTORY,
        &[],
    )
    .unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn a_run_time_compile_fills_placeholders_with_run_values() {
    let runbook_text = "name: t\nsummary: s\nparams:\n  token: {type: string, secret: true, default: hunter2}\nsteps:\n  - {id: save, title: S, on: cluster, action: etcd.snapshot.save, with: {path: '/b/{{run.id}}.db'}}\n  - {id: check, title: C, on: each, action: etcd.snapshot.verify, with: {path: '{{steps.save.outputs.path}}'}, needs: [save]}\n  - {id: use, title: U, on: each, action: shell, with: {run: 'echo {{params.token}}'}}\n";
    let runbook = Runbook::load(SourceFile::new("rb.yaml", runbook_text)).unwrap();
    let values = RunValues {
        run: [("id".to_string(), "r-42".to_string())].into(),
        outputs: [(
            "save".to_string(),
            [("path".to_string(), "/b/r 42.db".to_string())].into(),
        )]
        .into(),
    };
    let plan = super::compile_for_run(&runbook, &cluster(INVENTORY), &[], &values).unwrap();
    let Operation::Etcd {
        call: Action::EtcdSnapshotSave(save),
        ..
    } = &plan.graph[plan.find("save").unwrap()].operation
    else {
        panic!()
    };
    assert_eq!(save.path, "/b/r-42.db");
    let Operation::Script { script } = &plan.graph[plan.find("check@cp2").unwrap()].operation
    else {
        panic!()
    };
    assert!(script.contains("f='/b/r 42.db'"), "{script}");
    let Operation::Script { script } = &plan.graph[plan.find("use@cp1").unwrap()].operation else {
        panic!()
    };
    assert_eq!(
        script, "echo hunter2",
        "secrets are revealed to the executor only"
    );
}

#[test]
fn the_nearest_dependency_is_found_along_the_edges_at_any_distance() {
    let plan = compile_text(
        "name: t\nsummary: s\nsteps:\n  - {id: copy, title: C, on: each, action: etcd.stop_member}\n  - {id: verify, title: V, on: each, action: etcd.status, needs: [copy]}\n  - {id: probe, title: P, on: cluster, action: etcd.health, needs: [{step: verify, pairing: all}]}\n  - {id: other, title: O, on: cluster, action: etcd.health}\n",
        INVENTORY,
        &[],
    )
    .unwrap();
    let is_copy = |i: NodeIndex| plan.graph[i].step == "copy";
    let nearest = |key: &str| {
        plan.nearest_dependency(plan.find(key).unwrap(), is_copy)
            .map(|i| plan.graph[i].key.clone())
    };
    // Node to node, then through every instance of `verify`: the earliest instance wins ties.
    assert_eq!(nearest("verify@cp2").as_deref(), Some("copy@cp2"));
    assert_eq!(nearest("probe").as_deref(), Some("copy@cp1"));
    assert_eq!(nearest("other"), None);
    assert_eq!(
        nearest("copy@cp1"),
        None,
        "a step is not its own dependency"
    );
}
