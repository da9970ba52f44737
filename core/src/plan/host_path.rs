//! The script behind `etcd.data_dir.repoint`: the Kubernetes documentation's restore, which
//! leaves `--data-dir` as it is and points the static pod's data volume (the `hostPath` of the
//! volume mounted at `--data-dir`) at a new host directory; and its natural rollback, which puts
//! the kept manifest back.
//!
//! The edit runs on the node, where no YAML parser can be assumed, so it is a one-line edit that
//! proves itself: the one `path:` of a `hostPath` whose value is the member's host data dir (the
//! facts found that directory by the mount, parsing the manifest as a Pod) takes the new
//! directory; any other count refuses; the edited file must have the same lines but that one,
//! and that line must differ only in the value. The unit tests parse the results as Pods.

use crate::inventory::{Management, Node, StaticPod};
use crate::render::shell_quote as q;
use crate::runbook::action::DataDirRepointArgs;

use super::node_script::{ScriptError, parked_manifest};

/// awk functions that find the `path:` value of a `hostPath` equal to a directory, in block
/// (`hostPath:` then `path: DIR` below it) and flow (`hostPath: {path: DIR, ...}`) style, quoted
/// or not; trailing slashes do not count. Lines are in the array `a`.
const FIND_AWK: &str = r#"function trim_slash(p) { while (length(p) > 1 && substr(p, length(p)) == "/") p = substr(p, 1, length(p) - 1); return p }
function indent(s) { match(s, /^[ ]*/); return RLENGTH }
# Whether the `path:` key at column `at` of line i belongs to a hostPath.
function under_host_path(a, i, at,    j, before) {
  before = substr(a[i], 1, at - 1)
  if (index(before, "hostPath:") > 0) return 1
  if (before !~ /^[ ]*$/) return 0
  for (j = i - 1; j >= 1; j--) {
    if (a[j] ~ /^[ ]*(#.*)?$/ || indent(a[j]) >= at - 1) continue
    return a[j] ~ /^[ ]*(- )?hostPath:[ ]*(#.*)?$/
  }
  return 0
}
# Whether line i has a hostPath `path:` equal to `want`; sets vs (the value's first column,
# quote included), vl (its length) and vq (its quote, or "").
function find(a, i, want,    s, off, p, at, c, k, e, rest, v) {
  s = a[i]; off = 0
  while ((p = index(s, "path:")) > 0) {
    at = off + p
    c = at == 1 ? " " : substr(a[i], at - 1, 1)
    if ((c == " " || c == "{" || c == ",") && under_host_path(a, i, at)) {
      k = at + 5
      while (substr(a[i], k, 1) == " ") k++
      c = substr(a[i], k, 1)
      v = ""
      if (c == "\"" || c == "'") {
        e = index(substr(a[i], k + 1), c)
        if (e > 0) { v = substr(a[i], k + 1, e - 1); vl = e + 1; vq = c }
      } else {
        rest = substr(a[i], k); e = length(rest) + 1
        if (index(rest, ",") > 0 && index(rest, ",") < e) e = index(rest, ",")
        if (index(rest, "}") > 0 && index(rest, "}") < e) e = index(rest, "}")
        if (index(rest, " #") > 0 && index(rest, " #") < e) e = index(rest, " #")
        v = substr(rest, 1, e - 1); sub(/[ ]+$/, "", v); vl = length(v); vq = ""
      }
      if (v != "" && trim_slash(v) == trim_slash(want)) { vs = k; return 1 }
    }
    s = substr(s, p + 5); off = at + 4
  }
  return 0
}
"#;

/// Prints how many hostPath volumes name `ETCDRILL_PATH`.
const COUNT_AWK: &str = r#"{ a[NR] = $0 }
END { n = 0; for (i = 1; i <= NR; i++) n += find(a, i, ENVIRON["ETCDRILL_PATH"]); print n }"#;

/// Prints the manifest with the one hostPath naming `ETCDRILL_FROM` changed to `ETCDRILL_TO`
/// (quoted as it was, or in double quotes when it holds more than letters, digits and
/// `. _ / + @ -`); refuses (exit 3) unless exactly one names it.
const EDIT_AWK: &str = r#"{ a[NR] = $0 }
END {
  from = ENVIRON["ETCDRILL_FROM"]; to = ENVIRON["ETCDRILL_TO"]; n = 0
  for (i = 1; i <= NR; i++) if (find(a, i, from)) { n++; at = i; s = vs; l = vl; quote = vq }
  if (n == 0) { print "no hostPath volume of the manifest is " from ": the volume mounted at --data-dir is not the data dir (is it mounted above --data-dir?); repoint it by hand" > "/dev/stderr"; exit 3 }
  if (n > 1) { print n " hostPath volumes of the manifest are " from ": which one holds etcd's data is not clear; repoint it by hand" > "/dev/stderr"; exit 3 }
  if (quote == "" && to !~ /^[A-Za-z0-9._\/+@-]+$/) quote = "\""
  for (i = 1; i <= NR; i++) if (i == at) print substr(a[i], 1, s - 1) quote to quote substr(a[i], s + l); else print a[i]
}"#;

/// Given the manifest before and after, fails (exit 3) unless they have the same lines but one,
/// and that one differs only in a hostPath value, `ETCDRILL_FROM` before and `ETCDRILL_TO` after.
const PROOF_AWK: &str = r#"NR == FNR { old[FNR] = $0; n = FNR; next }
{ new[FNR] = $0; m = FNR }
END {
  d = 0
  for (i = 1; i <= n || i <= m; i++) if (old[i] != new[i]) { d++; at = i }
  if (n != m || d != 1) { print "the edited manifest differs in " d " lines (" n " before, " m " after), not in exactly one: left unchanged" > "/dev/stderr"; exit 3 }
  if (!find(old, at, ENVIRON["ETCDRILL_FROM"])) { print "line " at " did not hold the data dir's hostPath: left unchanged" > "/dev/stderr"; exit 3 }
  s = vs; l = vl
  if (!find(new, at, ENVIRON["ETCDRILL_TO"]) || substr(old[at], 1, s - 1) != substr(new[at], 1, vs - 1) || substr(old[at], s + l) != substr(new[at], vs + vl)) { print "line " at " changed more than the hostPath: left unchanged" > "/dev/stderr"; exit 3 }
}"#;

/// Whether the new host directory can go into the manifest as it is, in its value's quotes (a
/// plain value that needs them gets double quotes).
fn quotable_path(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() || "\"'\\".contains(c))
}

fn refuse(message: String, hint: &str) -> ScriptError {
    ScriptError {
        field: "to",
        message,
        hint: hint.into(),
        inventory: false,
    }
}

/// Checks `to` for `node`: a static pod, an absolute plain path apart from the data dir (a
/// value known only at run time is checked again when the step is rendered to run).
fn check<'n>(
    node: &'n Node,
    args: &DataDirRepointArgs,
) -> Result<Option<&'n StaticPod>, ScriptError> {
    if args.to.is_empty() {
        return Ok(None);
    }
    let pod = match &node.etcd.management {
        Management::StaticPod(pod) => pod,
        Management::External(_) => {
            return Err(refuse(
                format!(
                    "node `{}` runs etcd as an external service: it has no static pod manifest whose `etcd-data` hostPath could be repointed",
                    node.name
                ),
                "swap the restored data in place with `etcd.data_dir.replace` (restore-3-node: `-p method=swap` or `auto`)",
            ));
        }
    };
    let to = args.to.trim_end_matches('/');
    let live = node.etcd.data_dir.trim_end_matches('/');
    if !to.starts_with('/') {
        return Err(refuse(
            format!("`to` is `{}`, not an absolute path", args.to),
            "give the new host directory as an absolute path, e.g. `{{node.data_dir}}-restored-{{run.id}}`",
        ));
    }
    if !quotable_path(to) {
        return Err(refuse(
            format!(
                "`to` is `{}`, which holds quotes, backslashes or control characters that cannot go into a manifest as they are",
                args.to
            ),
            "choose a new host directory without them",
        ));
    }
    let inside = |dir: &str, of: &str| dir == of || dir.starts_with(&format!("{of}/"));
    if inside(to, live) || inside(live, to) {
        return Err(refuse(
            format!(
                "`to` is `{}`: the new host directory must be apart from the data dir `{}`, neither inside it nor holding it",
                args.to, node.etcd.data_dir
            ),
            "restore beside the data dir, e.g. `{{node.data_dir}}-restored-{{run.id}}`",
        ));
    }
    Ok(Some(pod))
}

/// The shell lines that set the variables every script here uses, and with `find` the awk
/// functions and `count DIR FILE` (how many hostPath volumes of FILE are DIR).
fn prologue(node: &Node, pod: &StaticPod, to: &str, find: bool) -> String {
    let parked = parked_manifest(pod);
    let mut text = format!(
        "set -eu\nmanifest={}\nparked={}\nfrom={}\nto={}\nkeep={}",
        q(&pod.manifest),
        q(&parked),
        q(node.etcd.data_dir.trim_end_matches('/')),
        q(to.trim_end_matches('/')),
        q(&format!("{parked}.before-repoint")),
    );
    if find {
        text.push_str(&format!(
            "\nfind={}\ncount() {{ ETCDRILL_PATH=\"$1\" awk \"$find\"{} \"$2\"; }}",
            q(FIND_AWK),
            q(&format!("\n{COUNT_AWK}")),
        ));
    }
    text
}

/// The repoint: with the member stopped (its manifest parked), the parked manifest's data volume
/// is pointed at `to`, through a file beside it, proven, and renamed into place; the manifest as
/// it was is kept as `PARKED.before-repoint`. An earlier attempt that finished is recognised.
pub(crate) fn repoint(node: &Node, args: &DataDirRepointArgs) -> Result<String, ScriptError> {
    let Some(pod) = check(node, args)? else {
        return Ok("echo 'nothing to repoint on this node'".into());
    };
    Ok(format!(
        "{prologue}\nedited=\"$(dirname -- \"$parked\")/.$(basename -- \"$parked\").etcdrill-repoint\"\nif [ -f \"$manifest\" ]; then echo \"the member runs: $manifest is in place; stop it first (a changed live manifest would restart etcd on $to at once)\" >&2; exit 1; fi\n[ -f \"$parked\" ] || {{ echo \"no parked manifest at $parked: stop the member first\" >&2; exit 1; }}\nif [ -f \"$keep\" ] && [ \"$(count \"$to\" \"$parked\")\" = 1 ] && [ \"$(count \"$from\" \"$parked\")\" = 0 ]; then\n  # An earlier attempt repointed already (the controller stopped before it recorded the end).\n  echo \"$parked already points the data volume at $to\"\n  echo \"etcdrill-output repointed_at=$(stat -c %Y -- \"$parked\")\"\n  exit 0\nfi\n[ -d \"$to/member\" ] || {{ echo \"$to/member does not exist: nothing to point the data volume at\" >&2; exit 1; }}\n# etcdutl ran as root; an etcd running as its own user must be able to open the data.\nif [ -d \"$from\" ]; then chown -R \"$(stat -c %u:%g -- \"$from\")\" -- \"$to\"; fi\nchmod 700 -- \"$to\"\ncp -p -- \"$parked\" \"$edited\"\nETCDRILL_FROM=\"$from\" ETCDRILL_TO=\"$to\" awk \"$find\"{edit} \"$parked\" >\"$edited\" || {{ rm -f -- \"$edited\"; exit 1; }}\nETCDRILL_FROM=\"$from\" ETCDRILL_TO=\"$to\" awk \"$find\"{proof} \"$parked\" \"$edited\" || {{ rm -f -- \"$edited\"; exit 1; }}\ncp -p -- \"$parked\" \"$keep\"\nmv -f -- \"$edited\" \"$parked\"\nrm -f -- \"$to/{mark}\"\nsync\necho \"the data volume of $parked now is hostPath $to (was $from; --data-dir inside the pod is unchanged; the manifest as it was is kept as $keep)\"\necho \"warning: kubeadm upgrade writes the etcd-data hostPath from ClusterConfiguration's etcd.local.dataDir again: set it to $to (kubectl -n kube-system edit configmap kubeadm-config) before the next upgrade, or that upgrade starts etcd on $from\"\necho \"etcdrill-output repointed_at=$(date +%s)\"",
        prologue = prologue(node, pod, &args.to, true),
        mark = super::node_script::RESTORE_MARK,
        edit = q(&format!("\n{EDIT_AWK}")),
        proof = q(&format!("\n{PROOF_AWK}")),
    ))
}

/// The undo: the kept manifest goes back where the manifest is (parked, in a restore's rollback
/// order). A manifest that is already the kept one has nothing to undo; one that no longer names
/// `to` changed since and is left for a person.
pub(crate) fn repoint_back(node: &Node, args: &DataDirRepointArgs) -> Option<String> {
    let pod = check(node, args).ok().flatten()?;
    Some(format!(
        "{}\nif [ -f \"$manifest\" ]; then target=$manifest; elif [ -f \"$parked\" ]; then target=$parked; else echo \"no etcd manifest at $manifest or $parked\" >&2; exit 1; fi\nif [ ! -f \"$keep\" ] || cmp -s -- \"$keep\" \"$target\"; then echo \"$target is as it was before the repoint: nothing to undo\"; exit 0; fi\ngrep -q -F -- \"$to\" \"$target\" || {{ echo \"$target no longer names $to: it changed after the repoint, so it is left as it is; $keep is the manifest from before\" >&2; exit 1; }}\n# Hidden: the kubelet takes every other file of the manifests dir for a pod.\nback=\"$(dirname -- \"$target\")/.$(basename -- \"$target\").etcdrill-repoint-back\"\ncp -p -- \"$keep\" \"$back\"\nmv -f -- \"$back\" \"$target\"\nsync\necho \"the data volume of $target is hostPath $from again\"",
        prologue(node, pod, &args.to, false)
    ))
}

/// What check mode runs instead: the manifest is there and exactly one hostPath volume is the
/// data dir (or, after an earlier attempt, `to`).
pub(crate) fn preflight(node: &Node, args: &DataDirRepointArgs) -> Option<String> {
    let pod = check(node, args).ok().flatten()?;
    Some(format!(
        "{}\nif [ -f \"$manifest\" ]; then m=$manifest; elif [ -f \"$parked\" ]; then m=$parked; else echo \"no etcd manifest at $manifest or $parked\" >&2; exit 1; fi\nif [ \"$(count \"$to\" \"$m\")\" = 1 ]; then echo \"$m already points the data volume at $to\"; exit 0; fi\nn=$(count \"$from\" \"$m\")\n[ \"$n\" = 1 ] || {{ echo \"$n hostPath volumes of $m are $from, not exactly one: the repoint would refuse\" >&2; exit 1; }}\necho \"would point the data volume of $m (hostPath $from) at $to once the member is stopped\"",
        prologue(node, pod, &args.to, true)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn sh(script: &str) -> (bool, String, String) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// kubeadm's layout (block style), with an HTTP probe whose `path:` is not a hostPath.
    const KUBEADM: &str = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    - --name=cp1\n    livenessProbe:\n      httpGet:\n        path: /health?exclude=NOSPACE&serializable=true\n        port: 2381\n    volumeMounts:\n    - mountPath: /var/lib/etcd\n      name: etcd-data\n    - mountPath: /etc/kubernetes/pki/etcd\n      name: etcd-certs\n  volumes:\n  - hostPath:\n      path: /etc/kubernetes/pki/etcd\n      type: DirectoryOrCreate\n    name: etcd-certs\n  - hostPath:\n      path: HOST\n      type: DirectoryOrCreate\n    name: etcd-data\nstatus: {}\n";

    /// Flow style, quoted, the volume named otherwise and the type before the path.
    const FLOW: &str = "spec:\n  containers:\n  - command: [etcd, --data-dir=/var/lib/etcd]\n    volumeMounts:\n    - {name: data, mountPath: /var/lib/etcd}\n  volumes:\n  - {name: certs, hostPath: {path: /etc/kubernetes/pki/etcd}}\n  - {name: data, hostPath: {type: DirectoryOrCreate, path: \"HOST\"}} # the disk\n";

    /// A mapping under `hostPath:` with the path after another key.
    const NESTED: &str = "spec:\n  containers:\n  - command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    volumeMounts:\n    - name: etcd-data\n      mountPath: /var/lib/etcd\n  volumes:\n  - name: etcd-data\n    hostPath:\n      type: DirectoryOrCreate\n      path: 'HOST'\n";

    struct Layout {
        _dir: tempfile::TempDir,
        base: String,
        node: Node,
    }

    impl Layout {
        fn new(manifest: &str, host: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path().to_str().unwrap().to_owned();
            let data_dir = format!("{base}/var/lib/etcd");
            let inventory = format!(
                "name: t\ndefaults: {{etcd: {{management: {{static_pod: {{manifest: '{base}/manifests/etcd.yaml', parked_dir: '{base}/parked'}}}}, data_dir: '{data_dir}'}}}}\nnodes:\n  - {{name: a, address: 10.0.0.1}}\n"
            );
            let node = crate::inventory::Cluster::load(crate::source::SourceFile::new(
                "inv.yaml", inventory,
            ))
            .unwrap()
            .nodes[0]
                .clone();
            std::fs::create_dir_all(format!("{data_dir}/member")).unwrap();
            std::fs::create_dir_all(format!("{base}/var/lib/etcd-new/member/snap")).unwrap();
            std::fs::create_dir_all(format!("{base}/parked")).unwrap();
            std::fs::create_dir_all(format!("{base}/manifests")).unwrap();
            std::fs::write(
                format!("{base}/parked/etcd.yaml"),
                manifest.replace("HOST", &host.replace("BASE", &base)),
            )
            .unwrap();
            Layout {
                _dir: dir,
                base,
                node,
            }
        }

        fn args(&self) -> DataDirRepointArgs {
            DataDirRepointArgs {
                to: format!("{}/var/lib/etcd-new", self.base),
            }
        }

        fn parked(&self) -> String {
            std::fs::read_to_string(format!("{}/parked/etcd.yaml", self.base)).unwrap()
        }
    }

    /// The manifest parsed as a Pod, with the host data dir's value replaced by `to`: equal to
    /// the edited manifest parsed, so only that path changed.
    fn expected(before: &str, from: &str, to: &str) -> serde_yaml::Value {
        fn replace(value: &mut serde_yaml::Value, from: &str, to: &str, hits: &mut usize) {
            match value {
                serde_yaml::Value::Mapping(map) => {
                    if let Some(host) = map.get_mut("hostPath") {
                        if let Some(path) = host.get_mut("path") {
                            if path.as_str() == Some(from) {
                                *path = to.into();
                                *hits += 1;
                            }
                        }
                    }
                    for (_, v) in map.iter_mut() {
                        replace(v, from, to, hits);
                    }
                }
                serde_yaml::Value::Sequence(items) => {
                    for v in items {
                        replace(v, from, to, hits);
                    }
                }
                _ => {}
            }
        }
        let mut value: serde_yaml::Value = serde_yaml::from_str(before).unwrap();
        let mut hits = 0;
        replace(&mut value, from, to, &mut hits);
        assert_eq!(hits, 1);
        value
    }

    #[test]
    fn the_data_volume_alone_is_repointed_and_put_back() {
        for manifest in [KUBEADM, FLOW, NESTED] {
            for host in ["BASE/var/lib/etcd", "BASE/var/lib/etcd/"] {
                let layout = Layout::new(manifest, host);
                let before = layout.parked();
                let from = format!("{}/var/lib/etcd", layout.base);
                let to = layout.args().to;
                let script = repoint(&layout.node, &layout.args()).unwrap();
                let (ok, stdout, stderr) = sh(&script);
                assert!(ok, "{manifest}: {stderr}");
                assert!(stdout.contains("etcdrill-output repointed_at="), "{stdout}");
                assert!(stdout.contains("kubeadm upgrade"), "{stdout}");
                let after = layout.parked();
                let parsed: serde_yaml::Value = serde_yaml::from_str(&after).unwrap();
                let from_shown = host.replace("BASE", &layout.base);
                assert_eq!(parsed, expected(&before, &from_shown, &to), "{after}");
                let config = crate::facts::config::from_manifest(&after).unwrap();
                assert_eq!(config.host_data_dir.as_deref(), Some(to.as_str()));
                assert_eq!(config.data_dir.as_deref(), Some("/var/lib/etcd"));
                assert_eq!(
                    std::fs::read_to_string(format!(
                        "{}/parked/etcd.yaml.before-repoint",
                        layout.base
                    ))
                    .unwrap(),
                    before
                );
                assert!(
                    !Path::new(&format!(
                        "{}/parked/.etcd.yaml.etcdrill-repoint",
                        layout.base
                    ))
                    .exists()
                );
                assert!(
                    Path::new(&format!("{from}/member")).is_dir(),
                    "old data untouched"
                );

                // Again (an attempt whose end was not recorded): recognised, nothing changes.
                let (ok, stdout, stderr) = sh(&script);
                assert!(ok, "{stderr}");
                assert!(stdout.contains("already points"), "{stdout}");
                assert_eq!(layout.parked(), after);

                // The undo puts the manifest back as it was, once; a second undo changes nothing.
                let back = repoint_back(&layout.node, &layout.args()).unwrap();
                let (ok, _, stderr) = sh(&back);
                assert!(ok, "{stderr}");
                assert_eq!(layout.parked(), before);
                let (ok, stdout, _) = sh(&back);
                assert!(ok && stdout.contains("nothing to undo"), "{stdout}");
                assert_eq!(layout.parked(), before);
            }
        }
    }

    #[test]
    fn a_new_directory_with_a_space_is_written_in_double_quotes() {
        let layout = Layout::new(KUBEADM, "BASE/var/lib/etcd");
        let to = format!("{}/var/lib/etcd new; x", layout.base);
        std::fs::create_dir_all(format!("{to}/member")).unwrap();
        let args = DataDirRepointArgs { to: to.clone() };
        let (ok, _, stderr) = sh(&repoint(&layout.node, &args).unwrap());
        assert!(ok, "{stderr}");
        let after = layout.parked();
        assert!(after.contains(&format!("path: \"{to}\"\n")), "{after}");
        let config = crate::facts::config::from_manifest(&after).unwrap();
        assert_eq!(config.host_data_dir.as_deref(), Some(to.as_str()));
        let (ok, _, stderr) = sh(&repoint_back(&layout.node, &args).unwrap());
        assert!(ok, "{stderr}");
        assert!(!layout.parked().contains(&to));
    }

    #[test]
    fn a_repoint_that_cannot_be_exact_is_refused_and_changes_nothing() {
        // Two volumes on the data dir; none (the mount is above --data-dir).
        let twice = KUBEADM.replace("/etc/kubernetes/pki/etcd\n      type", "HOST\n      type");
        for (manifest, host, told) in [
            (twice.as_str(), "BASE/var/lib/etcd", "2 hostPath volumes"),
            (KUBEADM, "BASE/var/lib", "no hostPath volume"),
        ] {
            let layout = Layout::new(manifest, host);
            let before = layout.parked();
            let (ok, _, stderr) = sh(&repoint(&layout.node, &layout.args()).unwrap());
            assert!(!ok && stderr.contains(told), "{stderr}");
            assert_eq!(layout.parked(), before);
            assert!(
                !Path::new(&format!("{}/parked/etcd.yaml.before-repoint", layout.base)).exists()
            );
            let (ok, _, stderr) = sh(&preflight(&layout.node, &layout.args()).unwrap());
            assert!(!ok && stderr.contains("not exactly one"), "{stderr}");
        }
        // A running member (its manifest in place) is not repointed under it.
        let layout = Layout::new(KUBEADM, "BASE/var/lib/etcd");
        std::fs::rename(
            format!("{}/parked/etcd.yaml", layout.base),
            format!("{}/manifests/etcd.yaml", layout.base),
        )
        .unwrap();
        let (ok, stdout, stderr) = sh(&preflight(&layout.node, &layout.args()).unwrap());
        assert!(
            ok && stdout.contains("would point the data volume"),
            "{stderr}"
        );
        let (ok, _, stderr) = sh(&repoint(&layout.node, &layout.args()).unwrap());
        assert!(!ok && stderr.contains("stop it first"), "{stderr}");
        // Nothing restored there yet.
        std::fs::rename(
            format!("{}/manifests/etcd.yaml", layout.base),
            format!("{}/parked/etcd.yaml", layout.base),
        )
        .unwrap();
        std::fs::remove_dir_all(format!("{}/var/lib/etcd-new", layout.base)).unwrap();
        let (ok, _, stderr) = sh(&repoint(&layout.node, &layout.args()).unwrap());
        assert!(!ok && stderr.contains("member does not exist"), "{stderr}");
    }

    #[test]
    fn the_proof_catches_an_edit_of_more_than_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        let new = dir.path().join("new");
        let before = KUBEADM.replace("HOST", "/var/lib/etcd");
        std::fs::write(&old, &before).unwrap();
        let proof = |after: &str| {
            std::fs::write(&new, after).unwrap();
            sh(&format!(
                "find={}\nETCDRILL_FROM=/var/lib/etcd ETCDRILL_TO=/var/lib/etcd-new awk \"$find\"{} {} {}",
                q(FIND_AWK),
                q(&format!("\n{PROOF_AWK}")),
                q(old.to_str().unwrap()),
                q(new.to_str().unwrap())
            ))
        };
        let good = before.replace("path: /var/lib/etcd\n", "path: /var/lib/etcd-new\n");
        assert!(proof(&good).0);
        for bad in [
            before.replace("path: /var/lib/etcd\n", "path: /var/lib/etcd-new # x\n"),
            good.replace("--name=cp1", "--name=cp2"),
            format!("{good}extra: 1\n"),
            before.clone(),
        ] {
            let (ok, _, stderr) = proof(&bad);
            assert!(!ok && stderr.contains("left unchanged"), "{bad}: {stderr}");
        }
    }

    #[test]
    fn external_etcd_and_odd_targets_are_refused_when_compiled() {
        let layout = Layout::new(KUBEADM, "BASE/var/lib/etcd");
        let data_dir = layout.node.etcd.data_dir.clone();
        for to in [
            "relative/dir".to_string(),
            data_dir.clone(),
            format!("{data_dir}/inside"),
            format!("{}/var", layout.base),
            format!("{data_dir}-\"new\""),
        ] {
            let error = repoint(&layout.node, &DataDirRepointArgs { to: to.clone() }).unwrap_err();
            assert_eq!(error.field, "to", "{to}");
        }
        assert!(
            repoint(
                &layout.node,
                &DataDirRepointArgs {
                    to: format!("{data_dir}-restored-⟨run.id⟩")
                }
            )
            .is_ok()
        );
        let external = crate::inventory::Cluster::load(crate::source::SourceFile::new(
            "inv.yaml",
            "name: t\ndefaults: {etcd: {management: {external: {start: s, stop: t}}}}\nnodes: [{name: e, address: 10.0.0.1}]\n",
        ))
        .unwrap()
        .nodes[0]
            .clone();
        let error = repoint(
            &external,
            &DataDirRepointArgs {
                to: "/var/lib/etcd-new".into(),
            },
        )
        .unwrap_err();
        assert!(
            error.message.contains("runs etcd as an external service") && !error.inventory,
            "{error:?}"
        );
        // Nothing to repoint there: the step does nothing and has nothing to undo.
        let nothing = DataDirRepointArgs { to: String::new() };
        assert!(sh(&repoint(&external, &nothing).unwrap()).0);
        assert!(repoint_back(&external, &nothing).is_none());
    }
}
