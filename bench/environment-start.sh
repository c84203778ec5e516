#!/usr/bin/env bash
# Launch → ready: how long a student waits from the launch POST until their Jupyter server
# answers, through the portal, split into the portal's own share and the engine's; beside the same
# Jupyter start done directly through the engine API (no portal) in the same run.
#
#   swift build -c release --product portal
#   bench/environment-start.sh          # N=10 sequential and N=10 simultaneous, each way
#
# Needs Podman's API service and the image (scripts/engine/setup-podman.sh --service,
# scripts/engine/build-image.sh); it prepares the bench venv (bench/common.sh) itself.
# Environment: PORTAL_BIN (.build/release/portal), BENCH_N (10), ENGINE (docker, or process for the
# sandboxed process engine: no direct baseline then), ENGINE_SOCKET (/run/podman/podman.sock),
# IMAGE (localhost/portal-jupyter:1), VENV_PROCESS (/opt/portal/jupyter-venv).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
PORTAL_BIN=${PORTAL_BIN:-.build/release/portal}
N=${BENCH_N:-10}
ENGINE=${ENGINE:-docker}
VENV_PROCESS=${VENV_PROCESS:-/opt/portal/jupyter-venv}
SOCKET=${ENGINE_SOCKET:-/run/podman/podman.sock}
IMAGE=${IMAGE:-localhost/portal-jupyter:1}
[ -x "$PORTAL_BIN" ] || { echo "environment-start.sh: build the portal first (swift build -c release --product portal)" >&2; exit 1; }
BENCH_TAG=environment-bench
. "$HERE/common.sh"
bench_venv
curl -sf --unix-socket "$SOCKET" http://d/v1.41/_ping >/dev/null || { echo "environment-start.sh: no engine at $SOCKET (scripts/engine/setup-podman.sh --service)" >&2; exit 1; }

SCRATCH=$(mktemp -d /tmp/portal-envbench.XXXXXX)
chmod 755 "$SCRATCH"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$SCRATCH/profiles"
cat > "$SCRATCH/profiles/bench.yaml" <<YAML
slug: bench
display_name: Benchmark environment
image: $IMAGE
cpu: 1
memory: 512MiB
persistence: disposable
YAML
cat > "$SCRATCH/portal.yaml" <<YAML
listen: 127.0.0.1:$PORT
public_url: http://127.0.0.1:$PORT
data_dir: $SCRATCH/data
log_level: warning
lti:
  consumers:
    - key: bench
      secret: bench-secret
environments:
  engine: $ENGINE
  endpoint: unix://$SOCKET
  venv: $VENV_PROCESS
  profiles_dir: $SCRATCH/profiles
  default_profile: bench
YAML
env -u PORTAL_DATABASE_URL "$PORTAL_BIN" serve --config "$SCRATCH/portal.yaml" > "$SCRATCH/portal.log" 2>&1 &
PID=$!
cleanup() {
    kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    curl -s --unix-socket "$SOCKET" "http://d/v1.41/containers/json?all=true&filters=%7B%22label%22%3A%5B%22portal.bench%3Ddirect%22%5D%7D" \
        | "$PY" -c 'import json,sys; [print(c["Id"]) for c in json.load(sys.stdin)]' \
        | while read -r id; do curl -s -X DELETE --unix-socket "$SOCKET" "http://d/v1.41/containers/$id?force=true" >/dev/null; done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 1; done

psql_portal() { psql -X -q -t -A -h "$SCRATCH/data/run" -U portal portal -c "$1"; }
stats() {  # JSON lines on stdin, field name → p50 and max
    "$PY" -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
field = sys.argv[1]
values = sorted(r[field] for r in rows if field in r)
bad = [r for r in rows if r.get("state", "ready") != "ready" or "error" in r]
print(f"{statistics.median(values):8.0f} {values[-1]:8.0f} {len(bad):6d}")' "$1"
}

printf '%-30s %-12s %8s %8s %6s\n' "what" "mode" "p50 ms" "max ms" "failed"
for MODE in sequential simultaneous; do
    "$PY" "$HERE/environment_bench.py" portal "http://127.0.0.1:$PORT/lti/launch" bench bench-secret "$N" "$MODE" > "$SCRATCH/portal-$MODE.jsonl"
    printf '%-30s %-12s %s\n' "portal launch → ready" "$MODE" "$(stats ready_ms < "$SCRATCH/portal-$MODE.jsonl")"
    printf '%-30s %-12s %s\n' "  launch POST" "$MODE" "$(stats launch_ms < "$SCRATCH/portal-$MODE.jsonl")"
    # The portal's share: its records during the start + the wait before the start began.
    psql_portal "SELECT json_build_object('portal_ms', portal_ms + extract(epoch from (starting_at - requested_at)) * 1000, 'engine_ms', start_ms - portal_ms)
                 FROM environments WHERE state = 'ready' AND id > COALESCE((SELECT max(id) FROM environments WHERE state <> 'ready'), 0)
                 ORDER BY id DESC LIMIT $N" > "$SCRATCH/shares-$MODE.jsonl"
    printf '%-30s %-12s %s\n' "  portal share (start)" "$MODE" "$(stats portal_ms < "$SCRATCH/shares-$MODE.jsonl")"
    printf '%-30s %-12s %s\n' "  engine + Jupyter share" "$MODE" "$(stats engine_ms < "$SCRATCH/shares-$MODE.jsonl")"
    psql_portal "UPDATE environments SET state = 'stopping' WHERE state = 'ready'" >/dev/null
    curl -s --unix-socket "$SOCKET" "http://d/v1.41/containers/json?all=true&filters=%7B%22label%22%3A%5B%22portal.profile%3Dbench%401%22%5D%7D" \
        | "$PY" -c 'import json,sys; [print(c["Id"]) for c in json.load(sys.stdin)]' \
        | while read -r id; do curl -s -X DELETE --unix-socket "$SOCKET" "http://d/v1.41/containers/$id?force=true" >/dev/null; done
    psql_portal "UPDATE environments SET state = 'stopped', stop_reason = 'shutdown' WHERE state = 'stopping'" >/dev/null
    [ "$ENGINE" = docker ] || continue
    "$PY" "$HERE/environment_bench.py" direct "$SOCKET" "$IMAGE" "$N" "$MODE" > "$SCRATCH/direct-$MODE.jsonl"
    printf '%-30s %-12s %s\n' "direct engine start → ready" "$MODE" "$(stats ready_ms < "$SCRATCH/direct-$MODE.jsonl")"
done
