//! The shell scripts behind typed node actions, for each way etcd is managed, and their natural
//! rollbacks. Every value is shell-quoted; inventory start/stop commands are shell by design.

use std::path::Path;

use sha2::Digest;

use crate::inventory::{Cluster, ExternalService, Management, Node, StaticPod};
use crate::plan::{Operation, Rollback};
use crate::render::{shell_join, shell_quote as q};
use crate::runbook::action::{
    Action, ConfigureMemberArgs, DataDirReplaceArgs, DataDirSetAsideArgs, SnapshotRestoreArgs,
    StartMemberArgs,
};

/// Why a node action cannot be turned into a script for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptError {
    /// The `with:` field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Whether the inventory (rather than the runbook) must change.
    pub inventory: bool,
}

fn runbook_error(
    field: &'static str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> ScriptError {
    ScriptError {
        field,
        message: message.into(),
        hint: hint.into(),
        inventory: false,
    }
}

/// The operation of a node-side action on `node`.
pub(crate) fn operation(
    action: &Action,
    node: &Node,
    cluster: &Cluster,
) -> Result<Operation, ScriptError> {
    let script = match action {
        Action::Shell(args) => args.run.clone(),
        Action::EtcdStopMember(_) => stop_member(node),
        Action::EtcdStartMember(args) => start_member(node, args)?,
        Action::EtcdConfigureMember(args) => configure_member(node, args)?,
        Action::EtcdSnapshotRestore(args) => snapshot_restore(node, cluster, args)?,
        Action::EtcdDataDirReplace(args) => data_dir_replace(node, args)?,
        Action::EtcdDataDirSetAside(args) => data_dir_set_aside(node, args)?,
        Action::EtcdDataDirRepoint(args) => super::host_path::repoint(node, args)?,
        Action::EtcdSnapshotVerify(args) => crate::remote_checksum::script(&args.path),
        Action::EtcdSnapshotDistribute(args) => {
            return Ok(Operation::Distribute {
                from: args.from.clone(),
                to: args.to.clone(),
                save_from: if args.save {
                    cluster.client_urls()
                } else {
                    Vec::new()
                },
            });
        }
        Action::FileCopy(args) => {
            return Ok(Operation::Copy {
                direction: args.direction,
                from: args.from.clone(),
                to: args.to.clone(),
            });
        }
        other => unreachable!("`{}` does not run on nodes", other.kind()),
    };
    Ok(Operation::Script { script })
}

/// What check mode runs on `node` instead of a node-side action: a read-only script that fails,
/// saying why, when the action would fail for a reason known now (its binary is missing, its
/// target is a leftover of an earlier run, the file system has no room, the manifest is not
/// there); for a shell script, only that a script runs there. `None` for actions with nothing to
/// check. Run through `sudo` like the action, it also
/// checks that sudo works.
pub(crate) fn preflight(action: &Action, node: &Node) -> Option<String> {
    let script = match action {
        // A script cannot be checked without running it; that it would run, and as whom, can.
        Action::Shell(_) => "printf 'a script would run here as %s\\n' \"$(id -un)\"".to_string(),
        Action::EtcdSnapshotRestore(args) => {
            let etcdutl = shell_join(&node.etcd.etcdutl);
            let bump = if args.bump_revision.is_some_and(|n| n > 0) {
                format!(
                    "{etcdutl} snapshot restore --help 2>&1 | grep -q -- --bump-revision || {{ echo \"$etcdutl_name has no --bump-revision (etcd 3.6, backported to 3.5 by etcd-io/etcd#16165); restore with bump_revision=0 and mark_compacted=false\" >&2; exit 1; }}\n"
                )
            } else {
                String::new()
            };
            format!(
                "set -eu\netcdutl_name={name}\ncommand -v \"$etcdutl_name\" >/dev/null 2>&1 || {{ echo \"etcdutl is missing on this node: no $etcdutl_name\" >&2; exit 1; }}\nout=$({etcdutl} version 2>&1) || {{ echo \"$etcdutl_name does not run: $out\" >&2; exit 1; }}\n{bump}target={target}\nif [ -e \"$target\" ] && [ -n \"$(ls -A \"$target\")\" ]; then echo \"$target already exists and is not empty (left by an earlier run?): the restore would refuse\" >&2; exit 1; fi\n{room}echo \"$(printf '%s\\n' \"$out\" | head -n 1); restores into $target\"",
                name = q(&node.etcd.etcdutl[0]),
                target = q(&args.data_dir),
                room = room_check(
                    &args.data_dir,
                    &format!(
                        "$(stat -c %s -- {} 2>/dev/null || echo 0)",
                        q(&format!("{}/member/snap/db", node.etcd.data_dir))
                    )
                ),
            )
        }
        Action::EtcdDataDirReplace(args) => format!(
            "set -eu\nlive={}\nnew={}\nold={}\n[ -d \"$live\" ] || {{ echo \"the live data dir $live is not there\" >&2; exit 1; }}\n[ ! -e \"$old/member\" ] || {{ echo \"$old/member already exists (left by an earlier run?): the swap would refuse to overwrite it\" >&2; exit 1; }}\necho \"would move $live/member to $old/member and $new/member to $live/member, inside $live's filesystem\"",
            q(&node.etcd.data_dir),
            q(&args.with),
            q(&args.keep_old_at)
        ),
        Action::EtcdDataDirSetAside(args) => format!(
            "set -eu\nlive={}\naside={}\n[ -d \"$live\" ] || {{ echo \"the data dir $live is not there\" >&2; exit 1; }}\nif [ ! -e \"$live/member\" ]; then echo \"$live holds no member data: nothing would be set aside\"; exit 0; fi\n[ ! -e \"$aside/member\" ] || {{ echo \"$aside/member already exists (left by an earlier run?): setting aside would refuse to overwrite it\" >&2; exit 1; }}\necho \"would move $live/member to $aside/member, inside $live's filesystem\"",
            q(&node.etcd.data_dir),
            q(&args.at)
        ),
        Action::EtcdDataDirRepoint(args) => return super::host_path::preflight(node, args),
        Action::EtcdStopMember(_) | Action::EtcdStartMember(_) | Action::EtcdConfigureMember(_) => {
            match &node.etcd.management {
                Management::StaticPod(pod) => format!(
                    "set -eu\nmanifest={}\nparked={}\nif [ -f \"$manifest\" ]; then echo \"manifest $manifest is in place\"; elif [ -f \"$parked\" ]; then echo \"manifest parked at $parked\"; else echo \"no etcd manifest at $manifest or $parked\" >&2; exit 1; fi",
                    q(&pod.manifest),
                    q(&parked_manifest(pod))
                ),
                Management::External(service) => match &service.env_file {
                    Some(env_file) if matches!(action, Action::EtcdConfigureMember(_)) => format!(
                        "set -eu\nf={}\n[ -d \"$(dirname -- \"$f\")\" ] || {{ echo \"the directory of $f is missing\" >&2; exit 1; }}\necho \"env file $f\"",
                        q(env_file)
                    ),
                    _ => return None,
                },
            }
        }
        _ => return None,
    };
    Some(script)
}

/// Shell lines that fail unless the file system that will hold `target` (its nearest existing
/// ancestor's) has room for `need` bytes: shell text, a number or a command substitution.
pub fn room_check(target: &str, need: &str) -> String {
    format!(
        "dir={}\nwhile [ ! -d \"$dir\" ]; do dir=$(dirname -- \"$dir\"); done\nneed={}\nfree=$(($(df -P -k -- \"$dir\" | awk 'NR == 2 {{ print $4 }}') * 1024))\n[ \"$free\" -ge \"$need\" ] || {{ echo \"no room: $dir has $free bytes free, $need needed\" >&2; exit 1; }}\necho \"$dir: $free bytes free, $need needed\"\n",
        q(target),
        need
    )
}

/// The natural rollback of a node-side action on `node`.
pub(crate) fn natural_rollback(action: &Action, node: &Node) -> Rollback {
    let script = match action {
        Action::EtcdStopMember(_) => start_member(node, &StartMemberArgs::default()).ok(),
        Action::EtcdStartMember(args) if args.force_new_cluster => return Rollback::Irreversible,
        Action::EtcdStartMember(_) => Some(stop_member(node)),
        Action::EtcdConfigureMember(_) => Some(restore_configuration(node)),
        Action::EtcdSnapshotRestore(args) => Some(format!(
            "set -eu\n# Remove the directory the restore created.\nrm -rf -- {}",
            q(&args.data_dir)
        )),
        Action::EtcdDataDirReplace(args) => Some(data_dir_replace_back(node, args)),
        Action::EtcdDataDirSetAside(args) => Some(data_dir_set_aside_back(node, args)),
        Action::EtcdDataDirRepoint(args) => match super::host_path::repoint_back(node, args) {
            Some(script) => Some(script),
            None => return Rollback::NotNeeded,
        },
        Action::Shell(_) => return Rollback::Declined,
        Action::EtcdSnapshotVerify(_) | Action::FileCopy(_) | Action::EtcdSnapshotDistribute(_) => {
            return Rollback::NotNeeded;
        }
        other => unreachable!("`{}` does not run on nodes", other.kind()),
    };
    match script {
        Some(script) => Rollback::Run {
            operation: Operation::Script { script },
        },
        None => Rollback::Irreversible,
    }
}

/// Where a static pod's manifest waits while the member is stopped.
pub(crate) fn parked_manifest(pod: &StaticPod) -> String {
    let name = Path::new(&pod.manifest)
        .file_name()
        .map_or("etcd.yaml".into(), |n| n.to_string_lossy().into_owned());
    format!("{}/{name}", pod.parked_dir.trim_end_matches('/'))
}

/// Waits until no etcd process is left. A closed client port is not a stopped member: an old
/// leader can still answer peers with the old cluster ID. The wait is downtime during a restore,
/// so it looks every 50 ms (a `pgrep` costs about a millisecond).
fn wait_until_gone(node: &Node) -> String {
    format!(
        "# A closed client port is not a stopped member: wait for the process to be gone.\nwhile pgrep -x {} >/dev/null; do sleep 0.05; done",
        q(&node.etcd.process_name)
    )
}

fn stop_member(node: &Node) -> String {
    match &node.etcd.management {
        Management::StaticPod(pod) => format!(
            "set -eu\nmanifest={}\nparked={}\nif [ -f \"$manifest\" ]; then\n  mkdir -p {}\n  mv -f \"$manifest\" \"$parked\"\nelif [ ! -f \"$parked\" ]; then\n  echo \"no etcd manifest at $manifest or $parked\" >&2\n  exit 1\nfi\n{}",
            q(&pod.manifest),
            q(&parked_manifest(pod)),
            q(&pod.parked_dir),
            wait_until_gone(node)
        ),
        Management::External(service) => {
            format!("set -eu\n{}\n{}", service.stop, wait_until_gone(node))
        }
    }
}

fn start_member(node: &Node, args: &StartMemberArgs) -> Result<String, ScriptError> {
    match &node.etcd.management {
        Management::StaticPod(pod) if args.force_new_cluster => {
            let parked = parked_manifest(pod);
            Ok(format!(
                "set -eu\nparked={}\n[ -f \"$parked\" ] || {{ echo \"stop the member first: $parked is missing\" >&2; exit 1; }}\nawk '{{ print }} !done && /^[[:space:]]*- etcd[[:space:]]*$/ {{ sub(/- etcd.*/, \"- --force-new-cluster\"); print; done = 1 }}' \"$parked\" > \"$parked.force-new-cluster\"\ngrep -q -- '- --force-new-cluster$' \"$parked.force-new-cluster\" || {{ echo \"no '- etcd' command line in $parked\" >&2; exit 1; }}\nmv -f \"$parked\" \"$parked.before-force-new-cluster\"\nmv -f \"$parked.force-new-cluster\" {}",
                q(&parked),
                q(&pod.manifest)
            ))
        }
        Management::StaticPod(pod) => Ok(format!(
            "set -eu\nmanifest={}\nparked={}\nif [ -f \"$manifest\" ]; then\n  exit 0\nelif [ -f \"$parked\" ]; then\n  mv -f \"$parked\" \"$manifest\"\nelse\n  echo \"no etcd manifest at $parked to start from\" >&2\n  exit 1\nfi",
            q(&pod.manifest),
            q(&parked_manifest(pod))
        )),
        Management::External(service) if args.force_new_cluster => {
            let env_file =
                require_env_file(node, service, "start a member with --force-new-cluster")?;
            Ok(format!(
                "set -eu\n{}\n{}",
                edit_env_file(env_file, &[("force-new-cluster", "true")], &[]),
                service.start
            ))
        }
        Management::External(service) => Ok(format!("set -eu\n{}", service.start)),
    }
}

fn require_env_file<'a>(
    node: &Node,
    service: &'a ExternalService,
    purpose: &str,
) -> Result<&'a str, ScriptError> {
    service.env_file.as_deref().ok_or_else(|| ScriptError {
        field: "",
        message: format!(
            "node `{}` runs etcd as an external service without `env_file`, so etcdrill cannot {purpose}",
            node.name
        ),
        hint: "set `etcd.management.external.env_file` to the file of ETCD_* variables the service reads".into(),
        inventory: true,
    })
}

/// Characters a flag value may hold to be written into a manifest or env file as it is. A value
/// known only at run time passes now and is checked when the step is rendered again to run.
fn plain_flag_value(value: &str) -> bool {
    crate::render::has_placeholder(value)
        || value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/=,@+%~-[]".contains(c))
}

fn check_flags(args: &ConfigureMemberArgs) -> Result<(), ScriptError> {
    let names = args.set.keys().chain(args.remove.iter());
    for name in names {
        let ok = !name.is_empty()
            && !name.starts_with('-')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(runbook_error(
                "set",
                format!("`{name}` is not an etcd flag name"),
                "write flags without leading dashes, e.g. `initial-cluster-state`",
            ));
        }
    }
    for (name, value) in &args.set {
        if !plain_flag_value(value) {
            return Err(runbook_error(
                "set",
                format!(
                    "the value of `{name}` holds characters that cannot go into a manifest as they are: `{value}`"
                ),
                "flag values may use letters, digits and . _ : / = , @ + % ~ - [ ]",
            ));
        }
    }
    if args.set.is_empty() && args.remove.is_empty() {
        return Err(runbook_error(
            "set",
            "nothing to configure",
            "give `set` or `remove`",
        ));
    }
    Ok(())
}

/// [`MANIFEST_FLAGS_AWK`] quoted for the shell once: quoting its 1.3 KB for every
/// `etcd.configure_member` instance was a fifth of a large plan's compile time.
static QUOTED_MANIFEST_FLAGS_AWK: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| q(MANIFEST_FLAGS_AWK));

/// Rewrites `- --flag=value` lines of a kubeadm manifest held in `$target`: set, add after the
/// `- etcd` line, or remove. Values come in through the environment, never through the program.
const MANIFEST_FLAGS_AWK: &str = r#"{ line[NR] = $0 }
END {
  n = split(ENVIRON["ETCDRILL_SET"], set, "\n")
  for (i = 1; i <= n; i++) if (set[i] != "") {
    eq = index(set[i], "="); name = substr(set[i], 1, eq - 1)
    value[name] = substr(set[i], eq + 1); order[++count] = name
  }
  m = split(ENVIRON["ETCDRILL_REMOVE"], rm, "\n")
  for (i = 1; i <= m; i++) if (rm[i] != "") drop[rm[i]] = 1
  for (i = 1; i <= NR; i++) {
    flag[i] = ""
    if (line[i] ~ /^[[:space:]]*- --[A-Za-z0-9-]+(=.*)?$/) {
      f = line[i]; sub(/^[[:space:]]*- --/, "", f); sub(/=.*/, "", f); flag[i] = f; present[f] = 1
    }
    if (!command && line[i] ~ /^[[:space:]]*- etcd[[:space:]]*$/) command = i
  }
  if (!command) { print "no '- etcd' command line in the manifest" > "/dev/stderr"; exit 3 }
  indent = line[command]; sub(/-.*/, "", indent)
  for (i = 1; i <= NR; i++) {
    if (flag[i] in drop) continue
    if (flag[i] in value) { print indent "- --" flag[i] "=" value[flag[i]]; continue }
    print line[i]
    if (i == command) for (k = 1; k <= count; k++) if (!(order[k] in present)) print indent "- --" order[k] "=" value[order[k]]
  }
}"#;

fn configure_member(node: &Node, args: &ConfigureMemberArgs) -> Result<String, ScriptError> {
    check_flags(args)?;
    let set: Vec<(&str, &str)> = args
        .set
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let remove: Vec<&str> = args.remove.iter().map(String::as_str).collect();
    match &node.etcd.management {
        Management::StaticPod(pod) => {
            let set_lines: String = set.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let remove_lines: String = remove.iter().map(|k| format!("{k}\n")).collect();
            Ok(format!(
                "set -eu\nmanifest={}\nparked={}\nif [ -f \"$manifest\" ]; then target=$manifest; elif [ -f \"$parked\" ]; then target=$parked; else echo \"no etcd manifest at $manifest or $parked\" >&2; exit 1; fi\nmkdir -p {}\ncp -p \"$target\" \"$parked.before-configure\"\nETCDRILL_SET={} ETCDRILL_REMOVE={} awk {} \"$target\" > \"$parked.configured\"\n# A changed manifest makes the kubelet restart the member.\nmv -f \"$parked.configured\" \"$target\"",
                q(&pod.manifest),
                q(&parked_manifest(pod)),
                q(&pod.parked_dir),
                q(&set_lines),
                q(&remove_lines),
                *QUOTED_MANIFEST_FLAGS_AWK,
            ))
        }
        Management::External(service) => {
            let env_file = require_env_file(node, service, "change etcd flags")?;
            Ok(format!(
                "set -eu\n[ -f {f} ] || : > {f}\ncp -p {f} {f}.etcdrill-before-configure\n{}",
                edit_env_file(env_file, &set, &remove),
                f = q(env_file),
            ))
        }
    }
}

/// The `ETCD_*` variable etcd reads for a flag.
fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// Sets and removes `ETCD_*` lines of an env file, through a temporary file and a rename.
fn edit_env_file(env_file: &str, set: &[(&str, &str)], remove: &[&str]) -> String {
    let names: Vec<String> = set
        .iter()
        .map(|(k, _)| k)
        .chain(remove.iter())
        .map(|k| env_name(k))
        .collect();
    let pattern = format!("^({})=", names.join("|"));
    let lines: Vec<String> = set
        .iter()
        .map(|(k, v)| format!("{}={}", env_name(k), q(v)))
        .collect();
    let append = if lines.is_empty() {
        String::new()
    } else {
        format!("; printf '%s\\n' {}", shell_join(&lines))
    };
    format!(
        "f={}\n{{ grep -v -E {} \"$f\" || true{append}; }} > \"$f.etcdrill-tmp\"\nmv -f \"$f.etcdrill-tmp\" \"$f\"",
        q(env_file),
        q(&pattern),
    )
}

fn restore_configuration(node: &Node) -> String {
    match &node.etcd.management {
        Management::StaticPod(pod) => format!(
            "set -eu\nmanifest={}\nparked={}\nif [ -f \"$manifest\" ]; then target=$manifest; else target=$parked; fi\ncp -p \"$parked.before-configure\" \"$target\"",
            q(&pod.manifest),
            q(&parked_manifest(pod))
        ),
        Management::External(service) => match &service.env_file {
            Some(env_file) => format!(
                "set -eu\ncp -p {f}.etcdrill-before-configure {f}",
                f = q(env_file)
            ),
            None => "true".into(),
        },
    }
}

fn snapshot_restore(
    node: &Node,
    cluster: &Cluster,
    args: &SnapshotRestoreArgs,
) -> Result<String, ScriptError> {
    let live = Path::new(&node.etcd.data_dir);
    if Path::new(&args.data_dir) == live || Path::new(&args.data_dir) == live.join("member") {
        return Err(runbook_error(
            "data_dir",
            format!(
                "restoring straight into the live data dir `{}` leaves no way back",
                args.data_dir
            ),
            "restore into a new directory, then put it in place with `etcd.data_dir.replace`",
        ));
    }
    let bump = args.bump_revision.filter(|&n| n > 0);
    if bump.is_some() != args.mark_compacted {
        return Err(runbook_error(
            "mark_compacted",
            "etcdutl takes `--mark-compacted` exactly when `--bump-revision` is above 0",
            "set both (`bump_revision: 1000000000`, `mark_compacted: true`) or neither",
        ));
    }
    let etcdutl = shell_join(&node.etcd.etcdutl);
    let mut command = vec![
        etcdutl.clone(),
        "snapshot restore".into(),
        q(&args.snapshot),
        format!("--name {}", q(&node.etcd.member)),
        format!("--initial-cluster {}", q(&cluster.initial_cluster())),
        format!("--initial-cluster-token {}", q(&args.cluster_token)),
        format!("--initial-advertise-peer-urls {}", q(&node.etcd.peer_url)),
    ];
    let mut preflight = String::new();
    if let Some(n) = bump {
        command.push(format!("--bump-revision {n} --mark-compacted"));
        preflight = format!(
            "{etcdutl} snapshot restore --help 2>&1 | grep -q -- --bump-revision || {{ echo \"this etcdutl has no --bump-revision (etcd 3.6, backported to 3.5 by etcd-io/etcd#16165); restore with bump_revision=0 and mark_compacted=false\" >&2; exit 1; }}\n"
        );
    }
    if args.skip_hash_check {
        command.push("--skip-hash-check".into());
    }
    let restore = command.join(" ");
    Ok(format!(
        "set -eu\ndata_dir={}\nsnapshot={snap}\nstaging=\"$data_dir/{RESTORE_STAGING}\"\nmark=\"$data_dir/{RESTORE_MARK}\"\n[ -f \"$snapshot\" ] || {{ echo \"snapshot $snapshot not found on this node\" >&2; exit 1; }}\n# What this restore is: the snapshot file as it is now and the whole etcdutl command (its sha256).\nwant=\"$(stat -c '%s %Y' -- \"$snapshot\") {identity}\"\nif [ -d \"$data_dir/member\" ] && [ -f \"$mark\" ] && [ \"$(cat -- \"$mark\")\" = \"$want\" ]; then\n  rm -rf -- \"$staging\"\n  echo \"$data_dir already holds this restore: an earlier attempt of this step finished it\"\n  exit 0\nfi\nif [ -e \"$data_dir\" ] && [ -n \"$(ls -A -- \"$data_dir\" | grep -v -x -F -e {RESTORE_STAGING} -e {RESTORE_MARK})\" ]; then echo \"refusing to restore into $data_dir: it is not empty\" >&2; exit 1; fi\n{ROOM_CHECK}\n{preflight}if pgrep -f -- \"$staging\" >/dev/null 2>&1; then echo \"an earlier etcdutl is still restoring into $staging (pid $(pgrep -f -- \"$staging\" | tr '\\n' ' ')): let it end or stop it, then resume\" >&2; exit 1; fi\nrm -rf -- \"$staging\" \"$mark\"\nmkdir -p -m 700 -- \"$data_dir\"\n{restore} --data-dir \"$staging\"\nprintf '%s\\n' \"$want\" >\"$mark\"\nmv -- \"$staging/member\" \"$data_dir/member\"\nrmdir -- \"$staging\"",
        q(&args.data_dir),
        snap = q(&args.snapshot),
        identity = crate::humanize::hex(&sha2::Sha256::digest(format!(
            "{restore} --data-dir {}",
            q(&args.data_dir)
        ))),
    ))
}

/// Where a restore lets etcdutl write, inside its `data_dir`: a restore killed half-way leaves
/// only this, which the next attempt removes, so the step can run again (it is idempotent).
const RESTORE_STAGING: &str = ".etcdrill-partial";
/// Written inside a restore's `data_dir` just before the restored `member/` moves in: which
/// snapshot file and which etcdutl command made it, so a later attempt of the same step knows
/// the restore is done, and any other leftover is refused.
pub(crate) const RESTORE_MARK: &str = ".etcdrill-restored-from";

/// Checks that `value` (the `field` of a data-dir action) is a directory directly inside the
/// member's data dir, other than `member/`: renames between it and `DATA_DIR/member` then stay
/// inside one filesystem, which is what makes them work when the data dir is a mount point.
/// Refuses a restore the filesystem that will hold `$data_dir` has no room for: the database (the
/// snapshot's size) plus the 64 MiB WAL segment etcd preallocates. It looks at the filesystem the
/// restored directory lands on (its nearest existing ancestor), not at the data dir's parent.
const ROOM_CHECK: &str = "probe=$data_dir\nwhile [ ! -e \"$probe\" ]; do probe=$(dirname -- \"$probe\"); done\nneed=$(( $(stat -c %s -- \"$snapshot\") / 1024 + 65536 ))\nfree=$(df -P -k -- \"$probe\" | awk 'NR == 2 {print $4}')\n[ \"$free\" -ge \"$need\" ] || { echo \"not enough room for the restore on the filesystem of $probe: $free KiB free, $need KiB needed (the database and one WAL segment)\" >&2; exit 1; }";

fn check_inside_data_dir(node: &Node, field: &'static str, value: &str) -> Result<(), ScriptError> {
    let live = Path::new(&node.etcd.data_dir);
    let path = Path::new(value);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    if path.parent() != Some(live) || name.is_none() || name.as_deref() == Some("member") {
        return Err(runbook_error(
            field,
            format!(
                "`{field}` is `{value}`, not a directory directly inside the data dir `{}` (other than `member`)",
                node.etcd.data_dir
            ),
            "keep data dirs on the data dir's own filesystem, e.g. `{{node.data_dir}}/.etcdrill-restore-{{run.id}}`: a rename from outside fails when the data dir is a mount point",
        ));
    }
    Ok(())
}

fn check_data_dir_args(node: &Node, args: &DataDirReplaceArgs) -> Result<(), ScriptError> {
    check_inside_data_dir(node, "with", &args.with)?;
    check_inside_data_dir(node, "keep_old_at", &args.keep_old_at)?;
    if args.with == args.keep_old_at {
        return Err(runbook_error(
            "keep_old_at",
            "`with` and `keep_old_at` are the same directory",
            "give them different paths",
        ));
    }
    Ok(())
}

/// Fails unless `$1` and the data dir are on one filesystem (a rename between them then works).
const SAME_FILESYSTEM: &str = "same_fs() { [ \"$(stat -c %d -- \"$1\")\" = \"$(stat -c %d -- \"$live\")\" ] || { echo \"$1 is not on the filesystem of $live: member data must stay on one filesystem\" >&2; exit 1; }; }";

/// Swaps `member/`: the live one goes to `keep_old_at/member`, the prepared `with/member` takes
/// its place, owned like the data dir. Renames inside the data dir's filesystem only, so it works
/// when the data dir is a mount point and is instant whatever the size.
fn data_dir_replace(node: &Node, args: &DataDirReplaceArgs) -> Result<String, ScriptError> {
    check_data_dir_args(node, args)?;
    Ok(format!(
        "set -eu\nlive={}\nnew={}\nold={}\n{SAME_FILESYSTEM}\nif [ ! -d \"$new/member\" ] && [ -d \"$old/member\" ] && [ -d \"$live/member\" ]; then\n  # An earlier attempt swapped already (the controller stopped before it recorded the end).\n  echo \"$live/member is already the one from $new\"\n  echo \"etcdrill-output swapped_at=$(stat -c %Z -- \"$live/member\")\"\n  exit 0\nfi\n[ -d \"$new/member\" ] || {{ echo \"$new/member does not exist: nothing to put in place\" >&2; exit 1; }}\nsame_fs \"$new\"\n# etcdutl ran as root; an etcd running as its own user must be able to open the data.\nchown -R \"$(stat -c %u:%g -- \"$live\")\" -- \"$new/member\"\nif [ -e \"$live/member\" ]; then\n  [ ! -e \"$old/member\" ] || {{ echo \"$old/member already exists; refusing to overwrite it\" >&2; exit 1; }}\n  mkdir -p -m 700 -- \"$old\"\n  same_fs \"$old\"\n  mv -- \"$live/member\" \"$old/member\"\nfi\nmv -- \"$new/member\" \"$live/member\"\nrm -f -- \"$new/{RESTORE_MARK}\"\nrmdir -- \"$new\" 2>/dev/null || :\nsync -f -- \"$live\" 2>/dev/null || sync\necho \"etcdrill-output swapped_at=$(date +%s)\"",
        q(&node.etcd.data_dir),
        q(&args.with),
        q(&args.keep_old_at)
    ))
}

fn data_dir_replace_back(node: &Node, args: &DataDirReplaceArgs) -> String {
    format!(
        "set -eu\nlive={}\nnew={}\nold={}\nif [ -e \"$live/member\" ] && [ ! -e \"$new/member\" ]; then mkdir -p -m 700 -- \"$new\"; mv -- \"$live/member\" \"$new/member\"; fi\nif [ -e \"$old/member\" ] && [ ! -e \"$live/member\" ]; then mv -- \"$old/member\" \"$live/member\"; fi\nrmdir -- \"$old\" 2>/dev/null || :",
        q(&node.etcd.data_dir),
        q(&args.with),
        q(&args.keep_old_at)
    )
}

/// Moves `member/` out of the data dir into `at/member`, on the same filesystem, leaving the data
/// dir (which may be a mount point) in place and without member data. Idempotent: a data dir
/// without `member/` has nothing to set aside.
fn data_dir_set_aside(node: &Node, args: &DataDirSetAsideArgs) -> Result<String, ScriptError> {
    check_inside_data_dir(node, "at", &args.at)?;
    Ok(format!(
        "set -eu\nlive={}\naside={}\n{SAME_FILESYSTEM}\nif [ -e \"$live/member\" ]; then\n  [ ! -e \"$aside/member\" ] || {{ echo \"$aside/member already exists; refusing to overwrite it\" >&2; exit 1; }}\n  mkdir -p -m 700 -- \"$aside\"\n  same_fs \"$aside\"\n  mv -- \"$live/member\" \"$aside/member\"\n  sync -f -- \"$live\" 2>/dev/null || sync\n  echo \"$live/member set aside as $aside/member\"\nelse\n  echo \"$live holds no member data: nothing to set aside\"\nfi",
        q(&node.etcd.data_dir),
        q(&args.at),
    ))
}

fn data_dir_set_aside_back(node: &Node, args: &DataDirSetAsideArgs) -> String {
    format!(
        "set -eu\nlive={}\naside={}\nif [ -e \"$aside/member\" ] && [ ! -e \"$live/member\" ]; then mv -- \"$aside/member\" \"$live/member\"; fi\nrmdir -- \"$aside\" 2>/dev/null || :",
        q(&node.etcd.data_dir),
        q(&args.at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> (bool, String, String) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    - --initial-cluster-state=new\n    - --force-new-cluster\n    image: etcd\n";

    #[test]
    fn manifest_flags_are_set_added_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("etcd.yaml");
        std::fs::write(&manifest, MANIFEST).unwrap();
        let script = format!(
            "ETCDRILL_SET={} ETCDRILL_REMOVE={} awk {} {}",
            q(
                "initial-cluster-state=existing\ninitial-cluster=a=https://x:2380,b=https://y:2380\n"
            ),
            q("force-new-cluster\n"),
            q(MANIFEST_FLAGS_AWK),
            q(manifest.to_str().unwrap())
        );
        let (ok, stdout, stderr) = sh(&script);
        assert!(ok, "{stderr}");
        assert_eq!(
            stdout,
            "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - etcd\n    - --initial-cluster=a=https://x:2380,b=https://y:2380\n    - --data-dir=/var/lib/etcd\n    - --initial-cluster-state=existing\n    image: etcd\n"
        );
    }

    #[test]
    fn env_file_edits_replace_and_quote() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("etcd.env");
        std::fs::write(
            &env,
            "ETCD_NAME=a\nETCD_INITIAL_CLUSTER_STATE=new\nETCD_FORCE_NEW_CLUSTER=true\n",
        )
        .unwrap();
        let script = edit_env_file(
            env.to_str().unwrap(),
            &[("initial-cluster-state", "existing")],
            &["force-new-cluster"],
        );
        let (ok, _, stderr) = sh(&script);
        assert!(ok, "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&env).unwrap(),
            "ETCD_NAME=a\nETCD_INITIAL_CLUSTER_STATE=existing\n"
        );
    }

    fn node(data_dir: &str) -> Node {
        let inventory = format!(
            "name: t\ndefaults: {{etcd: {{management: {{static_pod: {{}}}}, data_dir: '{data_dir}'}}}}\nnodes:\n  - {{name: a, address: 10.0.0.1}}\n"
        );
        crate::inventory::Cluster::load(crate::source::SourceFile::new("inv.yaml", inventory))
            .unwrap()
            .nodes[0]
            .clone()
    }

    #[test]
    fn member_data_moves_only_inside_the_data_dir() {
        let node = node("/var/lib/etcd");
        let replace = |with: &str, keep: &str| {
            data_dir_replace(
                &node,
                &DataDirReplaceArgs {
                    with: with.into(),
                    keep_old_at: keep.into(),
                },
            )
        };
        assert!(replace("/var/lib/etcd/.new", "/var/lib/etcd/.old").is_ok());
        for (with, keep, field) in [
            // Beside the data dir: another filesystem when the data dir is a mount point.
            ("/var/lib/etcd.restored", "/var/lib/etcd/.old", "with"),
            ("/var/lib/etcd/.new", "/var/lib/etcd.before", "keep_old_at"),
            ("/var/lib/etcd", "/var/lib/etcd/.old", "with"),
            ("/var/lib/etcd/member", "/var/lib/etcd/.old", "with"),
            ("/var/lib/etcd/.new/deeper", "/var/lib/etcd/.old", "with"),
            ("/var/lib/etcd/.same", "/var/lib/etcd/.same", "keep_old_at"),
        ] {
            let error = replace(with, keep).unwrap_err();
            assert_eq!(error.field, field, "{with} {keep}: {error:?}");
        }
        let aside = |at: &str| data_dir_set_aside(&node, &DataDirSetAsideArgs { at: at.into() });
        assert!(aside("/var/lib/etcd/.etcdrill-failed-r1").is_ok());
        assert_eq!(aside("/var/lib/etcd.failed").unwrap_err().field, "at");
    }

    #[test]
    fn a_restore_without_room_on_the_data_dir_filesystem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("snap.db");
        std::fs::write(&snapshot, b"x").unwrap();
        // A sparse snapshot far larger than any free space: the check reads its size only.
        std::fs::File::options()
            .write(true)
            .open(&snapshot)
            .unwrap()
            .set_len(1 << 42)
            .unwrap();
        let script = format!(
            "set -eu\ndata_dir={}\nsnapshot={}\n{ROOM_CHECK}",
            q(dir
                .path()
                .join("data/.etcdrill-restore-r1")
                .to_str()
                .unwrap()),
            q(snapshot.to_str().unwrap()),
        );
        let (ok, _, stderr) = sh(&script);
        assert!(!ok);
        assert!(
            stderr.contains("not enough room for the restore"),
            "{stderr}"
        );
        std::fs::File::options()
            .write(true)
            .open(&snapshot)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let (ok, _, stderr) = sh(&script);
        assert!(ok, "{stderr}");
    }

    #[test]
    fn the_restore_preflight_finds_a_missing_etcdutl_a_leftover_and_no_room() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap();
        let etcdutl = format!("{base}/bin/etcdutl");
        let cluster = crate::inventory::Cluster::load(crate::source::SourceFile::new(
            "inv.yaml",
            format!(
                "name: c\ndefaults: {{etcd: {{management: {{static_pod: {{}}}}, data_dir: '{base}/data', etcdutl: ['{etcdutl}']}}}}\nnodes: [{{name: n, address: 10.0.0.1}}]\n"
            ),
        ))
        .unwrap();
        let node = &cluster.nodes[0];
        let restore = |bump: Option<u64>| {
            Action::EtcdSnapshotRestore(SnapshotRestoreArgs {
                snapshot: format!("{base}/snap.db"),
                data_dir: format!("{base}/data.restored"),
                cluster_token: "t".into(),
                bump_revision: bump,
                mark_compacted: bump.is_some(),
                skip_hash_check: false,
            })
        };
        let script = preflight(&restore(None), node).unwrap();

        let (ok, _, stderr) = sh(&script);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("etcdutl is missing on this node: no {etcdutl}")),
            "{stderr}"
        );

        std::fs::create_dir_all(format!("{base}/bin")).unwrap();
        std::fs::create_dir_all(format!("{base}/data/member/snap")).unwrap();
        std::fs::write(format!("{base}/data/member/snap/db"), vec![0u8; 4096]).unwrap();
        std::fs::write(
            &etcdutl,
            "#!/bin/sh\ncase \"$*\" in version) echo 'etcdutl version: 3.5.1';; *) echo usage;; esac\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &etcdutl,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let (ok, stdout, stderr) = sh(&script);
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains("4096 needed")
                && stdout.contains("etcdutl version: 3.5.1; restores into"),
            "{stdout}"
        );
        // This etcdutl has no --bump-revision.
        let (ok, _, stderr) = sh(&preflight(&restore(Some(1_000_000_000)), node).unwrap());
        assert!(!ok);
        assert!(stderr.contains("has no --bump-revision"), "{stderr}");

        std::fs::create_dir_all(format!("{base}/data.restored/member")).unwrap();
        let (ok, _, stderr) = sh(&script);
        assert!(!ok);
        assert!(
            stderr.contains("already exists and is not empty"),
            "{stderr}"
        );

        // More than the file system holds.
        let room = format!(
            "set -eu\n{}",
            room_check(&format!("{base}/new/x.db"), "999999999999999999")
        );
        let (ok, _, stderr) = sh(&room);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("no room: {base} has ")),
            "{stderr}"
        );
    }

    #[test]
    fn a_restore_runs_again_after_a_half_done_attempt_and_not_after_a_finished_one() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap();
        // Stands in for etcdutl: counts its runs and writes member/ into --data-dir.
        let etcdutl = format!("{base}/etcdutl");
        std::fs::write(
            &etcdutl,
            format!(
                "#!/bin/sh\necho run >>{}\nwhile [ $# -gt 1 ] && [ \"$1\" != --data-dir ]; do shift; done\nmkdir -p \"$2/member/snap\"\n",
                q(&format!("{base}/runs"))
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &etcdutl,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir_all(format!("{base}/data/member")).unwrap();
        std::fs::write(format!("{base}/snap.db"), vec![1u8; 4096]).unwrap();
        let cluster = crate::inventory::Cluster::load(crate::source::SourceFile::new(
            "inv.yaml",
            format!(
                "name: c\ndefaults: {{etcd: {{management: {{static_pod: {{}}}}, data_dir: '{base}/data', etcdutl: ['{etcdutl}']}}}}\nnodes: [{{name: n, address: 10.0.0.1}}]\n"
            ),
        ))
        .unwrap();
        let target = format!("{base}/data/.etcdrill-restore-r1");
        let script = snapshot_restore(
            &cluster.nodes[0],
            &cluster,
            &SnapshotRestoreArgs {
                snapshot: format!("{base}/snap.db"),
                data_dir: target.clone(),
                cluster_token: "t".into(),
                bump_revision: None,
                mark_compacted: false,
                skip_hash_check: false,
            },
        )
        .unwrap();
        let runs = || {
            std::fs::read_to_string(format!("{base}/runs"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        let staging = format!("{target}/{RESTORE_STAGING}");

        // Killed half-way: etcdutl's partial output is all there is.
        std::fs::create_dir_all(format!("{staging}/member/wal")).unwrap();
        let (ok, _, stderr) = sh(&script);
        assert!(ok, "{stderr}");
        assert_eq!(runs(), 1);
        assert!(Path::new(&format!("{target}/member/snap")).is_dir());
        assert!(!Path::new(&staging).exists());

        // Finished, but its end was not recorded: the same restore is not done again.
        let (ok, stdout, stderr) = sh(&script);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("already holds this restore"), "{stdout}");
        assert_eq!(runs(), 1);

        // Another snapshot file (or another command) is not this restore: refused, untouched.
        std::fs::write(format!("{base}/snap.db"), vec![2u8; 8192]).unwrap();
        let (ok, _, stderr) = sh(&script);
        assert!(!ok);
        assert!(stderr.contains("it is not empty"), "{stderr}");
        assert_eq!(runs(), 1);
        assert!(Path::new(&format!("{target}/member/snap")).is_dir());

        // An earlier etcdutl still writing into the staging dir (a dropped connection): refused.
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::create_dir_all(&staging).unwrap();
        let mut writer = std::process::Command::new("sh")
            .args(["-c", "sleep 30", &staging])
            .spawn()
            .unwrap();
        let (ok, _, stderr) = sh(&script);
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert!(!ok);
        assert!(stderr.contains("still restoring into"), "{stderr}");
        assert_eq!(runs(), 1);

        // The swap that follows leaves nothing of the restore behind.
        let (ok, _, stderr) = sh(&script);
        assert!(ok, "{stderr}");
        std::fs::remove_dir_all(format!("{base}/data/member")).unwrap();
        let swap = data_dir_replace(
            &cluster.nodes[0],
            &DataDirReplaceArgs {
                with: target.clone(),
                keep_old_at: format!("{base}/data/.etcdrill-before-restore-r1"),
            },
        )
        .unwrap();
        let (ok, _, stderr) = sh(&swap);
        assert!(ok, "{stderr}");
        assert!(Path::new(&format!("{base}/data/member/snap")).is_dir());
        assert!(!Path::new(&target).exists(), "the restore dir is left");
    }

    #[test]
    fn unusual_flag_values_are_refused() {
        let args = ConfigureMemberArgs {
            set: [("name".to_string(), "a: b #c".to_string())]
                .into_iter()
                .collect(),
            remove: vec![],
        };
        assert!(
            check_flags(&args)
                .unwrap_err()
                .message
                .contains("cannot go into a manifest")
        );
    }
}
