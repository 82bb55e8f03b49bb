#!/usr/bin/env bash
# ACD load benchmark: AGENTS SIPp agents register with digest authentication (one SIPp UAC
# per agent, sip-fixtures/scenarios/agent_register.xml: SIPp 3.6's `[authentication
# username=[field0] …]` does not substitute the field), their phones are one SIPp UAS that answers every
# call and streams a tone as the agent's voice; the trunk's far end is a SIPp UAS whose calls
# (uas_outcomes.xml, outcome 8) answer and hang up after TALK seconds... then outdial dials
# CALLS leads at CPS calls/s with AMD off, every answer is queued and bridged to an agent.
# Prints connects per second, abandoned calls, queue wait and answer→bridge percentiles
# (hdrhistogram in the engine), and CPU/RSS, from outdial's run summary.
#
# Usage: benches/load/acd_load.sh            MODE=persistent|per_call (default persistent)
#        AGENTS=50 CALLS=600 CPS=20 by default; MAX_WAIT=2 (seconds)
#        RECORD=1: every bridged call recorded (`recording = "agent_calls"`, per_call): the
#        far end (uas_talk_then_bye.xml) answers, streams a tone and hangs up after TALK
#        seconds (default 20) — so AGENTS calls are bridged and recorded at once; the agents
#        are static, their URIs the phones' SIPp (no registration), or with STATIC=0 phones
#        that register (tried at 1,000 agents on 2026-12-07: the registering SIPp processes
#        failed to bind their ports);
#        prints the recordings written, packets the writers dropped, RTP lost, and each
#        recording's length against its talk time.
#        RTP_TASKS=200: RTP streams per SIPp playback thread (SIPp's -rtp_threadtasks, its
#        default 20: a thread per 20 streams, 50 threads per 1,000 calls).
# Outcome 8 of uas_outcomes.xml hangs up 1 s after answering, so 50 agents can take up to
# ~50 calls/s with wrap_up = 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-packages.sh
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/outdial"
ulimit -n "$(ulimit -Hn)"
MODE="${MODE:-persistent}"
AGENTS="${AGENTS:-50}"
CALLS="${CALLS:-600}"
CPS="${CPS:-20}"
MAX_WAIT="${MAX_WAIT:-2}"
RECORD="${RECORD:-0}"
STATIC="${STATIC:-1}"
TALK="${TALK:-20}"
RTP_TASKS="${RTP_TASKS:-200}"
[ "$RECORD" = 1 ] && MODE=per_call
work=$(mktemp -d)
pids=()
cleanup() {
  # The run's pid is GNU time's: its child (outdial) is killed too.
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

regs=()
base=$(( 17000 + RANDOM % 1000 ))
far=$base; phones=$(( base + 10 )); engine=$(( base + 20 )); reg=$(( base + 100 ))
sox -n -r 8000 -c 1 -e u-law "$work/agent.wav" synth 5 sine 660 vol 0.3
# Agent phones: answer, stream the tone, wait for our BYE (persistent: at the end of the run).
python3 - "$work/agent.wav" "$MODE" > "$work/phone.xml" <<'PY'
import sys
s = open("sip-fixtures/scenarios/agent_phone.xml").read()
s = s.replace("@CODEC@", "0").replace("@CODEC_NAME@", "PCMU").replace("@CLIP@", sys.argv[1])
s = s.replace("<!--WAIT", "").replace("WAIT-->", "")
print(s)
PY
sipp -sf "$work/phone.xml" -i 127.0.0.1 -p "$phones" -mp $(( phones + 2000 )) -nostdin -aa \
  -max_recv_loops 100000 -rtp_threadtasks "$RTP_TASKS" >/dev/null 2>&1 &
pids+=($!)
far_scenario=sip-fixtures/scenarios/uas_outcomes.xml
if [ "$RECORD" = 1 ]; then
  sed -e "s|@CLIP@|$work/agent.wav|" -e "s|@TALK_MS@|$(( TALK * 1000 ))|" \
    sip-fixtures/scenarios/uas_talk_then_bye.xml > "$work/talk.xml"
  far_scenario="$work/talk.xml"
fi
sipp -sf "$far_scenario" -i 127.0.0.1 -p "$far" -mp $(( far + 2000 )) \
  -nostdin -aa -max_recv_loops 100000 -rtp_threadtasks "$RTP_TASKS" -trace_err -error_file "$work/far_err.log" >/dev/null 2>&1 &
pids+=($!)

{
  echo 'name = "acd-load"'
  echo "trunk = \"sip:127.0.0.1:$far\""
  echo 'caller_id = "+14155550000"'
  echo "local_address = \"127.0.0.1:$engine\""
  echo "cps = $CPS"
  echo "max_concurrent = $(( AGENTS * 2 ))"
  echo 'ring_timeout = 10'
  echo 'media_timeout = 0'
  if [ "$RECORD" = 1 ]; then
    echo 'recording = "agent_calls"'
    echo "recordings_dir = \"$work/rec\""
  fi
  echo '[amd]'
  echo 'profile = "off"'
  echo '[acd]'
  echo "mode = \"$MODE\""
  echo "max_wait = $MAX_WAIT"
  echo 'wrap_up = 0'
  echo 'wait_for_agents = 30'
  for i in $(seq 1 "$AGENTS"); do
    id=$(( 2000 + i ))
    echo "[[acd.agents]]"
    echo "id = \"$id\""
    if [ "$RECORD" = 1 ] && [ "$STATIC" = 1 ]; then
      # Straight at the agents' own SIPp (an IP literal with a port): two SIPp processes
      # share the 2 × AGENTS streams.
      echo "uri = \"sip:agent$id@127.0.0.1:$phones\""
    else
      echo "password = \"pw-$id\""
    fi
  done
} > "$work/campaign.toml"
python3 -c "
import sys
print('number')
for i in range(int(sys.argv[1])): print('+1415%06d8' % i)" "$CALLS" > "$work/leads.csv"

echo "mode: $MODE, $AGENTS agents, $CALLS calls at $CPS calls/s, max_wait ${MAX_WAIT} s"
/usr/bin/time -f "cpu %U user + %S sys s, max RSS %M KiB" \
  "$BIN" run "$work/campaign.toml" --leads "$work/leads.csv" --db "$work/outdial.db" --quiet \
  > "$work/summary.txt" 2> "$work/time.txt" &
run=$!
pids+=($run)
# Register the agents once the engine listens.
for _ in $(seq 1 100); do
  ss -uln | grep -q ":$engine " && break
  sleep 0.05
done
sed 's/"\[final\]"/"200"/' sip-fixtures/scenarios/agent_register.xml > "$work/register.xml"
[ "$RECORD" = 1 ] && [ "$STATIC" = 1 ] && AGENTS_TO_REGISTER=0 || AGENTS_TO_REGISTER=$AGENTS
for i in $(seq 1 "$AGENTS_TO_REGISTER"); do
  id=$(( 2000 + i ))
  # Each its own media port (SIPp binds one even for a REGISTER): many run at once.
  sipp -sf "$work/register.xml" -i 127.0.0.1 -p $(( reg + i )) -mp $(( 40000 + 4 * i )) \
    -m 1 -s "$id" -au "$id" -ap "pw-$id" \
    -key contact_port "$phones" -key expires 3600 -nostdin -timeout 10s -timeout_error \
    "127.0.0.1:$engine" >/dev/null 2>>"$work/register.err" &
  regs+=($!)
  # At most 40 SIPp registrations at once (SIPp takes one of 60 control ports each).
  if (( i % 40 == 0 )); then
    for p in "${regs[@]}"; do wait "$p" || { echo "agent registration failed:"; cat "$work/register.err"; exit 1; }; done
    regs=()
  fi
done
for p in "${regs[@]+"${regs[@]}"}"; do wait "$p" || { echo "agent registration failed:"; cat "$work/register.err"; exit 1; }; done
echo "$AGENTS_TO_REGISTER agents registered"
if [ "$RECORD" = 1 ]; then
  # A far end that falls behind may never hang some calls up: stop the run (Ctrl-C: calls
  # in progress hung up, their recordings written) 30 s after the last call should have ended.
  ( sleep $(( CALLS / CPS + TALK + 30 )); pkill -INT -P "$run" 2>/dev/null ) &
  pids+=($!)
fi
wait "$run" || echo "(the run was stopped: exit $?)"
cat "$work/summary.txt"
tail -1 "$work/time.txt"
python3 - "$work/outdial.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
t = db.execute("select min(at), max(at), count(*) from call_events where kind = 'connected'").fetchone()
from datetime import datetime
if t[2] > 1:
    a, b = (datetime.fromisoformat(x.replace("Z", "+00:00")) for x in t[:2])
    print(f"connects: {t[2]} over {(b - a).total_seconds():.1f} s = {t[2] / max((b - a).total_seconds(), 1e-9):.1f} per second")
PY
if [ "$RECORD" = 1 ]; then
python3 - "$work/outdial.db" <<'PY'
import json, sqlite3, sys, wave
from datetime import datetime
db = sqlite3.connect(sys.argv[1])
at = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
saved = [(c, at(a), json.loads(d)) for c, a, d in db.execute(
    "select e.attempt_id, e.at, e.data from call_events e where kind = 'recording_saved'")]
conn = {c: at(a) for c, a in db.execute("select attempt_id, at from call_events where kind = 'connected'")}
ended = {c: at(a) for c, a in db.execute("select attempt_id, at from call_events where kind = 'terminated'")}
stats = [json.loads(d) for (d,) in db.execute("select data from call_events where kind = 'media_stats'")]
dropped = sum(d["dropped"] for _, _, d in saved)
late = sum(d.get("late", 0) for _, _, d in saved)
lost = sum(s["lost"] for s in stats)
off = []
for c, _, d in saved:
    if c in conn and c in ended and d.get("file"):
        w = wave.open(d["file"])
        off.append(abs(w.getnframes() / 8000 - (ended[c] - conn[c]).total_seconds()))
bridged = sorted([(t, 1) for t in conn.values()] + [(t, -1) for t in ended.values() if t])
peak = cur = 0
for _, d in bridged:
    cur += d; peak = max(peak, cur)
print(f"recordings: {len(saved)} written, {dropped} packets dropped by the writers' queues, {late} re-timed (more than 3 s late), "
      f"{lost} RTP packets lost (every leg), peak {peak} calls bridged at once")
if off:
    off.sort()
    print(f"recording length vs talk time: max {max(off)*1000:.0f} ms, p50 {off[len(off)//2]*1000:.0f} ms off")
PY
fi
if [ -s "$work/far_err.log" ]; then
  echo "far end SIPp errors: $(grep -c 'Aborting\|Unexpected\|unexpected' "$work/far_err.log") (first: $(grep -m1 -i 'unexpected\|abort' "$work/far_err.log" | cut -c1-160))"
fi
