//! What runs a sandbox member: its env file of `ETCD_*` variables (etcd reads them itself; the
//! `etcd.configure_member` action edits them) and its `service start|stop|status` script, the
//! inventory's start and stop commands.
//!
//! `start` runs the member's own link to etcd (so the process has the member's own name, which
//! `pgrep -x` in node scripts waits on) in a session of its own, detached from whatever started
//! it, under a small `sh` that reaps it; output to `etcd.log`, pid to `etcd.pid`. `stop` sends SIGTERM, waits for the process to
//! be gone, and sends SIGKILL after [`STOP_GRACE_SECS`].

use super::Member;
use crate::render::shell_quote as q;

/// Seconds `service stop` waits after SIGTERM before SIGKILL.
pub const STOP_GRACE_SECS: u32 = 20;

/// The member's env file: every flag as an `ETCD_*` variable, shell-quoted.
pub(crate) fn env_file(member: &Member, initial_cluster: &str, token: &str) -> String {
    let vars: [(&str, String); 19] = [
        ("ETCD_NAME", member.name.clone()),
        ("ETCD_DATA_DIR", member.data_dir.clone()),
        ("ETCD_LISTEN_CLIENT_URLS", member.client_url.clone()),
        ("ETCD_ADVERTISE_CLIENT_URLS", member.client_url.clone()),
        ("ETCD_LISTEN_PEER_URLS", member.peer_url.clone()),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", member.peer_url.clone()),
        ("ETCD_LISTEN_METRICS_URLS", member.metrics_url.clone()),
        ("ETCD_INITIAL_CLUSTER", initial_cluster.to_string()),
        ("ETCD_INITIAL_CLUSTER_STATE", "new".into()),
        ("ETCD_INITIAL_CLUSTER_TOKEN", token.to_string()),
        ("ETCD_CLIENT_CERT_AUTH", "true".into()),
        ("ETCD_TRUSTED_CA_FILE", member.tls.ca.clone()),
        ("ETCD_CERT_FILE", member.tls.server_cert.clone()),
        ("ETCD_KEY_FILE", member.tls.server_key.clone()),
        ("ETCD_PEER_CLIENT_CERT_AUTH", "true".into()),
        ("ETCD_PEER_TRUSTED_CA_FILE", member.tls.ca.clone()),
        ("ETCD_PEER_CERT_FILE", member.tls.peer_cert.clone()),
        ("ETCD_PEER_KEY_FILE", member.tls.peer_key.clone()),
        ("ETCD_LOGGER", "zap".into()),
    ];
    let mut text = format!(
        "# etcd flags of sandbox member {} as ETCD_* variables; `{} start` reads them.\n",
        member.name, member.service
    );
    for (name, value) in vars {
        text.push_str(&format!("{name}={}\n", q(&value)));
    }
    text
}

/// The member's `service` script.
pub(crate) fn script(member: &Member) -> String {
    format!(
        r#"#!/bin/sh
# etcdrill sandbox member {name}: start | stop | status
set -eu
name={process}
bin={bin}
env_file={env_file}
pid_file={pid_file}
log={log}

# Whether the member runs: its pid file names a live process with the member's own name.
running() {{
  pid=$(cat "$pid_file" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1 || true)
  [ "$state" != Z ] && [ -n "$state" ]
}}

case "${{1:-}}" in
start)
  if running; then echo "$name already runs (pid $pid)"; exit 0; fi
  [ -f "$env_file" ] || {{ echo "no env file $env_file" >&2; exit 1; }}
  # A session of its own: the caller's process group can be killed without taking etcd along.
  # The sh in it stays etcd's parent and reaps it the moment it exits, so no zombie under the
  # member's name outlives a stop (pgrep -x sees zombies; some init processes reap late).
  setsid sh -c 'set -a; . "$2"; set +a; "$3" & echo $! > "$1"; wait' sh "$pid_file" "$env_file" "$bin" </dev/null >>"$log" 2>&1 &
  i=0
  while [ "$i" -lt 100 ]; do
    if running; then echo "started $name (pid $pid)"; exit 0; fi
    sleep 0.05
    i=$((i + 1))
  done
  echo "$name did not start; the end of $log:" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
  ;;
stop)
  if ! running; then rm -f "$pid_file"; echo "$name is not running"; exit 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while running; do
    if [ "$i" -eq {kill_after} ]; then
      echo "$name (pid $pid) still runs {grace} s after SIGTERM: sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    i=$((i + 1))
  done
  rm -f "$pid_file"
  echo "stopped $name (pid $pid)"
  ;;
status)
  if running; then echo "$name runs (pid $pid)"; else echo "$name is stopped"; exit 3; fi
  ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
"#,
        name = member.name,
        process = q(&member.process_name),
        bin = q(&member.bin),
        env_file = q(&member.env_file),
        pid_file = q(&member.pid_file),
        log = q(&member.log),
        kill_after = STOP_GRACE_SECS * 10,
        grace = STOP_GRACE_SECS,
    )
}
