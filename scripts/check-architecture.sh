#!/usr/bin/env bash
# The boundaries docs/architecture.md promises, checked: no import cycle between the crate's
# top-level modules, no I/O, clock or global RNG in the sans-IO cores, no function over 150
# lines. Plain Python over the sources: runs in a second, before anything is built.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
python3 scripts/module_cycles.py src || { echo "architecture: import cycle between modules (above)"; status=1; }
python3 scripts/core_purity.py src || { echo "architecture: a sans-IO core reaches for I/O, the clock or the RNG (above)"; status=1; }
python3 scripts/fn_lengths.py src 150 || { echo "architecture: functions over 150 lines (above)"; status=1; }
[ "$status" -eq 0 ] && echo "architecture: no module cycle, cores free of I/O/clock/RNG, no function over 150 lines"
exit "$status"
