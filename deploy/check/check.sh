#!/usr/bin/env bash
# The deployment checks: the Helm chart, the kustomize manifests, the Dockerfile and the compose file,
# read by the real tools and tested against the binaries themselves (no cluster, no Docker engine).
#
#   deploy/check/check.sh        (deploy/test.sh runs it; CARGO_TARGET_DIR as there)
#
# Installs the pinned tools when missing (deploy/tools.sh), builds both binaries and asks each for its
# listing (`--print-config-schema`: env names, defaults, secret-valued settings, listeners and the
# paths they serve), then:
#   - hadolint on the Dockerfile; the compose file's service graph and references;
#   - `kubectl kustomize deploy/k8s`, `helm lint` and `helm template` with the default and the
#     production-like values; every rendered object against the Kubernetes API schemas of 1.29 and
#     1.34 (strict: unknown fields fail) and the ServiceMonitor against the Prometheus Operator's
#     models; names, ports, probes, Secrets and shutdown budgets against the binaries' listing;
#   - the chart (default values) and the kustomize manifests agree; deploy/README.md's values table is
#     the one values.schema.json gives;
#   - every fixture in deploy/check/fixtures (one deliberate break each) fails, with its expected message.
# Prints one line per check and a closing count; exits 1 if any check failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/webhook-gateway/target}
export PATH="$HOME/.cargo/bin:$PATH"

tools=$(bash deploy/tools.sh) || { echo "deploy checks: installing the tools failed" >&2; exit 1; }
while IFS='=' read -r k v; do declare "$k=$v"; done <<<"$tools"
cargo build --locked --quiet -p control-plane -p data-plane --bins || exit 1

work=$(mktemp -d /tmp/gateway-deploy-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/debug/control-plane" --print-config-schema >"$work/control-plane.json" || exit 1
"$CARGO_TARGET_DIR/debug/data-plane" --print-config-schema >"$work/data-plane.json" || exit 1

chart=deploy/helm/webhook-gateway
prod=$chart/ci/production-values.yaml
facts=(--facts "$work/control-plane.json" --facts "$work/data-plane.json")
checks() { "$KV_PYTHON" deploy/check/checks.py "$@"; }
# The Secrets the chart expects to exist: the data-plane token by default; with the production values,
# every existing Secret they name, with the keys the chart reads.
default_secrets=(--external wg-webhook-gateway-data-plane=token)
prod_secrets=(--external gateway-data-plane-token=token --external kafka-sasl=username,password
  --external kafka-ca=ca.crt --external gateway-postgres=url --external postgres-ca=ca.crt
  --external gateway-keys=master-keys,jwt-signing-key,bootstrap-token
  --external gateway-grpc-tls=ca.crt,tls.crt,tls.key)

passed=0 failed=0
# pass NAME CMD…: the command must succeed.
pass() {
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1)); echo "ok    $name"
  else
    failed=$((failed + 1)); echo "FAIL  $name"; sed 's/^/      /' "$work/out"
  fi
}
# fail NAME EXPECTED CMD…: the command must fail, and say EXPECTED (so it fails for that reason).
fail() {
  local name=$1 expected=$2; shift 2
  if "$@" >"$work/out" 2>&1; then
    failed=$((failed + 1)); echo "FAIL  $name: passed, but must fail with: $expected"
  elif grep -qF -- "$expected" "$work/out"; then
    passed=$((passed + 1)); echo "ok    $name (fails as it must)"
  else
    failed=$((failed + 1)); echo "FAIL  $name: failed without saying: $expected"; sed 's/^/      /' "$work/out"
  fi
}
# render_and_check OUT CHECK-ARGS… -- HELM-ARGS…: helm template into OUT, then the manifest checks.
render_and_check() {
  local out=$1; shift
  local args=()
  while [ "$1" != -- ]; do args+=("$1"); shift; done; shift
  "$HELM" template wg "$chart" --namespace webhook-gateway "$@" >"$out" && checks manifests "${facts[@]}" "${args[@]}" "$out"
}
expected_of() { sed -n "s/^# expect[^:]*: //p" "$1" | head -n1; }

echo "deploy checks ($("$HELM" version --short), kubectl $("$KUBECTL" version --client -o json | "$KV_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), hadolint $("$HADOLINT" --version | awk '{print $NF}'))"

pass "hadolint deploy/docker/Dockerfile" "$HADOLINT" deploy/docker/Dockerfile
pass "compose: deploy/docker/docker-compose.yml" checks compose "${facts[@]}" deploy/docker/docker-compose.yml
pass "kubectl kustomize deploy/k8s" sh -c '"$0" kustomize deploy/k8s >"$1"' "$KUBECTL" "$work/kustomize.yaml"
pass "kustomize objects: schema and references" checks manifests "${facts[@]}" --documented deploy/k8s/secret.example.yaml "$work/kustomize.yaml"
pass "k8s/secret.example.yaml: schema" checks manifests "${facts[@]}" deploy/k8s/secret.example.yaml
pass "helm lint (default values)" "$HELM" lint --strict "$chart"
pass "helm lint (production values)" "$HELM" lint --strict "$chart" -f "$prod"
pass "helm template (default values): schema and references" render_and_check "$work/chart.yaml" "${default_secrets[@]}" --
pass "helm template (production values): schema and references" render_and_check "$work/prod.yaml" "${prod_secrets[@]}" -- -f "$prod"
pass "chart and kustomize agree" checks agree "${facts[@]}" "$work/chart.yaml" "$work/kustomize.yaml"
pass "deploy/README.md values table is current" checks values-table

# Each fixture breaks one thing; the checks must catch it.
for f in deploy/check/fixtures/docker/*; do
  fail "hadolint ${f#deploy/check/}" "$(expected_of "$f")" "$HADOLINT" "$f"
done
for f in deploy/check/fixtures/compose/*; do
  fail "compose ${f#deploy/check/}" "$(expected_of "$f")" checks compose "${facts[@]}" "$f"
done
for f in deploy/check/fixtures/helm/*; do
  fail "helm ${f#deploy/check/}" "$(expected_of "$f")" render_and_check "$work/fixture.yaml" "${default_secrets[@]}" -- -f "$f"
done
for d in deploy/check/fixtures/k8s/*/; do
  d=${d%/}
  mode=$(sed -n 1p "$d/expect") expected=$(sed -n 2p "$d/expect")
  if ! "$KUBECTL" kustomize "$d" >"$work/fixture.yaml" 2>"$work/out"; then
    failed=$((failed + 1)); echo "FAIL  kustomize ${d#deploy/check/}: does not render"; sed 's/^/      /' "$work/out"
  elif [ "$mode" = agree ]; then
    fail "kustomize ${d#deploy/check/}" "$expected" checks agree "${facts[@]}" "$work/chart.yaml" "$work/fixture.yaml"
  else
    fail "kustomize ${d#deploy/check/}" "$expected" checks manifests "${facts[@]}" --documented deploy/k8s/secret.example.yaml "$work/fixture.yaml"
  fi
done

echo "deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
