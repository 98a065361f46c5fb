#!/usr/bin/env bash
# A clean Debian 12 root for the packaging tests: `debootstrap --variant=minbase bookworm`, made
# once and cached under ~/.cache/nuaws (about 250 MB, under 2 minutes), plus a buildah base image
# imported from it. Tests copy the root and never change the cached one. Beyond minbase it holds
# only apt's package lists and the downloaded (not installed) .debs of ca-certificates, which
# nuaws depends on, so installing it needs no network after the first run.
#
# Usage: tests/support/debian-root.sh [--image]
#   prints the root's path as the last line; with --image, the base image's name instead
# Needs root (debootstrap, chroot).
set -euo pipefail
cache="${NUAWS_DEBIAN_CACHE:-$HOME/.cache/nuaws/debian-bookworm-minbase}"
mirror="${NUAWS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
image=localhost/nuaws-test-debian:bookworm
log() { printf 'debian-root: %s\n' "$*" >&2; }

mkdir -p "$(dirname "$cache")"
exec 9>"$cache.lock"
flock 9
# Bump when the recipe below changes: older caches are rebuilt.
recipe=2
if [[ "$(cat "$cache/.nuaws-complete" 2>/dev/null)" != "$recipe" ]]; then
    log "debootstrap --variant=minbase bookworm into $cache (first run only)"
    rm -rf "$cache.tmp"
    debootstrap --variant=minbase bookworm "$cache.tmp" "$mirror" >&2
    chroot "$cache.tmp" apt-get update -qq >&2
    chroot "$cache.tmp" apt-get install -y -qq --download-only ca-certificates >&2
    rm -rf "$cache"
    echo "$recipe" >"$cache.tmp/.nuaws-complete"
    mv "$cache.tmp" "$cache"
    # A base image of an older root is stale.
    if command -v buildah >/dev/null; then buildah rmi -f "$image" >/dev/null 2>&1 || true; fi
fi
if [[ "${1:-}" != --image ]]; then
    echo "$cache"
    exit 0
fi

if ! buildah inspect --type image "$image" >/dev/null 2>&1; then
    log "importing $cache as $image"
    tarball="$(mktemp --suffix=.tar)"
    # Without apt's lists and downloads, as a slim image comes.
    tar -C "$cache" --exclude=./.nuaws-complete --exclude='./var/lib/apt/lists/*' \
        --exclude='./var/cache/apt/archives/*.deb' -cf "$tarball" .
    ctr="$(buildah from scratch)"
    buildah add "$ctr" "$tarball" / >/dev/null
    buildah config --cmd /bin/bash "$ctr"
    buildah commit -q --rm "$ctr" "$image" >/dev/null
    rm -f "$tarball"
fi
echo "$image"
