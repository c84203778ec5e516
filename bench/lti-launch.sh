#!/usr/bin/env bash
# LTI 1.1 launch benchmark: the portal against JupyterHub 6 + jupyterhub-ltiauthenticator.
#
# Both servers get the same workload: distinct LTI 1.1 launches, pre-signed by oauthlib for that
# server's exact launch URL (fresh nonce each, timestamp = time of signing), replayed once each by
# wrk through bench/lti-launch.lua. Scenarios:
#   first-time  every launch is a user_id the server has never seen
#   returning   a pool of BENCH_POOL user_ids, each launched once beforehand (not measured); the
#               measured launches reuse those users with fresh nonces
# each at every connection count in BENCH_CONNECTIONS (default 32 and 128). Servers are measured
# one after the other, never at the same time. See bench/README.md.
#
# Output (stdout): one table row per (server, scenario, connections), the portal/JupyterHub
# ratios, and as the last line `ratio: X` = portal first-time launches/s / JupyterHub first-time
# launches/s at BENCH_RATIO_CONNECTIONS (128) connections. Progress goes to stderr.
#
# Environment:
#   PORTAL_BIN                 portal executable (default .build/release/portal, relative to the repo)
#   PORTAL_BENCH_DATABASE_URL  external PostgreSQL for the portal; unset = portal's embedded cluster
#   BENCH_SERVERS              "portal jupyterhub" (default); "jupyterhub" or "portal" runs one half
#   BENCH_CONNECTIONS          "32 128"
#   BENCH_DURATION             seconds per measured wrk run (default 10, at most 15)
#   BENCH_THREADS              wrk threads (default 2)
#   BENCH_POOL                 returning-student pool size (default 1000)
#   BENCH_MARGIN               bodies signed = calibrated rate x duration x margin (default 2;
#                              x3 for the returning scenario); a run that still runs out is
#                              redone once with 4x as many bodies
#   BENCH_RATIO_CONNECTIONS    connection count of the headline ratio (default 128)
#   BENCH_MAX_BUSY             before each run, wait until at most this % of CPU is busy with
#                              other work (default 15) ...
#   BENCH_QUIET_WAIT           ... for at most this many seconds (default 120), then warn and go on
#   BENCH_RETRIES              redo a run this many times (default 1) if other work took more than
#                              BENCH_MAX_BUSY % of the CPU during it; rows still disturbed get a "!"
#   BENCH_VENV                 Python venv (default /var/cache/portal-bench/venv if writable,
#                              else bench/.venv); created and filled from bench/requirements.txt
#   BENCH_KEEP=1               keep the scratch directory (logs, bodies, results.jsonl)
#   BENCH_RESULTS=FILE         also copy the raw per-run results (JSON lines) to FILE
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

PORTAL_BIN=${PORTAL_BIN:-.build/release/portal}
BENCH_SERVERS=${BENCH_SERVERS:-portal jupyterhub}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-32 128}
BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_POOL=${BENCH_POOL:-1000}
BENCH_MARGIN=${BENCH_MARGIN:-2}
BENCH_RATIO_CONNECTIONS=${BENCH_RATIO_CONNECTIONS:-128}
BENCH_MAX_BUSY=${BENCH_MAX_BUSY:-15}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
BENCH_RETRIES=${BENCH_RETRIES:-1}
BENCH_CALIBRATE_SECONDS=3
LTI_KEY=bench
LTI_SECRET=bench-secret

BENCH_TAG=lti-bench
. "$HERE/common.sh"

if (( BENCH_DURATION > 15 )); then die "BENCH_DURATION must be at most 15 s (got $BENCH_DURATION)"; fi
if (( BENCH_DURATION < 2 )); then die "BENCH_DURATION must be at least 2 s"; fi

want() { [[ " $BENCH_SERVERS " == *" $1 "* ]]; }

# ------------------------------------------------------------------------------ prerequisites
if want portal; then
    if [[ ! -x $PORTAL_BIN ]]; then
        die "portal binary not found or not executable at '$PORTAL_BIN' (cwd $ROOT).
    Build it first (swift build -c release), or point PORTAL_BIN at it,
    or measure JupyterHub alone with BENCH_SERVERS=jupyterhub."
    fi
    PORTAL_BIN=$(cd "$(dirname "$PORTAL_BIN")" && pwd)/$(basename "$PORTAL_BIN")
fi

if ! command -v wrk >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then apt_install wrk; fi
    command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
fi
command -v curl >/dev/null || die "curl is not installed"

bench_venv
HELPER=$HERE/lti_bench.py

# ------------------------------------------------------------------------------ scratch + cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lti-bench.XXXXXX")
chmod 755 "$WORK" # a root portal's embedded PostgreSQL runs as another user and needs to get in
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
SERVER_PID=""
SERVER_NAME=""
SERVER_DIR=""

stop_server() {
    local pid=$SERVER_PID name=$SERVER_NAME dir=$SERVER_DIR
    SERVER_PID="" SERVER_DIR=""
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop within 30 s; killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    # The portal's embedded PostgreSQL is a daemon of its own (pg_ctl); if the portal left it
    # running, stop that postmaster too (it was started by this run, under this scratch dir).
    if [[ -n $dir ]]; then
        local pidfile ppid
        while IFS= read -r pidfile; do
            ppid=$(head -n1 "$pidfile" 2>/dev/null || true)
            if [[ $ppid =~ ^[0-9]+$ ]] && kill -0 "$ppid" 2>/dev/null; then
                log "stopping PostgreSQL left running by $name (pid $ppid)"
                kill -INT "$ppid" 2>/dev/null || true # fast shutdown
                for _ in $(seq 1 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
            fi
        done < <(find "$dir" -name postmaster.pid 2>/dev/null)
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    if [[ -n ${BENCH_RESULTS:-} && -s $RESULTS ]]; then cp "$RESULTS" "$BENCH_RESULTS"; fi
    if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
        log "scratch directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() { # name pid url timeout_s log
    local name=$1 pid=$2 url=$3 timeout=$4 logf=$5 i
    for ((i = 0; i < timeout * 5; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during start-up; last lines of $logf:"
            tail -n 40 "$logf" >&2 || true
            return 1
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]]; then
            return 0
        fi
        sleep 0.2
    done
    log "$name not ready at $url after ${timeout}s; last lines of $logf:"
    tail -n 40 "$logf" >&2 || true
    return 1
}

# ------------------------------------------------------------------------------ servers
start_portal() {
    local dir=$WORK/portal port
    mkdir -p "$dir/data"
    port=$("$PY" "$HELPER" free-port)
    {
        echo "listen: 127.0.0.1:$port"
        echo "public_url: http://127.0.0.1:$port"
        echo "data_dir: $dir/data"
        if [[ -n ${PORTAL_BENCH_DATABASE_URL:-} ]]; then
            echo "database:"
            echo "  url: $PORTAL_BENCH_DATABASE_URL"
        fi
        echo "log_level: warning"
        echo "lti:"
        echo "  consumers:"
        echo "    - key: $LTI_KEY"
        echo "      secret: $LTI_SECRET"
    } >"$dir/portal.yaml"
    log "starting portal on 127.0.0.1:$port ($([[ -n ${PORTAL_BENCH_DATABASE_URL:-} ]] && echo "external PostgreSQL" || echo "embedded PostgreSQL under $dir/data"))"
    # `serve` applies the migrations itself. It runs from the repository root so that it finds
    # ./Templates and ./Migrations, and without the PORTAL_* variables that would override the
    # config file. As root, its embedded PostgreSQL runs as the user portal-postgres, which must
    # be able to reach the data dir (hence the chmod of the scratch directory above).
    (cd "$ROOT" && exec env -u PORTAL_CONFIG -u PORTAL_DATABASE_URL -u PORTAL_DATABASE_URL_FILE \
        -u PORTAL_DATA_DIR -u PORTAL_LISTEN -u PORTAL_PUBLIC_URL -u PORTAL_LOG_LEVEL \
        -u PORTAL_SECRET_KEY -u PORTAL_SECRET_KEY_FILE -u "PORTAL_LTI_SECRET_${LTI_KEY^^}" \
        "$PORTAL_BIN" serve --config "$dir/portal.yaml") >"$dir/portal.log" 2>&1 &
    SERVER_PID=$! SERVER_NAME=portal SERVER_DIR=$dir
    wait_ready portal "$SERVER_PID" "http://127.0.0.1:$port/healthz" 180 "$dir/portal.log" ||
        die "portal did not start (config: $dir/portal.yaml)"
    BASE_URL=http://127.0.0.1:$port
    LAUNCH_PATH=/lti/launch
}

start_jupyterhub() {
    local dir=$WORK/jupyterhub port
    mkdir -p "$dir"
    port=$("$PY" "$HELPER" free-port)
    log "starting JupyterHub (hub port 127.0.0.1:$port, no proxy: see bench/jupyterhub_config.py)"
    (cd "$dir" && BENCH_JH_PORT=$port BENCH_JH_DIR=$dir BENCH_LTI_KEY=$LTI_KEY BENCH_LTI_SECRET=$LTI_SECRET \
        exec "$BENCH_VENV/bin/jupyterhub" -f "$HERE/jupyterhub_config.py") >"$dir/jupyterhub.log" 2>&1 &
    SERVER_PID=$! SERVER_NAME=jupyterhub SERVER_DIR=$dir
    wait_ready jupyterhub "$SERVER_PID" "http://127.0.0.1:$port/hub/health" 120 "$dir/jupyterhub.log" ||
        die "JupyterHub did not start"
    BASE_URL=http://127.0.0.1:$port
    LAUNCH_PATH=/hub/lti/launch
}

server_alive() { # dies with the server's log tail if the server under test has gone away
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$SERVER_NAME (pid $SERVER_PID) is no longer running; last lines of its log:"
        tail -n 40 "$SERVER_DIR"/*.log >&2 || true
        SERVER_PID="" # gone already; cleanup still stops any PostgreSQL it left behind
        die "$SERVER_NAME exited during the benchmark"
    fi
}

# ------------------------------------------------------------------------------ one wrk run
RUN=0
# run_wrk server scenario conns seconds count user_prefix pool_size kind
#   -> sets LAST_RATE, LAST_EXHAUSTED (bodies ran out), LAST_DISTURBED (other work took CPU)
run_wrk() {
    local server=$1 scenario=$2 conns=$3 secs=$4 count=$5 uprefix=$6 pool=$7 kind=$8
    RUN=$((RUN + 1))
    local bodies=$WORK/bodies-$RUN out=$WORK/wrk-$RUN.txt busy
    # Other work on this 2-core machine (a compiler...) skews everything: wait for quiet first.
    busy=$("$PY" "$HELPER" quiet --max-busy "$BENCH_MAX_BUSY" --max-wait "$BENCH_QUIET_WAIT")
    server_alive
    # Signed immediately before the run: ltiauthenticator accepts timestamps within +-30 s only.
    "$PY" "$HELPER" sign --url "$BASE_URL$LAUNCH_PATH" --key "$LTI_KEY" --secret "$LTI_SECRET" \
        --out "$bodies" --threads "$BENCH_THREADS" --count "$count" \
        --user-prefix "$uprefix" --pool-size "$pool"
    log "wrk: $server $scenario, $conns connections, ${secs}s, $count bodies"
    "$PY" "$HELPER" cpusnap >"$WORK/cpu-$RUN-before.json"
    wrk -t"$BENCH_THREADS" -c"$conns" -d"${secs}s" --timeout "$((secs + 5))s" --latency \
        -s "$HERE/lti-launch.lua" "$BASE_URL" -- "$bodies" "$LAUNCH_PATH" >"$out" 2>&1 ||
        { cat "$out" >&2; server_alive; die "wrk failed"; }
    "$PY" "$HELPER" cpusnap >"$WORK/cpu-$RUN-after.json"
    rm -f "$bodies".*
    server_alive
    read -r LAST_RATE LAST_EXHAUSTED LAST_DISTURBED < <("$PY" "$HELPER" record --wrk-output "$out" \
        --results "$RESULTS" --server "$server" --scenario "$scenario" --connections "$conns" \
        --kind "$kind" --background-busy "$busy" --max-busy "$BENCH_MAX_BUSY" \
        --cpu-before "$WORK/cpu-$RUN-before.json" --cpu-after "$WORK/cpu-$RUN-after.json" \
        --server-pid "$SERVER_PID")
    [[ -n $LAST_RATE ]] || die "could not read the results of wrk run $RUN ($out)"
}

bodies_for() { # rate extra_factor -> body count for one measured run
    "$PY" -c "import math,sys; r,m,f,d=map(float,sys.argv[1:]); print(max(2000, math.ceil(r*d*m*f) + 1000))" \
        "$1" "$BENCH_MARGIN" "$2" "$BENCH_DURATION"
}

measure() { # server scenario conns count user_prefix pool
    local server=$1 scenario=$2 conns=$3 count=$4 uprefix=$5 pool=$6 attempt users
    for attempt in 1 2 3; do
        # first-time: every attempt gets users never seen before; returning: the same pool
        if [[ $pool == 0 ]]; then users=$uprefix$attempt-; else users=$uprefix; fi
        run_wrk "$server" "$scenario" "$conns" "$BENCH_DURATION" "$count" "$users" "$pool" measure
        if [[ $LAST_EXHAUSTED == 1 ]]; then
            count=$((count * 4))
            log "bodies ran out; redoing this run with $count bodies"
        elif [[ $LAST_DISTURBED == 1 && $attempt -lt $((BENCH_RETRIES + 1)) ]]; then
            log "other work took CPU around this run; redoing it"
        else
            return 0
        fi
    done
}

bench_server() { # server
    local s=$1 tag
    tag=$(date +%s)
    # Calibration (also the warm-up): first-time launches at the highest connection count.
    local maxc=0 c
    for c in $BENCH_CONNECTIONS; do
        if ((c > maxc)); then maxc=$c; fi
    done
    run_wrk "$s" first-time "$maxc" "$BENCH_CALIBRATE_SECONDS" 20000 "cal-$tag-" 0 calibrate
    local rate=$LAST_RATE
    log "$s calibrated at ${rate} launches/s"
    if [[ $(printf '%.0f' "$rate") == 0 ]]; then
        tail -n 20 "$WORK/$s/"*.log >&2 || true
        die "$s accepted no launches during calibration"
    fi

    local n_first n_ret
    n_first=$(bodies_for "$rate" 1)
    n_ret=$(bodies_for "$rate" 3) # returning launches are cheaper: expect up to ~3x the rate

    for c in $BENCH_CONNECTIONS; do
        measure "$s" first-time "$c" "$n_first" "new-$tag-c$c-" 0
    done

    # Returning students: launch each pool user once (not measured), then measure.
    log "$s: launching the $BENCH_POOL returning students once (not measured)"
    "$PY" "$HELPER" warm --url "$BASE_URL$LAUNCH_PATH" --key "$LTI_KEY" --secret "$LTI_SECRET" \
        --user-prefix "pool-$tag-" --count "$BENCH_POOL" --concurrency 16 ||
        die "$s: warming the returning-student pool failed"
    for c in $BENCH_CONNECTIONS; do
        measure "$s" returning "$c" "$n_ret" "pool-$tag-" "$BENCH_POOL"
    done
}

log "scratch: $WORK; servers: $BENCH_SERVERS; connections: $BENCH_CONNECTIONS; ${BENCH_DURATION}s per run; $(nproc) cores"
for s in portal jupyterhub; do
    want "$s" || continue
    "start_$s"
    bench_server "$s"
    stop_server
done

"$PY" "$HELPER" report --results "$RESULTS" --ratio-connections "$BENCH_RATIO_CONNECTIONS" --max-busy "$BENCH_MAX_BUSY"
