#!/usr/bin/env bash
# Install Debian's chromium where it is missing: kaleido (PNG export) and the dashboard browser
# test drive it.  Idempotent; best effort (no root or no apt: the browser test skips with a reason).
# Playwright never downloads a browser of its own here: the tests point it at this one.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq chromium; } >/tmp/ensure_browser.log 2>&1 \
    || echo "ensure_browser: apt-get install chromium failed (see /tmp/ensure_browser.log); browser tests will skip"
else
  echo "ensure_browser: chromium not found and cannot apt-get it; browser tests will skip"
fi
exit 0
