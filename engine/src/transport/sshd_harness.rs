//! A throwaway sshd on 127.0.0.1 for transport tests: fresh host and client keys, a free port,
//! a known_hosts file, and a [`Node`] that points at it. Killed and cleaned up on drop.
//!
//! It needs root and `/usr/sbin/sshd`. Without them a test skips with a printed reason, unless
//! `ETCDRILL_TESTBED_REQUIRED=1` or `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::inventory::{Cluster, Node};
use crate::source::SourceFile;

const SSHD: &str = "/usr/sbin/sshd";

/// Whether tests that need root and sshd must run rather than skip.
pub(crate) fn required() -> bool {
    std::env::var("ETCDRILL_TESTBED_REQUIRED").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips a test with a reason, or fails it when the test bed is required.
pub(crate) fn skip<T>(test: &str, reason: &str) -> Option<T> {
    assert!(
        !required(),
        "{test}: {reason} (ETCDRILL_TESTBED_REQUIRED or CI is set, so this fails instead of skipping)"
    );
    note(&format!("skipping {test}: {reason}"));
    None
}

/// Prints a line on stderr past the test harness's capture, so that skips are seen.
pub(crate) fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether `program` is on PATH.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A running sshd and the files a client needs.
pub(crate) struct Sshd {
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    /// Its private state directory (0755, under /var/tmp).
    pub(crate) dir: PathBuf,
    /// The client's private key, authorized for root.
    pub(crate) client_key: PathBuf,
    /// A known_hosts file holding the server's real key.
    pub(crate) known_hosts: PathBuf,
    child: Child,
}

impl Sshd {
    /// Starts an sshd for `test`, or returns `None` after printing why it cannot.
    pub(crate) fn start(test: &str) -> Option<Sshd> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip(test, "needs root to run a test sshd");
        }
        if !Path::new(SSHD).is_file() {
            return skip(test, &format!("{SSHD} is not installed"));
        }
        for tool in ["ssh", "ssh-keygen"] {
            if !on_path(tool) {
                return skip(test, &format!("`{tool}` is not installed"));
            }
        }
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(format!(
            "/var/tmp/etcdrill-transport-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the sshd test dir");
        set_mode(&dir, 0o755);
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        for key in [
            "host_key",
            "client_key",
            "other_host_key",
            "other_client_key",
        ] {
            keygen(&dir.join(key));
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("write authorized_keys");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            std::fs::write(&config, config_text(&dir, port)).expect("write sshd_config");
            let log = std::fs::File::create(dir.join("sshd.log")).expect("create sshd.log");
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            match wait_for_port(port, &mut child) {
                Ok(()) => {
                    let known_hosts = dir.join("known_hosts");
                    let sshd = Sshd {
                        port,
                        client_key: dir.join("client_key"),
                        known_hosts: known_hosts.clone(),
                        dir,
                        child,
                    };
                    std::fs::write(&known_hosts, sshd.known_hosts_line("host_key"))
                        .expect("write known_hosts");
                    return Some(sshd);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!(
                        "{e}; sshd.log: {}",
                        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("{test}: sshd did not start: {last_error}");
    }

    /// `[127.0.0.1]:PORT <type> <key>` for the public half of the key `name` in the dir.
    pub(crate) fn known_hosts_line(&self, name: &str) -> String {
        let public = std::fs::read_to_string(self.dir.join(format!("{name}.pub")))
            .expect("read a public key");
        let mut words = public.split_whitespace();
        let (kind, key) = (words.next().unwrap(), words.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// Writes `text` to a file in the dir and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// A node that logs in as root with the client key, checking `known_hosts`.
    pub(crate) fn node(&self, known_hosts: &Path) -> Node {
        self.node_with(self.port, &self.client_key, known_hosts)
    }

    /// A node with its own port, key and known_hosts file.
    pub(crate) fn node_with(&self, port: u16, key: &Path, known_hosts: &Path) -> Node {
        ssh_node(port, key, known_hosts)
    }
}

/// A one-node inventory with `transport: ssh` to 127.0.0.1, loaded the way the CLI loads one.
pub(crate) fn ssh_node(port: u16, key: &Path, known_hosts: &Path) -> Node {
    let text = format!(
        "name: transport-test\n\
         defaults: {{etcd: {{management: {{static_pod: {{}}}}}}}}\n\
         nodes:\n\
         \x20 - name: n1\n\
         \x20   address: 127.0.0.1\n\
         \x20   transport: ssh\n\
         \x20   ssh: {{user: root, port: {port}, identity_file: '{}', known_hosts: '{}'}}\n",
        key.display(),
        known_hosts.display()
    );
    let cluster = Cluster::load(SourceFile::new("inventory.yaml", text)).expect("inventory");
    cluster.nodes.into_iter().next().expect("one node")
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config_text(dir: &Path, port: u16) -> String {
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {dir}/host_key\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PidFile none\n\
         MaxSessions 64\n\
         MaxStartups 100\n\
         LogLevel ERROR\n",
        dir = dir.display()
    )
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "etcdrill-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A port nothing listens on right now (the kernel's pick for an ephemeral bind).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Polls until sshd accepts connections on `port`, failing if it exits or 10 s pass.
fn wait_for_port(port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited with {status}"));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("port {port} did not open within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
