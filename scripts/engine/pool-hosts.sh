#!/usr/bin/env bash
# A pool of N container "hosts" on this one machine, for the test suite and the benchmarks: host<i>
# is a Podman API service (Docker-compatible, v1.41) running in its own network namespace with its
# own storage, reachable from the root namespace over TCP.
#
#   scripts/engine/pool-hosts.sh up [COUNT]           # COUNT hosts (default 2); prints "host<i> tcp://10.231.<i>.2:2375"
#   scripts/engine/pool-hosts.sh down [COUNT] [--purge]   # all hosts found unless COUNT; removes their
#                                     # containers (force); --purge also volumes, storage, the image store
#   scripts/engine/pool-hosts.sh stop-service <i>     # kill only host<i>'s API service (its containers keep running)
#   scripts/engine/pool-hosts.sh start-service <i>    # start it again
#   scripts/engine/pool-hosts.sh status               # one line per host; exit 1 when one is not answering
#
# host<i>: netns portal-host<i>; veth pv-host<i> 10.231.<i>.1/24 (root side) <-> eth0 10.231.<i>.2/24,
# default route via .1; storage /var/lib/portal-pool/host<i> + /run/portal-pool/host<i>; log
# /var/log/portal-pool/host<i>.log; pid file /run/portal-pool/host<i>/service.pid. Idempotent: `up`
# on a running pool only checks (well under a second). Needs root (re-runs itself through sudo).
#
# Images: localhost/portal-light:<V> and localhost/portal-jupyter:<V> (V from images/*/image.conf)
# come from the root Podman storage (built with build-image.sh when missing), are loaded ONCE into a
# shared store /var/lib/portal-pool/images (from build-image.sh's cached archive when its image id
# matches, else from a fresh `podman save`), and every host sees that store through a READ-ONLY bind
# mount (/run/portal-pool/images-ro, `--storage-opt overlay.imagestore=`). Measured: loading both
# images takes ~12 s once; `POST /images/load` into each host instead costs ~12 s and 540 MB per host.
# The read-only mount matters: with a writable shared store, `DELETE /images/...` on one host
# silently untagged the image for every host; now it answers 500 "cannot remove read-only image".
# Tagging on a host still works (the tag is kept in that host's own storage). The read-only mount is
# removed when the last host goes down. Timings (2 vCPUs, quiet box): `up` from nothing 10-12 s, `up`
# when up 0.4 s, `down` 3.5-6 s, stop-service 1.5 s (podman needs ~1.3 s to exit), start-service 0.2 s.
#
# Findings (podman 4.3.1, runc, cgroupfs):
# - Killing a host's service (stop-service) does NOT stop its containers: conmon keeps them, their
#   published ports keep answering, the API port refuses connections at once (no timeout). A container
#   that exits meanwhile is cleaned up by conmon's exit command (in the namespace); start-service then
#   shows it "exited" and the running ones "running". To simulate a hanging engine rather than a dead
#   one: kill -STOP "$(cat /run/portal-pool/host<i>/service.pid)" (start-service sends CONT).
# - A port published on HostIp 10.231.<i>.2 answers from the root namespace; one published on
#   127.0.0.1 is that namespace's loopback: reachable only inside it (nsenter), refused from root.
# - netavark runs iptables inside each namespace and turns on ip_forward there itself: no extra setup.
#   Shared with the root podman, by podman's design: the IPAM db /run/containers/networks (container
#   IPs in 10.88/16 are unique across all instances). Locks are NOT shared: each host has its own
#   containers.conf (CONTAINERS_CONF) with lock_type "file" under its own tmpdir. With the default shm
#   locks all instances shared /dev/shm/libpod_lock, lock numbers collided across instances, and a
#   host service killed holding one (stop-service) froze the root Podman for a minute.
# - Egress: traffic entering the root namespace from pv-host<i> may only go to local addresses or to
#   10.231.0.0/16 (policy rules pref 231/232, "unreachable" otherwise): nothing leaves the machine.
# - `ip netns exec` breaks podman (it remounts /sys: "no cgroup mount found"): nsenter --net= only.
set -euo pipefail

LIB=/var/lib/portal-pool RUN=/run/portal-pool LOGS=/var/log/portal-pool
CACHE=${PORTAL_IMAGE_CACHE:-/var/cache/portal-images}
HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE_DIRS=(portal-light portal-jupyter)
RO=$RUN/images-ro                          # read-only view of $LIB/images for the hosts

log() { echo "pool-hosts.sh: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null || die "must run as root"; exec sudo -- "$0" "$@"; }   # as_root

ip4() { echo "10.231.$1.2"; }
url() { echo "http://$(ip4 "$1"):2375"; }
ns() { echo "/run/netns/portal-host$1"; }
ping_host() { curl -fsS -m 2 "$(url "$1")/_ping" 2>/dev/null | grep -qx OK; }
flags() {   # sets F: host $1's own storage, state, network configs; the shared images read-only
    F=(--root "$LIB/host$1/storage" --runroot "$RUN/host$1/storage" --tmpdir "$RUN/host$1/libpod"
       --network-config-dir "$LIB/host$1/networks" --storage-opt "overlay.imagestore=$RO")
    # Its own configuration, with file locks under its own tmpdir: with the default shm locks every
    # podman on the machine shares /dev/shm/libpod_lock, lock numbers of different instances
    # collide, and a host service killed while holding one (stop-service) froze the machine's own
    # Podman for a minute at a time.
    export CONTAINERS_CONF=$LIB/host$1/containers.conf
}
host_conf() {   # writes host $1's containers.conf (the keys setup-podman.sh sets, plus file locks)
    mkdir -p "$LIB/host$1"
    cat >"$LIB/host$1/containers.conf" <<'TOML'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
TOML
}
# podman CLI for host $1, always inside its namespace (netavark must never tear down in the root one).
pod() { local i=$1; shift; flags "$i"; nsenter --net="$(ns "$i")" podman "${F[@]}" "$@"; }
store() { podman --root "$LIB/images" --runroot "$RUN/images/storage" --tmpdir "$RUN/images/libpod" "$@"; }
umount_under() {   # every mount below $1, deepest first (c/storage leaves its overlay bind mount)
    awk -v p="$1/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
existing_hosts() {
    for d in /run/netns/portal-host* "$LIB"/host* "$RUN"/host*; do
        n=${d##*host}; [[ $n =~ ^[0-9]+$ ]] && echo "$n"
    done | sort -un
}
check_index() { [[ ${1:-} =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 254 ] || die "bad host number '${1:-}' (1-254)"; }

net_up() {   # namespace, veth, addresses, route, egress rules; each step idempotent
    local i=$1 n; n=$(ns "$1")
    [ -e "$n" ] || ip netns add "portal-host$i"
    if ! nsenter --net="$n" ip link show eth0 >/dev/null 2>&1; then
        ip link del "pv-host$i" 2>/dev/null || true
        ip link add "pv-host$i" type veth peer name eth0 netns "portal-host$i"
    fi
    ip addr replace "10.231.$i.1/24" dev "pv-host$i"; ip link set "pv-host$i" up
    nsenter --net="$n" sh -ec "ip link set lo up; ip addr replace $(ip4 "$i")/24 dev eth0
        ip link set eth0 up; ip route replace default via 10.231.$i.1"
    [ -n "$(ip rule show pref 231 iif "pv-host$i")" ] || ip rule add pref 231 iif "pv-host$i" to 10.231.0.0/16 lookup main
    [ -n "$(ip rule show pref 232 iif "pv-host$i")" ] || ip rule add pref 232 iif "pv-host$i" unreachable
}
net_down() {
    local i=$1
    while ip rule del pref 231 iif "pv-host$i" to 10.231.0.0/16 lookup main 2>/dev/null; do :; done
    while ip rule del pref 232 iif "pv-host$i" unreachable 2>/dev/null; do :; done
    ip link del "pv-host$i" 2>/dev/null || true
    [ ! -e "$(ns "$i")" ] || ip netns del "portal-host$i"
}

service_pid() {   # the pid in the pid file, if it is still this host's service
    local p; p=$(cat "$RUN/host$1/service.pid" 2>/dev/null) || return 1
    { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "system service --time=0 tcp://$(ip4 "$1"):2375" && echo "$p"
}
service_start() {
    local i=$1 p
    # A host from before file locks: stop it (its containers go) so that it starts afresh below.
    if [ ! -e "$LIB/host$i/containers.conf" ] && service_pid "$i" >/dev/null; then
        flags "$i"; pod "$i" rm -af -t 10 >/dev/null 2>&1 || true; service_stop "$i"
    fi
    # A service started from a directory since deleted (a CI clone) answers pings but cannot start
    # containers: conmon fails on getcwd ("write child: broken pipe"). Restart it.
    if p=$(service_pid "$i") && [[ $(readlink "/proc/$p/cwd") == *" (deleted)" ]]; then
        log "host$i: service $p runs in a deleted directory; restarting it"; service_stop "$i"
    fi
    ping_host "$i" && return 0
    if p=$(service_pid "$i"); then                 # alive but silent: stopped (-STOP) or still starting
        kill -CONT "$p"
        for _ in $(seq 1 50); do ping_host "$i" && return 0; sleep 0.2; done
        log "host$i: service $p does not answer; killing it"; kill -KILL "$p"; sleep 0.5
    fi
    # Storage made with shared shm locks is started afresh with file locks.
    if [ ! -e "$LIB/host$i/containers.conf" ]; then
        umount_under "$LIB/host$i"; umount_under "$RUN/host$i"
        rm -rf "$LIB/host$i/storage" "$RUN/host$i/storage" "$RUN/host$i/libpod"
    fi
    host_conf "$i"
    mkdir -p "$LIB/host$i/storage" "$LIB/host$i/networks" "$RUN/host$i" "$LOGS"; flags "$i"
    # A fresh graphroot would otherwise probe CNI (and warn) before choosing netavark.
    [ -s "$LIB/host$i/storage/defaultNetworkBackend" ] || printf netavark >"$LIB/host$i/storage/defaultNetworkBackend"
    # Detached, own session, in / (its conmons fail if the caller's directory goes away), no inherited
    # descriptor beyond 0-2 (a caller's pipe or socket held open by the service would keep the caller
    # waiting forever — Foundation's Process does exactly that); exec all the way down, so $! is
    # podman's pid.
    (
        cd /
        for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
        exec nohup setsid nsenter --net="$(ns "$i")" podman "${F[@]}" system service --time=0 "tcp://$(ip4 "$i"):2375"
    ) </dev/null >>"$LOGS/host$i.log" 2>&1 &
    echo $! >"$RUN/host$i/service.pid"
    for _ in $(seq 1 150); do ping_host "$i" && return 0; sleep 0.1; done
    tail -n 20 "$LOGS/host$i.log" >&2; die "host$i: service did not answer on $(url "$i")"
}
service_stop() {
    local i=$1 p
    p=$(service_pid "$i") || return 0
    kill -TERM "$p"; kill -CONT "$p" 2>/dev/null || true       # CONT: it may have been stopped
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    rm -f "$RUN/host$i/service.pid"
}

ensure_ro_mount() {
    mkdir -p "$LIB/images" "$RUN/images" "$RO"
    mountpoint -q "$RO" || { mount --bind "$LIB/images" "$RO"; mount -o remount,bind,ro "$RO"; }
}
ensure_images() {   # the shared store holds the same image ids as the root storage
    local d ver ref want have archive manifest
    ensure_ro_mount
    [ -s "$LIB/images/defaultNetworkBackend" ] || printf netavark >"$LIB/images/defaultNetworkBackend"
    REFS=()
    for d in "${IMAGE_DIRS[@]}"; do
        ver=$(sed -n 's/^VERSION=//p' "$HERE/../../images/$d/image.conf"); ref=localhost/$d:$ver; REFS+=("$ref")
        want=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null) ||
            { log "building $ref"; "$HERE/build-image.sh" --image "$d" >/dev/null 8>&-
              want=$(podman image inspect --format '{{.Id}}' "$ref"); }
        have=$(store image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
        [ "$have" != "$want" ] || continue
        archive=$CACHE/$d-$ver.docker.tar
        manifest=$(tar -xOf "$archive" manifest.json 2>/dev/null || true)      # docker-archive: Config = <id>.json
        if [[ $manifest != *"\"Config\":\"$want.json\""* ]]; then
            log "saving $ref to $archive"; mkdir -p "$CACHE"
            flock "$CACHE/.lock" sh -c 'podman save -q --format docker-archive -o "$1.tmp" "$2" && mv -f "$1.tmp" "$1"' - "$archive" "$ref"
        fi
        log "loading $ref into the shared image store"
        store load -q -i "$archive" >/dev/null
        store tag "$want" "$ref"
    done
}

cmd=${1:-}; shift || true
PURGE=0; ARGS=()
for a in "$@"; do case "$a" in --purge) PURGE=1 ;; -h|--help) cmd=help ;; *) ARGS+=("$a") ;; esac; done
mkdir -p "$RUN"
case "$cmd" in up|down|start-service|stop-service) exec 8>"$RUN/.lock"; flock 8 ;; esac

case "$cmd" in
up)
    COUNT=${ARGS[0]:-2}; check_index "$COUNT"
    ensure_images
    for i in $(seq 1 "$COUNT"); do net_up "$i"; service_start "$i"; done
    for i in $(seq 1 "$COUNT"); do
        for ref in "${REFS[@]}"; do curl -fsS -m 5 -o /dev/null "$(url "$i")/v1.41/images/$ref/json" || die "host$i does not see $ref"; done
        echo "host$i tcp://$(ip4 "$i"):2375"
    done ;;
down)
    if [ ${#ARGS[@]} -gt 0 ]; then check_index "${ARGS[0]}"; HOSTS=$(seq 1 "${ARGS[0]}"); else HOSTS=$(existing_hosts); fi
    for i in $HOSTS; do
        if [ -d "$LIB/host$i/storage" ]; then
            ensure_ro_mount; net_up "$i"            # removal tears networking down in the namespace
            pod "$i" pod rm -af >/dev/null 2>&1 || true
            pod "$i" rm -af -t 0 >/dev/null || log "host$i: removing containers failed"
            [ "$PURGE" = 0 ] || pod "$i" volume rm -af >/dev/null || true   # frees their shm locks
        fi
        service_stop "$i"
        if pgrep -f "conmon .*--exit-dir $RUN/host$i/libpod/exits" >/dev/null; then
            log "host$i: killing stray conmon processes"; pkill -KILL -f "conmon .*--exit-dir $RUN/host$i/libpod/exits" || true
        fi
        net_down "$i"
        umount_under "$LIB/host$i"; umount_under "$RUN/host$i"
        [ "$PURGE" = 0 ] || rm -rf "$LIB/host$i" "$RUN/host$i" "$LOGS/host$i.log"
        log "host$i down"
    done
    if ! ls /run/netns/portal-host* >/dev/null 2>&1; then
        ! mountpoint -q "$RO" || umount "$RO"
        if [ "$PURGE" = 1 ] && ! ls -d "$LIB"/host* >/dev/null 2>&1; then
            umount_under "$LIB/images"; rm -rf "$LIB/images" "$RUN/images" "$RO"
        fi
    fi ;;
stop-service) check_index "${ARGS[0]:-}"; service_stop "${ARGS[0]}" ;;
start-service) check_index "${ARGS[0]:-}"; i=${ARGS[0]}
    ensure_ro_mount; net_up "$i"; service_start "$i"; echo "host$i tcp://$(ip4 "$i"):2375" ;;
status)
    rc=0
    for i in $(existing_hosts); do
        line="host$i tcp://$(ip4 "$i"):2375"
        if [ ! -e "$(ns "$i")" ]; then echo "$line down (storage kept)"; continue; fi
        if ! ping_host "$i"; then echo "$line NOT ANSWERING (pid=$(service_pid "$i" || echo none))"; rc=1; continue; fi
        c=$(curl -fsS -m 5 "$(url "$i")/v1.41/containers/json?all=1" |
            python3 -c 'import json,sys; c=json.load(sys.stdin); print(sum(x["State"]=="running" for x in c), len(c))')
        echo "$line up pid=$(service_pid "$i" || echo ?) containers(running/all)=${c/ //}"
    done
    exit "$rc" ;;
help) sed -n '2,11p' "$0" ;;
*) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
