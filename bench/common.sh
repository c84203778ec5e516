# Shared by the bench scripts (sourced, not run): logging, Debian installs that start no daemon,
# and the Python venv of bench/requirements.txt. Set BENCH_TAG and HERE (the bench directory) first.

log() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

apt_install() { # packages…, without starting any daemon they ship (nginx's service on port 80)
    local created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, created by portal bench/common.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created=1
    fi
    log "installing $* (Debian packages)"
    { apt-cache show "$@" >/dev/null 2>&1 || apt-get update -qq; } >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || true
    [[ $created == 0 ]] || rm -f /usr/sbin/policy-rc.d
}

# Sets PY to the Python of $BENCH_VENV (default /var/cache/portal-bench/venv, else bench/.venv),
# (re)creating it whenever bench/requirements.txt changed.
bench_venv() {
    if [[ -z ${BENCH_VENV:-} ]]; then
        if mkdir -p /var/cache/portal-bench 2>/dev/null && [[ -w /var/cache/portal-bench ]]; then
            BENCH_VENV=/var/cache/portal-bench/venv
        else
            BENCH_VENV=$HERE/.venv
        fi
    fi
    local hash
    hash=$(sha256sum "$HERE/requirements.txt" | cut -c1-16)
    if [[ ! -x $BENCH_VENV/bin/python || $(cat "$BENCH_VENV/.requirements" 2>/dev/null) != "$hash" ]]; then
        log "preparing Python venv $BENCH_VENV (PyPI: $(grep -v '^#' "$HERE/requirements.txt" | xargs))"
        python3 -m venv "$BENCH_VENV" >&2
        "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" >&2
        echo "$hash" >"$BENCH_VENV/.requirements"
    fi
    PY=$BENCH_VENV/bin/python
}
