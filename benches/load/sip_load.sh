#!/usr/bin/env bash
# Signalling load benchmark: for each offered rate, outdial dials RATE×SECONDS short calls
# (answer, 1 s, BYE; AMD off) against SIPp's built-in UAS on loopback, then SIPp's own UAC
# does the same against the same kind of UAS as the reference. Prints achieved calls/s (from
# the first to the last call started), failed calls, setup latency (outdial: hdrhistogram,
# INVITE sent → 2xx), response → event latency, CPU seconds per 1,000 calls and peak RSS.
#
# Usage: benches/load/sip_load.sh [RATE ...]      (default: 500 1000 2000 3000)
#        SECONDS_PER_RATE=10 by default (calls per rate = RATE × SECONDS_PER_RATE)
#        FAR_ENDS=2 by default: that many SIPp UAS processes, reached by outdial as a trunk group
#                 with equal weights; the reference runs as many SIPp UAC processes, each at
#                 RATE/FAR_ENDS against its own UAS (one SIPp UAS saturates near 3,000 calls/s
#                 here and its queueing, not the caller, then sets the setup latency).
#        SCENARIO=short (default): SIPp's built-in UAS answers every call, held 1 s, our BYE;
#                 the reference row is SIPp's own UAC against the same UAS.
#        SCENARIO=mixed: the far end is sip-fixtures/scenarios/uas_outcomes.xml and the numbers
#                 cycle through answered (1 s), busy (486), no answer (180, our CANCEL after a
#                 2 s ring timeout, 487), declined (603) and unavailable (480); `failed` counts
#                 calls whose disposition is not the one their number asked for. No SIPp UAC
#                 reference row (its default scenario counts every non-2xx as a failure).
#        WRAP="perf record -g -o /tmp/perf.data": a command outdial runs under (profiling).
#        STORE=sqlite (default): the store is a SQLite file. STORE=postgres: a throwaway
#                 PostgreSQL server on 127.0.0.1 (initdb in the work directory, fsync on, the
#                 defaults otherwise); its CPU is not in outdial's CPU column.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-packages.sh
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ -n "${BIN:-}" ] || cargo build --release --quiet
BIN="${BIN:-$CARGO_TARGET_DIR/release/outdial}"
ulimit -n "$(ulimit -Hn)"
SECS="${SECONDS_PER_RATE:-10}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

SCENARIO="${SCENARIO:-short}"
STORE="${STORE:-sqlite}"
if [ "$STORE" = postgres ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pgport=$(( 17000 + RANDOM % 1000 ))
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$work"
    as_pg=(setpriv --reuid postgres --regid postgres --init-groups --)
  fi
  "${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" -U outdial --auth=trust -E UTF8 >/dev/null
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-h 127.0.0.1 -p $pgport -k $work" start >/dev/null
  trap '"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1; rm -rf "$work"' EXIT
fi
uas() { # port [scenario]
  if [ "${2:-short}" = mixed ]; then
    set -- "$1" -sf sip-fixtures/scenarios/uas_outcomes.xml
  else
    set -- "$1" -sn uas
  fi
  sipp "${@:2}" -i 127.0.0.1 -p "$1" -mp $(( $1 + 2000 )) -nostdin -aa -buff_size 4194304 \
    -max_recv_loops 100000 -max_sched_loops 100000 >/dev/null 2>&1 &
  echo $!
}

FAR_ENDS="${FAR_ENDS:-2}"
echo "scenario: $SCENARIO, ${SECS} s per rate, $FAR_ENDS SIPp far end(s)"
printf "%-8s %6s %9s %9s %7s %10s %10s %12s %10s %9s %9s %9s\n" caller offered calls achieved failed "setup_p50" "setup_p99" "resp→event" "cpu/1k_s" rss_mb peak_conc KiB/conc
for rate in "${@:-500 1000 2000 3000}"; do
  n=$(( rate * SECS ))
  python3 -c "
import sys
print('number')
mixed = sys.argv[2] == 'mixed'
digits = [0, 2, 3, 4, 6]
for i in range(int(sys.argv[1])): print('+1415%06d%d' % (i, digits[i % 5]) if mixed else '+1415%07d' % i)" "$n" "$SCENARIO" > "$work/leads.csv"
  base=$(( 16000 + RANDOM % 1000 ))
  pids=()
  trunks=""
  for i in $(seq 1 "$FAR_ENDS"); do
    port=$(( base + 10 * i ))
    pids+=("$(uas "$port" "$SCENARIO")")
    trunks+=$'[[trunks]]\n'"name = \"uas$i\""$'\n'"uri = \"sip:127.0.0.1:$port\""$'\n'
  done
  sleep 0.5
  cat > "$work/c.toml" <<TOML
name = "load-$rate"
caller_id = "+14155550000"
cps = $rate
max_concurrent = 12000
hold_time = 1
ring_timeout = $([ "$SCENARIO" = mixed ] && echo 2 || echo 10)
media_timeout = 0
rtp_port_min = 30000
rtp_port_max = 60000
[amd]
profile = "off"
$trunks
TOML
  rm -f "$work"/load.db*
  db="$work/load.db"
  if [ "$STORE" = postgres ]; then
    psql -q -h 127.0.0.1 -p "$pgport" -U outdial -d postgres -c "DROP DATABASE IF EXISTS load" \
      -c "CREATE DATABASE load" >/dev/null
    db="postgres://outdial@127.0.0.1:$pgport/load"
  fi
  /usr/bin/time -f "%U %S %M" -o "$work/time.txt" \
    ${WRAP:-} "$BIN" run "$work/c.toml" --leads "$work/leads.csv" --db "$db" --quiet > "$work/out.txt"
  if [ "$STORE" = postgres ]; then
    # The figures below are read with Python's sqlite3: copy the columns they need.
    psql -q -h 127.0.0.1 -p "$pgport" -U outdial -d load -c "\\copy (SELECT a.started_at, \
      a.ended_at, a.disposition, l.number FROM attempts a JOIN leads l ON l.id = a.lead_id) \
      TO '$work/attempts.csv' CSV"
    python3 - "$work/attempts.csv" "$work/load.db" <<'PY'
import csv, sqlite3, sys
c = sqlite3.connect(sys.argv[2])
c.execute("CREATE TABLE leads (id INTEGER PRIMARY KEY, number TEXT)")
c.execute("CREATE TABLE attempts (lead_id INTEGER, started_at TEXT, ended_at TEXT, disposition TEXT)")
for i, (s, e, d, n) in enumerate(csv.reader(open(sys.argv[1]))):
    c.execute("INSERT INTO leads VALUES (?, ?)", (i, n))
    c.execute("INSERT INTO attempts VALUES (?, ?, ?, ?)", (i, s, e or None, d or None))
c.commit()
PY
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  read -r user sys rss_kb < <(tail -n 1 "$work/time.txt")
  python3 - "$work/load.db" "$work/out.txt" "$rate" "$user" "$sys" "$rss_kb" "$SCENARIO" <<'PY'
import sqlite3, sys, re, datetime
db, out, rate, user, sys_s, rss, scenario = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
c = sqlite3.connect(db)
starts = [r[0] for r in c.execute("SELECT started_at FROM attempts ORDER BY started_at")]
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
span = (p(starts[-1]) - p(starts[0])).total_seconds() or 1
expected = {"0": "answered", "2": "busy", "3": "no_answer", "4": "rejected", "6": "unavailable"}
failed = 0
for number, disp in c.execute(
        "SELECT l.number, a.disposition FROM attempts a JOIN leads l ON l.id = a.lead_id"):
    want = expected.get(number[-1], "answered") if scenario == "mixed" else "answered"
    failed += disp != want
# Peak calls in progress: a sweep over (start, end) of every attempt.
marks = []
for s0, e0 in c.execute("SELECT started_at, ended_at FROM attempts WHERE ended_at IS NOT NULL"):
    marks += [(p(s0), 1), (p(e0), -1)]
marks.sort()
up = peak = 0
for _, d in marks:
    up += d
    peak = max(peak, up)
text = open(out).read()
m = re.search(r"INVITE → 2xx p50 ([\d.]+) ms, p99 ([\d.]+) ms.*response → event p50 (\d+) µs, p99 (\d+) µs", text)
# RSS while dialling (the report built at the end, holding every lead, is left out).
mr = re.search(r"peak while dialling ([\d.]+) MiB", text)
if mr:
    rss = int(float(mr.group(1)) * 1024)
s50, s99, e50, e99 = m.groups() if m else ("?", "?", "?", "?")
print("%-8s %6d %9d %9.0f %7d %8s ms %8s ms %6s/%-5s µs %10.2f %9.1f %9d %9.1f" % (
    "outdial", rate, len(starts), len(starts) / span, failed, s50, s99, e50, e99,
    (user + sys_s) / len(starts) * 1000, rss / 1024, peak, rss / max(peak, 1)))
PY
  [ "$SCENARIO" = mixed ] && continue
  # The reference: FAR_ENDS SIPp UACs, each at RATE/FAR_ENDS against a fresh SIPp UAS.
  base=$(( 18000 + RANDOM % 1000 ))
  pids=(); uacs=()
  rm -f "$work"/uac*.csv "$work"/time*.txt
  for i in $(seq 1 "$FAR_ENDS"); do
    port=$(( base + 10 * i ))
    pids+=("$(uas "$port")")
  done
  sleep 0.5
  for i in $(seq 1 "$FAR_ENDS"); do
    port=$(( base + 10 * i ))
    /usr/bin/time -f "%U %S %M" -o "$work/time$i.txt" \
      sipp -sn uac "127.0.0.1:$port" -i 127.0.0.1 -p $(( port + 1 )) -mp $(( port + 3000 )) \
        -r $(( rate / FAR_ENDS )) -m $(( n / FAR_ENDS )) -d 1000 -nostdin -buff_size 4194304 \
        -max_recv_loops 100000 -max_sched_loops 100000 \
        -trace_stat -stf "$work/uac$i.csv" >/dev/null 2>&1 &
    uacs+=($!)
  done
  for pid in "${uacs[@]}"; do wait "$pid" || true; done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  cat "$work"/time*.txt | awk 'NF == 3 { u += $1; s += $2; if ($3 > m) m = $3 } END { print u, s, m }' > "$work/time.txt"
  read -r user sys rss_kb < "$work/time.txt"
  python3 - "$rate" "$n" "$user" "$sys" "$rss_kb" "$work"/uac*.csv <<'PY'
import csv, sys
rate, n, user, sys_s, rss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
total = failed = 0
achieved = 0.0
for path in sys.argv[6:]:
    rows = list(csv.reader(open(path), delimiter=";"))
    h, last = rows[0], rows[-1]
    g = lambda k: last[h.index(k)]
    calls = int(g("OutgoingCall(C)"))
    # Achieved start rate: calls over SIPp's elapsed time (whole seconds in its stat file)
    # when the last call was counted, less the 1 s hold: an estimate to ±1 s.
    first_full = next(r for r in rows[1:] if int(r[h.index("OutgoingCall(C)")]) >= calls)
    t = first_full[h.index("ElapsedTime(C)")].split(":")
    secs = max(int(t[0]) * 3600 + int(t[1]) * 60 + float(t[2]) - 1, 1)
    total += calls
    failed += int(g("FailedCall(C)"))
    achieved += calls / secs
print("%-8s %6d %9d %9.0f %7d %11s %11s %13s %10.2f %9.1f %9s %9s" % (
    "sipp-uac", rate, total, achieved, failed, "-", "-", "-",
    (user + sys_s) / max(total, 1) * 1000, rss / 1024, "-", "-"))
PY
done
