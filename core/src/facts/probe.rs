//! The one script that gathers a node's facts, and the reading of what it prints. The script
//! only reads; every value it prints is one `etcdrill-fact KEY VALUE` line, file contents and
//! paths in base64 so that nothing in them can break the format.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::inventory::{Management, Node, TransportKind};
use crate::render::{shell_join, shell_quote as q};

const PREFIX: &str = "etcdrill-fact ";

/// What a directory on the node is like.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirFacts {
    /// The directory.
    pub path: String,
    /// Whether it exists.
    pub exists: bool,
    /// Whether it is a mount point of its own (a dedicated disk, a bind mount).
    pub mount_point: bool,
    /// The type of the filesystem holding it (or its nearest existing parent), e.g. `ext4`.
    pub filesystem: String,
    /// Free space on that filesystem, in bytes.
    pub free_bytes: Option<u64>,
    /// `device:inode` of `member/` inside it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// The running etcd process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFacts {
    /// Its process id on the node.
    pub pid: u32,
    /// Seconds since it started.
    pub running_for_s: u64,
    /// Its command line, NUL-separated.
    #[serde(skip)]
    pub cmdline: Vec<u8>,
    /// `device:inode` of the `member/` it has at its `--data-dir`, seen in its own mount
    /// namespace (as a container's hostPath puts it there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// Everything one run of the probe script reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probed {
    pub uid: Option<u32>,
    pub manifest: Option<(String, String)>,
    pub env_file: Option<String>,
    pub dirs: Vec<DirFacts>,
    pub etcdctl_version: Option<String>,
    pub etcdutl_version: Option<String>,
    pub process: Option<ProcessFacts>,
    /// The systemd unit with its drop-ins, as `systemctl cat` prints them.
    pub unit: Option<String>,
    /// The environment files the unit names that exist: path and contents.
    pub unit_env_files: Vec<(String, String)>,
}

/// Prints the facts of `dirs` (used by both scripts).
const MEASURE: &str = r#"fact() { printf 'etcdrill-fact %s %s\n' "$1" "$2"; }
b64() { base64 | tr -d '\n'; }
measure() {
  p=$1; probe=$p
  while [ ! -e "$probe" ]; do probe=$(dirname -- "$probe"); done
  exists=0; [ -e "$p" ] && exists=1
  mp=0; awk -v p="$p" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo && mp=1
  fs=$(stat -f -c %T -- "$probe" 2>/dev/null || echo unknown)
  free=$(df -P -k -- "$probe" 2>/dev/null | awk 'NR == 2 { print $4 }')
  member=$(stat -c %d:%i -- "$p/member" 2>/dev/null || echo -)
  fact dir "$(printf %s "$p" | b64) $exists $mp $fs ${free:--} $member"
}"#;

/// Prints the systemd unit `$unit` (a name or a path) with its drop-ins, as `systemctl cat` does,
/// and each environment file it names that exists.
const UNIT: &str = r#"text=$(systemctl cat -- "$unit" 2>/dev/null) || text=
if [ -z "$text" ]; then
  case $unit in
    /*) files=$unit ;;
    *) files="/etc/systemd/system/$unit /run/systemd/system/$unit /usr/local/lib/systemd/system/$unit /lib/systemd/system/$unit /usr/lib/systemd/system/$unit" ;;
  esac
  for f in $files; do
    [ -f "$f" ] || continue
    text=$(printf '# %s\n' "$f"; cat -- "$f")
    # Drop-ins beside the unit, and the administrator's in /etc when the unit lives elsewhere.
    etc_dropins=/etc/systemd/system/${unit##*/}.d
    for d in "$f.d"/*.conf; do
      [ -f "$d" ] && text=$(printf '%s\n# %s\n' "$text" "$d"; cat -- "$d")
    done
    if [ "$etc_dropins" != "$f.d" ]; then
      for d in "$etc_dropins"/*.conf; do
        [ -f "$d" ] && text=$(printf '%s\n# %s\n' "$text" "$d"; cat -- "$d")
      done
    fi
    break
  done
fi
if [ -n "$text" ]; then
  fact unit "$(printf %s "$text" | b64)"
  printf '%s\n' "$text" | sed -n 's/^[[:space:]]*EnvironmentFile=-\{0,1\}//p' | while IFS= read -r f; do
    [ -f "$f" ] && fact unit_env_file "$(printf %s "$f" | b64) $(b64 < "$f")"
  done
fi
"#;

/// The script that gathers `node`'s facts in one round trip.
pub fn script(node: &Node) -> String {
    let etcd = &node.etcd;
    let mut script = format!("set -u\n{MEASURE}\nfact uid \"$(id -u)\"\n");
    match &etcd.management {
        Management::StaticPod(pod) => {
            let parked = format!(
                "{}/{}",
                pod.parked_dir.trim_end_matches('/'),
                std::path::Path::new(&pod.manifest)
                    .file_name()
                    .map_or("etcd.yaml".into(), |n| n.to_string_lossy())
            );
            script.push_str(&format!(
                "for f in {} {}; do\n  if [ -f \"$f\" ]; then fact manifest \"$(printf %s \"$f\" | b64) $(b64 < \"$f\")\"; break; fi\ndone\n",
                q(&pod.manifest),
                q(&parked)
            ));
        }
        Management::External(service) => {
            if let Some(env_file) = &service.env_file {
                script.push_str(&format!(
                    "if [ -f {f} ]; then fact env_file \"$(b64 < {f})\"; fi\n",
                    f = q(env_file)
                ));
            }
            if let Some(unit) = &service.unit {
                script.push_str(&format!("unit={}\n{UNIT}", q(unit)));
            }
        }
    }
    script.push_str(&format!(
        "measure {}\nmeasure {}\n",
        q(&etcd.data_dir),
        q(&etcd.backup_dir)
    ));
    script.push_str(&format!(
        "v=$(ETCDCTL_API=3 {} version 2>/dev/null | head -n 1) && fact etcdctl \"$(printf %s \"$v\" | b64)\"\nv=$({} version 2>/dev/null | head -n 1) && fact etcdutl \"$(printf %s \"$v\" | b64)\"\n",
        shell_join(&etcd.etcdctl),
        shell_join(&etcd.etcdutl)
    ));
    // On the local sandbox every member runs on this machine: no process is "the node's".
    if node.transport != TransportKind::Local {
        script.push_str(&format!(
            r#"pid=$(pgrep -o -x {} 2>/dev/null || true)
if [ -n "$pid" ]; then
  flag=$(tr '\0' '\n' < "/proc/$pid/cmdline" | awk 'p ~ /^--?data-dir$/ {{ v = $0 }} /^--?data-dir=/ {{ v = $0; sub(/^--?data-dir=/, "", v) }} {{ p = $0 }} END {{ print v }}')
  [ -n "$flag" ] || flag=$(tr '\0' '\n' < "/proc/$pid/environ" | sed -n 's/^ETCD_DATA_DIR=//p' | tail -n 1)
  case $flag in /*) ;; ?*) flag="$(readlink "/proc/$pid/cwd")/$flag" ;; esac
  member=-; [ -z "$flag" ] || member=$(stat -L -c %d:%i -- "/proc/$pid/root$flag/member" 2>/dev/null || echo -)
  fact process "$pid $(ps -o etimes= -p "$pid" | tr -d ' ') $member $(b64 < "/proc/$pid/cmdline")"
fi
"#,
            q(&etcd.process_name)
        ));
    }
    script.push_str("exit 0\n");
    script
}

/// The script that measures directories found only once the configuration was read.
pub fn measure_script(dirs: &[&str]) -> String {
    let mut script = format!("set -u\n{MEASURE}\n");
    for dir in dirs {
        script.push_str(&format!("measure {}\n", q(dir)));
    }
    script
}

fn decode(text: &str) -> Option<String> {
    STANDARD
        .decode(text.trim())
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Reads the script's output; lines it does not know are ignored.
pub fn parse(stdout: &str) -> Probed {
    let mut probed = Probed::default();
    let mut seen = BTreeMap::new();
    for line in stdout.lines() {
        let Some((key, value)) = line
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        seen.insert(key.to_owned(), ());
        match key {
            "uid" => probed.uid = value.trim().parse().ok(),
            "manifest" => {
                if let Some((path, text)) = value.split_once(' ') {
                    probed.manifest = decode(path).zip(decode(text));
                }
            }
            "env_file" => probed.env_file = decode(value),
            "unit" => probed.unit = decode(value),
            "unit_env_file" => {
                if let Some((path, text)) = value.split_once(' ') {
                    probed.unit_env_files.extend(decode(path).zip(decode(text)));
                }
            }
            "etcdctl" => probed.etcdctl_version = decode(value).map(version),
            "etcdutl" => probed.etcdutl_version = decode(value).map(version),
            "dir" => {
                let words: Vec<&str> = value.split(' ').collect();
                if let [path, exists, mount, fs, free, member] = words[..] {
                    probed.dirs.push(DirFacts {
                        path: decode(path).unwrap_or_default(),
                        exists: exists == "1",
                        mount_point: mount == "1",
                        filesystem: fs.to_owned(),
                        free_bytes: free.parse::<u64>().ok().map(|kib| kib * 1024),
                        member: (member != "-").then(|| member.to_owned()),
                    });
                }
            }
            "process" => {
                let words: Vec<&str> = value.split(' ').collect();
                if let [pid, running, member, cmdline] = words[..] {
                    probed.process = pid.parse().ok().map(|pid| ProcessFacts {
                        pid,
                        running_for_s: running.parse().unwrap_or(0),
                        cmdline: STANDARD.decode(cmdline).unwrap_or_default(),
                        member: (member != "-").then(|| member.to_owned()),
                    });
                }
            }
            _ => {}
        }
    }
    probed
}

/// `etcdctl version: 3.5.1` -> `3.5.1`.
fn version(line: String) -> String {
    line.rsplit(' ').next().unwrap_or(&line).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn b64(text: &str) -> String {
        STANDARD.encode(text)
    }

    #[test]
    fn the_output_is_read_back_whole() {
        let out = format!(
            "noise\netcdrill-fact uid 0\netcdrill-fact manifest {} {}\netcdrill-fact dir {} 1 1 ext4 2048 64769:12\netcdrill-fact dir {} 0 0 xfs - -\netcdrill-fact etcdctl {}\netcdrill-fact process 41 120 64769:12 {}\n",
            b64("/etc/kubernetes/manifests/etcd.yaml"),
            b64("spec: {}"),
            b64("/var/lib/etcd"),
            b64("/var/backups/etcd"),
            b64("etcdctl version: 3.5.1"),
            STANDARD.encode(b"etcd\0--name=a\0"),
        );
        let probed = parse(&out);
        assert_eq!(probed.uid, Some(0));
        assert_eq!(
            probed.manifest,
            Some((
                "/etc/kubernetes/manifests/etcd.yaml".into(),
                "spec: {}".into()
            ))
        );
        assert_eq!(probed.etcdctl_version.as_deref(), Some("3.5.1"));
        assert_eq!(probed.dirs.len(), 2);
        assert!(probed.dirs[0].mount_point && probed.dirs[0].exists);
        assert_eq!(probed.dirs[0].free_bytes, Some(2048 * 1024));
        assert_eq!(probed.dirs[0].member.as_deref(), Some("64769:12"));
        assert_eq!(probed.dirs[1].free_bytes, None);
        let process = probed.process.unwrap();
        assert_eq!((process.pid, process.running_for_s), (41, 120));
        assert_eq!(process.cmdline, b"etcd\0--name=a\0");
    }

    /// The measuring part of the script, run for real on a temporary directory.
    #[test]
    fn directories_are_measured_on_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data dir");
        std::fs::create_dir_all(data.join("member")).unwrap();
        let missing = dir.path().join("not yet/deeper");
        let script = measure_script(&[data.to_str().unwrap(), missing.to_str().unwrap()]);
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let probed = parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(probed.dirs.len(), 2, "{probed:?}");
        assert!(probed.dirs[0].exists && probed.dirs[0].member.is_some());
        assert!(probed.dirs[0].free_bytes.is_some());
        assert!(!probed.dirs[1].exists && probed.dirs[1].member.is_none());
        assert!(!probed.dirs[0].mount_point);
        // The root directory is a mount point everywhere.
        let out = Command::new("sh")
            .arg("-c")
            .arg(measure_script(&["/"]))
            .output()
            .unwrap();
        let root = parse(&String::from_utf8_lossy(&out.stdout));
        assert!(root.dirs[0].mount_point);
    }
}
