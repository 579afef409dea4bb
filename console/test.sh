#!/usr/bin/env bash
# The console's browser tests: real headless Chromium (Debian's `chromium`, driven by playwright-core,
# which downloads nothing) against the real control plane, data plane, Postgres and a tansu broker.
#
# Installs what is missing (npm packages from the committed lockfile; chromium via apt), builds the
# console and both planes, and runs `node --test` (it prints `# pass N` / `# fail N`). A missing browser
# or service fails the run. With DATABASE_URL set (deploy/test.sh does) the tests use that Postgres;
# otherwise they start their own. Each test file starts its own broker, control plane and data plane.
# Screenshots of the main screens are written to docs/screenshots/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/webhook-gateway/target}
export PATH="$HOME/.cargo/bin:$PATH"

if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null; then
  echo "installing chromium (apt)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
bash "$root/deploy/services.sh" install

bash "$here/build.sh"
(cd "$root" && cargo build --locked -p control-plane -p data-plane)

cd "$here"

exec node --test --test-concurrency=1 --test-timeout=240000 tests/console.test.mjs tests/actions.test.mjs
