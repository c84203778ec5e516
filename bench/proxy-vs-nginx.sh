#!/usr/bin/env bash
# The portal's proxy against nginx: the same fast upstream reached three ways in one run,
#   direct   wrk → the environment's published port (no proxy at all: the baseline)
#   nginx    wrk → nginx (Debian package, a JupyterHub-style reverse-proxy config: upstream block
#            with keepalive 32, HTTP/1.1, Connection "" unless upgrading, WebSocket upgrade) → upstream
#   portal   wrk → the portal's /user/<user>/<course>/… proxy, with the student's session cookie → upstream
# The upstream is a real environment started BY THE PORTAL from the light profile
# (bench/profiles/light.yaml: nginx static files and a WebSocket echo in localhost/portal-light,
# one CPU), so the proxies are measured, not Jupyter. For each leg, after a short warm-up:
#   small    wrk --latency on <base> (~100-byte page): req/s, p50, p99
#   one conn the same with one connection (-t1 -c1): latency with nothing queued, so the p50/p99
#            differences to direct are what a hop costs, not how saturated it is
#   1 MiB    wrk --latency on <base>1mb.bin: req/s, MiB/s, p99
#   ws       WebSocket echo round trips on <base>echo (bench/proxy_bench.py, `websockets` client):
#            one connection doing sequential round trips (rt/s, p50, p99), then BENCH_WS_CONNECTIONS
#            connections at once (rt/s)
# All legs share the same 2-core machine (wrk, proxy, upstream and client all compete the same way)
# and the same wrk threads/connections/duration. Legs run one after the other, never at once.
#
#   swift build -c release --product portal
#   bench/proxy-vs-nginx.sh            # about 3 minutes
#
# Output (stdout): a table, the p99 latency each proxy adds to direct, the portal/nginx ratios and,
# as the last line, `ratio: X` = portal small-response req/s ÷ nginx small-response req/s
# (`ratio: n/a` when the portal leg could not run, e.g. a portal without the proxy answers 404 on
# /user/…; the other legs still run). Progress goes to stderr.
#
# Needs root. Installs what is missing: wrk and nginx (apt, nginx never started as a service),
# Podman and its API service (scripts/engine/setup-podman.sh --service), the light image
# (scripts/engine/build-image.sh --image light, cached), the bench venv (bench/requirements.txt:
# oauthlib signs the launch, websockets + uvloop for the echo client).
# Environment:
#   PORTAL_BIN               the portal (default .build/release/portal); never built by this script
#   ENGINE_SOCKET            Podman/Docker API socket (/run/podman/podman.sock)
#   NGINX_BIN                nginx executable (/usr/sbin/nginx)
#   NGINX_WORKERS            nginx worker_processes (auto = one per core)
#   BENCH_LEGS               "direct nginx portal" (default); any subset, in that order
#   BENCH_THREADS            wrk threads (2)
#   BENCH_CONNECTIONS        wrk connections for small responses (32)
#   BENCH_BIG_CONNECTIONS    wrk connections for 1 MiB responses (BENCH_CONNECTIONS)
#   BENCH_DURATION           seconds per wrk run (10)
#   BENCH_WARMUP             seconds of unmeasured wrk before each leg (2)
#   BENCH_LAT_DURATION       seconds of the one-connection run (5)
#   BENCH_WS_DURATION        seconds per WebSocket run (5)
#   BENCH_WS_CONNECTIONS     WebSocket connections in the parallel run (8)
#   BENCH_WS_SIZE            WebSocket message bytes (64, text)
#   BENCH_MAX_BUSY           before each leg, wait until at most this % of CPU is busy (15) ...
#   BENCH_QUIET_WAIT         ... for at most this many seconds (120), then warn and go on
#   BENCH_VENV               Python venv (/var/cache/portal-bench/venv, else bench/.venv)
#   BENCH_KEEP=1             keep the scratch directory (configs, logs, wrk outputs, results.jsonl)
#   BENCH_RESULTS=FILE       also copy the results (JSON lines, one per leg and test) to FILE
#   BENCH_HOLD=FILE          once everything is up, write the direct/nginx/portal URLs, the cookie
#                            and the portal's pid to FILE and wait until FILE is removed (for perf,
#                            strace or wrk by hand), then run the legs as usual
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

PORTAL_BIN=${PORTAL_BIN:-.build/release/portal}
SOCKET=${ENGINE_SOCKET:-/run/podman/podman.sock}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
LEGS=${BENCH_LEGS:-direct nginx portal}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
BIG_CONNS=${BENCH_BIG_CONNECTIONS:-$CONNS}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
LAT_DURATION=${BENCH_LAT_DURATION:-5}
WS_DURATION=${BENCH_WS_DURATION:-5}
WS_CONNS=${BENCH_WS_CONNECTIONS:-8}
WS_SIZE=${BENCH_WS_SIZE:-64}
MAX_BUSY=${BENCH_MAX_BUSY:-15}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
LTI_KEY=bench
LTI_SECRET=bench-secret

BENCH_TAG=proxy-bench
. "$HERE/common.sh"
want() { [[ " $LEGS " == *" $1 "* ]]; }

# ------------------------------------------------------------------------------ prerequisites
[[ $(id -u) == 0 ]] || die "run as root (Podman's API socket, apt for wrk and nginx)"
[[ -x $PORTAL_BIN ]] || die "no portal at '$PORTAL_BIN' (cwd $ROOT): build it first (swift build -c release --product portal) or set PORTAL_BIN.
    The upstream is an environment the portal starts, so every leg needs it."
PORTAL_BIN=$(cd "$(dirname "$PORTAL_BIN")" && pwd)/$(basename "$PORTAL_BIN")

command -v wrk >/dev/null || apt_install wrk
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
if want nginx && [[ ! -x $NGINX_BIN ]]; then
    apt_install nginx
    [[ -x $NGINX_BIN ]] || die "nginx is not installed at $NGINX_BIN (apt-get install nginx)"
fi
command -v psql >/dev/null || apt_install postgresql-client
command -v curl >/dev/null || apt_install curl

bench_venv
HELPER=$HERE/proxy_bench.py

scripts/engine/setup-podman.sh --service "$SOCKET" >/dev/null
IMAGE=$(scripts/engine/build-image.sh --image light | tail -n1)
log "upstream image $IMAGE"

# ------------------------------------------------------------------------------ scratch + cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/proxy-bench.XXXXXX")
chmod 755 "$WORK" # the embedded PostgreSQL and nginx's workers run as other users
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
PORTAL_PID="" NGINX_PID="" CONTAINERS="" VOLUMES=""

stop_pid() { # name pid: TERM, then KILL after 30 s
    local name=$1 pid=$2
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop within 30 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
}
psql_portal() { psql -X -q -t -A -F ' ' -h "$WORK/data/run" -U portal portal -c "$1"; }
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid nginx "$NGINX_PID"
    # The environments this run started (containers outlive the portal): noted while it runs.
    if [[ -n $PORTAL_PID ]] && kill -0 "$PORTAL_PID" 2>/dev/null; then
        while read -r c v; do CONTAINERS+=" $c" VOLUMES+=" $v"; done < <(psql_portal "SELECT container_name, home_volume FROM environments" 2>/dev/null || true)
    fi
    stop_pid portal "$PORTAL_PID"
    local pidfile ppid
    while IFS= read -r pidfile; do # an embedded PostgreSQL the portal left behind
        ppid=$(head -n1 "$pidfile" 2>/dev/null || true)
        if [[ $ppid =~ ^[0-9]+$ ]] && kill -0 "$ppid" 2>/dev/null; then
            kill -INT "$ppid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
        fi
    done < <(find "$WORK" -name postmaster.pid 2>/dev/null)
    for c in $CONTAINERS; do curl -s -o /dev/null -X DELETE --unix-socket "$SOCKET" "http://d/v1.41/containers/$c?force=true" || true; done
    for v in $VOLUMES; do curl -s -o /dev/null -X DELETE --unix-socket "$SOCKET" "http://d/v1.41/volumes/$v?force=true" || true; done
    if [[ -n ${BENCH_RESULTS:-} && -s $RESULTS ]]; then cp "$RESULTS" "$BENCH_RESULTS"; fi
    if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then log "scratch directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------ the portal + the upstream
PORT=$("$PY" "$HERE/lti_bench.py" free-port)
mkdir -p "$WORK/profiles"
sed -E "s|^image:.*|image: $IMAGE|" "$HERE/profiles/light.yaml" >"$WORK/profiles/light.yaml"
cat >"$WORK/portal.yaml" <<YAML
listen: 127.0.0.1:$PORT
public_url: http://127.0.0.1:$PORT
data_dir: $WORK/data
log_level: warning
lti:
  consumers:
    - key: $LTI_KEY
      secret: $LTI_SECRET
environments:
  engine: docker
  endpoint: unix://$SOCKET
  profiles_dir: $WORK/profiles
  default_profile: light
YAML
log "starting the portal on 127.0.0.1:$PORT (embedded PostgreSQL under $WORK/data)"
env -u PORTAL_CONFIG -u PORTAL_DATABASE_URL -u PORTAL_DATABASE_URL_FILE -u PORTAL_DATA_DIR -u PORTAL_LISTEN \
    -u PORTAL_PUBLIC_URL -u PORTAL_LOG_LEVEL -u PORTAL_SECRET_KEY -u PORTAL_SECRET_KEY_FILE \
    "$PORTAL_BIN" serve --config "$WORK/portal.yaml" >"$WORK/portal.log" 2>&1 &
PORTAL_PID=$!
for i in $(seq 1 900); do
    kill -0 "$PORTAL_PID" 2>/dev/null || { tail -n 30 "$WORK/portal.log" >&2; die "the portal exited during start-up"; }
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/healthz" && break
    [[ $i == 900 ]] && { tail -n 30 "$WORK/portal.log" >&2; die "the portal did not answer /healthz within 180 s"; }
    sleep 0.2
done

log "one LTI launch into the light profile; waiting for the environment"
COOKIE=$("$PY" "$HELPER" launch "http://127.0.0.1:$PORT/lti/launch" "$LTI_KEY" "$LTI_SECRET") ||
    { tail -n 30 "$WORK/portal.log" >&2; die "no ready environment"; }
read -r UPSTREAM BASE < <(psql_portal "SELECT upstream, base_path FROM environments WHERE state = 'ready' ORDER BY id DESC LIMIT 1")
[[ $UPSTREAM =~ ^[0-9.]+:[0-9]+$ && $BASE == /*/ ]] || die "no ready environment in the database (upstream '$UPSTREAM', base path '$BASE')"
log "environment ready: upstream $UPSTREAM, base path $BASE"
EXPECTED=$(curl -sf --max-time 5 "http://$UPSTREAM$BASE") || die "the upstream does not answer GET $BASE directly"

# ------------------------------------------------------------------------------ nginx
NGINX_PORT=""
if want nginx; then
    NGINX_PORT=$("$PY" "$HERE/lti_bench.py" free-port)
    N=$WORK/nginx
    mkdir -p "$N"
    cat >"$N/nginx.conf" <<NGINX
# The comparison reverse proxy: what a JupyterHub-style deployment puts in front of Jupyter.
daemon off;
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 16384;
pid $N/nginx.pid;
error_log $N/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $N/client_body;
    proxy_temp_path $N/proxy;
    fastcgi_temp_path $N/fastcgi;
    uwsgi_temp_path $N/uwsgi;
    scgi_temp_path $N/scgi;
    # "Connection: upgrade" for WebSocket handshakes; for everything else no Connection header at
    # all (the same as proxy_set_header Connection ""), so upstream connections are kept alive.
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      '';
    }
    upstream environment {
        server $UPSTREAM;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://environment;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
NGINX
    "$NGINX_BIN" -t -q -e "$N/error.log" -p "$N/" -c "$N/nginx.conf" >&2 || die "nginx refuses $N/nginx.conf ($(tail -n 3 "$N/error.log"))"
    "$NGINX_BIN" -e "$N/error.log" -p "$N/" -c "$N/nginx.conf" >"$N/stdout.log" 2>&1 &
    NGINX_PID=$!
    for i in $(seq 1 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(tail -n 5 "$N/error.log")"
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$NGINX_PORT/" && break
        [[ $i == 50 ]] && die "nginx does not answer on 127.0.0.1:$NGINX_PORT"
        sleep 0.1
    done
    log "nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///') on 127.0.0.1:$NGINX_PORT (pid $NGINX_PID, $NGINX_WORKERS workers)"
fi

# ------------------------------------------------------------------------------ the legs
record() { # leg test json…
    local leg=$1 test=$2 json=$3
    "$PY" -c 'import json, sys; r = json.loads(sys.argv[3]); r.update(leg=sys.argv[1], test=sys.argv[2]); print(json.dumps(r))' \
        "$leg" "$test" "$json" >>"$RESULTS"
}
skip() { # leg reason: every test of the leg is reported as skipped
    local t
    log "$1: SKIPPED: $2"
    for t in small lat big ws1 wsn; do
        record "$1" "$t" "$("$PY" -c 'import json, sys; print(json.dumps({"skipped": sys.argv[1]}))' "$2")"
    done
}
run_wrk() { # leg test url connections threads seconds
    local out=$WORK/wrk-$1-$2.txt
    wrk -t"$5" -c"$4" -d"${6}s" --latency -H "Cookie: portal_session=$COOKIE" "$3" >"$out" 2>&1 || true
    record "$1" "$2" "$("$PY" "$HELPER" wrk "$out" --connections "$4")"
}
run_ws() { # leg test host:port connections (a browser sends Origin; here it is the same origin)
    local json
    json=$("$PY" "$HELPER" ws "ws://$3${BASE}echo" --seconds "$WS_DURATION" --connections "$4" --size "$WS_SIZE" \
        --header "Cookie: portal_session=$COOKIE" --header "Origin: http://$3" 2>>"$WORK/ws.log") || true
    [[ -n $json ]] || json='{"errors": 1, "error": "the WebSocket client failed (see ws.log)"}'
    record "$1" "$2" "$json"
}

if [[ -n ${BENCH_HOLD:-} ]]; then
    # Manual measurement (perf, strace): the three URLs and the cookie, held until the file goes.
    printf 'direct=http://%s%s\nnginx=http://127.0.0.1:%s%s\nportal=http://127.0.0.1:%s%s\ncookie=portal_session=%s\nportal_pid=%s\n' \
        "$UPSTREAM" "$BASE" "$NGINX_PORT" "$BASE" "$PORT" "$BASE" "$COOKIE" "${PORTAL_PID:-}" >"$BENCH_HOLD"
    log "holding: the URLs are in $BENCH_HOLD; remove it to go on"
    while [[ -e $BENCH_HOLD ]]; do sleep 1; done
fi

for LEG in direct nginx portal; do
    want "$LEG" || continue
    case $LEG in
        direct) HOSTPORT=$UPSTREAM ;;
        nginx) HOSTPORT=127.0.0.1:$NGINX_PORT ;;
        portal) HOSTPORT=127.0.0.1:$PORT ;;
    esac
    URL=http://$HOSTPORT$BASE
    # Does this leg reach the upstream (same body as the upstream's own)?
    status=$(curl -s -o "$WORK/probe-$LEG" -w '%{http_code}' --max-time 5 -H "Cookie: portal_session=$COOKIE" "$URL" || true)
    if [[ $status == 404 && $LEG == portal ]]; then
        skip portal "the portal answers 404 for $BASE: it does not proxy /user/… yet"
        continue
    elif [[ $status != 200 ]] || [[ $(cat "$WORK/probe-$LEG") != "$EXPECTED" ]]; then
        skip "$LEG" "GET $URL answered $status$([[ $status == 200 ]] && echo ' with another body than the upstream gives')"
        continue
    fi
    busy=$("$PY" "$HERE/lti_bench.py" quiet --max-busy "$MAX_BUSY" --max-wait "$QUIET_WAIT")
    record "$LEG" quiet "{\"busy_pct\": ${busy:-0}}"
    log "$LEG: warm-up ${WARMUP}s, small responses (${DURATION}s), one connection (${LAT_DURATION}s), 1 MiB responses (${DURATION}s), WebSocket echo (${WS_DURATION}s x 2)"
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -H "Cookie: portal_session=$COOKIE" "$URL" >/dev/null 2>&1 || true
    run_wrk "$LEG" small "$URL" "$CONNS" "$THREADS" "$DURATION"
    run_wrk "$LEG" lat "$URL" 1 1 "$LAT_DURATION"
    run_wrk "$LEG" big "${URL}1mb.bin" "$BIG_CONNS" "$THREADS" "$DURATION"
    run_ws "$LEG" ws1 "$HOSTPORT" 1
    run_ws "$LEG" wsn "$HOSTPORT" "$WS_CONNS"
    log "$LEG: $("$PY" "$HELPER" brief "$RESULTS" "$LEG")"
done

printf 'proxy benchmark: wrk -t%s -c%s (1 MiB: -c%s) -d%ss, one connection -t1 -c1 -d%ss, WebSocket %ss with 1 and %s connections, %s-byte messages; upstream %s (%s), nginx worker_processes %s\n' \
    "$THREADS" "$CONNS" "$BIG_CONNS" "$DURATION" "$LAT_DURATION" "$WS_DURATION" "$WS_CONNS" "$WS_SIZE" "$IMAGE" "$UPSTREAM" "$NGINX_WORKERS"
"$PY" "$HELPER" report "$RESULTS"
