#!/usr/bin/env bash
# Property-based run of the REST API against its own OpenAPI document: schemathesis (PyPI)
# generates requests for every operation (valid and invalid bodies, parameters, stateful
# sequences) against a real `outdial serve` on 127.0.0.1 with an owner token, and fails on any
# server error (5xx). The live event streams (/v1/events, /v1/events/ws) are left out: they
# never end.
# Campaigns it manages to start dial a closed local port, so their calls fail quickly.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v st >/dev/null 2>&1; then
  echo "Installing schemathesis (PyPI)…" >&2
  python3 -m pip install -q --disable-pip-version-check schemathesis==4.32.5 2>&1 | grep -v WARNING >&2 || true
  hash -r
fi
command -v st >/dev/null 2>&1 || { echo "schemathesis (st) not found after pip install" >&2; exit 1; }
cargo build -q --bin outdial
bin="${CARGO_TARGET_DIR:-target}/debug/outdial"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/outdial.toml" <<TOML
listen = "127.0.0.1:$port"
db = "$dir/outdial.db"
shutdown_grace = 5
[campaign_defaults]
trunk = "sip:127.0.0.1:9"
local_address = "127.0.0.1:0"
ring_timeout = 2
hold_time = 0.2
[campaign_defaults.amd]
profile = "off"
TOML
token=$("$bin" token create --role owner --db "$dir/outdial.db" 2>/dev/null)
"$bin" serve --config "$dir/outdial.toml" >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
st run "http://127.0.0.1:$port/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --exclude-path-regex '^/v1/events' \
  --max-examples "${EXAMPLES:-25}" \
  --request-timeout 10 \
  --generation-deterministic
