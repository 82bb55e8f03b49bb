#!/usr/bin/env bash
# Installs SIPp (Debian package sip-tester) if `sipp` is not on PATH. Needs root or sudo.
set -euo pipefail
if command -v sipp >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "sipp is missing: install Debian's sip-tester package (apt-get install -y sip-tester) as root" >&2
    exit 1
  fi
fi
echo "Installing SIPp (sip-tester)…" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq sip-tester >/dev/null
command -v sipp >/dev/null
