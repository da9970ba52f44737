//! Tests of the sandbox: its files without etcd (fake binaries), and real etcd 3.5 sandboxes up,
//! through a stock restore, and down.
//!
//! Live tests find etcd as `etcdrill sandbox up` does ([`EtcdBinaries::locate`]); without it they
//! are skipped with a message, except under `CI` or `ETCDRILL_TESTBED_REQUIRED=1`, where they
//! fail. Every sandbox is made in a temp dir with its own ports and process names, and is taken
//! down on drop, so the tests run in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;
use crate::etcd::{CallOutcome, execute};
use crate::exec::progress::Reporter;
use crate::exec::run_dir::RunRecord;
use crate::exec::{self, NoPrompter, OnFailure, RunInputs, RunOptions};
use crate::inventory::{Cluster, TransportKind};
use crate::journal::RunResult;
use crate::plan::compile;
use crate::runbook::Runbook;
use crate::runbook::action::{Action, KvPutArgs, SnapshotSaveArgs, VerifyKeyArgs};
use crate::source::SourceFile;

const T: Duration = Duration::from_secs(15);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("ETCDRILL_TESTBED_REQUIRED").is_ok_and(|v| v == "1")
}

/// The binaries, or `None` (after saying why) when the test should be skipped.
fn binaries() -> Option<EtcdBinaries> {
    match EtcdBinaries::locate() {
        Ok(found) => Some(found),
        Err(err) if required() => {
            panic!("{err} (required because CI or ETCDRILL_TESTBED_REQUIRED=1 is set)")
        }
        Err(err) => {
            eprintln!("skipping: {err}; run .ci/setup or set {DIR_VAR}");
            None
        }
    }
}

/// A sandbox that is taken down (processes killed, directory removed) on drop.
struct Up {
    sandbox: Sandbox,
    _tmp: tempfile::TempDir,
}

impl Up {
    async fn start(members: usize) -> Option<Up> {
        let binaries = binaries()?;
        let tmp = tempfile::Builder::new()
            .prefix("etcdrill-sandbox-test-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join("sandbox");
        let started = Instant::now();
        let sandbox = match Sandbox::up(&dir, members, &binaries).await {
            Ok(sandbox) => sandbox,
            Err(err) => panic!("sandbox up: {err}\n{}", logs(&dir)),
        };
        eprintln!(
            "sandbox of {members} (etcd {} from {}) up and healthy in {:.2?}",
            sandbox.etcd_version,
            binaries.found_in,
            started.elapsed()
        );
        Some(Up { sandbox, _tmp: tmp })
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let (_, left) = self.sandbox.stop_all();
        assert!(
            left.is_empty() || std::thread::panicking(),
            "survivors: {left:?}"
        );
    }
}

/// The tail of every member's log.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for i in 1..=MAX_MEMBERS {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("m{i}/etcd.log"))) {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(12)..];
            out.push_str(&format!("--- m{i} ---\n{}\n", tail.join("\n")));
        }
    }
    out
}

async fn call(sandbox: &Sandbox, action: Action) -> Result<CallOutcome, EtcdError> {
    let cluster = sandbox.cluster().unwrap();
    let access = sandbox.access().unwrap();
    execute(&access, &cluster, &sandbox.endpoints(), &action, T, None).await
}

fn fake_binaries(dir: &Path) -> EtcdBinaries {
    EtcdBinaries {
        etcd: PathBuf::from("/bin/true"),
        etcdctl: dir.join("etcdctl"),
        etcdutl: dir.join("etcdutl"),
        found_in: "test".into(),
    }
}

fn params(pairs: &[&str]) -> Vec<crate::plan::ParamInput> {
    crate::cli::param_inputs(
        &pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        &[],
    )
    .unwrap()
}

fn stock_restore() -> crate::document::Document<Runbook> {
    let path = repo().join("runbooks/restore-3-node.yaml");
    Runbook::load(SourceFile::read(&path).unwrap()).unwrap()
}

#[test]
fn files_inventory_and_service_script_without_etcd() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let sandbox = Sandbox::create(&dir, 3, &fake_binaries(tmp.path())).unwrap();

    // The marker is the sandbox's state and reads back as written.
    let opened = Sandbox::open(&dir).unwrap();
    assert_eq!(opened, sandbox);
    let json = serde_json::to_string(&sandbox).unwrap();
    assert_eq!(serde_json::from_str::<Sandbox>(&json).unwrap(), sandbox);

    // Process names are unique per member and sandbox, and fit in 15 bytes.
    let names: Vec<&str> = sandbox
        .members
        .iter()
        .map(|m| m.process_name.as_str())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(
        names
            .iter()
            .all(|n| n.len() <= 15 && n.starts_with("etcd-")),
        "{names:?}"
    );
    assert_ne!(names[0], names[1]);
    for member in &sandbox.members {
        assert_eq!(
            std::fs::read_link(&member.bin).unwrap(),
            Path::new("/bin/true").canonicalize().unwrap()
        );
    }

    // The written inventory loads and compiles with the stock restore.
    let cluster = Cluster::load(SourceFile::read(&sandbox.inventory_path()).unwrap()).unwrap();
    assert_eq!(cluster.nodes.len(), 3);
    let m1 = &cluster.nodes[0];
    assert_eq!(m1.transport, TransportKind::Local);
    assert_eq!(m1.etcd.process_name, sandbox.members[0].process_name);
    assert_eq!(m1.etcd.data_dir, sandbox.members[0].data_dir);
    assert_eq!(m1.etcd.tls, sandbox.client_tls);
    assert_eq!(
        cluster.inventory().controller.tls.as_ref(),
        Some(&sandbox.client_tls)
    );
    let plan = compile(
        &stock_restore(),
        &cluster,
        &params(&[
            "snapshot=/tmp/x.db",
            "bump_revision=0",
            "mark_compacted=false",
        ]),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert!(plan.graph.node_count() > 10);

    // The env file is shell: sourcing it gives etcd its flags.
    let env = &sandbox.members[1].env_file;
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"set -a; . "$1"; echo "$ETCD_NAME $ETCD_CLIENT_CERT_AUTH $ETCD_INITIAL_CLUSTER""#)
        .arg("sh")
        .arg(env)
        .output()
        .unwrap();
    let initial = sandbox
        .members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("m2 true {initial}")
    );

    // The service script parses, reports a stopped member, and stops one idempotently.
    let service = &sandbox.members[0].service;
    assert!(
        Command::new("sh")
            .arg("-n")
            .arg(service)
            .status()
            .unwrap()
            .success()
    );
    let status = Command::new(service).arg("status").output().unwrap();
    assert_eq!(status.status.code(), Some(3));
    let stop = Command::new(service).arg("stop").output().unwrap();
    assert!(stop.status.success());
    assert!(String::from_utf8_lossy(&stop.stdout).contains("is not running"));

    // Certificates: the CA signed the server, peer and client certificates, for 127.0.0.1.
    let pki = dir.join("pki");
    let out = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            "ca.crt",
            "m1-server.crt",
            "m3-peer.crt",
            "client.crt",
        ])
        .current_dir(&pki)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            "m2-peer.crt",
        ])
        .current_dir(&pki)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"),
        "{text}"
    );

    // A second `up` into the same directory is refused; `down` removes it all.
    let err = Sandbox::create(&dir, 3, &fake_binaries(tmp.path())).unwrap_err();
    assert!(
        err.to_string().contains("a sandbox is there already"),
        "{err}"
    );
    Sandbox::down(&dir).unwrap();
    assert!(!dir.exists());
}

#[test]
fn even_member_counts_and_foreign_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for n in [0, 2, 4, MAX_MEMBERS + 2] {
        let err = Sandbox::create(&tmp.path().join("x"), n, &fake_binaries(tmp.path()));
        assert!(
            matches!(err, Err(SandboxError::Members(m)) if m == n),
            "{n}"
        );
    }
    // A directory that is not a sandbox is never removed.
    let foreign = tmp.path().join("home");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("precious"), "keep").unwrap();
    let err = Sandbox::down(&foreign).unwrap_err();
    assert!(matches!(err, SandboxError::NotASandbox { .. }), "{err}");
    assert!(foreign.join("precious").exists());
    let err = Sandbox::create(&foreign, 1, &fake_binaries(tmp.path())).unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Exists {
                is_sandbox: false,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn three_members_up_with_mutual_tls_status_and_down() {
    let Some(up) = Up::start(3).await else {
        return;
    };
    let sandbox = &up.sandbox;
    let dir = sandbox.dir.clone();

    // Every member healthy over TLS with the client certificate; a leader is known.
    let status = Sandbox::status(&dir).await.unwrap();
    assert!(status.all_healthy(), "{status:?}\n{}", logs(&dir));
    assert!(status.leader().is_some(), "{status:?}");
    assert!(
        status.members.iter().all(|m| m.db_size.unwrap_or(0) > 0),
        "{status:?}"
    );
    let text = cli::status_text(&status);
    assert!(text.contains("leader"), "{text}");

    // Client certificate auth is enforced: the CA alone does not get in.
    let without_cert = crate::etcd::EtcdAccess::resolve_with(None, |name| {
        (name == "ETCDCTL_CACERT").then(|| sandbox.client_tls.ca.clone())
    })
    .unwrap()
    .with_dial_timeout(Duration::from_secs(2));
    let cluster = sandbox.cluster().unwrap();
    let refused = execute(
        &without_cert,
        &cluster,
        &sandbox.endpoints()[..1],
        &Action::EtcdHealth(Default::default()),
        Duration::from_secs(5),
        None,
    )
    .await;
    assert!(refused.is_err(), "a client without a certificate got in");

    // etcdctl on a "node" works with the node-side TLS of the inventory.
    let node = &cluster.nodes[0];
    let out = Command::new(&node.etcd.etcdctl[0])
        .args([
            "--endpoints",
            &node.etcd.client_url,
            "--cacert",
            &node.etcd.tls.ca,
            "--cert",
            &node.etcd.tls.cert,
            "--key",
            &node.etcd.tls.key,
            "endpoint",
            "health",
        ])
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The service script is the inventory's stop and start: stop waits until the process is gone.
    let m2 = &sandbox.members[1];
    let pid = sandbox.pid(m2).unwrap();
    let out = Command::new(&m2.service).arg("stop").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!process::alive(pid, &m2.process_name));
    assert!(
        Command::new("pgrep")
            .args(["-x", &m2.process_name])
            .status()
            .unwrap()
            .code()
            == Some(1)
    );
    let status = Sandbox::status(&dir).await.unwrap();
    assert!(!status.all_healthy());
    assert_eq!(status.members[1].pid, None);
    let out = Command::new(&m2.service).arg("start").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sandbox
        .wait_healthy(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&dir)));

    // Down stops every process and removes the directory.
    let pids: Vec<(u32, String)> = sandbox.processes();
    assert_eq!(pids.len(), 3, "{pids:?}");
    let started = Instant::now();
    let report = Sandbox::down(&dir).unwrap();
    eprintln!("sandbox down in {:.2?}", started.elapsed());
    assert_eq!(report.stopped.len(), 3);
    assert!(!dir.exists());
    assert!(
        process::wait_gone(&pids, Duration::from_secs(5)).is_empty(),
        "{pids:?}"
    );
    let names: Vec<String> = sandbox
        .members
        .iter()
        .map(|m| m.process_name.clone())
        .collect();
    assert!(process::find_by_name(&names).is_empty());
}

#[tokio::test]
async fn stock_restore_runs_on_the_sandbox() {
    let Some(up) = Up::start(3).await else {
        return;
    };
    let sandbox = &up.sandbox;
    let work = tempfile::tempdir().unwrap();
    let snapshot = work.path().join("before.db");

    let put = |key: &str, value: &str| {
        Action::EtcdKvPut(KvPutArgs {
            key: key.into(),
            value: value.into(),
        })
    };
    call(sandbox, put("/drill/kept", "before")).await.unwrap();
    call(
        sandbox,
        Action::EtcdSnapshotSave(SnapshotSaveArgs {
            path: snapshot.display().to_string(),
        }),
    )
    .await
    .unwrap();
    call(sandbox, put("/drill/lost", "after")).await.unwrap();
    let pids_before: Vec<u32> = sandbox
        .members
        .iter()
        .filter_map(|m| sandbox.pid(m))
        .collect();

    let runbook = stock_restore();
    let inventory = sandbox.inventory_path();
    let cluster = Cluster::load(SourceFile::read(&inventory).unwrap()).unwrap();
    let inputs = params(&[
        &format!("snapshot={}", snapshot.display()),
        "bump_revision=0",
        "mark_compacted=false",
    ]);
    let plan = compile(&runbook, &cluster, &inputs).unwrap_or_else(|d| panic!("{d}"));
    let options = RunOptions {
        check: false,
        yes: true,
        allow_production: false,
        concurrency: 8,
        on_failure: OnFailure::Stop,
    };
    let progress = SharedBuf::default();
    let mut reporter = Reporter::lines(Box::new(progress.clone()));
    let (_stop, shutdown) = tokio::sync::watch::channel(0);
    let started = Instant::now();
    let summary = exec::run(
        RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: vec![],
            prologue: Vec::new(),
        },
        options,
        &mut NoPrompter,
        &mut reporter,
        work.path(),
        |dir| {
            RunRecord::new(
                &dir.id,
                Path::new("runbooks/restore-3-node.yaml"),
                &inventory,
                false,
            )
        },
        shutdown,
    )
    .await
    .expect("the run starts");
    let elapsed = started.elapsed();
    assert_eq!(
        summary.result,
        RunResult::Succeeded,
        "{}\n{}",
        progress.text(),
        logs(&sandbox.dir)
    );
    eprintln!("restore-3-node on the sandbox: {elapsed:.2?}");
    eprintln!("{}", progress.text());

    // The key written before the snapshot is back, the one after it is gone, every member is a
    // new process on the restored data, and all three are healthy.
    let verify = |key: &str, present: bool| {
        Action::VerifyKey(VerifyKeyArgs {
            key: key.into(),
            value: present.then(|| "before".to_string()),
            present,
        })
    };
    call(sandbox, verify("/drill/kept", true)).await.unwrap();
    call(sandbox, verify("/drill/lost", false)).await.unwrap();
    let status = Sandbox::status(&sandbox.dir).await.unwrap();
    assert!(status.all_healthy(), "{status:?}");
    assert!(status.leader().is_some());
    for member in &sandbox.members {
        let pid = sandbox.pid(member).unwrap();
        assert!(
            !pids_before.contains(&pid),
            "{} was not restarted",
            member.name
        );
        // The old member data was kept aside inside the data dir, on its filesystem.
        let kept = std::fs::read_dir(&member.data_dir)
            .unwrap()
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".etcdrill-before-restore-")
                    && e.path().join("member").is_dir()
            });
        assert!(
            kept,
            "{}: no .etcdrill-before-restore-*/member kept",
            member.name
        );
    }
}

#[test]
fn cli_up_status_down() {
    use cli::{SandboxArgs, SandboxCommand};
    if binaries().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let run = |command: SandboxCommand| {
        let mut out = Vec::new();
        let result = cli::run(&SandboxArgs { command }, &mut out);
        (result, String::from_utf8(out).unwrap())
    };
    let (result, text) = run(SandboxCommand::Up {
        members: 1,
        dir: dir.clone(),
    });
    // Whatever happens next, nothing outlives the test.
    let _guard = Sandbox::open(&dir).ok().map(|sandbox| Up {
        sandbox,
        _tmp: tempfile::tempdir().unwrap(),
    });
    result.unwrap_or_else(|e| panic!("{e}\n{}", logs(&dir)));
    assert!(text.contains("is up: 1 members"), "{text}");
    assert!(text.contains("inventory.yaml"), "{text}");
    let (result, text) = run(SandboxCommand::Status {
        dir: dir.clone(),
        output: Default::default(),
    });
    result.unwrap();
    assert!(text.contains("leader: m1"), "{text}");
    assert!(text.contains("healthy"), "{text}");
    let (result, text) = run(SandboxCommand::Down { dir: dir.clone() });
    result.unwrap();
    assert!(text.contains("stopped 1 process(es)"), "{text}");
    assert!(!dir.exists());
    let (result, _) = run(SandboxCommand::Status {
        dir: dir.clone(),
        output: Default::default(),
    });
    assert!(
        matches!(result, Err(SandboxError::Missing { .. })),
        "{result:?}"
    );
}

/// A progress sink the test can read back.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
