#!/usr/bin/env bash
# Makes sure Debian's Chromium and ChromeDriver are installed for the browser
# tests; prints nothing on success.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-chromium: install chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2; exit 1
fi
echo "ensure-chromium: installing chromium and chromium-driver from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 && apt-get install -y -qq chromium chromium-driver >&2
