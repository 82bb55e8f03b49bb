#!/usr/bin/env bash
# One command for the demo: installs SIPp if needed, builds outdial, and dials a sample call
# list through a SIPp far end on 127.0.0.1. Extra arguments go to `outdial demo`
# (e.g. --transport tcp, --leads 50).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh
cargo run --release --quiet -- demo "$@"
