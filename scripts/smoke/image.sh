#!/usr/bin/env bash
# `make image`: build the production image with podman (see docs/deploy.md).
#
# On machines without Docker or a registry (CI here) it installs podman, makes a Debian
# base image with debootstrap once, and builds from it; with BASE_IMAGE set to a
# registry image (python:3.11-slim-bookworm) it builds from that instead.
#
#   IMAGE=localhost/tenant-platform:latest   the tag to build
#   BASE_IMAGE=...                           skip debootstrap and build from this image
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/tenant-platform:latest}
DEBIAN_BASE=localhost/debian-base:bookworm
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/smoke/containers.conf}

say() { echo "[image] $*" >&2; }

missing=()
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from Debian"
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

if [ -z "${BASE_IMAGE:-}" ]; then
  BASE_IMAGE=$DEBIAN_BASE
  if ! podman image exists "$BASE_IMAGE"; then
    # Made once per machine and kept in podman's store: later builds start at once.
    say "making $BASE_IMAGE with debootstrap (once per machine, about a minute)"
    rootfs=$(mktemp -d /var/tmp/debian-base.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
    # debootstrap keeps the .debs it installed (80 MB): no layer above could shed them.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --quiet - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
  fi
fi

build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
volumes=()
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  # Beside the image's own bundle, not over it (that breaks Debian's ca-certificates).
  volumes=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro)
  build_args+=(--build-arg PIP_CERT=/run/host-ca.crt)
fi

say "building $IMAGE from $BASE_IMAGE"
started=$(date +%s)
# docker format: the OCI format has no HEALTHCHECK.
podman build --network=host --format docker --layers "${volumes[@]}" "${build_args[@]}" \
  -t "$IMAGE" .
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
say "built $IMAGE in $(($(date +%s) - started)) s, $((size / 1000000)) MB"
