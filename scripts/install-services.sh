#!/usr/bin/env bash
# Debian packages the test suite starts for real: PostgreSQL (Dagster production storage), Redis (the Celery
# broker of distributed steps), Chromium and its driver (the portal's browser tests; nothing is downloaded
# by the tests themselves).
# Idempotent; needs root (CI and these machines run as root) or passwordless sudo.
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The packaged cluster is not used (tests run their own on a free port); keep it from holding 5432.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_lsclusters -h | awk '$4=="online"{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
fi
# Nor the packaged Redis (tests start their own on free ports).
if command -v service >/dev/null && pgrep -x redis-server >/dev/null 2>&1 && [ -f /etc/init.d/redis-server ]; then
  service redis-server stop >/dev/null 2>&1 || true
fi
