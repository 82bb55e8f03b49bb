#!/usr/bin/env bash
# Media load benchmark: SIPp answers N calls (400 per second) and streams a voicemail clip in
# a loop on each (RTP, PCMU, 50 packets/s per call) until our BYE; every call stays up for 10 s
# after the last one is answered, so all N stream at once for about 10 s. outdial runs the
# default AMD profile on every call. For each N it prints the packets outdial received, the
# packets lost (RTP sequence gaps), outdial's CPU seconds and peak RSS, and RSS per call.
#
# Usage: benches/load/media_load.sh [N ...]        (default: 250 500 1000 2000)
# Needs: sipp, python3, espeak-ng, sox (scripts/ensure-packages.sh), GNU time.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-packages.sh
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/outdial"
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
trap 'pkill -f "sipp -sf $work" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 sip-fixtures/audio/generate.py "$work/clips" >/dev/null
clip="$work/clips/machine-004.wav"
# Loop the clip until the call ends (loop count -1).
sed "s|@CLIP@,1,0|$clip,-1,0|" sip-fixtures/scenarios/uas_stream_clip.xml > "$work/uas.xml"

printf "%6s %9s %10s %6s %8s %9s %12s %10s\n" N answered recv lost lost% cpu_s peak_rss_mb kib/call
for n in "${@:-250 500 1000 2000}"; do
  port=$((15060 + RANDOM % 1000))
  sipp -sf "$work/uas.xml" -i 127.0.0.1 -p "$port" -mp $((port + 2000)) -t u1 -nostdin \
    -max_recv_loops 100000 -max_sched_loops 100000 >/dev/null 2>&1 &
  sipp_pid=$!
  sleep 0.5
  python3 -c "
import sys
print('number')
for i in range(int(sys.argv[1])): print('+1415%07d' % i)" "$n" > "$work/leads.csv"
  cps=400
  hold=$(( n / cps + 10 ))
  cat > "$work/c.toml" <<TOML
name = "load-$n"
trunk = "sip:127.0.0.1:$port"
caller_id = "+14155550000"
cps = $cps
max_concurrent = $n
hold_time = $hold
ring_timeout = 30
media_timeout = 0
on_machine = "continue"
on_human = "continue"
rtp_port_min = 20000
rtp_port_max = 29999
TOML
  rm -f "$work/load.db"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" \
    "$BIN" run "$work/c.toml" --leads "$work/leads.csv" --db "$work/load.db" --quiet >/dev/null
  kill "$sipp_pid" 2>/dev/null || true
  wait "$sipp_pid" 2>/dev/null || true
  read -r _wall user sys rss_kb < "$work/time.txt"
  python3 - "$work/load.db" "$n" "$user" "$sys" "$rss_kb" <<'PY'
import sqlite3, sys, json
db, n, user, sys_s, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
c = sqlite3.connect(db)
recv = lost = answered = 0
jit = []
for (d,) in c.execute("SELECT data FROM call_events WHERE kind = 'media_stats'"):
    j = json.loads(d); recv += j["packets"]; lost += j["lost"]; jit.append(j["jitter_ms"])
answered = c.execute("SELECT COUNT(*) FROM attempts WHERE disposition = 'answered'").fetchone()[0]
print("%6d %9d %10d %6d %7.3f%% %9.1f %12.1f %10.1f" % (
    n, answered, recv, lost, 100.0 * lost / max(recv + lost, 1), user + sys_s, rss / 1024, rss / max(answered, 1)))
jit.sort()
if jit:
    print("       jitter ms per call (RFC 3550, as received): p50 %.1f, p99 %.1f, max %.1f" % (
        jit[len(jit) // 2], jit[min(len(jit) - 1, len(jit) * 99 // 100)], jit[-1]))
if answered != n:
    print("       (only %d of %d calls answered)" % (answered, n))
PY
done
