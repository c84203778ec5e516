#!/usr/bin/env bash
# Installs and configures Podman for the portal on Debian 12 (root), and optionally starts its
# Docker-compatible API service.
#
#   scripts/engine/setup-podman.sh                 # packages + /etc/containers/containers.conf
#   scripts/engine/setup-podman.sh --service       # ... and serve unix:///run/podman/podman.sock
#   scripts/engine/setup-podman.sh --service /run/portal/podman.sock
#
# Idempotent and non-interactive: packages are installed only when missing, the config file is
# merged key by key (other settings are kept), and the service is started only when the socket
# does not already answer /_ping. Prints the socket path (with --service) as its last line.
#
# Why the config (see docs/ENGINES.md): on this cgroup-v1 hybrid host crun refuses to run
# ("cgroups in hybrid mode not supported") and runc cannot raise RLIMIT_NOFILE past the host's
# hard limit, so we need runtime=runc, cgroupfs and lowered default ulimits; there is no
# journald/systemd, so events go to a file.
set -euo pipefail

SERVICE=0
SOCKET=/run/podman/podman.sock
while [ $# -gt 0 ]; do
    case "$1" in
        --service)
            SERVICE=1
            if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then SOCKET=$2; shift; fi ;;
        --service=*) SERVICE=1; SOCKET=${1#--service=} ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "setup-podman.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
SOCKET=${SOCKET#unix://}

log() { echo "setup-podman.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

# 1. Packages ------------------------------------------------------------------------------------
PACKAGES=(podman runc conmon netavark aardvark-dns slirp4netns uidmap iptables curl ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    # Keep apt from starting daemons, but never clobber an existing policy-rc.d (a container
    # base image usually ships one that already says "exit 101").
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, created by portal setup-podman.sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    cleanup_policy() { [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; true; }
    trap cleanup_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    # Update the lists only when a package is not known (apt-get update is slow-ish).
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then apt-get update -qq; fi
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${PACKAGES[@]}" >/dev/null
    cleanup_policy; trap - EXIT
fi

# 2. /etc/containers/containers.conf --------------------------------------------------------------
CONF=/etc/containers/containers.conf
mkdir -p /etc/containers
touch "$CONF"
# set_key SECTION KEY VALUE: replace an uncommented KEY in [SECTION], or add it right after the
# section header, or append the section. Other keys and comments are left as they are.
set_key() {
    local section=$1 key=$2 value=$3 tmp
    tmp=$(mktemp "$CONF.XXXXXX")
    awk -v sec="[$section]" -v key="$key" -v line="$key = $value" '
        function flush_section() { if (insec && !done) { print line; done = 1 } }
        function depth(s,   t, o, c) {                   # open minus close brackets
            t = s; sub(/#.*$/, "", t)
            o = gsub(/\[/, "[", t); c = gsub(/\]/, "]", t); return o - c
        }
        {
            stripped = $0; sub(/^[ \t]+/, "", stripped)
            if (skip > 0) { skip += depth(stripped); next }  # rest of a replaced multi-line array
            if (stripped ~ /^\[/) {                         # a section header
                hdr = stripped; sub(/[ \t]*(#.*)?$/, "", hdr)
                flush_section()
                insec = (hdr == sec)
                if (insec) seen = 1
                print; next
            }
            if (insec && stripped ~ ("^" key "[ \t]*=")) {
                v = stripped; sub(/^[^=]*=/, "", v); skip = depth(v)
                if (!done) { print line; done = 1 }                  # else: a duplicate key
                next
            }
            print
        }
        END {
            flush_section()
            if (!seen) { if (NR > 0) print ""; print sec; print line }
        }' "$CONF" > "$tmp"
    # Refuse to install a file that is no longer valid TOML (python3.11 ships tomllib).
    if command -v python3 >/dev/null && python3 -c 'import tomllib' 2>/dev/null &&
       ! python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$tmp" 2>/dev/null; then
        rm -f "$tmp"; log "could not merge $key into [$section] of $CONF; fix it by hand"; exit 1
    fi
    chmod 644 "$tmp"
    mv "$tmp" "$CONF"
}
before=$(sha256sum "$CONF")
set_key containers default_ulimits '["nofile=4096:4096", "nproc=4096:4096"]'
set_key engine runtime '"runc"'
set_key engine cgroup_manager '"cgroupfs"'
set_key engine events_logger '"file"'
[ "$before" = "$(sha256sum "$CONF")" ] || log "updated $CONF"

# Unqualified image names must never go to a registry (none is reachable here): no search list.
REG=/etc/containers/registries.conf.d/90-portal-no-search.conf
if [ -d /etc/containers/registries.conf.d ] && [ ! -e "$REG" ]; then
    printf '# written by portal setup-podman.sh: resolve short names locally only\nunqualified-search-registries = []\n' > "$REG"
fi

# 3. Optional API service ----------------------------------------------------------------------
if [ "$SERVICE" = 1 ]; then
    ping() { curl -fsS -m 3 --unix-socket "$SOCKET" http://d/v1.41/_ping 2>/dev/null | grep -qx OK; }
    # A service started from a directory since deleted (an earlier CI clone) answers pings but its
    # conmons fail on getcwd ("write child: broken pipe"): stop it so that it starts afresh below.
    for p in $(pgrep -f "podman system service --time=0 unix://$SOCKET" || true); do
        if [[ $(readlink "/proc/$p/cwd") == *" (deleted)" ]]; then
            log "service $p runs in a deleted directory; restarting it"
            kill -TERM "$p"; for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    if ping; then
        log "service already answering on $SOCKET"
    else
        mkdir -p "$(dirname "$SOCKET")"
        rm -f "$SOCKET"     # a stale socket from a dead service
        LOG=/var/log/portal-podman-service.log
        log "starting podman system service on $SOCKET (log $LOG)"
        # systemd is not PID 1 here: run it detached, in its own session, surviving our exit.
        # In / so that its conmons never depend on the caller's directory.
        (cd / && exec nohup setsid podman system service --time=0 "unix://$SOCKET") </dev/null >>"$LOG" 2>&1 &
        for _ in $(seq 1 150); do ping && break; sleep 0.2; done
        ping || { log "service did not answer on $SOCKET; see $LOG"; tail -n 20 "$LOG" >&2; exit 1; }
        log "service ready"
    fi
    echo "$SOCKET"
fi
