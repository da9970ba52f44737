//! Per-step overhead of the executor: 300 trivial steps (`true`) on a 3-node test bed over SSH,
//! against the same 300 commands as one plain `ssh` invocation each (a new connection every time)
//! and as a loop over an OpenSSH ControlMaster connection.
//!
//! The etcdrill and ControlMaster variants run in 3 interleaved rounds (median and range); the
//! plain ssh loop once. Needs root and the test bed's helpers:
//! `cargo build -p etcdrill-testbed --bins && ETCDRILL_TESTBED_BIN_DIR=target/debug cargo bench --bench exec_overhead`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use etcdrill::exec::progress::Reporter;
use etcdrill::exec::run_dir::RunRecord;
use etcdrill::exec::{self, NoPrompter, OnFailure, RunInputs, RunOptions};
use etcdrill::inventory::Cluster;
use etcdrill::plan::compile;
use etcdrill::runbook::Runbook;
use etcdrill::source::SourceFile;
use etcdrill_testbed::{Bed, BedConfig};

const STEPS: usize = 300;
/// Rounds of the etcdrill and ControlMaster variants.
const ROUNDS: usize = 3;

/// 300 steps one after another, round robin over the nodes.
fn serial_runbook(nodes: &[String]) -> String {
    let mut text =
        String::from("name: overhead-serial\nsummary: trivial steps one after another\nsteps:\n");
    for i in 0..STEPS {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [s{}]", i - 1)
        };
        let node = &nodes[i % nodes.len()];
        text.push_str(&format!("  - {{id: s{i}, title: t, on: 'node:{node}', action: shell, with: {{run: 'true'}}{needs}}}\n"));
    }
    text
}

/// 100 steps one after another, each on every node at once: 300 step instances in 100 waves.
fn wave_runbook(nodes: usize) -> String {
    let mut text =
        String::from("name: overhead-waves\nsummary: trivial steps on every node\nsteps:\n");
    for i in 0..STEPS / nodes {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [{{step: w{}, pairing: all}}]", i - 1)
        };
        text.push_str(&format!(
            "  - {{id: w{i}, title: t, on: each, action: shell, with: {{run: 'true'}}{needs}}}\n"
        ));
    }
    text
}

fn run_etcdrill(runbook_text: &str, inventory: &Path, work: &Path) -> Duration {
    let runbook = Runbook::load(SourceFile::new("bench.yaml", runbook_text)).expect("runbook");
    let cluster =
        Cluster::load(SourceFile::read(inventory).expect("inventory")).expect("inventory");
    let plan = compile(&runbook, &cluster, &[]).expect("plan");
    let options = RunOptions {
        check: false,
        yes: true,
        allow_production: false,
        concurrency: 8,
        on_failure: OnFailure::Stop,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let summary = runtime.block_on(async {
        let (_stop, shutdown) = tokio::sync::watch::channel(0);
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &[],
            plan: &plan,
            secrets: vec![],
            prologue: Vec::new(),
        };
        let mut reporter = Reporter::lines(Box::new(std::io::sink()));
        exec::run(
            inputs,
            options,
            &mut NoPrompter,
            &mut reporter,
            work,
            |dir| RunRecord::new(&dir.id, Path::new("bench.yaml"), inventory, false),
            shutdown,
        )
        .await
        .expect("the run starts")
    });
    let elapsed = started.elapsed();
    assert_eq!(summary.result, etcdrill::journal::RunResult::Succeeded);
    elapsed
}

fn ssh_base(bed: &Bed) -> Vec<String> {
    let ssh = bed.ssh();
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", ssh.known_hosts.display()),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-i".into(),
        ssh.identity_file.display().to_string(),
        "-p".into(),
        ssh.port.to_string(),
        "-l".into(),
        ssh.user.clone(),
    ]
}

fn ssh(args: &[String], extra: &[String], address: &str) {
    let status = Command::new("ssh")
        .args(args)
        .args(extra)
        .arg(address)
        .arg("true")
        .status()
        .expect("ssh runs");
    assert!(status.success());
}

fn main() {
    let config = BedConfig::new(3);
    if let Err(why) = etcdrill_testbed::check(&config) {
        eprintln!("skipped: the test bed is unavailable here: {why}");
        return;
    }
    let bed = Bed::start(config).expect("the bed starts");
    let work = tempfile::tempdir().expect("tempdir");
    let inventory = work.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        bed.etcdrill_inventory(work.path(), &bed.ssh().known_hosts),
    )
    .expect("write");
    let names: Vec<String> = bed.nodes().iter().map(|n| n.name().to_string()).collect();
    let addresses: Vec<String> = bed
        .nodes()
        .iter()
        .map(|n| n.address().to_string())
        .collect();
    let base = ssh_base(&bed);

    let control = work.path().join("cm-%h");
    let mux = vec![
        "-o".into(),
        format!("ControlPath={}", control.display()),
        "-o".into(),
        "ControlMaster=auto".into(),
        "-o".into(),
        "ControlPersist=60".into(),
    ];
    // The cheap variants in interleaved rounds, so that a burst of load elsewhere on the machine
    // hits each of them alike; the plain ssh loop (a minute) once.
    let (mut serial, mut waves, mut multiplexed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        serial.push(run_etcdrill(
            &serial_runbook(&names),
            &inventory,
            work.path(),
        ));
        waves.push(run_etcdrill(
            &wave_runbook(names.len()),
            &inventory,
            work.path(),
        ));
        let started = Instant::now();
        for i in 0..STEPS {
            ssh(&base, &mux, &addresses[i % addresses.len()]);
        }
        multiplexed.push(started.elapsed());
    }
    for address in &addresses {
        let _ = Command::new("ssh")
            .args(&base)
            .args(&mux)
            .args(["-O", "exit", address])
            .status();
    }

    let started = Instant::now();
    for i in 0..STEPS {
        ssh(
            &base,
            &["-o".into(), "ControlMaster=no".into()],
            &addresses[i % addresses.len()],
        );
    }
    let plain = vec![started.elapsed()];

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / STEPS as f64;
    println!(
        "300 trivial commands on 3 nodes over SSH (loopback-local test bed); median of the \
         rounds, per-command range in brackets"
    );
    println!(
        "{:<58} {:>6} {:>9} {:>12} {:>20}",
        "variant", "rounds", "total", "per command", "range"
    );
    let row = |name: &str, mut times: Vec<Duration>| {
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{name:<58} {:>6} {:>8.2}s {:>10.2}ms {:>9.2}-{:.2}ms",
            times.len(),
            median.as_secs_f64(),
            per(median),
            per(times[0]),
            per(times[times.len() - 1]),
        )
    };
    row("etcdrill run, 300 steps one after another", serial);
    row("etcdrill run, 100 waves of 3 parallel steps", waves);
    row(
        "plain ssh per command, one after another (no multiplexing)",
        plain,
    );
    row("ssh over a ControlMaster, one after another", multiplexed);
}
