#!/usr/bin/env bash
# Totals the test counts of one or more captured test outputs and prints one line:
#   N passed, N failed
# It reads cargo's `test result: ok. 12 passed; 0 failed; …` lines (one per test binary and doc-test
# run) and node's test runner summaries (`# pass 3` / `# fail 0`, or `ℹ pass 3` / `ℹ fail 0` from its
# default reporter) and the deployment checks' `deploy: 30 passed, 0 failed` (deploy/check/check.sh).
# Exits 1 when any test failed, else 0.
#
#   bash deploy/test-totals.sh cargo-test.log [node-test.log …]
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 OUTPUT_FILE [OUTPUT_FILE…]" >&2
  exit 2
fi

awk '
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed;?$/) passed += $i
      if ($(i + 1) ~ /^failed;?$/) failed += $i
    }
    next
  }
  /^deploy: [0-9]+ passed, [0-9]+ failed$/ { passed += $2; failed += $4; next }
  /^(#|ℹ) pass [0-9]+$/ { passed += $3; next }
  /^(#|ℹ) fail [0-9]+$/ { failed += $3; next }
  END {
    printf "%d passed, %d failed\n", passed, failed
    exit (failed > 0) ? 1 : 0
  }
' "$@"
