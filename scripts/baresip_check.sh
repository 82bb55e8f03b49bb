#!/usr/bin/env bash
# Manual check with a real softphone (docs/acd.md): Debian's baresip registers to a running
# campaign as agent 1001 (digest MD5), auto-answers the persistent login call, and two
# customers of a SIPp far end (uas_outcomes.xml, outcome 8: hang up after 1 s) are bridged to
# it. Prints the run summary, baresip's own log lines and the RTP packets that reached the
# customer's SIPp (baresip's PCMA tone, transcoded to PCMU by the relay). Needs root (tshark
# on loopback) and the packages baresip, sip-tester, sox, tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v baresip >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq baresip >/dev/null; }
scripts/ensure-packages.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet
BIN="$CARGO_TARGET_DIR/debug/outdial"
w=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$w"' EXIT
base=$(( 18000 + RANDOM % 1000 ))
far=$base; engine=$(( base + 10 )); phone=$(( base + 20 ))
mkdir "$w/cfg"
sox -n -r 8000 -c 1 -b 16 -e signed-integer "$w/tone.wav" synth 20 sine 440 vol 0.3
cat > "$w/cfg/config" <<CFG
sip_listen 127.0.0.1:$phone
sip_trans_def udp
dns_server 127.0.0.1:53
audio_player aufile,/dev/null
audio_source aufile,$w/tone.wav
audio_alert aufile,/dev/null
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module_app account.so
rtp_ports $(( base + 30 ))-$(( base + 60 ))
CFG
echo "<sip:1001@127.0.0.1:$engine;transport=udp>;auth_pass=bare-pw;regint=60;answermode=auto;audio_codecs=PCMA" > "$w/cfg/accounts"
touch "$w/cfg/contacts"
cat > "$w/c.toml" <<TOML
name = "baresip-check"
trunk = "sip:127.0.0.1:$far"
caller_id = "+14155550000"
local_address = "127.0.0.1:$engine"
media_timeout = 0
[amd]
profile = "off"
[acd]
wait_for_agents = 20
wrap_up = 0
[[acd.agents]]
id = "1001"
password = "bare-pw"
TOML
printf "number\n+14155550018\n+14155550028\n" > "$w/leads.csv"
sipp -sf sip-fixtures/scenarios/uas_outcomes.xml -i 127.0.0.1 -p "$far" -mp $(( far + 2 )) -nostdin -aa -m 2 >/dev/null 2>&1 &
pids+=($!)
tshark -i lo -f "udp dst port $(( far + 2 ))" -w "$w/customer.pcap" >/dev/null 2>&1 &
tsh=$!; pids+=($tsh)
sleep 1.5
"$BIN" run "$w/c.toml" --leads "$w/leads.csv" --db "$w/x.db" --quiet &
run=$!; pids+=($run)
sleep 0.5
baresip -f "$w/cfg" > "$w/baresip.log" 2>&1 &
pids+=($!)
wait "$run"
kill -INT "$tsh"; sleep 1
echo "--- baresip:"
grep -E "200 OK|answering|established|terminated|Set audio" "$w/baresip.log" || true
echo "--- RTP packets that reached the customer's SIPp: $(tshark -r "$w/customer.pcap" 2>/dev/null | wc -l)"
