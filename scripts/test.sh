#!/usr/bin/env bash
# One command for the tests: installs SIPp if needed, then runs every test (unit, parser
# fixtures, virtual-clock call flows, and real campaigns against SIPp on 127.0.0.1), then —
# when no test filter is given — the property-based run of the REST API (schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh
cargo test "$@"
if [ $# -eq 0 ]; then
  scripts/schemathesis.sh
fi
