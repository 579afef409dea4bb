#!/usr/bin/env bash
# The full test suite, against a real PostgreSQL cluster and a real Kafka-protocol broker (tansu).
#
# Installs what is missing (postgresql via apt, tansu via cargo), starts one throwaway Postgres cluster
# and one tansu broker on loopback for the whole run (the test harness gives each test its own database
# and topics), runs formatting and lint checks and every test of the workspace, and stops both services
# when it exits, whatever the outcome. The last line it prints totals every test it ran,
# `N passed, N failed` (deploy/test-totals.sh); it exits non-zero when any check or test failed.
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

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# Every test step appends its output file to `logs`; the totals read them all.
logs=()
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$work/cargo-test.log" || status=$?
logs+=("$work/cargo-test.log")
# The deployment files, read by the real tools and checked against the binaries (no Docker, no cluster).
bash deploy/check/check.sh 2>&1 | tee "$work/deploy-check.log" || status=$?
logs+=("$work/deploy-check.log")
# The console: browser tests in a real headless Chromium against the real services.
bash console/test.sh 2>&1 | tee "$work/console-test.log" || status=$?
logs+=("$work/console-test.log")

bash deploy/test-totals.sh "${logs[@]}" || status=1
exit "$status"
