#!/usr/bin/env bash
# The boundaries docs/architecture.md promises, checked: no import cycle between the top-level
# modules of either crate, no I/O, clock or global RNG in the core crate, no function over 150
# lines. Plain Python over the sources: runs in a second, before anything is built.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in core/src src; do
  python3 scripts/module_cycles.py "$crate" || { echo "architecture: import cycle between modules of $crate (above)"; status=1; }
  python3 scripts/fn_lengths.py "$crate" 150 || { echo "architecture: functions over 150 lines in $crate (above)"; status=1; }
done
python3 scripts/core_purity.py core/src || { echo "architecture: the core crate reaches for I/O, the clock or the RNG (above)"; status=1; }
[ "$status" -eq 0 ] && echo "architecture: no module cycle, core crate free of I/O/clock/RNG, no function over 150 lines"
exit "$status"
