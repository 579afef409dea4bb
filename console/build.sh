#!/usr/bin/env bash
# Builds the console into console/dist: npm packages from the committed lockfile (npm ci, only when
# node_modules was not installed from this exact lockfile), clients generated from proto/, type check,
# bundle. Needs Node.js 20.19 or newer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v node >/dev/null || { echo "console/build.sh: Node.js 20.19+ is required (node not found)" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { echo "console/build.sh: Node.js 20.19+ is required (found $(node --version))" >&2; exit 1; }
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lockfile-sha256 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund >&2
  echo "$lock_sum" >node_modules/.lockfile-sha256
fi
npm run --silent build >&2
