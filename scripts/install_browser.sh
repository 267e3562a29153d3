#!/usr/bin/env bash
# Debian's Chromium and its matching chromedriver for the docs-page browser test.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (CI runs as root).
# Browsers are never downloaded by Playwright or Selenium Manager: only Debian's packages are used.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser.sh: installing chromium needs root (apt-get install -y chromium chromium-driver)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver
