#!/usr/bin/env bash
# Walks one environment through the Docker Engine API (v1.41) with curl, exactly as the portal's
# DockerEngine does, and prints every status code, so differences between engines are visible.
#
#   scripts/engine/check-engine-api.sh [SOCKET]     # default /run/podman/podman.sock
#   DOCKER_API=http://10.0.0.2:2375 scripts/engine/check-engine-api.sh   # TCP instead
#
# Needs: curl, jq, GNU tar, the image localhost/portal-jupyter:1 (scripts/engine/build-image.sh).
# Creates and removes a volume portal-check-home and a container portal-check. Exit 1 on failure.
# Like the portal, it puts Jupyter/jupyter_server_config.py into the created container
# (PUT /containers/ID/archive) and authenticates to the server with the X-Portal-Secret header.
set -euo pipefail

SOCKET=${1:-/run/podman/podman.sock}
IMAGE=${IMAGE:-localhost/portal-jupyter:1}
NAME=portal-check
VOL=portal-check-home
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
CONFIG=$(cd "$(dirname "$0")/../.." && pwd)/Jupyter/jupyter_server_config.py
V=v1.41
fail=0

if [ -n "${DOCKER_API:-}" ]; then base=$DOCKER_API/$V; conn=()
else base=http://d/$V; conn=(--unix-socket "$SOCKET"); fi
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# req METHOD PATH [BODY] -> sets CODE and BODY
req() {
    local out
    if [ $# -ge 3 ]; then
        out=$(curl -s "${conn[@]}" -X "$1" -H 'Content-Type: application/json' --data-binary "$3" -w '\n%{http_code}' "$base$2")
    else
        out=$(curl -s "${conn[@]}" -X "$1" -w '\n%{http_code}' "$base$2")
    fi
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}
expect() {  # LABEL WANTED_CODES...
    local label=$1; shift
    local c; for c in "$@"; do [ "$CODE" = "$c" ] && { printf '  %-44s %s\n' "$label" "$CODE"; return; }; done
    printf '  %-44s %s  (expected %s) %s\n' "$label" "$CODE" "$*" "$(echo "$BODY" | head -c 300)"; fail=1
}
urlq() { jq -rn --arg v "$1" '$v|@uri'; }

req GET /version; expect "GET /version" 200
echo "  engine: $(echo "$BODY" | jq -c '{Version, ApiVersion, MinAPIVersion, Components: [.Components[]?.Name]}')"
req GET "/images/$IMAGE/json"; expect "GET /images/$IMAGE/json" 200
echo "  image labels: $(echo "$BODY" | jq -c '.Config.Labels')"
req GET "/images/localhost/portal-jupyter:nope/json"; expect "GET /images/<missing>/json" 404

# leftovers from an interrupted run
req DELETE "/containers/$NAME?force=true"; req DELETE "/volumes/$VOL"

echo "== volume"
req POST /volumes/create "{\"Name\":\"$VOL\",\"Labels\":{\"portal.managed\":\"true\"}}"; expect "POST /volumes/create" 201
req POST /volumes/create "{\"Name\":\"$VOL\",\"Labels\":{\"portal.managed\":\"true\"}}"; expect "POST /volumes/create (again)" 201
req GET "/volumes/$VOL"; expect "GET /volumes/NAME" 200
echo "  $(echo "$BODY" | jq -c .)"
req GET "/volumes?filters=$(urlq '{"label":["portal.managed=true"]}')"; expect "GET /volumes?filters=label" 200

echo "== container"
CREATE=$(jq -n --arg img "$IMAGE" --arg tok "$TOKEN" --arg vol "$VOL" '{
  Image: $img,
  Cmd: ["jupyter", "server", "--ServerApp.base_url=/user/check/", "--ip=0.0.0.0", "--port=8888", "--no-browser"],
  Env: ["PORTAL_SERVER_SECRET=\($tok)", "JUPYTER_CONFIG_PATH=/etc/portal/jupyter"],
  Labels: {"portal.managed": "true", "portal.env": "check"},
  ExposedPorts: {"8888/tcp": {}},
  StopTimeout: 10,
  HostConfig: {
    Memory: 268435456, MemorySwap: 268435456, NanoCpus: 500000000, PidsLimit: 256,
    SecurityOpt: ["no-new-privileges"], CapDrop: ["ALL"],
    Binds: ["\($vol):/home/jovyan"],
    PortBindings: {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
    RestartPolicy: {Name: "no"}
  }
}')
echo "$CREATE" | jq -c . | sed "s/$TOKEN/TOKEN/; s/^/  body: /"
t0=$(ms)
req POST "/containers/create?name=$NAME" "$CREATE"; expect "POST /containers/create" 201
ID=$(echo "$BODY" | jq -r .Id)
req POST "/containers/create?name=$NAME" "$CREATE"; expect "POST /containers/create (name in use)" 409 500
# The portal's Jupyter configuration, as the portal sends it: a ustar of the file alone (no directory
# entries: existing directories stay as they are, missing ones are created), owned by root.
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
install -D -m 644 "$CONFIG" "$stage/etc/portal/jupyter/jupyter_server_config.py"
tar --create --format=ustar --owner=0 --group=0 --numeric-owner -C "$stage" -f "$stage/files.tar" etc/portal/jupyter/jupyter_server_config.py
out=$(curl -s "${conn[@]}" -X PUT -H 'Content-Type: application/x-tar' --data-binary @"$stage/files.tar" -w '\n%{http_code}' \
    "$base/containers/$NAME/archive?path=%2F&noOverwriteDirNonDir=true")
CODE=${out##*$'\n'}; BODY=${out%$'\n'*}; expect "PUT /containers/ID/archive (created)" 200
req POST "/containers/$NAME/start"; expect "POST /containers/ID/start" 204
req POST "/containers/$NAME/start"; expect "POST /containers/ID/start (running)" 304
req GET "/containers/$NAME/json"; expect "GET /containers/ID/json" 200
PORT=$(echo "$BODY" | jq -r '.NetworkSettings.Ports["8888/tcp"][0].HostPort')
echo "  State: $(echo "$BODY" | jq -c '.State | {Status, Running, Pid, ExitCode, OOMKilled}')"
echo "  Ports: $(echo "$BODY" | jq -c '.NetworkSettings.Ports')"
echo "  HostConfig: $(echo "$BODY" | jq -c '.HostConfig | {Memory, NanoCpus, CpuQuota, CpuPeriod, PidsLimit, SecurityOpt, Binds}')"
ready=""
for _ in $(seq 1 300); do
    c=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Portal-Secret: $TOKEN" "http://127.0.0.1:$PORT/user/check/api/status" || true)
    [ "$c" = 200 ] && { ready=$(( $(ms) - t0 )); break; }; sleep 0.1
done
[ -n "$ready" ] && echo "  jupyter /api/status 200 after $ready ms (create -> ready)" || { echo "  jupyter never answered"; fail=1; }
c=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/user/check/api/status"); echo "  /api/status without the secret: $c"
[ "$c" = 403 ] || fail=1
c=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Portal-Secret: wrong" "http://127.0.0.1:$PORT/user/check/api/status"); echo "  /api/status with a wrong secret: $c"
[ "$c" = 403 ] || fail=1

req GET "/containers/json?all=true&filters=$(urlq '{"label":["portal.env=check"]}')"; expect "GET /containers/json?filters=label" 200
echo "  $(echo "$BODY" | jq -c '[.[] | {Id: .Id[0:12], Names, State, Status, Ports}]')"
t0=$(ms); req GET "/containers/$NAME/stats?stream=false"; expect "GET /containers/ID/stats?stream=false" 200
echo "  ($(( $(ms) - t0 )) ms) $(echo "$BODY" | jq -c '{memory_stats, cpu_total: .cpu_stats.cpu_usage.total_usage, online_cpus: .cpu_stats.online_cpus, pids: .pids_stats, networks: (.networks | keys?)}')"

echo "== memory limit: a process allocating 400 MB through exec"
req POST "/containers/$NAME/exec" '{"Cmd":["python3","-c","b=bytearray(400*1024*1024); print(len(b))"],"AttachStdout":true,"AttachStderr":true}'
expect "POST /containers/ID/exec" 201
EXEC=$(echo "$BODY" | jq -r .Id)
req POST "/exec/$EXEC/start" '{"Detach":false,"Tty":false}'; expect "POST /exec/ID/start" 200
req GET "/exec/$EXEC/json"; expect "GET /exec/ID/json" 200
echo "  exec ExitCode: $(echo "$BODY" | jq .ExitCode) (137 = SIGKILL by the OOM killer)"
[ "$(echo "$BODY" | jq .ExitCode)" = 137 ] || fail=1
c=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Portal-Secret: $TOKEN" "http://127.0.0.1:$PORT/user/check/api/status")
echo "  jupyter after the OOM kill: $c"; [ "$c" = 200 ] || fail=1

echo "== stop / remove"
req DELETE "/containers/$NAME"; expect "DELETE /containers/ID (running, no force)" 409 500
req DELETE "/volumes/$VOL"; expect "DELETE /volumes/NAME (in use)" 409
t0=$(ms); req POST "/containers/$NAME/stop?t=10"; expect "POST /containers/ID/stop?t=10" 204
echo "  stop took $(( $(ms) - t0 )) ms"
req POST "/containers/$NAME/stop?t=10"; expect "POST /containers/ID/stop (exited)" 304 204
req GET "/containers/$NAME/json"; expect "GET /containers/ID/json (exited)" 200
echo "  State: $(echo "$BODY" | jq -c '.State | {Status, Running, ExitCode, OOMKilled, FinishedAt}')"
req DELETE "/containers/$NAME?force=true"; expect "DELETE /containers/ID?force=true" 204
req GET "/containers/$NAME/json"; expect "GET /containers/ID/json (removed)" 404
req DELETE "/containers/$NAME?force=true"; expect "DELETE /containers/ID (removed)" 404
req POST "/containers/$NAME/stop?t=10"; expect "POST /containers/ID/stop (removed)" 404
req DELETE "/volumes/$VOL"; expect "DELETE /volumes/NAME" 204
req GET "/volumes/$VOL"; expect "GET /volumes/NAME (removed)" 404
req POST "/containers/create?name=$NAME-x" "$(echo "$CREATE" | jq '.Image = "localhost/portal-jupyter:nope"')"
expect "POST /containers/create (missing image)" 404
[ "$fail" = 0 ] && echo "== all checks passed" || { echo "== SOME CHECKS FAILED"; exit 1; }
