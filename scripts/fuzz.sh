#!/usr/bin/env bash
# Fuzzing with cargo fuzz (libFuzzer, nightly toolchain). Each target is a function of
# src/fuzzing.rs; its corpus starts from the kept seeds and findings in
# fuzz/regressions/<target>/ plus the raw SIP messages of sip-fixtures/.
#
#   scripts/fuzz.sh list                 the targets
#   scripts/fuzz.sh run TARGET SECONDS   one target for SECONDS (crashes land in
#                                        fuzz/artifacts/TARGET/; copy the fixed ones into
#                                        fuzz/regressions/TARGET/)
#   scripts/fuzz.sh all SECONDS          every target for SECONDS each, then a summary
#
# Needs `cargo +nightly` and cargo-fuzz (installed here when missing). The fuzz build has its
# own target directory (OUTDIAL_FUZZ_TARGET, default ~/.cache/outdial-fuzz-target).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_TARGET_DIR="${OUTDIAL_FUZZ_TARGET:-$HOME/.cache/outdial-fuzz-target}"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^outdial-fuzz$')

ensure_tools() {
  if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz…" >&2
    cargo install cargo-fuzz --locked --quiet
  fi
}

seed() {
  local t=$1 dir=corpus/$1
  mkdir -p "$dir"
  cp -n regressions/"$t"/* "$dir"/ 2>/dev/null || true
  case $t in
    sip_datagram|registrar)
      for f in ../sip-fixtures/messages/valid/*.sip ../sip-fixtures/messages/invalid/*; do
        cp -n "$f" "$dir/fixture-$(basename "$f")"
      done ;;
  esac
}

run() {
  local t=$1 secs=$2 log=/tmp/outdial-fuzz-$1.log
  seed "$t"
  echo "fuzz: $t for ${secs} s (log: $log)…" >&2
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 >"$log" 2>&1 &
  local pid=$! waited=0
  # Progress: the fuzzer's latest status line every minute.
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    waited=$((waited + 5))
    if [ $((waited % 60)) -eq 0 ]; then
      echo "  $t, ${waited} s: $(grep -E '^#[0-9]+' "$log" | tail -n 1 | cut -c1-110)" >&2
    fi
  done
  local rc=0
  wait "$pid" || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ?ERROR|SUMMARY|artifact_prefix|Test unit written)' "$log" \
    | sed "s/^/  $t: /" >&2 || true
  return "$rc"
}

case "${1:-}" in
  list) echo "$targets" ;;
  run) ensure_tools; run "$2" "${3:-60}" ;;
  all)
    ensure_tools
    secs=${2:-10}
    cargo +nightly fuzz build -O >/dev/null
    failed=()
    for t in $targets; do
      run "$t" "$secs" || failed+=("$t")
    done
    echo "fuzz: $(echo "$targets" | wc -w) targets × ${secs} s, ${#failed[@]} failed ${failed[*]:-}"
    [ ${#failed[@]} -eq 0 ] ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
