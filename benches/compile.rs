//! Compile time of a generated runbook of 1,000 steps over a 5-node inventory.
//!
//! Run with `cargo bench --bench compile`. Prints the median and worst of several runs for
//! parsing (YAML to typed runbook) and compiling (runbook to plan), the process's peak RSS, and
//! the sha256 of the plan's JSON document and text form: an optimisation of the compiler must not
//! change them. `ETCDRILL_BENCH_RUNS=N` changes the number of runs (1 under callgrind).

use std::time::{Duration, Instant};

use etcdrill::format;
use etcdrill::inventory::Cluster;
use etcdrill::plan::compile;
use etcdrill::runbook::Runbook;
use etcdrill::source::SourceFile;
use sha2::{Digest, Sha256};

const STEPS: usize = 1_000;
const NODES: usize = 5;
/// Runs unless `ETCDRILL_BENCH_RUNS` says otherwise.
const RUNS: usize = 15;

/// An inventory of `NODES` kubeadm nodes.
fn inventory() -> String {
    let mut text =
        String::from("name: bench\ndefaults:\n  etcd:\n    management: {static_pod: {}}\nnodes:\n");
    for i in 1..=NODES {
        text.push_str(&format!("  - {{name: cp{i}, address: 10.0.0.{i}}}\n"));
    }
    text
}

/// A runbook whose steps mix per-node shell and typed node actions, cluster API calls, outputs
/// flowing between steps and fan-in/fan-out dependencies: the shapes real runbooks use.
fn runbook() -> String {
    let mut text = String::from(
        "name: generated\nsummary: a large generated runbook\nparams:\n  dir: {type: path, default: /var/backups/etcd}\nsteps:\n",
    );
    for i in 0..STEPS {
        let needs = match i {
            0 => String::new(),
            _ if i % 10 == 0 => format!("\n    needs: [s{}, s{}]", i - 1, i - 10),
            _ => format!("\n    needs: [s{}]", i - 1),
        };
        let body = match i % 5 {
            0 => "on: cluster\n    action: etcd.status".to_string(),
            1 => "on: each\n    action: shell\n    with: {run: 'ls -l {{params.dir}} {{node.data_dir}} && echo {{steps.s0.outputs.leader}}'}".to_string(),
            2 => "on: each\n    action: etcd.snapshot.verify\n    with: {path: '{{params.dir}}/{{node.name}}.db'}".to_string(),
            3 => "on: each\n    action: etcd.configure_member\n    with: {set: {initial-cluster-state: existing}}".to_string(),
            _ => "on: each\n    action: etcd.defrag".to_string(),
        };
        let needs = if i % 5 == 1 && i > 1 {
            format!("{needs}\n    # s0 outputs flow through the chain")
        } else {
            needs
        };
        text.push_str(&format!(
            "  - id: s{i}\n    title: step {i}\n    {body}{needs}\n"
        ));
    }
    text
}

fn median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], *times.last().expect("runs > 0"))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn runs() -> usize {
    std::env::var("ETCDRILL_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .filter(|&runs| runs > 0)
        .unwrap_or(RUNS)
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn main() {
    let runs = runs();
    let runbook_text = runbook();
    let cluster =
        Cluster::load(SourceFile::new("bench-inventory.yaml", inventory())).expect("inventory");
    let mut parse = Vec::new();
    let mut build = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        // One plan alive at a time, as before, so that peak RSS stays comparable.
        drop(last.take());
        let start = Instant::now();
        let loaded = Runbook::load(SourceFile::new("bench-runbook.yaml", runbook_text.clone()))
            .expect("runbook");
        parse.push(start.elapsed());
        let start = Instant::now();
        let plan = compile(&loaded, &cluster, &[]).expect("plan");
        build.push(start.elapsed());
        last = Some(std::hint::black_box(plan));
    }
    let plan = last.expect("runs > 0");
    let instances = plan.graph.node_count();
    let (parse_median, parse_worst) = median(parse);
    let (build_median, build_worst) = median(build);
    println!(
        "runbook: {STEPS} steps over {NODES} nodes = {instances} plan steps, {} KiB of YAML",
        runbook_text.len() / 1024
    );
    println!(
        "parse   (YAML -> Runbook): median {parse_median:?}, worst {parse_worst:?} over {runs} runs"
    );
    println!(
        "compile (Runbook -> Plan): median {build_median:?}, worst {build_worst:?} over {runs} runs"
    );
    println!("total median: {:?}", parse_median + build_median);
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {} MiB", kib / 1024);
    }
    let json = format::json::render(&plan);
    let text = format::text::render(&plan);
    println!(
        "plan JSON: {} bytes, sha256 {}; text: {} bytes, sha256 {}",
        json.len(),
        sha256(&json),
        text.len(),
        sha256(&text)
    );
}
