#!/usr/bin/env bash
# Runnable reference for the portal's ProcessEngine: one student's jupyter-server in a bubblewrap
# sandbox, limited by cgroup-v1 controllers, reachable by the portal (root) over a unix socket.
# Verified on Debian 12 (bubblewrap 0.8.0, cgroup v1 hybrid, root) - see docs/ENGINES.md.
#
#   sandbox-example.sh run NAME UID [TOKEN]   # foreground; Ctrl-C / SIGTERM stops it
#   sandbox-example.sh demo                   # starts two students and checks everything
#
# Environment (defaults in brackets):
#   VENV [/opt/portal/jupyter-venv]     from scripts/engine/setup-process-engine.sh
#   HOMES [/srv/portal-demo/homes]      host directory with one home per student (NAME)
#   RUNDIR [/run/portal-demo]           RUNDIR/NAME/jupyter.sock is the server's socket
#   MEM_MB [512]  CPU [0.5]  PIDS [256] limits (cgroup v1: memory, cpu CFS quota, pids)
#   NET [none]                          none: private network namespace, unix socket only
#                                       host: share the host network, listen on 127.0.0.1:PORT
#   PORT [0 = pick one]                 with NET=host
set -euo pipefail

VENV=${VENV:-/opt/portal/jupyter-venv}
HOMES=${HOMES:-/srv/portal-demo/homes}
RUNDIR=${RUNDIR:-/run/portal-demo}
MEM_MB=${MEM_MB:-512}
CPU=${CPU:-0.5}
PIDS=${PIDS:-256}
NET=${NET:-none}
PORT=${PORT:-0}
CG=/sys/fs/cgroup
CONTROLLERS="memory cpu cpuacct pids"

log() { echo "sandbox-example.sh: $*" >&2; }

# --- cgroup v1: one directory per sandbox under each controller, created by root ---------------
cgroup_create() {   # NAME
    local name=$1 c
    for c in $CONTROLLERS; do mkdir -p "$CG/$c/portal/$name"; done
    local bytes=$(( MEM_MB * 1024 * 1024 ))
    echo "$bytes" > "$CG/memory/portal/$name/memory.limit_in_bytes"
    # memory+swap: no swap use beyond the memory limit (file exists when swap accounting is on)
    [ -e "$CG/memory/portal/$name/memory.memsw.limit_in_bytes" ] &&
        echo "$bytes" > "$CG/memory/portal/$name/memory.memsw.limit_in_bytes"
    echo 100000 > "$CG/cpu/portal/$name/cpu.cfs_period_us"
    awk -v c="$CPU" 'BEGIN { printf "%d\n", c * 100000 }' > "$CG/cpu/portal/$name/cpu.cfs_quota_us"
    echo "$PIDS" > "$CG/pids/portal/$name/pids.max"
}
cgroup_remove() {   # NAME: after every process has exited. rmdir fails (EBUSY) while a task,
    local c i       # even a dying one, is still listed, so wait for each controller to drain.
    for c in $CONTROLLERS; do
        [ -d "$CG/$c/portal/$1" ] || continue
        for i in $(seq 1 50); do rmdir "$CG/$c/portal/$1" 2>/dev/null && break; sleep 0.1; done
        [ -d "$CG/$c/portal/$1" ] && log "could not remove $CG/$c/portal/$1"
    done
    return 0
}

# --- the sandbox command ---------------------------------------------------------------------------
# Prints nothing; execs. Must be called by root. The environment is built from scratch (env -i),
# and the token travels in the environment (never in argv: argv is world-readable in /proc).
run_sandbox() {   # NAME UID TOKEN
    local name=$1 uid=$2 token=$3
    local home=$HOMES/$name sockdir=$RUNDIR/$name
    mkdir -p "$home" "$sockdir"
    chown "$uid:$uid" "$home" "$sockdir"
    chmod 700 "$home" "$sockdir"
    rm -f "$sockdir/jupyter.sock"
    cgroup_create "$name"

    local listen net_opts=() etc_opts=()
    if [ "$NET" = host ]; then
        [ "$PORT" != 0 ] || PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        listen=(--ip=127.0.0.1 "--port=$PORT")
        net_opts=(--share-net)
        etc_opts=(--ro-bind /etc/resolv.conf /etc/resolv.conf)
        echo "$PORT" > "$sockdir/port"
    else
        listen=(--sock=/run/jupyter/jupyter.sock --ServerApp.sock_mode=0600)
    fi
    [ -e /etc/ssl/certs ] && etc_opts+=(--ro-bind /etc/ssl/certs /etc/ssl/certs)
    for f in /etc/ld.so.cache /etc/nsswitch.conf /etc/localtime /etc/mime.types /etc/alternatives; do
        [ -e "$f" ] && etc_opts+=(--ro-bind "$f" "$f")
    done

    # fds 5-7: synthetic /etc/passwd, /etc/group, /etc/hosts (the host's accounts stay invisible)
    exec 5<<<"student:x:$uid:$uid:Student:/home/student:/bin/bash" \
         6<<<"student:x:$uid:" \
         7< <(printf '127.0.0.1\tlocalhost jupyter\n::1\tlocalhost ip6-localhost\n')

    local cgs="" c
    for c in $CONTROLLERS; do cgs="$cgs $CG/$c/portal/$name/cgroup.procs"; done

    # 1. sh (root): move itself into the cgroups, so everything it execs is limited from the start;
    # 2. setpriv: become UID (no groups, no capabilities, no_new_privs) before bwrap runs, so the
    #    sandbox is an unprivileged user namespace owned by UID, never by root;
    # 3. bwrap: new user/pid/ipc/uts/cgroup(/net) namespaces, a tmpfs root with only what is bound.
    exec env -i PATH="$VENV/bin:/usr/bin:/bin" HOME=/home/student USER=student LOGNAME=student \
        LANG=C.UTF-8 SHELL=/bin/bash TERM=xterm-256color JUPYTER_TOKEN="$token" \
        /bin/sh -c 'for f in '"$cgs"'; do echo $$ > "$f"; done; exec "$@"' sh \
        setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --inh-caps=-all \
        bwrap \
            --unshare-all --unshare-user --disable-userns "${net_opts[@]}" \
            --die-with-parent --new-session --hostname jupyter \
            --ro-bind /usr /usr \
            --symlink usr/bin /bin --symlink usr/sbin /sbin \
            --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
            --ro-bind "$VENV" "$VENV" \
            --proc /proc --dev /dev \
            --size $((256 * 1024 * 1024)) --tmpfs /tmp \
            --dir /var/tmp \
            "${etc_opts[@]}" \
            --ro-bind-data 5 /etc/passwd --ro-bind-data 6 /etc/group --ro-bind-data 7 /etc/hosts \
            --bind "$home" /home/student \
            --bind "$sockdir" /run/jupyter \
            --chdir /home/student \
            -- \
            "$VENV/bin/jupyter" server \
                "${listen[@]}" \
                "--ServerApp.base_url=/user/$name/" \
                --ServerApp.allow_remote_access=True \
                --ServerApp.root_dir=/home/student \
                --KernelManager.transport=ipc --KernelManager.ip=/tmp/kernel \
                --no-browser
}

# --- helpers for the demo --------------------------------------------------------------------------
ms() { echo $(( $(date +%s%N) / 1000000 )); }
api() {   # NAME TOKEN PATH [curl args...]  -> "HTTP_CODE BODY"
    local name=$1 token=$2 path=$3; shift 3
    if [ "$NET" = host ]; then
        curl -s -m 10 -w '\n%{http_code}' -H "Authorization: token $token" "$@" \
            "http://127.0.0.1:$(cat "$RUNDIR/$name/port" 2>/dev/null)/user/$name/$path"
    else
        curl -s -m 10 -w '\n%{http_code}' -H "Authorization: token $token" "$@" \
            --unix-socket "$RUNDIR/$name/jupyter.sock" "http://localhost/user/$name/$path"
    fi
}
wait_ready() {   # NAME TOKEN
    local i
    for i in $(seq 1 300); do
        [ "$(api "$1" "$2" api/status | tail -n1)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
jupyter_pid() {  # host pid of the jupyter-server of sandbox NAME (found through its cgroup)
    local p
    for p in $(cat "$CG/pids/portal/$1/cgroup.procs"); do
        # argv = python3 /opt/.../bin/jupyter-server ... (bwrap's own argv also mentions jupyter)
        tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | head -n2 | tail -n1 |
            grep -Eq '/bin/jupyter-server$' && { echo "$p"; return; }
    done
}
kexec() {  # NAME KERNEL_ID CODE [TIMEOUT]: run CODE in a kernel of sandbox NAME, print its output
    local name=$1 kid=$2 cf="$HOMES/$1/.local/share/jupyter/runtime/kernel-$2.json" jp i
    for i in $(seq 1 100); do [ -s "$cf" ] && break; sleep 0.1; done
    jp=$(jupyter_pid "$name")
    # Kernels use ipc transport: their sockets are /tmp/kernel-N in the sandbox's private /tmp,
    # so enter its mount namespace (as root; the client only talks to the kernel's sockets).
    nsenter -t "$jp" -m -- "$VENV/bin/python" - "/home/student/${cf#"$HOMES/$name/"}" "$3" "${4:-60}" <<'PY'
import sys
from jupyter_client import BlockingKernelClient
c = BlockingKernelClient(connection_file=sys.argv[1]); c.load_connection_file(); c.start_channels()
def out(m):
    t = m["msg_type"]
    if t == "stream": sys.stdout.write(m["content"]["text"])
    elif t == "error": print("error:", m["content"]["ename"], m["content"]["evalue"])
try:
    c.wait_for_ready(timeout=30)
    r = c.execute_interactive(sys.argv[2], timeout=float(sys.argv[3]), output_hook=out)
except Exception as e:
    print("kernel gone:", type(e).__name__, e); sys.exit(1)
PY
}
stop_sandbox() {  # NAME BWRAP_PID [TIMEOUT_S]: SIGTERM the server, SIGKILL the cgroup after TIMEOUT
    local name=$1 pid=$2 t=${3:-10} jp i
    jp=$(jupyter_pid "$name" || true)
    [ -n "$jp" ] && kill -TERM "$jp" 2>/dev/null
    for i in $(seq 1 $(( t * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        # freeze-free hard stop: kill every task left in the sandbox's cgroup
        for i in 1 2 3; do xargs -r kill -KILL < "$CG/pids/portal/$name/cgroup.procs" 2>/dev/null || true; sleep 0.1; done
    fi
    wait "$pid" 2>/dev/null || true
    cgroup_remove "$name"
}

demo() {
    command -v bwrap >/dev/null && [ -x "$VENV/bin/jupyter" ] ||
        { log "run scripts/engine/setup-process-engine.sh first"; exit 1; }
    local ta tb pa pb t0 out code fail=0
    ta=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'); tb=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    check() { if [ "$2" = "$3" ]; then echo "  ok    $1 ($2)"; else echo "  FAIL  $1: got $2, want $3"; fail=1; fi; }

    echo "== start two sandboxes (NET=$NET, ${MEM_MB} MiB, $CPU CPU, $PIDS pids)"
    t0=$(ms)
    ( run_sandbox alice 200001 "$ta" ) > "$RUNDIR-alice.log" 2>&1 &
    pa=$!
    ( run_sandbox bob 200002 "$tb" ) > "$RUNDIR-bob.log" 2>&1 &
    pb=$!
    trap 'stop_sandbox alice '"$pa"' 2 >/dev/null 2>&1; stop_sandbox bob '"$pb"' 2 >/dev/null 2>&1' EXIT
    wait_ready alice "$ta" || { log "alice not ready"; cat "$RUNDIR-alice.log"; exit 1; }
    echo "  alice ready after $(( $(ms) - t0 )) ms"
    wait_ready bob "$tb" || { log "bob not ready"; cat "$RUNDIR-bob.log"; exit 1; }
    echo "  bob ready after $(( $(ms) - t0 )) ms"

    echo "== HTTP through the socket"
    check "alice /api/status with token" "$(api alice "$ta" api/status | tail -n1)" 200
    check "alice /api/status with bob's token" "$(api alice "$tb" api/status | tail -n1)" 403
    check "alice /api/status without token" "$(api alice "" api/status -H 'Authorization:' | tail -n1)" 403
    check "alice /lab with token" "$(api alice "$ta" lab -o /dev/null | tail -n1)" 200
    check "alice, Host: portal.example.edu" "$(api alice "$ta" api/status -H 'Host: portal.example.edu' | tail -n1)" 200
    [ "$NET" = host ] || ls -l "$RUNDIR/alice/jupyter.sock" | sed 's/^/  /'

    echo "== code in a kernel runs as the student and sees only its own home"
    out=$(api alice "$ta" api/kernels -X POST -d '{"name":"python3"}')
    check "POST /api/kernels" "$(echo "$out" | tail -n1)" 201
    kid=$(echo "$out" | head -n1 | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
    echo "secret of bob" > "$HOMES/bob/secret.txt"
    chown 200002:200002 "$HOMES/bob/secret.txt"; chmod 600 "$HOMES/bob/secret.txt"
    out=$(kexec alice "$kid" '
import os, subprocess
print("uid", os.getuid(), "home", os.path.expanduser("~"), "cwd", os.getcwd())
print("/:", sorted(os.listdir("/")))
print("/home:", os.listdir("/home"))
for p in ["'"$HOMES"'/bob/secret.txt", "/home/bob/secret.txt", "'"$HOMES"'"]:
    try: print("read", p, open(p).read() if os.path.isfile(p) else os.listdir(p))
    except Exception as e: print("denied", p, type(e).__name__)
for p in ["/usr/x", "'"$VENV"'/x", "/home/student/ok", "/tmp/ok"]:
    try: open(p, "w").close(); print("wrote", p)
    except Exception as e: print("denied", p, type(e).__name__)
print(open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0], "= NoNewPrivs")
print(subprocess.run(["ps", "-eo", "pid,user,args"], capture_output=True, text=True).stdout)
')
    echo "$out" | sed 's/^/  | /'
    if echo "$out" | grep -q 'secret of bob'; then echo "  FAIL  alice can read bob's home"; fail=1
    else echo "  ok    alice cannot read bob's home"; fi
    check "home file owned by the student on the host" "$(stat -c %u "$HOMES/alice/ok" 2>/dev/null)" 200001

    echo "== limits (cgroup v1)"
    echo "  memory.limit_in_bytes=$(cat $CG/memory/portal/alice/memory.limit_in_bytes) cpu.cfs_quota_us=$(cat $CG/cpu/portal/alice/cpu.cfs_quota_us) pids.max=$(cat $CG/pids/portal/alice/pids.max)"
    echo "  tasks in alice's memory cgroup: $(wc -l < $CG/memory/portal/alice/cgroup.procs); usage $(( $(cat $CG/memory/portal/alice/memory.usage_in_bytes) / 1048576 )) MiB"
    local u0 u1
    u0=$(cat $CG/cpuacct/portal/alice/cpuacct.usage)
    kexec alice "$kid" 'import time
t = time.time()
while time.time() - t < 3: pass
print("busy for 3 s")' | sed 's/^/  | /'
    u1=$(cat $CG/cpuacct/portal/alice/cpuacct.usage)
    echo "  a 3 s busy loop in the kernel used $(( (u1 - u0) / 1000000 )) ms CPU (quota $CPU CPU -> at most about $(awk -v c="$CPU" 'BEGIN{print int(c*3000)}') ms); nr_throttled=$(awk '/nr_throttled/{print $2}' $CG/cpu/portal/alice/cpu.stat)"
    out=$(kexec alice "$kid" 'import subprocess
ps = []
try:
    for i in range(1000): ps.append(subprocess.Popen(["sleep", "60"]))
except OSError as e: print("process", len(ps) + 1, "refused:", e)
for p in ps: p.kill(); p.wait()')
    echo "$out" | sed 's/^/  | /'
    echo "  pids.events: $(cat $CG/pids/portal/alice/pids.events)"
    out=$(kexec alice "$kid" 'b = []
for i in range(400): b.append(bytearray(10 * 1024 * 1024))
print("allocated 4 GB")' 10 2>&1 || true)
    echo "$out" | tail -n2 | sed 's/^/  | /'
    check "kernel allocating past ${MEM_MB} MiB was OOM-killed" "$(awk '/oom_kill /{print $2}' $CG/memory/portal/alice/memory.oom_control)" 1
    check "alice's server survives" "$(api alice "$ta" api/status | tail -n1)" 200
    sleep 2
    echo "  kernel after OOM: $(api alice "$ta" "api/kernels/$kid" | head -n1 | sed -n 's/.*"execution_state": *"\([^"]*\)".*/\1/p')"

    echo "== stop"
    t0=$(ms); stop_sandbox alice "$pa" 10; echo "  alice stopped (SIGTERM to jupyter-server) in $(( $(ms) - t0 )) ms"
    check "alice's cgroup removed" "$([ -d $CG/memory/portal/alice ] && echo present || echo gone)" gone
    t0=$(ms); kill -TERM "$pb"; wait "$pb" 2>/dev/null || true
    echo "  bob: SIGTERM to bwrap itself returned in $(( $(ms) - t0 )) ms; jupyter got SIGKILL (no clean shutdown); tasks left in bob's cgroup right after: $(cat $CG/pids/portal/bob/cgroup.procs 2>/dev/null | wc -l)"
    for i in $(seq 1 50); do [ -s "$CG/pids/portal/bob/cgroup.procs" ] || break; sleep 0.1; done
    echo "  bob's cgroup empty after $(( $(ms) - t0 )) ms"
    cgroup_remove bob
    trap - EXIT
    rm -rf "$HOMES/alice" "$HOMES/bob" "$RUNDIR/alice" "$RUNDIR/bob" "$RUNDIR-alice.log" "$RUNDIR-bob.log"
    [ "$fail" = 0 ] && echo "== all checks passed" || { echo "== SOME CHECKS FAILED"; exit 1; }
}

[ "$(id -u)" -eq 0 ] || { log "must run as root (the portal does)"; exit 1; }
mkdir -p "$RUNDIR" "$HOMES"
case "${1:-}" in
    run)  [ $# -ge 3 ] || { log "usage: $0 run NAME UID [TOKEN]"; exit 2; }
          tok=${4:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
          log "token $tok; socket $RUNDIR/$2/jupyter.sock"
          run_sandbox "$2" "$3" "$tok" ;;
    demo) demo ;;
    *)    sed -n '2,19p' "$0"; exit 2 ;;
esac
