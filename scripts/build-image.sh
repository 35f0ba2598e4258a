#!/usr/bin/env bash
# Builds the operator's container image with podman, on machines that cannot pull images:
# the base (Debian bookworm with python3) is made locally by mmdebstrap from the machine's
# apt sources and imported once; the project's wheels are built on the host, so the image
# build itself needs no network. The recipe follows the testing design ("Container images").
# Idempotent: podman, the base tarball and the base image are only made when missing.
#
# Usage: scripts/build-image.sh [TAG]     (default localhost/sla-operator:dev)
#        scripts/build-image.sh --base-only   podman and the base image only (CI's first step)
# Environment:
#   SLA_IMAGE_CACHE   cache directory (default: ~/.cache/sla-operator/image)
#   BASE_IMAGE        use this base instead of the local Debian one (it must exist locally)
#   PYTHON            the host Python that builds the wheels (its version must match the base's)
set -euo pipefail

BASE_ONLY=0
if [[ "${1:-}" == "--base-only" ]]; then BASE_ONLY=1; shift; fi
TAG="${1:-localhost/sla-operator:dev}"
CACHE="${SLA_IMAGE_CACHE:-$HOME/.cache/sla-operator/image}"
LOCAL_BASE="localhost/debian-python:bookworm"
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[build-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo -E); else SUDO=(); fi
mkdir -p "$CACHE"

# podman's defaults do not fit this kind of VM: crun cannot set up its hybrid cgroups, and
# the default ulimits are above what it allows.
cat >"$CACHE/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$CACHE/containers.conf"

if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v runc >/dev/null; then
    log "installing podman, runc and mmdebstrap (Debian packages)"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq podman buildah mmdebstrap uidmap fuse-overlayfs \
        slirp4netns runc >/dev/null
fi

if [[ -z "${BASE_IMAGE:-}" ]]; then
    BASE_IMAGE="$LOCAL_BASE"
    if ! podman image exists "$BASE_IMAGE"; then
        if [[ ! -s "$CACHE/base.tar" ]]; then
            log "making the base with mmdebstrap (about 30 s)"
            "${SUDO[@]}" mmdebstrap --quiet --variant=minbase \
                --include=python3,python3-venv,ca-certificates \
                --dpkgopt='path-exclude=/usr/share/doc/*' \
                --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                bookworm "$CACHE/base.part.tar"
            mv "$CACHE/base.part.tar" "$CACHE/base.tar"
        fi
        podman import --quiet --change 'CMD ["/bin/bash"]' "$CACHE/base.tar" "$BASE_IMAGE" >/dev/null
    fi
fi

if [[ $BASE_ONLY -eq 1 ]]; then
    log "podman and $BASE_IMAGE are ready"
    exit 0
fi

log "building wheels for the project and its dependencies"
rm -rf "$REPO/build/wheels"
# (pip's notes about this machine's unused local indexes are dropped from the output)
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check -w "$REPO/build/wheels" "$REPO" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2

log "podman build $TAG on $BASE_IMAGE (no network)"
started=$(date +%s)
podman build --quiet --network=none --pull=never --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -t "$TAG" -f "$REPO/Dockerfile" "$REPO" >/dev/null
log "built $TAG in $(( $(date +%s) - started )) s; size $(podman image inspect "$TAG" --format '{{.Size}}') bytes"
