//! A stand-in for the kubelet's static pods, run inside a test bed node.
//!
//! Every 200 ms it reads the manifest directory (like the kubelet, every non-hidden file in it is a
//! pod). A new manifest starts its first container's `command` (`etcd` means the node's etcd binary)
//! plus `args`; a changed manifest stops the old process and starts the new one; a removed manifest
//! stops its process: SIGTERM, SIGKILL after `terminationGracePeriodSeconds` (default 30), and the
//! process is waited for until it is gone. A process that exits on its own is restarted after a
//! back-off (1 s doubling to 10 s, shorter than the kubelet's 10 s to 5 min). `hostPath` volumes are
//! honoured: a volume whose host path differs from its mount path is bind-mounted over the mount path in
//! a mount namespace of the process's own, as the container runtime would. Every action is logged to
//! standard output.
//!
//! Usage: `testbed-kubelet MANIFEST_DIR ETCD_BINARY POD_LOG`

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Pod {
    spec: PodSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    containers: Vec<Container>,
    #[serde(default)]
    volumes: Vec<Volume>,
    termination_grace_period_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    host_path: Option<HostPath>,
}

#[derive(Debug, Deserialize)]
struct HostPath {
    path: String,
}

/// What to run for one manifest.
#[derive(Debug, PartialEq)]
struct Launch {
    argv: Vec<String>,
    /// `(host path, mount path)` pairs that differ.
    binds: Vec<(String, String)>,
    /// Host paths to create (`DirectoryOrCreate`).
    host_dirs: Vec<String>,
    grace: Duration,
}

fn launch_of(manifest: &[u8], etcd: &str) -> Result<Launch, String> {
    let pod: Pod =
        serde_yaml::from_slice(manifest).map_err(|e| format!("invalid manifest: {e}"))?;
    let container = pod
        .spec
        .containers
        .first()
        .ok_or("the pod has no containers")?;
    let mut argv: Vec<String> = container
        .command
        .iter()
        .chain(&container.args)
        .cloned()
        .collect();
    match argv.first_mut() {
        None => return Err("the container has neither command nor args".to_owned()),
        Some(program) if program == "etcd" => *program = etcd.to_owned(),
        Some(_) => {}
    }
    let mut binds = Vec::new();
    let mut host_dirs = Vec::new();
    for mount in &container.volume_mounts {
        let volume = pod.spec.volumes.iter().find(|v| v.name == mount.name);
        let host_path = volume
            .and_then(|v| v.host_path.as_ref())
            .ok_or_else(|| format!("volume mount {} has no hostPath volume", mount.name))?;
        host_dirs.push(host_path.path.clone());
        if host_path.path != mount.mount_path {
            binds.push((host_path.path.clone(), mount.mount_path.clone()));
        }
    }
    let grace = Duration::from_secs(pod.spec.termination_grace_period_seconds.unwrap_or(30));
    Ok(Launch {
        argv,
        binds,
        host_dirs,
        grace,
    })
}

/// One manifest file and what runs for it.
struct PodState {
    content: Vec<u8>,
    run: Run,
}

enum Run {
    /// `next_delay`: the back-off before a restart if the process exits on its own.
    Running {
        child: Child,
        since: Instant,
        grace: Duration,
        next_delay: Duration,
    },
    BackOff {
        until: Instant,
        delay: Duration,
    },
    Invalid,
}

const MAX_BACKOFF: Duration = Duration::from_secs(10);

struct Kubelet {
    manifest_dir: PathBuf,
    etcd: String,
    pod_log: PathBuf,
    pods: BTreeMap<PathBuf, PodState>,
}

fn log(message: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    println!("{}.{:03} {message}", now.as_secs(), now.subsec_millis());
}

impl Kubelet {
    fn sync(&mut self) {
        let present = self.read_manifests();
        let removed: Vec<PathBuf> = self
            .pods
            .keys()
            .filter(|p| !present.contains_key(*p))
            .cloned()
            .collect();
        for path in removed {
            log(&format!("{}: manifest removed", path.display()));
            if let Some(pod) = self.pods.remove(&path) {
                stop(&path, pod.run);
            }
        }
        for (path, content) in present {
            match self.pods.remove(&path) {
                Some(pod) if pod.content == content => {
                    let run = self.supervise(&path, &content, pod.run);
                    self.pods.insert(path, PodState { content, run });
                }
                Some(pod) => {
                    log(&format!("{}: manifest changed", path.display()));
                    stop(&path, pod.run);
                    let run = self.start(&path, &content, Duration::from_secs(1));
                    self.pods.insert(path, PodState { content, run });
                }
                None => {
                    log(&format!("{}: manifest added", path.display()));
                    let run = self.start(&path, &content, Duration::from_secs(1));
                    self.pods.insert(path, PodState { content, run });
                }
            }
        }
    }

    fn read_manifests(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut manifests = BTreeMap::new();
        let Ok(entries) = fs::read_dir(&self.manifest_dir) else {
            return manifests;
        };
        for entry in entries.flatten() {
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let path = entry.path();
            if hidden || !path.is_file() {
                continue;
            }
            if let Ok(content) = fs::read(&path) {
                manifests.insert(path, content);
            }
        }
        manifests
    }

    fn supervise(&self, path: &Path, content: &[u8], run: Run) -> Run {
        match run {
            Run::Running {
                mut child,
                since,
                grace,
                next_delay,
            } => match child.try_wait() {
                Ok(None) => Run::Running {
                    child,
                    since,
                    grace,
                    next_delay,
                },
                Ok(Some(status)) => {
                    // A process that ran for a while starts over with the shortest back-off.
                    let delay = if since.elapsed() > MAX_BACKOFF {
                        Duration::from_secs(1)
                    } else {
                        next_delay
                    };
                    log(&format!(
                        "{}: pid {} exited ({status}); restarting in {delay:?}",
                        path.display(),
                        child.id()
                    ));
                    Run::BackOff {
                        until: Instant::now() + delay,
                        delay,
                    }
                }
                Err(error) => {
                    log(&format!(
                        "{}: cannot check pid {}: {error}",
                        path.display(),
                        child.id()
                    ));
                    Run::Running {
                        child,
                        since,
                        grace,
                        next_delay,
                    }
                }
            },
            Run::BackOff { until, delay } if Instant::now() >= until => {
                self.start(path, content, (delay * 2).min(MAX_BACKOFF))
            }
            other => other,
        }
    }

    /// Starts the pod of `content`; `next_delay` is the back-off used if it exits on its own.
    fn start(&self, path: &Path, content: &[u8], next_delay: Duration) -> Run {
        let launch = match launch_of(content, &self.etcd) {
            Ok(launch) => launch,
            Err(error) => {
                log(&format!("{}: not starting: {error}", path.display()));
                return Run::Invalid;
            }
        };
        for dir in &launch.host_dirs {
            if let Err(error) = fs::create_dir_all(dir) {
                log(&format!(
                    "{}: cannot create hostPath {dir}: {error}",
                    path.display()
                ));
            }
        }
        let mut command = if launch.binds.is_empty() {
            let mut command = Command::new(&launch.argv[0]);
            command.args(&launch.argv[1..]);
            command
        } else {
            // Bind the host paths over the mount paths in a mount namespace of the pod's own.
            let mut script = String::from("set -e\n");
            for (host, mount) in &launch.binds {
                script.push_str(&format!(
                    "mkdir -p {m}\nmount --bind {h} {m}\n",
                    h = quote(host),
                    m = quote(mount)
                ));
            }
            script.push_str("exec \"$@\"\n");
            let mut command = Command::new("unshare");
            command
                .args([
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/sh",
                    "-c",
                    &script,
                    "sh",
                ])
                .args(&launch.argv);
            command
        };
        let output = match open_log(&self.pod_log) {
            Ok(file) => file,
            Err(error) => {
                log(&format!(
                    "{}: cannot open {}: {error}",
                    path.display(),
                    self.pod_log.display()
                ));
                return Run::BackOff {
                    until: Instant::now() + next_delay,
                    delay: next_delay,
                };
            }
        };
        let stderr = output.try_clone();
        command.stdin(Stdio::null()).stdout(output);
        if let Ok(stderr) = stderr {
            command.stderr(stderr);
        }
        match command.spawn() {
            Ok(child) => {
                log(&format!(
                    "{}: started pid {}: {}",
                    path.display(),
                    child.id(),
                    launch.argv.join(" ")
                ));
                Run::Running {
                    child,
                    since: Instant::now(),
                    grace: launch.grace,
                    next_delay,
                }
            }
            Err(error) => {
                log(&format!(
                    "{}: cannot start {}: {error}",
                    path.display(),
                    launch.argv[0]
                ));
                Run::BackOff {
                    until: Instant::now() + next_delay,
                    delay: next_delay,
                }
            }
        }
    }
}

/// Stops a pod's process: SIGTERM, SIGKILL after the grace period, then waits until it is gone.
fn stop(path: &Path, run: Run) {
    let Run::Running {
        mut child, grace, ..
    } = run
    else {
        return;
    };
    let pid = child.id();
    log(&format!(
        "{}: stopping pid {pid} (SIGTERM, grace {grace:?})",
        path.display()
    ));
    if let Ok(raw) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our unreaped child.
        unsafe { libc::kill(raw, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                log(&format!("{}: pid {pid} stopped ({status})", path.display()));
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                log(&format!(
                    "{}: pid {pid} still running after {grace:?}; SIGKILL",
                    path.display()
                ));
                let _ = child.kill();
                let status = child.wait();
                log(&format!(
                    "{}: pid {pid} killed ({status:?})",
                    path.display()
                ));
                return;
            }
        }
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [manifest_dir, etcd, pod_log] = args.as_slice() else {
        eprintln!("usage: testbed-kubelet MANIFEST_DIR ETCD_BINARY POD_LOG");
        std::process::exit(2);
    };
    let mut kubelet = Kubelet {
        manifest_dir: PathBuf::from(manifest_dir),
        etcd: etcd.clone(),
        pod_log: PathBuf::from(pod_log),
        pods: BTreeMap::new(),
    };
    log(&format!("watching {manifest_dir}"));
    loop {
        kubelet.sync();
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - command: [etcd, --name=node1, --data-dir=/var/lib/etcd]
    args: [--snapshot-count=5]
    volumeMounts:
    - {mountPath: /var/lib/etcd, name: etcd-data}
    - {mountPath: /etc/kubernetes/pki/etcd, name: etcd-certs}
  hostNetwork: true
  volumes:
  - {name: etcd-certs, hostPath: {path: /etc/kubernetes/pki/etcd, type: DirectoryOrCreate}}
  - {name: etcd-data, hostPath: {path: /var/lib/etcd-restored, type: DirectoryOrCreate}}
"#;

    #[test]
    fn launches_etcd_with_flags_and_host_paths() {
        let launch = launch_of(MANIFEST.as_bytes(), "/usr/local/bin/etcd").unwrap();
        assert_eq!(
            launch.argv,
            [
                "/usr/local/bin/etcd",
                "--name=node1",
                "--data-dir=/var/lib/etcd",
                "--snapshot-count=5"
            ]
        );
        assert_eq!(
            launch.binds,
            [(
                "/var/lib/etcd-restored".to_owned(),
                "/var/lib/etcd".to_owned()
            )]
        );
        assert_eq!(
            launch.host_dirs,
            ["/var/lib/etcd-restored", "/etc/kubernetes/pki/etcd"]
        );
        assert_eq!(launch.grace, Duration::from_secs(30));
    }

    #[test]
    fn rejects_broken_manifests() {
        for (manifest, error) in [
            ("spec: [", "invalid manifest"),
            ("spec: {containers: []}", "no containers"),
            (
                "spec: {containers: [{command: []}]}",
                "neither command nor args",
            ),
            (
                "spec: {containers: [{command: [etcd], volumeMounts: [{name: x, mountPath: /x}]}]}",
                "no hostPath",
            ),
        ] {
            let got = launch_of(manifest.as_bytes(), "etcd").unwrap_err();
            assert!(got.contains(error), "{manifest}: {got}");
        }
    }
}
