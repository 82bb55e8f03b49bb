#!/usr/bin/env bash
# Installs what the tests and the demo need from Debian when it is missing: SIPp (package
# sip-tester), espeak-ng and sox (the labelled AMD clips), the Asterisk prompt packages (the
# real-voice AMD corpus), and Kamailio (the proxy in front
# of the SIPp far end in tests/kamailio.rs), tshark (counts the RTP reaching each SIPp end in
# tests/acd_sipp.rs; capturing on loopback needs root), PostgreSQL's server (the tests on
# PostgreSQL start a throwaway server of their own), and Chromium with chromedriver (the web
# console's browser test). Needs root or sudo.
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The web console's browser test (tests/web_console.rs): headless Chromium through chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# Real recorded voices for the AMD corpus (src/media/amd/corpus.rs): seven speakers. The
# English sounds are not installed on purpose: they are kept for an independent check.
for pkg in asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav \
  asterisk-core-sounds-ru-wav asterisk-prompt-es-co asterisk-prompt-fr-armelle \
  asterisk-prompt-it-menardi-wav; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "missing: ${need[*]}: install these Debian packages as root" >&2
    exit 1
  fi
fi
echo "Installing ${need[*]}…" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
