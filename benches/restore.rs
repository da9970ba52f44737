//! Whole-cluster restore of a ~1 GB database on a 3-node test bed (issues 5 and 13): etcdrill's
//! stock `runbooks/restore-3-node.yaml` against the same procedure as (a) a plain bash script, node
//! by node over plain `ssh`, (b) an Ansible playbook (hosts in parallel, ControlPersist,
//! pipelining) and (c) the floor: the snapshot copied and restored in parallel before the
//! downtime, one `ssh` per node per phase over connections opened beforehand, then stop one by
//! one, swap, start, healthy (the way etcdrill restores, with nothing else).
//!
//! Every variant takes its own snapshot of the live cluster first (the save is part of its
//! total), then restores every member from it; the variants run in the same sitting, in
//! interleaved rounds, once with etcd's `--experimental-initial-corrupt-check` off and once on
//! (kubeadm sets it for etcd 3.5.0-3.5.2). One health probe serves them all: a thread asks
//! every member for a linearizable read of the `health` key (what `etcdctl endpoint health`
//! does) every 100 ms. Before each restore, leadership is moved to the last node, so that every
//! variant stops the followers first and the leader last (a leader stopped first hands
//! leadership over before it exits, and which node leads would otherwise decide the stop phase).
//! - total: from the start of the procedure (before the snapshot is saved) to the end of the
//!   first probe that finds every member healthy after all members were stopped;
//! - downtime: from the first member stop command to that same instant;
//! - outage: from the moment the last member was gone to that instant (ETCD-NOTES' "all stopped
//!   to 3 healthy").
//!
//! Needs root, the test bed's helpers and ansible-core in a directory of its own:
//! `python3 -m pip install --target /var/tmp/etcdrill-ansible ansible-core`, then
//! `cargo build -p etcdrill-testbed --bins && ETCDRILL_TESTBED_BIN_DIR=$PWD/target/debug cargo bench --bench restore`.
//! `ETCDRILL_BENCH_ROUNDS` (default 5), `ETCDRILL_BENCH_KEYS` (default 10,000 keys of 100 KB),
//! `ETCDRILL_BENCH_VARIANTS` (e.g. `etcdrill,floor`), `ETCDRILL_BENCH_CORRUPT_CHECK` (`off,on`,
//! the default, or one of them) and `ETCDRILL_ANSIBLE_DIR` change the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcdrill::etcd::{self, EtcdAccess};
use etcdrill::exec::progress::Reporter;
use etcdrill::exec::run_dir::RunRecord;
use etcdrill::exec::{self as executor, NoPrompter, OnFailure, RunInputs, RunOptions};
use etcdrill::inventory::{Cluster, TlsFiles};
use etcdrill::journal::{Event, Journal, RunResult};
use etcdrill::plan::{ParamInput, compile};
use etcdrill::runbook::Runbook;
use etcdrill::runbook::action::{Action, MoveLeaderArgs, SnapshotSaveArgs};
use etcdrill::source::SourceFile;
use etcdrill_testbed::{Bed, BedConfig, SEED_PREFIX, seed_value, shell_quote};

const VALUE_BYTES: usize = 100_000;
const PROBE_EVERY: Duration = Duration::from_millis(100);
const MARKS: &str = "/var/backups/etcd/bench-marks";
const DATA_DIR: &str = "/var/lib/etcd";
const RESTORED: &str = "/var/lib/etcd.restored";
const MANIFEST: &str = "/etc/kubernetes/manifests/etcd.yaml";
const PARKED: &str = "/etc/kubernetes/etcd.yaml";
const PKI: &str = "/etc/kubernetes/pki/etcd";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Etcdrill,
    Script,
    Ansible,
    Floor,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Etcdrill,
        Variant::Script,
        Variant::Ansible,
        Variant::Floor,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Etcdrill => "etcdrill",
            Variant::Script => "script",
            Variant::Ansible => "ansible",
            Variant::Floor => "floor",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Etcdrill => "etcdrill run restore-3-node",
            Variant::Script => "(a) plain script, node by node, plain ssh",
            Variant::Ansible => "(b) Ansible, hosts in parallel, ControlPersist",
            Variant::Floor => "(c) floor: parallel copy and restore",
        }
    }
}

/// What one restore took, by wall clock (every clock here is the host's CLOCK_REALTIME, which the
/// bed's namespaces share).
struct Measured {
    started: SystemTime,
    first_stop: SystemTime,
    all_stopped: SystemTime,
    /// The tool or script exited.
    finished: SystemTime,
    /// Phases in procedure order, as the variant can tell them.
    phases: Vec<(String, Duration)>,
    /// etcdrill only: first `stop` started to `wait-healthy` finished, from the journal.
    journal_downtime: Option<Duration>,
}

struct Row {
    variant: Variant,
    total: Duration,
    downtime: Duration,
    outage: Duration,
    tool: Duration,
    phases: Vec<(String, Duration)>,
    journal_downtime: Option<Duration>,
}

/// The bed's nodes, as the restore procedure needs them.
struct Facts {
    names: Vec<String>,
    addresses: Vec<String>,
    initial_cluster: String,
    endpoints: Vec<String>,
    /// The controller's `etcdctl` with the client certificate, as one quoted command prefix.
    etcdctl: String,
}

impl Facts {
    fn new(bed: &Bed) -> Facts {
        let names: Vec<String> = bed.nodes().iter().map(|n| n.name().to_string()).collect();
        let addresses: Vec<String> = bed
            .nodes()
            .iter()
            .map(|n| n.address().to_string())
            .collect();
        let initial_cluster = names
            .iter()
            .zip(&addresses)
            .map(|(n, a)| format!("{n}=https://{a}:2380"))
            .collect::<Vec<_>>()
            .join(",");
        let tls = bed.tls();
        let etcdctl = [
            bed.etcd_binaries().etcdctl.display().to_string(),
            format!("--cacert={}", tls.ca_cert.display()),
            format!("--cert={}", tls.client_cert.display()),
            format!("--key={}", tls.client_key.display()),
        ]
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ");
        Facts {
            names,
            addresses,
            initial_cluster,
            endpoints: bed.client_urls(),
            etcdctl,
        }
    }

    /// The controller-side command that saves a snapshot of the first member to `path`, as an
    /// admin's script would (`etcdctl snapshot save` wants exactly one endpoint).
    fn save_command(&self, path: &Path) -> String {
        format!(
            "ETCDCTL_API=3 {} --endpoints={} snapshot save {} >/dev/null",
            self.etcdctl,
            self.endpoints[0],
            shell_quote(&path.display().to_string())
        )
    }
}

/// Node-side shell snippets shared by the script, Ansible and the floor, so that they do the
/// same work. Each appends `<phase>-begin|end <ns>` to [`MARKS`] on its node.
mod sh {
    use super::*;

    fn mark(what: &str) -> String {
        format!("echo {what} $(date +%s%N) >> {MARKS}")
    }

    /// stdin into `path` (fsync'd), as etcdrill's push does.
    pub(super) fn receive(path: &str) -> String {
        format!(
            "set -e; mkdir -p /var/backups/etcd; {}; cat > {p}.part; sync {p}.part; mv -f {p}.part {p}; {}",
            mark("copy-begin"),
            mark("copy-end"),
            p = shell_quote(path)
        )
    }

    /// The sha256 trailer check etcdrill runs on nodes (coreutils only).
    pub(super) fn verify(path: &str) -> String {
        format!(
            "set -e; {}; f={}; size=$(stat -c %s \"$f\"); [ $((size % 512)) -eq 32 ]; want=$(tail -c 32 \"$f\" | od -An -v -tx1 | tr -d ' \\n'); got=$(head -c $((size - 32)) \"$f\" | sha256sum | cut -d' ' -f1); [ \"$want\" = \"$got\" ]; {}",
            mark("verify-begin"),
            shell_quote(path),
            mark("verify-end")
        )
    }

    /// etcdutl restore into [`RESTORED`] with this member's name and peer URL, then the live
    /// data dir's owner and mode.
    pub(super) fn restore(facts: &Facts, i: usize, snapshot: &str, token: &str) -> String {
        format!(
            "set -e; {}; /usr/local/bin/etcdutl snapshot restore {} --name {} --initial-cluster {} --initial-cluster-token {} --initial-advertise-peer-urls https://{}:2380 --data-dir {RESTORED} 2>/dev/null; chown -R \"$(stat -c %u:%g {DATA_DIR})\" {RESTORED}; chmod 700 {RESTORED}; {}",
            mark("restore-begin"),
            shell_quote(snapshot),
            facts.names[i],
            facts.initial_cluster,
            token,
            facts.addresses[i],
            mark("restore-end")
        )
    }

    /// Park the static pod's manifest and wait for the process to be gone.
    pub(super) fn stop() -> String {
        format!(
            "set -e; {}; mv -f {MANIFEST} {PARKED}; while pgrep -x etcd >/dev/null; do sleep 0.05; done; {}",
            mark("stop-begin"),
            mark("stop-end")
        )
    }

    pub(super) fn swap(tag: &str) -> String {
        format!("set -e; mv {DATA_DIR} {DATA_DIR}.before-restore-{tag}; mv {RESTORED} {DATA_DIR}")
    }

    pub(super) fn start() -> String {
        format!("set -e; mv -f {PARKED} {MANIFEST}; {}", mark("start-end"))
    }

    /// On one node: poll `etcdctl endpoint health` of every member every 100 ms (5 min at most).
    pub(super) fn wait_healthy(facts: &Facts) -> String {
        format!(
            "i=0; until /usr/local/bin/etcdctl --endpoints={} --cacert={PKI}/ca.crt --cert={PKI}/healthcheck-client.crt --key={PKI}/healthcheck-client.key --dial-timeout=1s --command-timeout=1s endpoint health >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 3000 ] || exit 1; sleep 0.1; done",
            facts.endpoints.join(",")
        )
    }
}

/// A thread polling every member's health every [`PROBE_EVERY`] until stopped.
struct Probe {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(SystemTime, SystemTime, bool)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Probe {
    fn start(access: EtcdAccess, endpoints: Vec<String>) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop2, samples2) = (stop.clone(), samples.clone());
        let access = access.with_dial_timeout(Duration::from_millis(500));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                // A client per member, kept while it answers and made anew after a failure.
                let mut clients: Vec<Option<etcd_client::Client>> = vec![None; endpoints.len()];
                while !stop2.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let started = SystemTime::now();
                    let polls = clients.iter_mut().zip(&endpoints).map(|(slot, endpoint)| {
                        let access = &access;
                        let held = slot.take();
                        async move {
                            let mut client = match held {
                                Some(client) => client,
                                None => match tokio::time::timeout(
                                    Duration::from_secs(1),
                                    access.client(std::slice::from_ref(endpoint)),
                                )
                                .await
                                {
                                    Ok(Ok(client)) => client,
                                    _ => return (None, false),
                                },
                            };
                            let answer = tokio::time::timeout(
                                Duration::from_secs(1),
                                client.get("health", None),
                            )
                            .await;
                            match answer {
                                Ok(Ok(_)) => (Some(client), true),
                                _ => (None, false),
                            }
                        }
                    });
                    let results = futures_util::future::join_all(polls).await;
                    let mut healthy = true;
                    for (slot, (client, ok)) in clients.iter_mut().zip(results) {
                        *slot = client;
                        healthy &= ok;
                    }
                    samples2
                        .lock()
                        .unwrap()
                        .push((started, SystemTime::now(), healthy));
                    tokio::time::sleep(PROBE_EVERY.saturating_sub(began.elapsed())).await;
                }
            });
        });
        Probe {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops polling; the end of the first poll that began at or after `after` and found every
    /// member healthy.
    fn healthy_after(mut self, after: SystemTime) -> Option<SystemTime> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the probe thread");
        }
        let samples = self.samples.lock().unwrap();
        samples
            .iter()
            .filter(|(started, _, healthy)| *healthy && *started >= after)
            .map(|(_, finished, _)| *finished)
            .min()
    }
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

fn from_nanos(text: &str) -> Option<SystemTime> {
    let nanos: u64 = text.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Every node's marks, `phase -> [times]`, and removes the files.
fn read_marks(bed: &Bed) -> BTreeMap<String, Vec<SystemTime>> {
    let mut marks: BTreeMap<String, Vec<SystemTime>> = BTreeMap::new();
    for node in bed.nodes() {
        let path = node.host_path(MARKS).expect("a node path");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            if let Some((what, nanos)) = line.split_once(' ')
                && let Some(at) = from_nanos(nanos)
            {
                marks.entry(what.to_string()).or_default().push(at);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    marks
}

fn first(marks: &BTreeMap<String, Vec<SystemTime>>, what: &str) -> SystemTime {
    *marks[what]
        .iter()
        .min()
        .unwrap_or_else(|| panic!("no {what} mark"))
}

fn last(marks: &BTreeMap<String, Vec<SystemTime>>, what: &str) -> SystemTime {
    *marks[what]
        .iter()
        .max()
        .unwrap_or_else(|| panic!("no {what} mark"))
}

/// Phases from marks: for each `X-begin`/`X-end` pair, first begin to last end.
fn mark_phases(
    marks: &BTreeMap<String, Vec<SystemTime>>,
    phases: &[&str],
) -> Vec<(String, Duration)> {
    phases
        .iter()
        .filter(|p| marks.contains_key(&format!("{p}-begin")))
        .map(|p| {
            (
                p.to_string(),
                since(
                    last(marks, &format!("{p}-end")),
                    first(marks, &format!("{p}-begin")),
                ),
            )
        })
        .collect()
}

/// Phases from marks of one node after another: the sum over nodes of each `X-begin` to its `X-end`.
fn mark_sums(
    marks: &BTreeMap<String, Vec<SystemTime>>,
    phases: &[&str],
) -> Vec<(String, Duration)> {
    phases
        .iter()
        .filter(|p| marks.contains_key(&format!("{p}-begin")))
        .map(|p| {
            let mut begins = marks[&format!("{p}-begin")].clone();
            let mut ends = marks[&format!("{p}-end")].clone();
            begins.sort();
            ends.sort();
            let sum = begins.iter().zip(&ends).map(|(b, e)| since(*e, *b)).sum();
            (format!("{p} (sum over nodes)"), sum)
        })
        .collect()
}

/// Removes what a restore leaves on the nodes (old data dirs, copies, marks); untimed.
fn clean_nodes(bed: &Bed) {
    for node in bed.nodes() {
        node.exec_ok(&format!(
            "rm -rf {DATA_DIR}.before-restore-* {RESTORED} /var/backups/etcd/*.db {MARKS}; test -f {MANIFEST}"
        ))
        .expect("clean the node");
    }
}

// ---------------------------------------------------------------------------------------------
// etcdrill

fn run_etcdrill(access: &EtcdAccess, inventory: &Path, work: &Path, tag: &str) -> Measured {
    let runbook_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/restore-3-node.yaml");
    let snapshot = &work.join(format!("{tag}.db"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = SystemTime::now();
    let cluster =
        Cluster::load(SourceFile::read(inventory).expect("inventory")).expect("inventory");
    let save = Instant::now();
    runtime
        .block_on(etcd::execute(
            access,
            &cluster,
            &cluster.client_urls()[..1],
            &Action::EtcdSnapshotSave(SnapshotSaveArgs {
                path: snapshot.display().to_string(),
            }),
            Duration::from_secs(600),
            None,
        ))
        .expect("etcdrill's snapshot save");
    let save = save.elapsed();
    let runbook =
        Runbook::load(SourceFile::read(&runbook_path).expect("runbook")).expect("runbook");
    let params: Vec<ParamInput> = [
        ("snapshot", snapshot.display().to_string()),
        ("bump_revision", "0".to_string()),
        ("mark_compacted", "false".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| ParamInput {
        name: name.to_string(),
        value: serde_yaml::Value::String(value),
        source: SourceFile::new("command line", ""),
        location: None,
    })
    .collect();
    let plan = compile(&runbook, &cluster, &params).expect("plan");
    let options = RunOptions {
        check: false,
        yes: true,
        allow_production: false,
        concurrency: 8,
        on_failure: OnFailure::Stop,
    };
    let summary = runtime.block_on(async {
        let (_stop, shutdown) = tokio::sync::watch::channel(0);
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &params,
            plan: &plan,
            secrets: vec![],
            prologue: Vec::new(),
        };
        let mut reporter = Reporter::lines(Box::new(std::io::sink()));
        executor::run(
            inputs,
            options,
            &mut NoPrompter,
            &mut reporter,
            work,
            |dir| RunRecord::new(&dir.id, &runbook_path, inventory, false),
            shutdown,
        )
        .await
        .expect("the run starts")
    });
    let finished = SystemTime::now();
    let journal = Journal::read(&summary.dir.journal()).expect("journal");
    assert_eq!(
        summary.result,
        RunResult::Succeeded,
        "etcdrill run failed; see {}",
        summary.dir.path.display()
    );
    // Per step (before `@node`): first start to last finish.
    let mut spans: Vec<(String, SystemTime, SystemTime)> = Vec::new();
    for record in &journal.records {
        let (step, is_start) = match &record.event {
            Event::StepStarted { step, .. } => (step, true),
            Event::StepFinished { step, .. } => (step, false),
            _ => continue,
        };
        let name = step.split('@').next().unwrap_or(step).to_string();
        let at = record.at.0;
        match spans.iter_mut().find(|(n, _, _)| *n == name) {
            Some(span) if is_start => span.1 = span.1.min(at),
            Some(span) => span.2 = span.2.max(at),
            None => spans.push((name, at, at)),
        }
    }
    let span = |name: &str| {
        spans
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no step {name} in the journal"))
    };
    let first_stop = span("stop").1;
    let all_stopped = span("stop").2;
    let journal_downtime = Some(since(span("wait-healthy").2, first_stop));
    let mut phases: Vec<(String, Duration)> = vec![
        ("save (etcd.snapshot.save)".into(), save),
        (
            "load+compile+connect".into(),
            since(spans[0].1, started).saturating_sub(save),
        ),
    ];
    phases.extend(spans.iter().map(|(n, s, e)| (n.clone(), since(*e, *s))));
    let _ = std::fs::remove_file(snapshot);
    Measured {
        started,
        first_stop,
        all_stopped,
        finished,
        phases,
        journal_downtime,
    }
}

// ---------------------------------------------------------------------------------------------
// (a) the plain script

fn run_script(bed: &Bed, facts: &Facts, work: &Path, tag: &str) -> Measured {
    let snapshot = &work.join(format!("{tag}.db"));
    let remote = "/var/backups/etcd/script-restore.db";
    let mut ssh = vec!["ssh".to_string()];
    ssh.extend(bed.ssh().options());
    ssh.extend(["-o", "ControlMaster=no", "-o", "ControlPath=none"].map(String::from));
    let ssh = ssh
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = String::from(
        "#!/bin/bash\n# Restore every member from one snapshot, node by node.\nset -euo pipefail\n",
    );
    script.push_str(&format!(
        "snapshot={}\n{}\n",
        shell_quote(&snapshot.display().to_string()),
        facts.save_command(snapshot)
    ));
    for (i, address) in facts.addresses.iter().enumerate() {
        script.push_str(&format!("# {}\n", facts.names[i]));
        script.push_str(&format!(
            "{ssh} {address} {} < \"$snapshot\"\n",
            shell_quote(&sh::receive(remote))
        ));
        script.push_str(&format!(
            "{ssh} {address} {}\n",
            shell_quote(&sh::verify(remote))
        ));
        script.push_str(&format!(
            "{ssh} {address} {}\n",
            shell_quote(&sh::restore(facts, i, remote, &format!("bench-{tag}")))
        ));
    }
    for address in &facts.addresses {
        script.push_str(&format!("{ssh} {address} {}\n", shell_quote(&sh::stop())));
    }
    for address in &facts.addresses {
        script.push_str(&format!(
            "{ssh} {address} {}\n",
            shell_quote(&sh::swap(tag))
        ));
    }
    for address in &facts.addresses {
        script.push_str(&format!("{ssh} {address} {}\n", shell_quote(&sh::start())));
    }
    script.push_str(&format!(
        "{ssh} {} {}\n",
        facts.addresses[0],
        shell_quote(&sh::wait_healthy(facts))
    ));
    let path = work.join("restore.sh");
    std::fs::write(&path, script).expect("write the script");
    let started = SystemTime::now();
    let status = Command::new("bash")
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .expect("bash runs");
    let finished = SystemTime::now();
    assert!(
        status.success(),
        "the plain script failed: {}",
        path.display()
    );
    let marks = read_marks(bed);
    let mut phases = vec![
        (
            "save".to_string(),
            since(first(&marks, "copy-begin"), started),
        ),
        (
            "save+copy+verify+restore, node by node".to_string(),
            since(first(&marks, "stop-begin"), started),
        ),
    ];
    phases.extend(mark_sums(&marks, &["copy", "verify", "restore", "stop"]));
    let _ = std::fs::remove_file(snapshot);
    Measured {
        started,
        first_stop: first(&marks, "stop-begin"),
        all_stopped: last(&marks, "stop-end"),
        finished,
        phases,
        journal_downtime: None,
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Ansible

fn run_ansible(bed: &Bed, facts: &Facts, ansible: &Path, work: &Path, tag: &str) -> Measured {
    let snapshot = &work.join(format!("{tag}.db"));
    let dir = work.join(format!("ansible-{tag}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let remote = "/var/backups/etcd/ansible-restore.db";
    let ssh = bed.ssh();
    let common = [
        "-F /dev/null".to_string(),
        "-o IdentitiesOnly=yes".to_string(),
        "-o StrictHostKeyChecking=yes".to_string(),
        format!("-o UserKnownHostsFile={}", ssh.known_hosts.display()),
        "-o GlobalKnownHostsFile=/dev/null".to_string(),
        "-o ControlMaster=auto".to_string(),
        "-o ControlPersist=60s".to_string(),
    ]
    .join(" ");
    let mut hosts = serde_json::Map::new();
    for (i, name) in facts.names.iter().enumerate() {
        hosts.insert(
            name.clone(),
            serde_json::json!({
                "ansible_host": facts.addresses[i],
                "restore_cmd": sh::restore(facts, i, remote, &format!("bench-{tag}")),
            }),
        );
    }
    let inventory = serde_json::json!({
        "etcd": {
            "hosts": hosts,
            "vars": {
                "ansible_user": ssh.user,
                "ansible_port": ssh.port,
                "ansible_ssh_private_key_file": ssh.identity_file,
                "ansible_ssh_common_args": common,
                "ansible_python_interpreter": "/usr/bin/python3",
                "snapshot": snapshot,
                "remote_snapshot": remote,
                "verify_cmd": sh::verify(remote),
                "stop_cmd": sh::stop(),
                "swap_cmd": sh::swap(tag),
                "start_cmd": sh::start(),
                "wait_cmd": sh::wait_healthy(facts),
            }
        }
    });
    std::fs::write(dir.join("hosts.yml"), inventory.to_string()).expect("write");
    std::fs::write(
        dir.join("ansible.cfg"),
        format!(
            "[defaults]\ninventory = {inv}\nforks = 3\nhost_key_checking = True\nretry_files_enabled = False\nlocal_tmp = {dir}/local-tmp\ncallbacks_enabled = junit\n\n[ssh_connection]\npipelining = True\nssh_args = -o ControlMaster=auto -o ControlPersist=60s\ncontrol_path_dir = {dir}/cp\n",
            inv = dir.join("hosts.yml").display(),
            dir = dir.display()
        ),
    )
    .expect("write");
    let playbook = format!(
        "- name: save\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: save a snapshot of the first member\n      ansible.builtin.shell: {}\n\n",
        serde_json::Value::String(facts.save_command(snapshot))
    ) + r#"- name: copy, verify and restore
  hosts: etcd
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: copy the snapshot
      ansible.builtin.copy: {src: "{{ snapshot }}", dest: "{{ remote_snapshot }}", mode: "0600"}
    - name: verify the sha256 trailer
      ansible.builtin.shell: "{{ verify_cmd }}"
    - name: restore into a new data dir
      ansible.builtin.shell: "{{ restore_cmd }}"

- name: stop
  hosts: etcd
  gather_facts: false
  any_errors_fatal: true
  serial: 1
  tasks:
    - name: stop the member
      ansible.builtin.shell: "{{ stop_cmd }}"

- name: swap and start
  hosts: etcd
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: swap the data dir
      ansible.builtin.shell: "{{ swap_cmd }}"
    - name: start the member
      ansible.builtin.shell: "{{ start_cmd }}"

- name: wait
  hosts: etcd[0]
  gather_facts: false
  tasks:
    - name: wait until every member is healthy
      ansible.builtin.shell: "{{ wait_cmd }}"
"#;
    std::fs::write(dir.join("restore.yml"), playbook).expect("write");
    let junit = dir.join("junit");
    let started = SystemTime::now();
    let output = Command::new("python3")
        .arg(ansible.join("bin/ansible-playbook"))
        .arg(dir.join("restore.yml"))
        .env("PYTHONPATH", ansible)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("ANSIBLE_HOME", dir.join("home"))
        .env("JUNIT_OUTPUT_DIR", &junit)
        .env("JUNIT_HIDE_TASK_ARGUMENTS", "true")
        .current_dir(&dir)
        .output()
        .expect("ansible-playbook runs");
    let finished = SystemTime::now();
    assert!(
        output.status.success(),
        "ansible-playbook failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let marks = read_marks(bed);
    let mut phases = vec![(
        "start-up+save+copy+verify+restore".to_string(),
        since(first(&marks, "stop-begin"), started),
    )];
    phases.extend(junit_tasks(&junit));
    phases.extend(mark_phases(&marks, &["verify", "restore", "stop"]));
    let _ = std::fs::remove_file(snapshot);
    Measured {
        started,
        first_stop: first(&marks, "stop-begin"),
        all_stopped: last(&marks, "stop-end"),
        finished,
        phases,
        journal_downtime: None,
    }
}

/// Task durations from Ansible's junit report: per task, the slowest host ("task (ansible)").
fn junit_tasks(dir: &Path) -> Vec<(String, Duration)> {
    let mut tasks: Vec<(String, Duration)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return tasks;
    };
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for case in text.split("<testcase ").skip(1) {
            let case = format!(" {case}");
            let attr = |name: &str| {
                // ` name=` and not `classname=`.
                let start = case.find(&format!(" {name}=\""))? + name.len() + 3;
                let end = case[start..].find('"')? + start;
                Some(case[start..end].to_string())
            };
            let (Some(name), Some(time)) = (attr("name"), attr("time")) else {
                continue;
            };
            // "[node1] play: task"
            let task = name.split(": ").nth(1).unwrap_or(&name).to_string();
            let time = Duration::from_secs_f64(time.parse().unwrap_or(0.0));
            match tasks.iter_mut().find(|(n, _)| *n == task) {
                Some((_, t)) => *t = (*t).max(time),
                None => tasks.push((task, time)),
            }
        }
        let _ = std::fs::remove_file(entry.path());
    }
    tasks
        .into_iter()
        .filter(|(n, _)| n.starts_with("copy") || n.starts_with("save"))
        .map(|(n, t)| (format!("{n} (ansible task)"), t))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// (c) the floor

fn run_floor(bed: &Bed, facts: &Facts, work: &Path, tag: &str) -> Measured {
    let snapshot = &work.join(format!("{tag}.db"));
    let remote = "/var/backups/etcd/floor-restore.db";
    let control = work.join(format!("floor-{tag}-%h"));
    let mut base = bed.ssh().options();
    base.extend([
        "-o".into(),
        format!("ControlPath={}", control.display()),
        "-o".into(),
        "ControlMaster=auto".into(),
        "-o".into(),
        "ControlPersist=120".into(),
    ]);
    let ssh = |address: &str, remote_command: &str| {
        let mut command = Command::new("ssh");
        command
            .args(&base)
            .arg(address)
            .arg("--")
            .arg(remote_command)
            .stdout(Stdio::null());
        command
    };
    let all = |commands: Vec<Command>| {
        let children: Vec<_> = commands
            .into_iter()
            .map(|mut c| c.spawn().expect("ssh runs"))
            .collect();
        for mut child in children {
            assert!(child.wait().expect("ssh").success(), "a floor step failed");
        }
    };
    // Connections first: the floor pays no handshake.
    all(facts.addresses.iter().map(|a| ssh(a, "true")).collect());

    let started = SystemTime::now();
    let t = Instant::now();
    let saved = Command::new("sh")
        .args(["-c", &facts.save_command(snapshot)])
        .status()
        .expect("sh runs");
    assert!(saved.success(), "the floor's snapshot save failed");
    let save = t.elapsed();
    let t = Instant::now();
    all(facts
        .addresses
        .iter()
        .map(|a| {
            let mut c = ssh(a, &sh::receive(remote));
            c.stdin(std::fs::File::open(snapshot).expect("snapshot"));
            c
        })
        .collect());
    let copy = t.elapsed();
    let t = Instant::now();
    all(facts
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| ssh(a, &sh::restore(facts, i, remote, &format!("bench-{tag}"))))
        .collect());
    let restore = t.elapsed();
    let t = Instant::now();
    for address in &facts.addresses {
        all(vec![ssh(address, &sh::stop())]);
    }
    let stop = t.elapsed();
    let t = Instant::now();
    all(facts
        .addresses
        .iter()
        .map(|a| ssh(a, &format!("{}; {}", sh::swap(tag), sh::start())))
        .collect());
    let start = t.elapsed();
    let t = Instant::now();
    all(vec![ssh(&facts.addresses[0], &sh::wait_healthy(facts))]);
    let wait = t.elapsed();
    let finished = SystemTime::now();
    for address in &facts.addresses {
        let _ = Command::new("ssh")
            .args(&base)
            .args(["-O", "exit", address])
            .stderr(Stdio::null())
            .status();
    }
    let marks = read_marks(bed);
    let _ = std::fs::remove_file(snapshot);
    Measured {
        started,
        first_stop: first(&marks, "stop-begin"),
        all_stopped: last(&marks, "stop-end"),
        finished,
        phases: vec![
            ("save (etcdctl on the controller)".into(), save),
            ("copy (parallel)".into(), copy),
            ("restore (parallel)".into(), restore),
            ("stop (one by one)".into(), stop),
            ("swap+start (parallel)".into(), start),
            ("wait healthy".into(), wait),
        ],
        journal_downtime: None,
    }
}

// ---------------------------------------------------------------------------------------------

/// Moves leadership to the inventory's last node, so that every variant stops (in inventory
/// order) the followers first and the leader last. A leader that gets SIGTERM hands leadership
/// over before it exits (about a second here), so which node leads when the stops begin
/// otherwise decides most of the stop phase, and differs from run to run.
fn lead_from_last_node(access: &EtcdAccess, inventory: &Path) {
    let cluster =
        Cluster::load(SourceFile::read(inventory).expect("inventory")).expect("inventory");
    let last = cluster.nodes.last().expect("nodes").name.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(etcd::execute(
            access,
            &cluster,
            &cluster.client_urls(),
            &Action::EtcdMoveLeader(MoveLeaderArgs { to: last }),
            Duration::from_secs(30),
            None,
        ))
        .expect("leadership moves to the last node");
}

/// Writes `keys` values of [`VALUE_BYTES`] with four writers; the time it took and the db size.
fn seed(access: &EtcdAccess, endpoints: &[String], keys: usize) -> (Duration, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = access.client(endpoints).await.expect("client");
        let started = Instant::now();
        const WRITERS: usize = 4;
        let writers = (0..WRITERS).map(|w| {
            let mut client = client.clone();
            async move {
                for i in (w..keys).step_by(WRITERS) {
                    client
                        .put(
                            format!("{SEED_PREFIX}{i:08}"),
                            seed_value(i, VALUE_BYTES),
                            None,
                        )
                        .await
                        .expect("put");
                }
            }
        });
        futures_util::future::join_all(writers).await;
        let seeding = started.elapsed();
        let mut client = client;
        let db_size = client.status().await.expect("status").db_size() as u64;
        (seeding, db_size)
    })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the whole benchmark was asked to run.
struct Settings {
    rounds: usize,
    keys: usize,
    variants: Vec<Variant>,
    ansible: PathBuf,
}

fn main() {
    let settings = Settings {
        rounds: std::env::var("ETCDRILL_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        keys: std::env::var("ETCDRILL_BENCH_KEYS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000),
        variants: Vec::new(),
        ansible: std::env::var_os("ETCDRILL_ANSIBLE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/etcdrill-ansible")),
    };
    let wanted: Vec<String> = std::env::var("ETCDRILL_BENCH_VARIANTS")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut variants: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| wanted.is_empty() || wanted.iter().any(|w| w == v.name()))
        .collect();
    if variants.contains(&Variant::Ansible)
        && !settings.ansible.join("bin/ansible-playbook").is_file()
    {
        eprintln!(
            "no ansible-core in {} (python3 -m pip install --target {} ansible-core): Ansible is left out",
            settings.ansible.display(),
            settings.ansible.display()
        );
        variants.retain(|v| *v != Variant::Ansible);
    }
    let settings = Settings {
        variants,
        ..settings
    };
    let checks = std::env::var("ETCDRILL_BENCH_CORRUPT_CHECK").unwrap_or_else(|_| "off,on".into());
    for check in checks.split(',') {
        let corrupt_check = match check {
            "on" => true,
            "off" => false,
            other => panic!("ETCDRILL_BENCH_CORRUPT_CHECK: `{other}` is neither on nor off"),
        };
        let mut config = BedConfig::new(3);
        if corrupt_check {
            config = config.extra_flag("--experimental-initial-corrupt-check=true");
        }
        if let Err(why) = etcdrill_testbed::check(&config) {
            eprintln!("skipped: the test bed is unavailable here: {why}");
            return;
        }
        sitting(config, corrupt_check, &settings);
    }
}

/// One bed (corrupt check on or off): seed it, then every round restores it once per variant.
fn sitting(config: BedConfig, corrupt_check: bool, settings: &Settings) {
    let Settings {
        rounds,
        keys,
        ref variants,
        ref ansible,
    } = *settings;
    let load_at_start = loadavg();
    let bed = Bed::start(config).expect("the bed starts");
    let work = tempfile::Builder::new()
        .prefix("etcdrill-bench-restore-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let inventory = work.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        bed.etcdrill_inventory(work.path(), &bed.ssh().known_hosts),
    )
    .expect("write");
    let facts = Facts::new(&bed);
    let tls = bed.tls();
    let access = EtcdAccess::resolve(Some(&TlsFiles {
        ca: tls.ca_cert.display().to_string(),
        cert: tls.client_cert.display().to_string(),
        key: tls.client_key.display().to_string(),
    }))
    .expect("access");
    let (seeding, db_size) = seed(&access, &facts.endpoints, keys);
    eprintln!(
        "corrupt check {}: seeded {keys} keys of {VALUE_BYTES} bytes in {}; db {:.0} MB",
        if corrupt_check { "on" } else { "off" },
        secs(seeding),
        db_size as f64 / 1e6,
    );

    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=rounds {
        for &variant in variants {
            bed.wait_healthy(Duration::from_secs(120))
                .expect("the cluster is healthy before a restore");
            clean_nodes(&bed);
            lead_from_last_node(&access, &inventory);
            // Let the previous restore's write-back settle so it does not bill the next variant.
            let _ = Command::new("sync").status();
            let tag = format!("{}-{round}", variant.name());
            let load = loadavg();
            let probe = Probe::start(access.clone(), facts.endpoints.clone());
            let measured = match variant {
                Variant::Etcdrill => run_etcdrill(&access, &inventory, work.path(), &tag),
                Variant::Script => run_script(&bed, &facts, work.path(), &tag),
                Variant::Ansible => run_ansible(&bed, &facts, ansible, work.path(), &tag),
                Variant::Floor => run_floor(&bed, &facts, work.path(), &tag),
            };
            let healthy = probe
                .healthy_after(measured.all_stopped)
                .expect("the probe saw the cluster healthy after the restore");
            let row = Row {
                variant,
                total: since(healthy, measured.started),
                downtime: since(healthy, measured.first_stop),
                outage: since(healthy, measured.all_stopped),
                tool: since(measured.finished, measured.started),
                phases: measured.phases,
                journal_downtime: measured.journal_downtime,
            };
            eprintln!(
                "round {round} {:<9} total {} downtime {} outage {} tool exit {}{} (load {load})",
                variant.name(),
                secs(row.total),
                secs(row.downtime),
                secs(row.outage),
                secs(row.tool),
                row.journal_downtime
                    .map(|d| format!(" journal downtime {}", secs(d)))
                    .unwrap_or_default()
            );
            for (phase, d) in &row.phases {
                eprintln!("    {phase:<40} {}", secs(*d));
            }
            rows.push(row);
        }
    }
    clean_nodes(&bed);
    print_sitting(
        &rows,
        variants,
        corrupt_check,
        keys,
        db_size,
        seeding,
        &load_at_start,
    );
}

/// The sitting's table: per variant the median and the range of each measure, and the ratios
/// issue 13 sets targets for (total against Ansible's, downtime against the floor's).
fn print_sitting(
    rows: &[Row],
    variants: &[Variant],
    corrupt_check: bool,
    keys: usize,
    db_size: u64,
    seeding: Duration,
    load_at_start: &str,
) {
    println!();
    println!(
        "Restore of a {:.0} MB database ({keys} keys of {} KB), 3 static-pod members of etcd 3.5, corrupt check {}, every variant saving its own snapshot first",
        db_size as f64 / 1e6,
        VALUE_BYTES / 1000,
        if corrupt_check { "on" } else { "off" },
    );
    println!(
        "seeding {}; load average at start {load_at_start}, at the end {}; {} vCPU",
        secs(seeding),
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<48} {:>21} {:>21} {:>21} {:>21} {:>5}",
        "variant: median (min-max)", "total", "downtime", "outage", "tool exit", "runs"
    );
    let median_of = |variant: Variant, f: fn(&Row) -> Duration| {
        let values: Vec<Duration> = rows
            .iter()
            .filter(|r| r.variant == variant)
            .map(f)
            .collect();
        (!values.is_empty()).then(|| median(values))
    };
    for &variant in variants {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.variant == variant).collect();
        let spread = |f: fn(&Row) -> Duration| {
            let values: Vec<Duration> = mine.iter().map(|r| f(r)).collect();
            let (min, max) = (values.iter().min(), values.iter().max());
            format!(
                "{} ({:.1}-{:.1})",
                secs(median(values.clone())),
                min.map_or(0.0, Duration::as_secs_f64),
                max.map_or(0.0, Duration::as_secs_f64)
            )
        };
        println!(
            "{:<48} {:>21} {:>21} {:>21} {:>21} {:>5}",
            variant.label(),
            spread(|r| r.total),
            spread(|r| r.downtime),
            spread(|r| r.outage),
            spread(|r| r.tool),
            mine.len(),
        );
    }
    let ratio = |mine: Option<Duration>, theirs: Option<Duration>| match (mine, theirs) {
        (Some(m), Some(t)) => format!("{:.2}x", m.as_secs_f64() / t.as_secs_f64()),
        _ => "n/a".into(),
    };
    println!(
        "etcdrill total / Ansible total: {} (target <= 0.6x); etcdrill downtime / floor downtime: {} (target <= 1.1x)",
        ratio(
            median_of(Variant::Etcdrill, |r| r.total),
            median_of(Variant::Ansible, |r| r.total)
        ),
        ratio(
            median_of(Variant::Etcdrill, |r| r.downtime),
            median_of(Variant::Floor, |r| r.downtime)
        ),
    );
    let journal: Vec<Duration> = rows.iter().filter_map(|r| r.journal_downtime).collect();
    if !journal.is_empty() {
        println!(
            "etcdrill downtime from its journal (first stop started to wait-healthy finished), median: {}",
            secs(median(journal))
        );
    }
    // Phases: the median of each phase over the variant's rounds, in the order first seen.
    for &variant in variants {
        let mut names: Vec<&str> = Vec::new();
        for row in rows.iter().filter(|r| r.variant == variant) {
            for (name, _) in &row.phases {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        println!("{} phases (median):", variant.name());
        for name in names {
            let values: Vec<Duration> = rows
                .iter()
                .filter(|r| r.variant == variant)
                .filter_map(|r| r.phases.iter().find(|(n, _)| n == name).map(|(_, d)| *d))
                .collect();
            println!("    {name:<44} {}", secs(median(values)));
        }
    }
}
