#!/usr/bin/env bash
# Debian packages that `make image` and `make container-smoke` need on the host: podman (rootful), Debian's runc
# (crun fails on hybrid cgroup v1/v2 hosts), mmdebstrap (the base image: no registry image can be pulled),
# podman-compose (the compose file as it is), CNI's dnsname plugin (services find each other by name on the
# compose network), and uidmap/fuse-overlayfs that podman expects beside it.
# Idempotent; needs root or passwordless sudo.
set -euo pipefail
need=()
command -v podman >/dev/null || need+=(podman)
[ -x /usr/sbin/runc ] || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v podman-compose >/dev/null || need+=(podman-compose)
[ -x /usr/lib/cni/dnsname ] || need+=(golang-github-containernetworking-plugin-dnsname)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v fuse-overlayfs >/dev/null || need+=(fuse-overlayfs)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)   # the smoke checks the download with it
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
