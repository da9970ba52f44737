//! Backups end to end: `runbooks/backup.yaml` saves a snapshot from a real 3-member cluster over
//! mutual TLS and ships it to a directory, to a backup host over SSH (a test bed node's sshd,
//! strict host keys) and to S3 (a moto S3 server on loopback, started here); every copy is read
//! back, retention prunes, `snapshot list --verify` catches a damaged copy, and a destination
//! that fails fails the run loudly: exit code, journal and metrics textfile. These tests need
//! root (the test bed) and moto (`.ci/setup` installs it into `.cache/moto`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcdrill_testbed::{Bed, BedConfig, wait_until};

use crate::support;
use crate::support::{
    Etcdrill, Outcome, bed, inventory_yaml, journal, step_outputs, step_result, stock_runbook,
    write,
};

/// A moto S3 server on a loopback port, stopped on drop.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts moto from `ETCDRILL_MOTO_DIR` (else `.cache/moto`); `None` where it is not
    /// installed, which fails the test on CI.
    fn start() -> Option<S3Server> {
        let dir = std::env::var_os("ETCDRILL_MOTO_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| support::repo().join(".cache/moto"));
        if !dir.join("moto").is_dir() {
            assert!(
                std::env::var_os("ETCDRILL_TESTBED_REQUIRED").is_none(),
                "moto is not installed in {}: run .ci/setup",
                dir.display()
            );
            eprintln!("skipping: moto is not installed in {}", dir.display());
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("PYTHONPATH", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let server = S3Server { child, port };
        wait_until("the S3 server to answer", Duration::from_secs(60), || {
            server.request("GET", "/").map(drop)
        })
        .expect("moto answers");
        Some(server)
    }

    /// One plain HTTP request (moto does not check signatures); the status line.
    fn request(&self, method: &str, path: &str) -> Result<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .map_err(|e| e.to_string())?;
        let status = reply.lines().next().unwrap_or_default().to_string();
        if status.contains(" 200 ") {
            Ok(status)
        } else {
            Err(status)
        }
    }

    fn destination(&self, bucket: &str) -> String {
        format!(
            "s3://{bucket}/etcd/prod?endpoint=http://127.0.0.1:{}&allow_http=true",
            self.port
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A backup run's surroundings: the bed, its inventory, the S3 server and the destinations.
struct Backups {
    bed: Bed,
    s3: S3Server,
    work: tempfile::TempDir,
    inventory: PathBuf,
}

impl Backups {
    fn start() -> Option<Backups> {
        let bed = bed(BedConfig::new(3))?;
        let s3 = S3Server::start()?;
        s3.request("PUT", "/backups")
            .expect("the bucket is created");
        let work = tempfile::tempdir().unwrap();
        let inventory = write(
            work.path(),
            "inventory.yaml",
            &inventory_yaml(&bed, work.path()),
        );
        Some(Backups {
            bed,
            s3,
            work,
            inventory,
        })
    }

    /// A directory on the controller standing for a mounted backup disk.
    fn dir_destination(&self) -> String {
        self.work.path().join("offsite").display().to_string()
    }

    /// The backup directory of the bed's third node, over SSH.
    fn ssh_destination(&self) -> String {
        let ssh = self.bed.ssh();
        let node = &self.bed.nodes()[2];
        format!(
            "ssh://{}@{}:{}{}/offsite?identity_file={}&known_hosts={}",
            ssh.user,
            node.address(),
            ssh.port,
            node.backup_dir().display(),
            ssh.identity_file.display(),
            ssh.known_hosts.display()
        )
    }

    fn etcdrill(&self) -> Etcdrill {
        Etcdrill::new(self.work.path())
            .env("AWS_ACCESS_KEY_ID", "etcdrill-test")
            .env("AWS_SECRET_ACCESS_KEY", "etcdrill-test-secret")
            .env("AWS_REGION", "us-east-1")
    }

    /// One run of the stock backup runbook; its run directory.
    fn run(&self, copy_to: &[String], keep_last: u32) -> (Outcome, PathBuf) {
        let before = runs(self.work.path());
        let outcome = self
            .etcdrill()
            .args([
                "run".as_ref(),
                stock_runbook("backup").as_os_str(),
                "-i".as_ref(),
                self.inventory.as_os_str(),
                "--yes".as_ref(),
                "--metrics-textfile".as_ref(),
                self.metrics().as_os_str(),
            ])
            .args([
                "-p".to_string(),
                format!("dir={}", self.work.path().join("local").display()),
                "-p".to_string(),
                format!("copy_to={}", copy_to.join(" ")),
                "-p".to_string(),
                format!("keep_last={keep_last}"),
                "-p".to_string(),
                "keep_daily=0".to_string(),
                "-p".to_string(),
                "keep_weekly=0".to_string(),
                "-p".to_string(),
                "keep_local=1".to_string(),
            ])
            .run();
        let after = runs(self.work.path());
        let new: Vec<_> = after.into_iter().filter(|r| !before.contains(r)).collect();
        assert_eq!(new.len(), 1, "one new run: {new:?}\n{}", outcome.shown());
        (outcome, new[0].clone())
    }

    fn metrics(&self) -> PathBuf {
        self.work.path().join("etcdrill.prom")
    }

    /// `snapshot list DEST [--verify] -o json`: the outcome and the copies' names.
    fn list(&self, destination: &str, verify: bool) -> (Outcome, Vec<String>) {
        let mut command = self
            .etcdrill()
            .args(["snapshot", "list", destination, "-o", "json"]);
        if verify {
            command = command.args(["--verify"]);
        }
        let outcome = command.run();
        let value: serde_json::Value =
            serde_json::from_str(&outcome.stdout()).unwrap_or(serde_json::Value::Null);
        let names = value["copies"]
            .as_array()
            .map(|copies| {
                copies
                    .iter()
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (outcome, names)
    }
}

fn runs(work: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(work.join("runs"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The value of the series `name` in a textfile (one runbook in it).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn backup_runbook_ships_verified_copies_everywhere_and_prunes() {
    let Some(backups) = Backups::start() else {
        return;
    };
    // About 12 MB: the S3 upload takes more than one 8 MiB part.
    backups.bed.seed(120, 100_000).expect("seeded");
    let destinations = [
        backups.dir_destination(),
        backups.ssh_destination(),
        backups.s3.destination("backups"),
    ];
    let mut saved = Vec::new();
    for _ in 0..3 {
        let (outcome, run) = backups.run(&destinations, 2);
        let journal = journal(&run);
        assert_eq!(outcome.code(), Some(0), "{}", outcome.shown());
        let save = step_outputs(&journal, "save");
        let path = PathBuf::from(&save["path"]);
        saved.push(path.file_name().unwrap().to_string_lossy().into_owned());
        let ship = step_outputs(&journal, "ship");
        assert_eq!(ship["copies"], "3", "{ship:?}");
        // The metrics say this run's snapshot is the last good backup.
        let text = std::fs::read_to_string(backups.metrics()).unwrap();
        assert_eq!(
            metric(&text, "etcdrill_run_last_success"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            metric(&text, "etcdrill_backup_last_success_size_bytes"),
            save["size"].parse().ok(),
            "{text}"
        );
    }
    let size: u64 = std::fs::metadata(backups.work.path().join("offsite").join(&saved[2]))
        .unwrap()
        .len();
    assert!(size > 8 << 20, "a multipart-sized snapshot: {size} bytes");
    // Retention kept the newest two everywhere, and one on the controller.
    for destination in &destinations {
        let (outcome, names) = backups.list(destination, true);
        assert_eq!(outcome.code(), Some(0), "{}", outcome.shown());
        assert_eq!(
            names,
            vec![saved[2].clone(), saved[1].clone()],
            "{destination}"
        );
    }
    let (_, local) = backups.list(
        &backups.work.path().join("local").display().to_string(),
        false,
    );
    assert_eq!(local, vec![saved[2].clone()]);
    // `snapshot prune` by hand: a dry run deletes nothing, then keep-last 1 leaves the newest.
    let dir = backups.dir_destination();
    let dry = backups
        .etcdrill()
        .args(["snapshot", "prune", &dir, "--keep-last", "1", "--dry-run"])
        .run()
        .expect_code(0);
    assert!(dry.stdout().contains("would delete"), "{}", dry.shown());
    assert_eq!(backups.list(&dir, false).1.len(), 2);
    backups
        .etcdrill()
        .args(["snapshot", "prune", &dir, "--keep-last", "1"])
        .run()
        .expect_code(0);
    assert_eq!(backups.list(&dir, false).1, vec![saved[2].clone()]);
    // The SSH copies are on the backup node's own disk.
    let node = &backups.bed.nodes()[2];
    let listing = node
        .exec_ok(&format!("ls {}/offsite", node.backup_dir().display()))
        .unwrap();
    assert!(
        listing.contains(&saved[2]) && !listing.contains(&saved[0]),
        "{listing}"
    );

    // A damaged copy on the backup host is caught by reading it back.
    node.exec_ok(&format!(
        "printf X | dd of={}/offsite/{} bs=1 seek=5000 conv=notrunc 2>/dev/null",
        node.backup_dir().display(),
        saved[1]
    ))
    .unwrap();
    let (outcome, _) = backups.list(&backups.ssh_destination(), true);
    assert_eq!(outcome.code(), Some(1), "{}", outcome.shown());
    assert!(outcome.stdout().contains("damaged"), "{}", outcome.shown());
}

#[test]
fn a_failed_destination_fails_the_backup_loudly() {
    let Some(backups) = Backups::start() else {
        return;
    };
    let good = backups.dir_destination();
    let (outcome, _) = backups.run(std::slice::from_ref(&good), 3);
    assert_eq!(outcome.code(), Some(0), "{}", outcome.shown());
    let before = std::fs::read_to_string(backups.metrics()).unwrap();
    let last_good = metric(&before, "etcdrill_backup_last_success_timestamp_seconds")
        .expect("a last good backup");

    // No such bucket: the S3 copy fails, the directory copy is still made.
    let missing = backups.s3.destination("no-such-bucket");
    let (outcome, run) = backups.run(&[good.clone(), missing], 3);
    assert_ne!(outcome.code(), Some(0), "{}", outcome.shown());
    let journal = journal(&run);
    assert_eq!(
        step_result(&journal, "ship").as_deref(),
        Some("failed"),
        "{}",
        outcome.shown()
    );
    let recorded = serde_json::to_string(&journal.records).unwrap();
    assert!(recorded.contains("no-such-bucket"), "{recorded}");
    assert!(recorded.contains("1 of 2 failed"), "{recorded}");
    assert!(
        !recorded.contains("etcdrill-test-secret"),
        "a secret in the journal"
    );
    // Nothing was pruned after the failure.
    assert_eq!(step_result(&journal, "prune"), None);
    let (_, names) = backups.list(&good, false);
    assert_eq!(names.len(), 2, "{names:?}");
    // The metrics: this run failed, the last good backup is still the earlier one.
    let after = std::fs::read_to_string(backups.metrics()).unwrap();
    assert_eq!(
        metric(&after, "etcdrill_run_last_success"),
        Some(0.0),
        "{after}"
    );
    assert_eq!(
        metric(&after, "etcdrill_backup_last_success_timestamp_seconds"),
        Some(last_good),
        "{after}"
    );
}
