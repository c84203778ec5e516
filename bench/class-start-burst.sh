#!/usr/bin/env bash
# A class starts: BURST_N (300) students of one course click the activity link within BURST_SECONDS
# (60 s), evenly spread (one launch every 200 ms), against one portal whose installation-wide cap
# is BURST_CAP (250) live environments, so the last launches are refused (429) by admission.
# Measured: launch → ready p50/p95/max, the launch POST's p50/p95, refused (429) and failed launches
# and other errors, and cap violations. Each launch is followed through /environment/status with its
# own session cookie until `ready` or `failed`, polled every BURST_POLL s as the landing page does;
# launch → ready is from the POST being sent to the environment's ready_at in the database (exact:
# the client and PostgreSQL share this machine's clock), and what the polling student saw (up to
# one poll later) is shown too. Every BURST_SAMPLE s (0.5) the engine is asked for this
# installation's containers (running + created) and the database for its live environments; a
# sample above the cap is a violation, and there must be none. Then, in the same run, the engine
# alone: the containers the portal admitted (min(N, CAP), at the same rate, each with its home
# volume, the same image, command, limits and published port) created, started and probed directly
# through the engine API, no portal — how much of launch → ready is the engine's.
#
# The environments run the light profile (bench/profiles/light.yaml, image localhost/portal-light:
# nginx answering the readiness probe under the environment's base path within milliseconds of
# starting), so the portal and the engine are measured, not Jupyter's start-up.
#
#   bench/class-start-burst.sh                       # builds .build-bench/release/portal first
#   BURST_N=100 BURST_SECONDS=20 BURST_CAP=80 bench/class-start-burst.sh
#
# Output (stdout): the table (portal and direct columns, portal/direct ratios), the errors, a
# timeline of the burst every 5 s (launches sent, 429s, environments by state in the database,
# containers on the engine, admissions waiting on the advisory lock), then `ratio: …` and, as the
# last line, `violations: N` (engine samples above the cap + database samples above the cap).
# Progress goes to stderr. Exit status 0 even with violations (read the last line); 1 when the
# benchmark itself could not run.
#
# Capacity. The cap under test is admission.max_running; nothing else may bind first. Without
# environments.hosts the host "local" gets this machine's capacity (2 cores, 24 GiB here) and the
# light profile asks for 1 CPU and 256 MiB, so placement would stop at 2 environments. The script
# therefore declares the one host `local` (this Podman socket) with cpu 400 and memory 200GiB:
# 250 × (1 CPU, 256 MiB) = 250 CPUs and 62.5 GiB requested fit, so every refusal is global_cap.
# The profile itself is left as it is (the same limits as bench/proxy-vs-nginx.sh uses), rather
# than shrunk to 0.1 CPU / 64 MiB: limits are cgroup ceilings, not reservations, and an idle nginx
# needs neither, so the machine is not actually overcommitted (about 30 MiB resident per
# environment: python echo server + nginx + conmon).
#
# Needs root, Podman's API service (scripts/engine/setup-podman.sh --service; started if it is not
# answering), psql (apt), the light image (scripts/engine/build-image.sh --image light: built or
# loaded from its cache when missing), the bench venv (bench/common.sh, bench/requirements.txt:
# oauthlib signs the launches). Everything it creates is removed on exit, Ctrl-C included: the
# portal and its embedded PostgreSQL are stopped, every container and volume labelled with this
# portal's installation id (portal.installation=<id>) or this run's direct label
# (portal.bench=burst-<run>) is force-removed through the API, and the scratch directory goes.
# Other containers on the engine are never touched.
#
# Environment:
#   PORTAL_BIN       the portal to run; when unset the script runs
#                    `swift build -c release --product portal --scratch-path .build-bench`
#                    (its own build directory, so it never waits on or disturbs .build) and uses
#                    .build-bench/release/portal; BURST_BUILD=0 skips that build
#   BURST_N          launches (300), each a distinct student of one course
#   BURST_SECONDS    over how many seconds they are spread (60)
#   BURST_CAP        admission.max_running (250)
#   BURST_POLL       seconds between a student's /environment/status polls (2: what the landing
#                    page does, Refresh: 2; the polling is load on the portal and its database)
#   BURST_SAMPLE     seconds between engine + database samples (0.5)
#   BURST_TIMEOUT    give up following a launch after this many seconds (180; the portal's own
#                    start timeout is environments.start_timeout, 120 s)
#   BURST_DIRECT     1 (default): also the direct-engine baseline; 0: the portal only
#   BURST_DIRECT_N   how many direct starts (min(N, CAP): what the portal admitted), at the same rate
#   BURST_ORDER      portal-first (default) or direct-first: which phase runs first (a control for
#                    the engine's state — both start from no containers of this run)
#   ENGINE_SOCKET    Podman's API socket (/run/podman/podman.sock)
#   BENCH_MAX_BUSY   before each phase, wait until at most this % of CPU is busy (15) ...
#   BENCH_QUIET_WAIT ... for at most this many seconds (120), then warn and go on
#   BENCH_VENV       Python venv (/var/cache/portal-bench/venv, else bench/.venv)
#   BENCH_KEEP=1     keep the scratch directory (config, portal.log, per-launch JSON lines, samples)
#   BENCH_RESULTS=DIR  also copy the results (JSON lines and summaries, portal.log) to DIR
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

N=${BURST_N:-300}
SECONDS_SPREAD=${BURST_SECONDS:-60}
CAP=${BURST_CAP:-250}
POLL=${BURST_POLL:-2}
SAMPLE=${BURST_SAMPLE:-0.5}
TIMEOUT=${BURST_TIMEOUT:-180}
DIRECT=${BURST_DIRECT:-1}
DIRECT_N=${BURST_DIRECT_N:-$((N < CAP ? N : CAP))}
ORDER=${BURST_ORDER:-portal-first}
SOCKET=${ENGINE_SOCKET:-/run/podman/podman.sock}
MAX_BUSY=${BENCH_MAX_BUSY:-15}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
LTI_KEY=bench
LTI_SECRET=bench-secret

BENCH_TAG=burst-bench
. "$HERE/common.sh"

# ------------------------------------------------------------------------------ prerequisites
[[ $(id -u) == 0 ]] || die "run as root (Podman's API socket, the embedded PostgreSQL's user)"
[[ $N =~ ^[0-9]+$ && $N -ge 2 && $CAP =~ ^[0-9]+$ && $CAP -ge 1 ]] || die "BURST_N must be at least 2 and BURST_CAP at least 1"
[[ $ORDER == portal-first || $ORDER == direct-first ]] || die "BURST_ORDER is portal-first or direct-first, not '$ORDER'"
if [[ -z ${PORTAL_BIN:-} ]]; then
    PORTAL_BIN=.build-bench/release/portal
    if [[ ${BURST_BUILD:-1} == 1 ]]; then
        log "building the portal (swift build -c release --product portal --scratch-path .build-bench)"
        swift build -c release --product portal --scratch-path .build-bench >&2 || die "the build failed"
    fi
fi
[[ -x $PORTAL_BIN ]] || die "no portal at '$PORTAL_BIN' (cwd $ROOT): build it (swift build -c release --product portal --scratch-path .build-bench) or set PORTAL_BIN"
PORTAL_BIN=$(cd "$(dirname "$PORTAL_BIN")" && pwd)/$(basename "$PORTAL_BIN")
command -v psql >/dev/null || apt_install postgresql-client
command -v curl >/dev/null || apt_install curl
bench_venv
HELPER=$HERE/burst_bench.py

scripts/engine/setup-podman.sh --service "$SOCKET" >/dev/null
IMAGE=$(scripts/engine/build-image.sh --image light | tail -n1)
log "environment image $IMAGE"
INTERVAL=$("$PY" -c "import sys; print(float(sys.argv[1]) / int(sys.argv[2]))" "$SECONDS_SPREAD" "$N")

engine_total() { # every container on this engine (anyone's), for the before/after check
    curl -s --unix-socket "$SOCKET" "http://d/v1.41/containers/json?all=true" | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))'
}

# ------------------------------------------------------------------------------ scratch + cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/portal-burst.XXXXXX")
chmod 755 "$WORK" # the embedded PostgreSQL runs as portal-postgres
RUN=$(basename "$WORK" | sed 's/.*\.//' | tr 'A-Z' 'a-z')
DIRECT_LABEL=portal.bench=burst-$RUN
PORTAL_PID="" INSTALLATION=""
BEFORE=$(engine_total)
log "containers on the engine before: $BEFORE (all owners); scratch $WORK"

stop_pid() { # name pid: TERM, then KILL after 30 s
    local name=$1 pid=$2
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop within 30 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
}
psql_portal() { psql -X -q -t -A -h "$WORK/data/run" -U portal portal -c "$1"; }
stop_portal() {
    stop_pid portal "$PORTAL_PID"
    PORTAL_PID=""
    local pidfile ppid
    while IFS= read -r pidfile; do # an embedded PostgreSQL the portal left behind
        ppid=$(head -n1 "$pidfile" 2>/dev/null || true)
        if [[ $ppid =~ ^[0-9]+$ ]] && kill -0 "$ppid" 2>/dev/null; then
            kill -INT "$ppid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
        fi
    done < <(find "$WORK" -name postmaster.pid 2>/dev/null)
}
clean_engine() { # every container and volume of this run, by label
    local labels=(--label "$DIRECT_LABEL")
    [[ -n $INSTALLATION ]] && labels+=(--label "portal.installation=$INSTALLATION")
    "$PY" "$HELPER" clean --socket "$SOCKET" "${labels[@]}"
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -z $INSTALLATION && -n $PORTAL_PID ]]; then INSTALLATION=$(psql_portal "SELECT id FROM installation LIMIT 1" 2>/dev/null || true); fi
    if [[ $rc != 0 && -f $WORK/portal.log ]]; then log "the portal's log ends with:"; tail -n 20 "$WORK/portal.log" >&2; fi
    stop_portal
    log "removing this run's containers and volumes: $(clean_engine 2>&1 | tail -n1)"
    log "containers on the engine after: $(engine_total) (before: $BEFORE)"
    if [[ -n ${BENCH_RESULTS:-} ]]; then mkdir -p "$BENCH_RESULTS" && cp "$WORK"/*.jsonl "$WORK"/*.json "$WORK/portal.log" "$BENCH_RESULTS"/ 2>/dev/null || true; fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "scratch directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------ the portal
PORT=$("$PY" "$HERE/lti_bench.py" free-port)
mkdir -p "$WORK/profiles"
sed -E "s|^image:.*|image: $IMAGE|" "$HERE/profiles/light.yaml" >"$WORK/profiles/light.yaml"
cat >"$WORK/portal.yaml" <<YAML
listen: 127.0.0.1:$PORT
public_url: http://127.0.0.1:$PORT
data_dir: $WORK/data
log_level: notice
lti:
  consumers:
    - key: $LTI_KEY
      secret: $LTI_SECRET
environments:
  engine: docker
  endpoint: unix://$SOCKET
  profiles_dir: $WORK/profiles
  default_profile: light
  # Room for far more than the cap (see the top of this script): only admission.max_running binds.
  hosts:
    - name: local
      endpoint: unix://$SOCKET
      publish_address: 127.0.0.1
      cpu: 400
      memory: 200GiB
admission:
  max_running: $CAP
YAML
log "starting the portal on 127.0.0.1:$PORT (embedded PostgreSQL under $WORK/data), cap $CAP"
env -u PORTAL_CONFIG -u PORTAL_DATABASE_URL -u PORTAL_DATABASE_URL_FILE -u PORTAL_DATA_DIR -u PORTAL_LISTEN \
    -u PORTAL_PUBLIC_URL -u PORTAL_LOG_LEVEL -u PORTAL_SECRET_KEY -u PORTAL_SECRET_KEY_FILE \
    "$PORTAL_BIN" serve --config "$WORK/portal.yaml" >"$WORK/portal.log" 2>&1 &
PORTAL_PID=$!
for i in $(seq 1 900); do
    kill -0 "$PORTAL_PID" 2>/dev/null || die "the portal exited during start-up"
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/healthz" && break
    [[ $i == 900 ]] && die "the portal did not answer /healthz within 180 s"
    sleep 0.2
done
INSTALLATION=$(psql_portal "SELECT id FROM installation LIMIT 1")
[[ $INSTALLATION =~ ^[0-9a-f]+$ ]] || die "no installation id in the portal's database ('$INSTALLATION')"
POSTMASTER=$(head -n1 "$WORK/data/postgres/postmaster.pid" 2>/dev/null || true)
PODMAN_PID=$(pgrep -f "system service.*unix://$SOCKET" | head -n1 || true)
log "portal pid $PORTAL_PID, installation $INSTALLATION, PostgreSQL pid ${POSTMASTER:-?}, Podman service pid ${PODMAN_PID:-?}"
CPU_ARGS=(--cpu "portal=$PORTAL_PID")
[[ -n $POSTMASTER ]] && CPU_ARGS+=(--cpu "postgres=$POSTMASTER")
[[ -n $PODMAN_PID ]] && CPU_ARGS+=(--cpu "podman service=$PODMAN_PID")

# ------------------------------------------------------------------------------ the two phases
portal_phase() {
    local busy
    busy=$("$PY" "$HERE/lti_bench.py" quiet --max-busy "$MAX_BUSY" --max-wait "$QUIET_WAIT")
    log "portal phase: $N launches over ${SECONDS_SPREAD}s (CPU busy before: ${busy}%)"
    "$PY" "$HELPER" portal --url "http://127.0.0.1:$PORT/lti/launch" --key "$LTI_KEY" --secret "$LTI_SECRET" \
        --n "$N" --interval "$INTERVAL" --cap "$CAP" --socket "$SOCKET" --installation "$INSTALLATION" \
        --psql-host "$WORK/data/run" --out "$WORK" --poll "$POLL" --sample "$SAMPLE" --timeout "$TIMEOUT" "${CPU_ARGS[@]}"
    grep -E '\b(warning|error|critical)\b' "$WORK/portal.log" | head -n 5 >&2 || true
    # The portal's environments go before anything else runs (the portal is stopped first, so it
    # neither restarts nor reconciles anything meanwhile).
    stop_portal
    log "removing the portal's containers and volumes: $(clean_engine | tail -n1)"
}
direct_phase() { # the engine alone
    [[ $DIRECT == 1 && $DIRECT_N -ge 2 ]] || return 0
    local busy dcpu=()
    busy=$("$PY" "$HERE/lti_bench.py" quiet --max-busy "$MAX_BUSY" --max-wait "$QUIET_WAIT")
    log "direct phase: $DIRECT_N starts through the engine API, one every ${INTERVAL}s (CPU busy before: ${busy}%)"
    [[ -n $PODMAN_PID ]] && dcpu+=(--cpu "podman service=$PODMAN_PID")
    "$PY" "$HELPER" direct --socket "$SOCKET" --image "$IMAGE" --n "$DIRECT_N" --interval "$INTERVAL" \
        --label "$DIRECT_LABEL" --out "$WORK" --sample "$SAMPLE" --timeout 120 "${dcpu[@]}"
    log "removing the direct containers and volumes: $(clean_engine | tail -n1)"
}
case $ORDER in
    portal-first) portal_phase; direct_phase ;;
    direct-first) direct_phase; portal_phase ;;
esac

"$PY" "$HELPER" report --out "$WORK" --note "phases: $ORDER; portal $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($PORTAL_BIN); $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB"
