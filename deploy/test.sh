#!/usr/bin/env bash
# The full test suite, against a real PostgreSQL cluster and a real Kafka-protocol broker (tansu).
#
# Installs what is missing (postgresql via apt, tansu via cargo), starts one throwaway Postgres cluster
# and one tansu broker on loopback for the whole run (the test harness gives each test its own database
# and topics), runs formatting and lint checks and every test of the workspace, and stops both services
# when it exits, whatever the outcome.
#
# A persistent build directory outside the clone keeps repeated runs fast:
#   CARGO_TARGET_DIR (default: ~/.cache/webhook-gateway/target)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/webhook-gateway/target}
export PATH="$HOME/.cargo/bin:$PATH"

bash deploy/services.sh install

work=$(mktemp -d /tmp/gateway-testrun.XXXXXX)
chmod 755 "$work"
# The services' watchdogs stop them (and remove their folders) once this script's process is gone.
while IFS='=' read -r k v; do export "$k=$v"; done < <(bash deploy/services.sh postgres "$work/pg" $$)
while IFS='=' read -r k v; do export "$k=$v"; done < <(bash deploy/services.sh tansu "$work/tansu" memory $$)
trap 'rm -rf "$work"' EXIT
echo "postgres: $DATABASE_URL  kafka: $KAFKA_BOOTSTRAP" >&2

# The deployment files cannot be run here (no Docker engine, no cluster); their references are checked.
python3 deploy/k8s/validate.py
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast

# ---- console: browser tests in a real headless Chromium against the real services (console/test.sh) ----
bash console/test.sh
