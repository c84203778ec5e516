#!/usr/bin/env bash
# The test command (README "Run every test"): installs what the tests need on Debian 12 (PostgreSQL
# server programs, Python with oauthlib and lti for independently signed launches, Podman with its
# API service, the portal's Jupyter and light images, and a pool of two Podman hosts in network
# namespaces — scripts/engine/pool-hosts.sh, left up for the next run), starts a throwaway PostgreSQL on loopback, and runs
# every test with `swift test`. Safe to run again; the
# Python tools are cached under $PORTAL_TEST_CACHE (default /var/cache/portal-test).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${PORTAL_TEST_CACHE:-/var/cache/portal-test}
PG_PORT=${PORTAL_TEST_PG_PORT:-54329}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

# 1. System packages.
need=()
pg_bin >/dev/null || need+=(postgresql)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v runuser >/dev/null || need+=(util-linux)
# A real browser for the pages and JupyterLab tests (Selenium drives Debian's chromium).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]}"
    as_root apt-get update -qq
    # Do not let the package start a system cluster: the tests start their own.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
PG_BIN=$(pg_bin)

# 2. Python tools independent of our code: LTI signers (oauthlib, lti), a WebSocket client, Selenium.
if ! "$CACHE/venv/bin/python" -c 'import oauthlib, lti, websockets, selenium' 2>/dev/null; then
    echo "test.sh: creating $CACHE/venv (oauthlib, lti, websockets, selenium)"
    as_root mkdir -p "$CACHE"
    as_root python3 -m venv "$CACHE/venv"
    as_root "$CACHE/venv/bin/pip" install -q --disable-pip-version-check -r Tests/tools/requirements.txt
fi

# 3. A container engine (Podman's Docker-compatible API service) and the Jupyter image the
#    environment tests run (built once without any registry, then cached).
ENGINE_SOCKET=${PORTAL_TEST_ENGINE_SOCKET:-/run/podman/podman.sock}
as_root scripts/engine/setup-podman.sh --service "$ENGINE_SOCKET" >/dev/null
as_root scripts/engine/build-image.sh >/dev/null
as_root scripts/engine/build-image.sh --image light >/dev/null
# A pool of two hosts: Podman API services in their own network namespaces (the pool tests).
POOL=$(as_root scripts/engine/pool-hosts.sh up 2 | awk '{printf "%s%s=%s", sep, $1, $2; sep=" "}')
# The sandboxed process engine: bubblewrap and a jupyter-server virtualenv.
PROCESS_VENV=${PORTAL_TEST_PROCESS_VENV:-/opt/portal/jupyter-venv}
as_root scripts/engine/setup-process-engine.sh "$PROCESS_VENV" >/dev/null

# 4. A throwaway PostgreSQL on 127.0.0.1:$PG_PORT (PostgreSQL refuses to run as root).
PGDATA=$(mktemp -d /tmp/portal-test-pg.XXXXXX)
chmod 755 "$PGDATA"
run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown nobody "$PGDATA"
cleanup() {
    run_pg "$PG_BIN/pg_ctl" -D "$PGDATA/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA"
}
trap cleanup EXIT
run_pg "$PG_BIN/initdb" -D "$PGDATA/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$PGDATA/data" -l "$PGDATA/log" -w -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PGDATA -c fsync=off -c max_connections=300" start >/dev/null

export PORTAL_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
export PORTAL_TEST_PYTHON="$CACHE/venv/bin/python"
export PORTAL_TEST_PG_BIN="$PG_BIN"
export PORTAL_TEST_ENGINE="unix://$ENGINE_SOCKET"
export PORTAL_TEST_IMAGE=localhost/portal-jupyter:1
export PORTAL_TEST_PROCESS_VENV="$PROCESS_VENV"
export PORTAL_TEST_POOL="$POOL"
# Every test that needs a real component must run: a missing one fails instead of skipping.
export PORTAL_TEST_REQUIRE_ALL=1

# 5. Build (the integration tests start the real `portal` binary) and test.
swift build --build-tests
swift test --skip-build "$@"
