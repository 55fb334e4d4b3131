#!/usr/bin/env bash
# Test prerequisites that the Python test extras cannot bring by themselves:
#   * Debian's Chromium (/usr/bin/chromium) for the dashboard browser test
#     (tests/node/test_dashboard.py); Playwright's own browser download is never used;
#   * Playwright for Python, which drives it.
# Idempotent, and it never fails the caller: when something cannot be installed it says so, and
# the dashboard tests skip with a message naming what is missing.
set -u

CHROMIUM=/usr/bin/chromium
PYTHON=${PYTHON:-python3}

warn() { echo "setup-test: $*" >&2; }

if [ -x "$CHROMIUM" ]; then
  echo "setup-test: $CHROMIUM is present"
elif [ "$(id -u)" -ne 0 ]; then
  warn "$CHROMIUM is missing and this is not root: the dashboard browser tests will skip"
elif ! command -v apt-get >/dev/null 2>&1; then
  warn "$CHROMIUM is missing and there is no apt-get: the dashboard browser tests will skip"
else
  echo "setup-test: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; then
    echo "setup-test: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM installed")"
  else
    warn "apt-get install chromium failed: the dashboard browser tests will skip"
  fi
fi

if "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "setup-test: playwright is present"
elif "$PYTHON" -m pip install -q playwright; then
  # Only the Python package: no `playwright install` (no browser download; there is no internet).
  echo "setup-test: playwright installed"
else
  warn "pip install playwright failed: the dashboard browser tests will skip"
fi

exit 0
