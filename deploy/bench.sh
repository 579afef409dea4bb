#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md, one command: installs what is missing, builds --release, starts a
# throwaway Postgres and tansu broker (deploy/services.sh), runs every scenario side by side with its
# baseline, prints the table and rewrites the results section of docs/benchmarks.md.
#
#   deploy/bench.sh
#
# Knobs (environment): BENCH_DURATION_SECS (5) and BENCH_WARMUP_SECS (2) per HTTP scenario and round, BENCH_ROUNDS (3), BENCH_LINGER_MS (1),
# BENCH_CONCURRENCY (32), BENCH_CHANGES (100 commits per data-plane count), BENCH_WEBHOOKS (1000000; the config targets are set at a million, a lower value is a quick run),
# BENCH_ONLY (comma-separated HTTP scenario names, e.g. dp-generic-1k,fwd-1k), BENCH_DISPATCH_INVOCATIONS
# (20000 per side and round; 0 skips the dispatcher), BENCH_DISPATCH_CONCURRENCY (32), BENCH_DOCS=0 to leave the
# docs alone. Logs and JSON results stay in .bench/ (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/webhook-gateway/target}
export PATH="$HOME/.cargo/bin:$PATH"
services="$root/deploy/services.sh"
work="$root/.bench"
say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }

bash "$services" install
say "building control-plane, data-plane and gateway-bench (release)…"
(cd "$root" && cargo build --release --locked -p control-plane -p data-plane -p gateway-bench)
bin="$CARGO_TARGET_DIR/release"

rm -rf "$work"; mkdir -p "$work"; chmod 755 "$work"
say "starting a throwaway postgres and tansu (memory storage)…"
kv=$(bash "$services" postgres "$work/pg" $$); eval "$kv"
kv=$(bash "$services" tansu "$work/tansu" memory $$); eval "$kv"
export DATABASE_URL KAFKA_BOOTSTRAP

tansu_version=$("$(bash "$services" tansu-bin)" --version 2>/dev/null | head -1 || echo unknown)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
ram=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
cat >"$work/machine.txt" <<TXT
date: $(date -u '+%Y-%m-%d %H:%M UTC')
commit: $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$root" && git diff --quiet HEAD -- . ':!docs/benchmarks.md' 2>/dev/null || echo ' (+ local changes)')
cpu: $(nproc) × $cpu
ram: $ram
kernel: $(uname -r)
broker: $tansu_version (memory storage)
rustc: $(rustc --version | cut -d' ' -f2)
TXT

say "HTTP scenarios (${BENCH_ROUNDS:-3} rounds, ${BENCH_DURATION_SECS:-5} s each after ${BENCH_WARMUP_SECS:-2} s warm-up)…"
"$bin/gateway-bench" http --data-plane-bin "$bin/data-plane" --work-dir "$work" --out "$work/http.json" \
  ${BENCH_ONLY:+--only "$BENCH_ONLY"}
export BENCH_WEBHOOKS=${BENCH_WEBHOOKS:-1000000}
say "config distribution (${BENCH_WEBHOOKS} webhooks)…"
"$bin/gateway-bench" distribution --control-plane-bin "$bin/control-plane" --data-plane-bin "$bin/data-plane" \
  --work-dir "$work" --out "$work/distribution.json"

say "step 6 + envelope cost in process…"
"$bin/gateway-bench" envelope-cost --out "$work/envelope.json"

say "allocations per request, in process…"
"$bin/gateway-bench" allocations --work-dir "$work" --out "$work/allocations.json"
dispatch=()
if [ "${BENCH_DISPATCH_INVOCATIONS:-20000}" != 0 ]; then
  say "dispatcher against its baseline (${BENCH_DISPATCH_INVOCATIONS:-20000} invocations per side and round)…"
  "$bin/gateway-bench" dispatch --control-plane-bin "$bin/control-plane" --data-plane-bin "$bin/data-plane" \
    --work-dir "$work" --out "$work/dispatch.json"
  dispatch=(--dispatch "$work/dispatch.json")
fi

docs=()
[ "${BENCH_DOCS:-1}" = 0 ] || docs=(--docs "$root/docs/benchmarks.md")
"$bin/gateway-bench" report --http "$work/http.json" --distribution "$work/distribution.json" \
  --machine "$work/machine.txt" --envelope "$work/envelope.json" \
  --allocations "$work/allocations.json" "${dispatch[@]}" "${docs[@]}"
