#!/usr/bin/env bash
# Webhooks off the hot path: the same campaign (RATE calls/s for SECONDS s, answer, 1 s, BYE;
# AMD off, against SIPp's built-in UAS on loopback) three times — without a webhook, with a
# webhook whose receiver accepts connections and never answers (a hung receiver), and with a
# webhook whose receiver is down (connection refused) — subscribed to every event. Prints
# achieved calls/s, failed calls, setup latency (INVITE → 2xx, p50/p99), response → event
# latency, and what became of the webhook events (delivered / dead-lettered).
#
# Usage: benches/load/webhook_load.sh [RATE] [SECONDS]     (default 500 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-packages.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/outdial"
ulimit -n "$(ulimit -Hn)"
RATE="${1:-500}"
SECS="${2:-10}"
n=$(( RATE * SECS ))
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

python3 -c "
print('number')
for i in range($n): print('+1415%07d' % i)" > "$work/leads.csv"

# A receiver that accepts every connection and never answers.
hung_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$hung_port" <<'PY' &
import socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
held = []
while True:
    c, _ = s.accept(); held.append(c)   # read nothing, answer nothing
PY
pids+=($!)
down_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "rate $RATE calls/s for $SECS s ($n calls); webhook subscribed to every event"
printf "%-10s %9s %9s %7s %10s %10s %12s %10s %10s\n" webhook calls achieved failed setup_p50 setup_p99 "resp→event" delivered dead
for mode in none hung down; do
  port=$(( 17000 + RANDOM % 1000 ))
  sipp -sn uas -i 127.0.0.1 -p "$port" -mp $(( port + 2000 )) -nostdin -buff_size 4194304 \
    -max_recv_loops 100000 -max_sched_loops 100000 >/dev/null 2>&1 &
  uas=$!
  sleep 0.5
  case $mode in
    none) hook="" ;;
    hung) hook=$'[webhook]\nurl = "http://127.0.0.1:'"$hung_port"$'/hook"\nsecret = "0123456789abcdef"\nmax_attempts = 3\ntimeout = 2\n' ;;
    down) hook=$'[webhook]\nurl = "http://127.0.0.1:'"$down_port"$'/hook"\nsecret = "0123456789abcdef"\nmax_attempts = 3\n' ;;
  esac
  cat > "$work/c.toml" <<TOML
name = "webhook-$mode"
trunk = "sip:127.0.0.1:$port"
caller_id = "+14155550000"
cps = $RATE
max_concurrent = 12000
hold_time = 1
media_timeout = 0
rtp_port_min = 30000
rtp_port_max = 60000
[amd]
profile = "off"
$hook
TOML
  rm -f "$work"/load.db*
  "$BIN" run "$work/c.toml" --leads "$work/leads.csv" --db "$work/load.db" --quiet > "$work/out.txt"
  kill "$uas" 2>/dev/null || true; wait "$uas" 2>/dev/null || true
  python3 - "$work/load.db" "$work/out.txt" "$mode" <<'PY'
import sqlite3, sys, re, datetime
db, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
c = sqlite3.connect(db)
starts = [r[0] for r in c.execute("SELECT started_at FROM attempts ORDER BY started_at")]
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
span = (p(starts[-1]) - p(starts[0])).total_seconds() or 1
failed = c.execute("SELECT COUNT(*) FROM attempts WHERE disposition != 'answered'").fetchone()[0]
events = c.execute("SELECT COUNT(*) FROM call_events").fetchone()[0]
dead = c.execute("SELECT COUNT(*) FROM webhook_dead_letters").fetchone()[0]
text = open(out).read()
m = re.search(r"INVITE → 2xx p50 ([\d.]+) ms, p99 ([\d.]+) ms.*response → event p50 (\d+) µs, p99 (\d+) µs", text)
s50, s99, e50, e99 = m.groups() if m else ("?", "?", "?", "?")
delivered = "-" if mode == "none" else str(events - dead)
print("%-10s %9d %9.0f %7d %7s ms %7s ms %6s/%-5s µs %10s %10s" % (
    mode, len(starts), len(starts) / span, failed, s50, s99, e50, e99,
    delivered, "-" if mode == "none" else dead))
PY
done
