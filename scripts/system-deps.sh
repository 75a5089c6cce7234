#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real: chromium (the
# dashboard's browser tests, driven by Playwright — its own browser download
# cannot run here), nginx (the scale-out fault tests and the TLS test) and
# openssl (the TLS test's throwaway certificate). Without root the tests that
# need them skip outside CI and fail under CI=true.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} for the test suite…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "Missing ${missing[*]}: install with 'sudo apt-get install ${missing[*]}'; those tests will skip." >&2
fi
