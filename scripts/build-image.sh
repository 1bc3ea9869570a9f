#!/usr/bin/env bash
# `make image`: WildBench's images with podman, from Debian's packages alone (no registry is reachable):
#   1. localhost/wildbench-debian:bookworm  a minimal bookworm made by mmdebstrap, `podman import`ed (once);
#   2. localhost/wildbench:latest, localhost/wildbench-postgres:latest, localhost/wildbench-redis:latest
#      the Dockerfile's stages on that base.
# pip inside the build reads this host's local wheel folders and indexes (the ones its pip.conf names, e.g.
# torch 2.14.1), mounted read-only; PyPI serves the rest. Prints the build time and the image sizes.
# Usage: scripts/build-image.sh [--rebuild-base] [--no-cache]   (both: a cold build, as BENCHMARKS.md measures)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CONTAINERS_CONF="$root/deploy/containers.conf"
bash "$root/scripts/install-containers.sh"
base=localhost/wildbench-debian:bookworm
rebuild_base="" cache=(--layers)
for arg in "$@"; do
  case "$arg" in
    --rebuild-base) rebuild_base=1 ;;
    --no-cache) cache=(--no-cache) ;;
    *) echo "usage: $0 [--rebuild-base] [--no-cache]" >&2; exit 2 ;;
  esac
done
started=$(date +%s)

if [ -n "$rebuild_base" ] || ! podman image exists "$base"; then
  mirror=http://deb.debian.org/debian
  # The same trims as Docker's debian:*-slim (no man pages, docs or translations), kept for later installs.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm - "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    | podman import --change 'CMD ["bash"]' - "$base" >/dev/null
fi
base_done=$(date +%s)

# pip's local sources on this host (its pip.conf), mounted at the same paths so file:// URLs stay valid.
pip_cfg() { pip config get "global.$1" 2>/dev/null || python3 -m pip config get "global.$1" 2>/dev/null || true; }
find_links="${PIP_FIND_LINKS:-$(pip_cfg find-links)}"
extra_index="${PIP_EXTRA_INDEX_URL:-$(pip_cfg extra-index-url)}"
mounts=()
for source in $find_links $extra_index; do
  dir="${source#file://}"
  case "$source" in file://*|/*) ;; *) continue ;; esac
  dir="${dir%/simple}"; dir="${dir%/}"
  [ -d "$dir" ] && mounts+=(-v "$dir:$dir:ro")
done
# The CA bundle pip trusts here (a TLS-inspecting proxy's CA, if any), for the build's pip only: not in the image.
cert="${PIP_CERT:-$(pip_cfg cert)}"
if [ -n "$cert" ] && [ -f "$cert" ]; then
  mounts+=(-v "$cert:/run/wildbench-build-ca.pem:ro")
  cert=/run/wildbench-build-ca.pem
else
  cert=""
fi

log="$(mktemp -t wildbench-build.XXXXXX.log)"
build() {  # target tag
  podman build "${cache[@]}" --target "$1" -t "$2" --build-arg "BASE=$base" \
    --build-arg "PIP_FIND_LINKS=$find_links" --build-arg "PIP_EXTRA_INDEX_URL=$extra_index" --build-arg "PIP_CERT=$cert" \
    ${mounts[@]+"${mounts[@]}"} -f "$root/Dockerfile" "$root" >>"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; echo "make image: building the $1 stage failed (whole log: $log)" >&2; exit 1; }
}
build postgres localhost/wildbench-postgres:latest
build redis localhost/wildbench-redis:latest
build wildbench localhost/wildbench:latest
done_at=$(date +%s)
rm -f "$log"
echo "base image: $((base_done - started)) s; project images: $((done_at - base_done)) s; total $((done_at - started)) s"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^localhost/wildbench' | sort
