# Sourced by scripts/test: the system packages the test suite needs, installed when missing.
# Each integration adds its check here (a real PostgreSQL, Chromium, ...), so that a fresh
# machine (CI) runs every test; none is skipped for a missing tool.
# Usage: source scripts/_system_deps.sh
set -euo pipefail

_apt_updated=""
apt_install() {  # apt_install PACKAGE...: install Debian packages (as root, or with sudo)
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "$_apt_updated" ]; then
    $sudo apt-get update -qq >&2
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

# PostgreSQL: the registry's contract tests start a throwaway server (tests/support/postgres.py).
if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  echo "installing PostgreSQL for the registry tests..." >&2
  apt_install postgresql
fi

# Chromium (and fonts for its screenshots) for the dashboard's browser tests: Playwright
# drives Debian's build, no browser download. apt runs under /tmp/apt.lock, shared with
# other installers on this machine.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium for the dashboard's browser tests..." >&2
  _sudo=""
  [ "$(id -u)" -eq 0 ] || _sudo="sudo"
  $_sudo flock /tmp/apt.lock sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation' >&2
fi
