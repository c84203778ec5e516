#!/usr/bin/env bash
# Builds an image from images/<NAME>/ without any container registry: the root filesystem comes
# from the Debian archive (mmdebstrap), the Python packages from PyPI (images/<NAME>/requirements.txt,
# through images/<NAME>/customize-hook.sh), and `podman import` turns it into localhost/<NAME>.
# Each image's version, packages and command are in images/<NAME>/image.conf.
#
#   scripts/engine/build-image.sh                # localhost/portal-jupyter:$VERSION (the Jupyter image)
#   scripts/engine/build-image.sh --image light  # localhost/portal-light:$VERSION (benchmark upstream)
#   scripts/engine/build-image.sh --tag test     # localhost/portal-jupyter:test (same content)
#   scripts/engine/build-image.sh --force        # rebuild from scratch, replace the cached archive
#
# --image takes jupyter (default), light, or any directory name under images/ (portal-light…).
# Caching, fastest first:
#   1. the image already exists in podman with label portal.image.version=$VERSION -> nothing to do;
#   2. $CACHE/<NAME>-$VERSION.docker.tar exists -> `podman load` it (a few seconds);
#   3. otherwise build (1-3 minutes, mostly downloads) and save that archive.
# The archive also works with `docker load -i`. Prints the image reference as its last line.
# Needs root and podman (scripts/engine/setup-podman.sh); installs mmdebstrap when missing.
set -euo pipefail

SUITE=bookworm
MIRROR=${PORTAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${PORTAL_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${PORTAL_IMAGE_CACHE:-/var/cache/portal-images}

IMAGE=jupyter
TAG=
FORCE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --image) IMAGE=$2; shift ;;
        --image=*) IMAGE=${1#--image=} ;;
        --tag) TAG=$2; shift ;;
        --tag=*) TAG=${1#--tag=} ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
IMAGES=$(cd "$(dirname "$0")/../../images" && pwd)
case "$IMAGE" in
    */*|.*|'') echo "build-image.sh: bad --image $IMAGE" >&2; exit 2 ;;
esac
[ -f "$IMAGES/$IMAGE/image.conf" ] || IMAGE=portal-$IMAGE          # light -> portal-light
[ -f "$IMAGES/$IMAGE/image.conf" ] ||
    { echo "build-image.sh: no image ${IMAGE#portal-}: images/$IMAGE/image.conf is missing" >&2; exit 2; }
HERE=$IMAGES/$IMAGE
VERSION= INCLUDE= CMD= VERSION_LABELS= DPKG_LABELS=
# shellcheck source=/dev/null
. "$HERE/image.conf"
[ -n "$VERSION" ] && [ -n "$INCLUDE" ] && [ -n "$CMD" ] ||
    { echo "build-image.sh: $HERE/image.conf must set VERSION, INCLUDE and CMD" >&2; exit 2; }
NAME=localhost/$IMAGE
TAG=${TAG:-$VERSION}
REF=$NAME:$TAG
ARCHIVE=$CACHE/$IMAGE-$VERSION.docker.tar

log() { echo "build-image.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
command -v podman >/dev/null || { log "podman missing: run scripts/engine/setup-podman.sh"; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9                                  # one build at a time (parallel test runs, CI jobs)

label_of() { podman image inspect --format '{{index .Config.Labels "portal.image.version"}}' "$1" 2>/dev/null || true; }

# 1. Already there?
if [ "$FORCE" = 0 ] && [ "$(label_of "$REF")" = "$VERSION" ]; then
    log "$REF is up to date (portal.image.version=$VERSION)"
    echo "$REF"; exit 0
fi

# 2. Cached archive?
if [ "$FORCE" = 0 ] && [ -s "$ARCHIVE" ]; then
    log "loading $ARCHIVE"
    t0=$(date +%s%N)
    loaded=$(podman load -q -i "$ARCHIVE" | sed -E -n 's/^Loaded image(\(s\))?: *//p' | head -n1)
    loaded=${loaded%%,*}
    if [ -n "$loaded" ] && [ "$(label_of "$loaded")" = "$VERSION" ]; then
        [ "$loaded" = "$REF" ] || podman tag "$loaded" "$REF"
        log "loaded in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
        echo "$REF"; exit 0
    fi
    log "cached archive is unusable ($loaded); rebuilding"
fi

# 3. Build.
if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
fi
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
log "building the root filesystem ($SUITE from $MIRROR, Python packages from PyPI)"
TMPDIR=$WORK \
mmdebstrap --mode=root --variant=essential --format=tar -q \
    --include="$INCLUDE" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook="$HERE/customize-hook.sh" \
    "$SUITE" "$WORK/rootfs.tar" \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" </dev/null >"$WORK/mmdebstrap.log" 2>&1 ||
    { tail -n 40 "$WORK/mmdebstrap.log" >&2; log "mmdebstrap failed"; exit 1; }
log "root filesystem built in $(( $(date +%s) - START )) s ($(du -m "$WORK/rootfs.tar" | cut -f1) MB)"

# No certificate that only this build host trusts (e.g. a TLS-intercepting proxy CA) may be in it.
tar -xf "$WORK/rootfs.tar" -C "$WORK" ./etc/ssl/certs/ca-certificates.crt ./opt/venv/portal-freeze.txt ./var/lib/dpkg/status
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] || continue
    body=$(sed -n '/BEGIN CERT/,/END CERT/p' "$crt" | sed '1d;$d' | head -n3 | tr -d '\n')
    if [ -n "$body" ] && tr -d '\n' < "$WORK/etc/ssl/certs/ca-certificates.crt" | grep -qF "$body"; then
        log "host-local CA $crt leaked into the image; refusing"; exit 1
    fi
done
pkgver() {   # version of a package in the freeze list; "-" and "_" are the same in PyPI names
    local re; re=$(printf '%s' "$1" | sed 's/[-_]/[-_]/g')
    sed -n "s/^$re==//Ip" "$WORK/opt/venv/portal-freeze.txt"
}
debver() {   # version of an installed Debian package
    awk -v p="$1" '$1 == "Package:" { hit = ($2 == p) } hit && $1 == "Version:" { print $2; exit }' "$WORK/var/lib/dpkg/status"
}
LABELS=()   # portal.<package>.version for the packages image.conf names
for p in $VERSION_LABELS; do LABELS+=(--change "LABEL portal.$p.version=$(pkgver "$p")"); done
for p in $DPKG_LABELS; do LABELS+=(--change "LABEL portal.$p.version=$(debver "$p")"); done

OLD_ID=$(podman image inspect --format '{{.Id}}' "$REF" 2>/dev/null || true)
RECIPE=$(cat "$0" "$IMAGES/customize-common.sh" "$HERE"/* | sha256sum | cut -c1-16)
podman import -q \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV VIRTUAL_ENV=/opt/venv' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SHELL=/bin/bash' \
    --change 'ENV HOME=/home/jovyan' \
    --change 'USER 1000' \
    --change 'WORKDIR /home/jovyan' \
    --change 'EXPOSE 8888/tcp' \
    --change 'STOPSIGNAL SIGTERM' \
    --change 'ENTRYPOINT ["/usr/bin/tini", "-g", "--"]' \
    --change "CMD $CMD" \
    --change "LABEL portal.image.version=$VERSION" \
    --change "LABEL portal.image.recipe=$RECIPE" \
    --change "LABEL org.opencontainers.image.title=$IMAGE" \
    --change "LABEL org.opencontainers.image.version=$VERSION" \
    "${LABELS[@]}" \
    "$WORK/rootfs.tar" "$REF" >/dev/null
rm -f "$WORK/rootfs.tar"
# A rebuild (--force) leaves the previous image untagged: drop it unless a container still uses it.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(podman image inspect --format '{{.Id}}' "$REF")" ] &&
   [ -z "$(podman image inspect --format '{{join .RepoTags ","}}' "$OLD_ID" 2>/dev/null)" ]; then
    podman rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
podman save -q --format docker-archive -o "$WORK/image.docker.tar" "$REF"
mv -f "$WORK/image.docker.tar" "$ARCHIVE"
cp "$WORK/opt/venv/portal-freeze.txt" "$CACHE/$IMAGE-$VERSION.freeze.txt"
log "built $REF in $(( $(date +%s) - START )) s; cached $ARCHIVE ($(du -m "$ARCHIVE" | cut -f1) MB)"
echo "$REF"
