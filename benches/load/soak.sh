#!/usr/bin/env bash
# Soak benchmark: a bounded run at moderate load (default 100 calls/s, 5 s calls, so about 500
# calls up at once, for 600 s) against SIPp's built-in UAS on 127.0.0.1, with the default AMD
# on every call. Samples the engine process every 30 s (RSS, open file descriptors, threads)
# and prints them as a table, then the run summary, whose `resources:` line gives open fds,
# tokio tasks and RSS before and after the run, and RTP ports free / media tasks open at the
# end. Flat RSS and fds while calls run, fds and tasks back to their start values, every RTP
# port free: no leak.
#
# Usage: benches/load/soak.sh [RATE] [SECONDS]     (defaults: 100 600)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-packages.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/outdial"
RATE="${1:-100}"
SECS="${2:-600}"
work=$(mktemp -d)
port=$(( 17000 + RANDOM % 2000 ))
sipp -sn uas -i 127.0.0.1 -p "$port" -mp $(( port + 2000 )) -nostdin \
  -max_recv_loops 100000 -max_sched_loops 100000 >/dev/null 2>&1 &
sipp_pid=$!
trap 'kill $sipp_pid 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5
python3 -c "
import sys
print('number')
for i in range(int(sys.argv[1])): print('+1415%07d' % i)" $(( RATE * SECS )) > "$work/leads.csv"
cat > "$work/c.toml" <<TOML
name = "soak"
trunk = "sip:127.0.0.1:$port"
caller_id = "+14155550000"
cps = $RATE
max_concurrent = 5000
hold_time = 5
ring_timeout = 10
media_timeout = 0
rtp_port_min = 30000
rtp_port_max = 60000
TOML
"$BIN" run "$work/c.toml" --leads "$work/leads.csv" --db "$work/soak.db" --quiet > "$work/out.txt" 2>"$work/err.txt" &
pid=$!
printf "%6s %10s %8s %8s %10s\n" t_s rss_mib fds threads calls_up
t=0
while kill -0 "$pid" 2>/dev/null; do
  if [ -r "/proc/$pid/status" ]; then
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    thr=$(awk '/Threads/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    # Calls up ≈ RTP sockets: every fd beyond the process's fixed ones is a call's socket.
    printf "%6d %10s %8d %8d %10s\n" "$t" "$(awk -v k="${rss:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" "$fds" "${thr:-0}" "~$(( fds > 20 ? fds - 20 : 0 ))"
  fi
  sleep 30; t=$(( t + 30 ))
done
wait "$pid" || true
cat "$work/out.txt"
