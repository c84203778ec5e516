#!/usr/bin/env python3
"""Driver of bench/class-start-burst.sh: a class starts at once.

Subcommands
  portal   --url URL --key K --secret S --n N --interval SEC --cap CAP --socket SOCK
           --installation ID --psql-host DIR --out DIR [--poll SEC] [--sample SEC] [--timeout SEC]
           [--cpu NAME=PID …]
           N LTI 1.1 launches by N distinct students of one course, all signed with oauthlib
           before the clock starts, launch i POSTed at i × interval; each accepted one (303) is
           followed through GET /environment/status (with its session cookie) until `ready` or
           `failed`. 429 = refused by admission (not an error). Meanwhile a sampler asks the
           engine every --sample s for this installation's containers and the database for its
           live environments. Writes OUT/portal-launches.jsonl, portal-samples.jsonl and
           portal-summary.json.
  direct   --socket SOCK --image IMG --n N --interval SEC --label K=V --out DIR [--sample SEC]
           [--timeout SEC] [--cpu NAME=PID …]
           The engine alone at the same rate, with the portal's own sequence of engine calls per
           start: image inspect, volume inspect + create, create, start, inspect (port), then GET
           <base>api/status every 100 ms until 200 and an inspect every 3 s — the same container
           the portal creates (image, command, limits, mount, port on 127.0.0.1). Writes
           OUT/direct-*; the shell script removes the containers (label).
  clean    --socket SOCK --label K=V […]
           Force-removes every container, then every volume, carrying one of the labels (several
           at once; repeated until none is left). Prints what it removed.
  report   --out DIR
           The table, the timeline and, as the last line, `violations: N`.

Times: launch→ready is measured by the client (POST sent → first status poll saying ready, so it
is late by up to one poll interval) and, exactly, from the database (POST sent → the
environment's ready_at; client and PostgreSQL share this machine's clock). The database's
per-environment events split each start into: waiting for the start job, volume + create, start
+ first inspect, and the readiness probe.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

LIVE = ("requested", "starting", "ready", "stopping")
# Podman's compatible list reports libpod states: configured, created, running, paused, stopping,
# stopped, exited, removing. All but exited/stopped/removing/dead hold (or are about to hold) an
# environment's resources: they are what the cap must bound.
NOT_HOLDING = ("exited", "stopped", "removing", "dead")


def log(*args):
    print(f"[burst-bench {time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ engine API


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def api(sock, method, path, body=None, timeout=120):
    """One engine API call on a fresh connection; (status, decoded JSON or None)."""
    conn = UnixHTTPConnection(sock, timeout)
    try:
        conn.request(method, "/v1.41" + path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", "Host": "d"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        decoded = json.loads(data) if data and data[:1] in b"{[" else None
    except ValueError:
        decoded = None
    return response.status, decoded


def label_filter(*labels):
    return urllib.parse.quote(json.dumps({"label": list(labels)}), safe="")


LIST_PATHS = ["/v4.0.0/libpod/containers/json", "/v1.41/containers/json"]


def engine_counts(sock, label):
    """This run's containers on the engine, by state; and how long the list took. Podman's own
    list (libpod) costs it half the CPU of the compatible one (measured: 49 against 86 ms of Podman
    CPU per call with 60 running containers, growing with every container), so it is used when
    the engine has it; other engines get the Docker one."""
    begin = time.monotonic()
    while True:
        path = LIST_PATHS[0]
        conn = UnixHTTPConnection(sock, 30)
        try:
            conn.request("GET", f"{path}?all=true&filters={label_filter(label)}", headers={"Host": "d"})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status == 404 and len(LIST_PATHS) > 1:
            LIST_PATHS.pop(0)
            continue
        break
    status = response.status
    try:
        listed = json.loads(data)
    except ValueError:
        listed = None
    ms = (time.monotonic() - begin) * 1000
    if status != 200 or not isinstance(listed, list):
        return None, ms
    states = {}
    for c in listed:
        state = (c.get("State") or "?").lower()
        states[state] = states.get(state, 0) + 1
    holding = sum(n for s, n in states.items() if s not in NOT_HOLDING)
    return {"states": states, "holding": holding, "running": states.get("running", 0)}, ms


def cmd_clean(a):
    removed_c, removed_v = 0, 0
    for rounds in range(10):
        ids = []
        for label in a.label:
            status, listed = api(a.socket, "GET", f"/containers/json?all=true&filters={label_filter(label)}")
            if status == 200 and isinstance(listed, list):
                ids += [c["Id"] for c in listed]
        if not ids:
            break
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            for status, _ in pool.map(lambda i: api(a.socket, "DELETE", f"/containers/{i}?force=true&v=true"), ids):
                removed_c += status in (200, 204)
        time.sleep(0.5)  # a create the portal sent before it stopped may still land
    names = []
    for label in a.label:
        status, listed = api(a.socket, "GET", f"/volumes?filters={label_filter(label)}")
        if status == 200 and isinstance(listed, dict):
            names += [v["Name"] for v in listed.get("Volumes") or []]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for status, _ in pool.map(lambda n: api(a.socket, "DELETE", f"/volumes/{urllib.parse.quote(n)}?force=true"), names):
            removed_v += status in (200, 204)
    left = 0
    for label in a.label:
        status, listed = api(a.socket, "GET", f"/containers/json?all=true&filters={label_filter(label)}")
        left += len(listed) if status == 200 and isinstance(listed, list) else 0
    print(json.dumps({"containers_removed": removed_c, "volumes_removed": removed_v, "containers_left": left}))


# ------------------------------------------------------------------------------ CPU accounting


def _proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    rest = raw[raw.rindex(")") + 2:].split()
    # fields 4 (ppid), 14-17 (utime stime cutime cstime): rest[1], rest[11:15]
    return int(rest[1]), sum(int(x) for x in rest[11:15])


def _tree_ticks(root):
    """CPU ticks of a process and its live descendants (each with its reaped children's time)."""
    children = {}
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            ppid, t = _proc_stat(pid)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(pid))
        ticks[int(pid)] = t
    total, stack, seen = 0, [root], set()
    while stack:
        p = stack.pop()
        if p in seen or p not in ticks:
            continue
        seen.add(p)
        total += ticks[p]
        stack += children.get(p, [])
    return total


def _ticks_by_pid():
    """{pid: (command name, CPU ticks incl. reaped children)} of every live process."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        # (name, CPU ticks with reaped children, start time: tells a reused pid apart; a kernel
        # worker's name changes with the work it does)
        out[int(pid)] = (comm, sum(int(x) for x in rest[11:15]), rest[19])
    return out


def _machine_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]


class CPUMeter:
    """CPU seconds used during a phase by named process trees, this client and the whole machine."""

    def __init__(self, named):
        self.named = dict(named)
        self.hz = os.sysconf("SC_CLK_TCK")

    def start(self):
        self.before = {n: _tree_ticks(p) for n, p in self.named.items()}
        self.machine = _machine_busy_ticks()
        self.client = resource.getrusage(resource.RUSAGE_SELF)
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall = time.monotonic()
        self.procs = _ticks_by_pid()

    def by_command(self):
        """CPU seconds per command name during the phase (processes alive at its end, with the time
        of the children they reaped: runc under conmon, netavark and iptables under podman)."""
        groups = {}
        for pid, (comm, ticks, started) in _ticks_by_pid().items():
            before = self.procs.get(pid)
            used = ticks - (before[1] if before and before[2] == started else 0)
            if comm.startswith("kworker/"):
                comm = "kworker (kernel)"
            if used > 0:
                groups[comm] = groups.get(comm, 0) + used
        return {c: round(t / self.hz, 1) for c, t in sorted(groups.items(), key=lambda kv: -kv[1])[:12]}

    def stop(self):
        out = {n: round((_tree_ticks(p) - self.before[n]) / self.hz, 1) for n, p in self.named.items()}
        ru = resource.getrusage(resource.RUSAGE_SELF)
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["bench client"] = round(ru.ru_utime + ru.ru_stime - self.client.ru_utime - self.client.ru_stime
                                    + ch.ru_utime + ch.ru_stime - self.children.ru_utime - self.children.ru_stime, 1)
        out["machine (all)"] = round((_machine_busy_ticks() - self.machine) / self.hz, 1)
        out["wall s"] = round(time.monotonic() - self.wall, 1)
        out["by command"] = self.by_command()
        return out


def parse_cpu(items):
    named = {}
    for item in items or []:
        name, _, pid = item.partition("=")
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            named[name] = int(pid)
    return named


# ------------------------------------------------------------------------------ the database


def psql(host, sql, timeout=30):
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-F", "\t", "-h", host, "-U", "portal", "portal", "-c", sql],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout


class PsqlSession:
    """One long-lived psql for the samples (a psql process per sample would cost the machine more
    CPU than the portal's database does): each query is followed by a marker line."""

    MARK = "--burst-sample-end--"

    def __init__(self, host):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-t", "-A", "-F", "\t", "-h", host, "-U", "portal", "portal"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(" ".join(sql.split()) + ";\n\\echo " + self.MARK + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("psql exited: " + " ".join(lines)[-200:])
            line = line.rstrip("\n")
            if line == self.MARK:
                return "\n".join(l for l in lines if l)
            lines.append(line)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


SAMPLE_SQL = """
SELECT count(*) FILTER (WHERE state IN ('requested', 'starting', 'ready', 'stopping')),
       count(*) FILTER (WHERE state = 'requested'), count(*) FILTER (WHERE state = 'starting'),
       count(*) FILTER (WHERE state = 'ready'), count(*) FILTER (WHERE state = 'failed'),
       (SELECT count(*) FROM pg_stat_activity WHERE datname = 'portal' AND state = 'active' AND pid <> pg_backend_pid()),
       (SELECT count(*) FROM pg_stat_activity WHERE datname = 'portal' AND wait_event = 'advisory'),
       (SELECT count(*) FROM pg_stat_activity WHERE datname = 'portal' AND backend_type = 'client backend' AND pid <> pg_backend_pid())
FROM environments
"""

ENVIRONMENTS_SQL = """
SELECT json_build_object(
    'user', u.lti_user_id, 'state', e.state, 'message', e.message, 'start_ms', e.start_ms, 'portal_ms', e.portal_ms,
    'base_path', e.base_path, 'upstream', e.upstream,
    'requested', extract(epoch FROM e.requested_at), 'starting', extract(epoch FROM e.starting_at),
    'ready', extract(epoch FROM e.ready_at), 'failed', extract(epoch FROM e.failed_at),
    'events', (SELECT json_agg(json_build_object('at', extract(epoch FROM ev.at), 'state', ev.state, 'message', ev.message) ORDER BY ev.id)
               FROM environment_events ev WHERE ev.environment_id = e.id))
FROM environments e JOIN users u ON u.id = e.user_id ORDER BY e.id
"""


# ------------------------------------------------------------------------------ sampler


class Sampler:
    """Three loops, so that a slow engine cannot stretch the others' period:
      engine    this run's containers (GET /containers/json?all=true, label filter), one request at
                a time, started every `every` s or as soon as the previous one answered
      ping      GET /_ping on a fresh connection every `every` s: is the engine answering at all?
      database  (portal phase) live environments by state, admissions waiting on the advisory
                lock and busy connections (pg_stat_activity), every `every` s
    Each sample also carries the client's own counters (launches sent, 429s, ready…)."""

    def __init__(self, sock, label, every, t0, psql_host=None, progress=None, name_prefix=None):
        self.sock, self.label, self.every, self.psql_host = sock, label, every, psql_host
        self.name_prefix = name_prefix
        self.progress = progress or (lambda: {})
        self.samples = {"engine": [], "ping": [], "db": [], "conmon": []}
        self.stopping = threading.Event()
        self.t0 = t0
        self.threads = [threading.Thread(target=self.loop, args=(kind,), daemon=True)
                        for kind in ("engine", "ping") + (("db",) if psql_host else ()) + (("conmon",) if name_prefix else ())]

    def start(self):
        for t in self.threads:
            t.start()

    def loop(self, kind):
        while not self.stopping.is_set():
            begin = time.monotonic()
            sample = {"t": round(begin - self.t0, 2)}
            try:
                getattr(self, kind)(sample)
            except Exception as e:  # noqa: BLE001 — a failed sample is recorded, never fatal
                sample["error"] = f"{type(e).__name__}: {e}"[:200]
            sample["took_ms"] = round((time.monotonic() - begin) * 1000, 1)
            sample.update(self.progress())
            self.samples[kind].append(sample)
            # The engine's list costs the engine CPU in proportion to its containers: the next one
            # waits a whole period after this one answered, so the sampler never lists non-stop.
            self.stopping.wait(self.every if kind == "engine" else max(0.0, self.every - (time.monotonic() - begin)))

    def engine(self, sample):
        counts, _ = engine_counts(self.sock, self.label)
        if counts is None:
            sample["error"] = "list failed"
        else:
            sample.update(holding=counts["holding"], running=counts["running"], states=counts["states"])

    def conmon(self, sample):
        """Containers of this run that Podman has started, counted without asking Podman: a conmon
        process each, whose `-n NAME` is the container's name."""
        names = set()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if not args or not args[0].endswith(b"conmon"):
                continue
            for flag, value in zip(args, args[1:]):
                if flag == b"-n" and value.decode("utf-8", "replace").startswith(self.name_prefix):
                    names.add(value)
                    break
        # Distinct names: conmon forks while it starts, so one container briefly has two.
        sample["count"] = len(names)

    def ping(self, sample):
        status, _ = api(self.sock, "GET", "/_ping", timeout=60)
        sample["ok"] = status == 200
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    sample["mem_available_mib"] = int(line.split()[1]) // 1024

    def db(self, sample):
        if getattr(self, "session", None) is None:
            self.session = PsqlSession(self.psql_host)
        row = self.session.query(SAMPLE_SQL).strip().split("\t")
        live, req, sta, rdy, fail, active, advisory, conns = (int(x) for x in row)
        sample.update(live=live, requested=req, starting=sta, ready=rdy, failed=fail,
                      pg_active=active, pg_advisory_waits=advisory, pg_connections=conns)

    def last(self, kind):
        return self.samples[kind][-1] if self.samples[kind] else {}

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        if getattr(self, "session", None) is not None:
            self.session.close()

    def rows(self):
        return [dict(kind=kind, **sample) for kind, samples in self.samples.items() for sample in samples]

    def progress_line(self):
        e, p, d = self.last("engine"), self.last("ping"), self.last("db")
        c = self.progress()
        line = (f"t={max(e.get('t', 0), d.get('t', 0)):.0f}s sent {c.get('c_posted')}, ready {c.get('c_ready')}, "
                f"errors {c.get('c_errors')}")
        if self.psql_host:
            line += (f", 429 {c.get('c_refused')}, failed {c.get('c_failed')}; db live {d.get('live', '?')} "
                     f"(requested {d.get('requested', '?')}, starting {d.get('starting', '?')}, ready {d.get('ready', '?')})")
        return line + (f"; engine {e.get('holding', '?')} containers (list took {e.get('took_ms', 0):.0f} ms), "
                       f"_ping {p.get('took_ms', 0):.0f} ms")


# ------------------------------------------------------------------------------ portal phase


def launch_params(user, course):
    return [
        ("lti_message_type", "basic-lti-launch-request"), ("lti_version", "LTI-1p0"), ("resource_link_id", "burst-link"),
        ("resource_link_title", "Week 1: notebooks"), ("user_id", user), ("roles", "Learner"),
        ("context_id", course), ("context_label", "BURST"), ("context_title", "Class-start burst"),
        ("lis_person_name_full", "Student " + user), ("launch_presentation_return_url", "https://vle.example.ac.uk/mod/lti/return.php"),
    ]


def sign_all(url, key, secret, users, course):
    from oauthlib import oauth1
    bodies = []
    for user in users:
        client = oauth1.Client(key, client_secret=secret, signature_type=oauth1.SIGNATURE_TYPE_BODY)
        _, _, body = client.sign(url, http_method="POST", body=launch_params(user, course),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        bodies.append(body)
    return bodies


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"posted": 0, "accepted": 0, "refused": 0, "ready": 0, "failed": 0, "errors": 0}

    def add(self, key):
        with self.lock:
            self.counts[key] += 1

    def snapshot(self):
        with self.lock:
            return {"c_" + k: v for k, v in self.counts.items()}


def portal_one(a, parts, index, user, body, due, tally):
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    rec = {"i": index, "user": user, "late_ms": round((time.monotonic() - due) * 1000, 1)}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        rec["sent_wall"] = time.time()
        start = time.monotonic()
        tally.add("posted")
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        page = response.read()
        rec["launch_ms"] = round((time.monotonic() - start) * 1000, 1)
        rec["status"] = response.status
        if response.status == 429:
            rec["outcome"] = "refused"
            rec["retry_after"] = response.getheader("Retry-After")
            tally.add("refused")
            return rec
        if response.status != 303:
            rec["outcome"] = "error"
            rec["error"] = f"launch answered {response.status}: {page[:200].decode('utf-8', 'replace')}"
            tally.add("errors")
            return rec
        tally.add("accepted")
        cookie = None
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("portal_session="):
                cookie = value.split(";", 1)[0]
        if not cookie:
            rec["outcome"] = "error"
            rec["error"] = "303 without a portal_session cookie"
            tally.add("errors")
            return rec
        state, polls, status = "", 0, {}
        while time.monotonic() - start < a.timeout:
            conn.request("GET", "/environment/status", headers={"Cookie": cookie})
            reply = conn.getresponse()
            data = reply.read()
            polls += 1
            if reply.status != 200:
                rec["poll_errors"] = rec.get("poll_errors", 0) + 1
                status = {"http": reply.status}
            else:
                status = json.loads(data or b"{}")
                state = status.get("state", "")
            if state in ("ready", "failed"):
                break
            time.sleep(a.poll)
        rec["ready_ms"] = round((time.monotonic() - start) * 1000, 1)
        rec["polls"] = polls
        rec["cookie"] = cookie
        rec["state"] = state
        if state == "ready":
            rec["outcome"] = "ready"
            tally.add("ready")
        elif state == "failed":
            rec["outcome"] = "failed"
            rec["error"] = status.get("message", "")
            tally.add("failed")
        else:
            rec["outcome"] = "error"
            rec["error"] = f"not ready within {a.timeout:.0f} s (last status {status})"
            tally.add("errors")
        return rec
    except (OSError, http.client.HTTPException, ValueError) as e:
        rec["outcome"] = "error"
        rec["error"] = f"{type(e).__name__}: {e}"
        tally.add("errors")
        return rec
    finally:
        conn.close()


def run_schedule(n, interval, fn, t0):
    """fn(i, due) in its own thread for i in 0..n-1, launch i due at t0 + i × interval."""
    results = [None] * n

    def worker(i):
        results[i] = fn(i, t0 + i * interval)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def reachable_after(results, target, phase):
    """Once every launch has settled: does each environment that became ready still answer
    GET <base>api/status (through the portal's proxy with the student's cookie, or directly on its
    published port)? A ready environment that stops answering is lost to its student."""
    ready = [r for r in results if r.get("outcome") == "ready" and r.get("base_path")]

    def check(rec):
        host, port, base, headers = target(rec)
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", base + "api/status", headers=headers)
            status = conn.getresponse().status
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            status = f"{type(e).__name__}"
        rec["after"] = status

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(check, ready))
    lost = [r for r in ready if r.get("after") != 200]
    log(f"{phase}: {len(ready) - len(lost)} of {len(ready)} ready environments answer after the burst"
        + (f"; not answering: {', '.join(str(r.get('upstream') or r.get('port')) + ' ' + str(r['after']) for r in lost[:10])}" if lost else ""))


def cmd_portal(a):
    threading.stack_size(512 * 1024)
    parts = urllib.parse.urlsplit(a.url)
    run = uuid.uuid4().hex[:6]
    course = f"burst-{run}"
    users = [f"burst-{run}-{i:04d}" for i in range(a.n)]
    began = time.monotonic()
    bodies = sign_all(a.url, a.key, a.secret, users, course)
    log(f"portal: {a.n} launches signed in {time.monotonic() - began:.1f}s (oauthlib); course {course}; "
        f"one every {a.interval * 1000:.0f} ms over {a.n * a.interval:.0f} s; cap {a.cap}")
    tally = Tally()
    t0 = time.monotonic() + 0.5
    sampler = Sampler(a.socket, f"portal.installation={a.installation}", a.sample, t0, psql_host=a.psql_host, progress=tally.snapshot,
                      name_prefix=f"portal-{a.installation[:8]}-")
    cpu = CPUMeter(parse_cpu(a.cpu))
    cpu.start()
    sampler.start()
    stop_progress = threading.Event()

    def progress():
        while not stop_progress.wait(10):
            log("portal: " + sampler.progress_line())

    threading.Thread(target=progress, daemon=True).start()
    results = run_schedule(a.n, a.interval, lambda i, due: portal_one(a, parts, i, users[i], bodies[i], due, tally), t0)
    time.sleep(a.sample * 2)  # a last sample or two after everything settled
    sampler.stop()
    stop_progress.set()
    cpu_used = cpu.stop()
    envs = []
    try:
        envs = [json.loads(line) for line in psql(a.psql_host, ENVIRONMENTS_SQL, timeout=120).splitlines() if line.strip()]
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log(f"portal: could not read the environments: {e}")
    refusals = {}
    try:
        for line in psql(a.psql_host, "SELECT reason, count(*) FROM admission_refusals GROUP BY reason").splitlines():
            if line.strip():
                reason, count = line.split("\t")
                refusals[reason] = int(count)
    except (RuntimeError, subprocess.TimeoutExpired):
        pass
    by_user = {e["user"]: e for e in envs}
    for rec in results:
        env = by_user.get(rec["user"])
        if env is None:
            continue
        rec["db_state"] = env["state"]
        if env.get("ready"):
            rec["db_ready_ms"] = round((env["ready"] - rec["sent_wall"]) * 1000, 1)
        rec["segments"] = segments(env, rec["sent_wall"])
        rec["start_ms"], rec["portal_ms"] = env.get("start_ms"), env.get("portal_ms")
        if env["state"] == "failed":
            rec["db_message"] = env.get("message")
        rec["base_path"], rec["upstream"] = env.get("base_path"), env.get("upstream")
    reachable_after(results, lambda r: (parts.hostname, parts.port, r["base_path"], {"Cookie": r["cookie"]}), "portal")
    for rec in results:
        rec.pop("cookie", None)
    os.makedirs(a.out, exist_ok=True)
    write_jsonl(os.path.join(a.out, "portal-launches.jsonl"), results)
    write_jsonl(os.path.join(a.out, "portal-samples.jsonl"), sampler.rows())
    with open(os.path.join(a.out, "portal-summary.json"), "w") as f:
        json.dump({"n": a.n, "interval": a.interval, "cap": a.cap, "poll": a.poll, "sample": a.sample, "cpu": cpu_used,
                   "refusals": refusals, "environments": len(envs), "course": course}, f)
    c = tally.snapshot()
    log(f"portal: done: {c['c_ready']} ready, {c['c_refused']} refused (429), {c['c_failed']} failed, {c['c_errors']} errors")


def segments(env, sent_wall):
    """The start split by its events: POST → requested (the launch's own transaction), requested →
    start job began ('Preparing'), → container created ('Starting the server'), → started and
    inspected ('Waiting for Jupyter to answer'), → ready."""
    marks = {"requested": env.get("requested")}
    for ev in env.get("events") or []:
        msg = ev.get("message") or ""
        if ev["state"] == "starting" and msg.startswith("Preparing"):
            marks.setdefault("preparing", ev["at"])
        elif ev["state"] == "starting" and msg.startswith("Starting the server"):
            marks.setdefault("created", ev["at"])
        elif ev["state"] == "starting" and msg.startswith("Waiting for"):
            marks.setdefault("started", ev["at"])
        elif ev["state"] == "ready":
            marks.setdefault("ready", ev["at"])
    out = {}
    order = [("post", sent_wall), ("requested", marks.get("requested")), ("preparing", marks.get("preparing")),
             ("created", marks.get("created")), ("started", marks.get("started")), ("ready", marks.get("ready"))]
    for (name_a, ta), (name_b, tb) in zip(order, order[1:]):
        if ta is not None and tb is not None:
            out[f"{name_a}>{name_b}"] = round((tb - ta) * 1000, 1)
    return out


# ------------------------------------------------------------------------------ direct phase


def direct_one(a, index, due, label_key, label_value, tally):
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    rec = {"i": index, "late_ms": round((time.monotonic() - due) * 1000, 1)}
    suffix = uuid.uuid4().hex[:8]
    base = f"/user/direct{index:04d}/{suffix}/"
    name = f"burst-direct-{suffix}"
    volume = f"burst-direct-home-{suffix}"
    token = uuid.uuid4().hex
    labels = {label_key: label_value}
    start = time.monotonic()
    marks = {}
    tally.add("posted")
    try:
        # The portal's own sequence of engine calls (EnvironmentLifecycle.start): image check, volume
        # check, volume create, create, start, inspect; then probes, and an inspect every 3 s.
        status, _ = api(a.socket, "GET", f"/images/{a.image}/json")
        if status != 200:
            raise RuntimeError(f"image inspect answered {status}")
        api(a.socket, "GET", f"/volumes/{volume}")
        status, _ = api(a.socket, "POST", "/volumes/create", {"Name": volume, "Labels": labels})
        if status not in (200, 201):
            raise RuntimeError(f"volume create answered {status}")
        status, created = api(a.socket, "POST", f"/containers/create?name={name}", {
            "Image": a.image, "Cmd": ["/usr/local/bin/portal-light"], "User": "1000:100",
            "Env": [f"JUPYTER_TOKEN={token}", f"PORTAL_BASE_PATH={base}"], "Labels": labels, "ExposedPorts": {"8888/tcp": {}},
            "HostConfig": {"Memory": 256 << 20, "MemorySwap": 256 << 20, "NanoCpus": 1_000_000_000, "PidsLimit": 1024,
                           "SecurityOpt": ["no-new-privileges"], "CapDrop": ["ALL"], "Binds": [f"{volume}:/home/jovyan"],
                           "PortBindings": {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}, "RestartPolicy": {"Name": "no"}},
        })
        if status != 201:
            raise RuntimeError(f"create answered {status}: {created}")
        cid = created["Id"]
        marks["created"] = time.monotonic()
        status, body = api(a.socket, "POST", f"/containers/{cid}/start")
        if status not in (204, 304):
            raise RuntimeError(f"start answered {status}: {(body or {}).get('message', '')[:200]}")
        port, last_inspect = None, 0.0
        while time.monotonic() - start < a.timeout:
            # As the portal does: inspect until the port is known, then every 3 s; probe every 100 ms.
            if port is None or time.monotonic() - last_inspect >= 3.0:
                last_inspect = time.monotonic()
                _, info = api(a.socket, "GET", f"/containers/{cid}/json")
                bindings = ((info or {}).get("NetworkSettings", {}).get("Ports") or {}).get("8888/tcp") or []
                if port is None and bindings and bindings[0].get("HostPort"):
                    port = int(bindings[0]["HostPort"])
                    marks["started"] = time.monotonic()
            if port:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", base + "api/status", headers={"Authorization": f"token {token}"})
                    ok = conn.getresponse().status == 200
                    conn.close()
                    if ok:
                        break
                except OSError:
                    pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"not ready within {a.timeout:.0f} s")
        now = time.monotonic()
        rec.update(outcome="ready", ready_ms=round((now - start) * 1000, 1), port=port, base_path=base, token=token)
        seg = {"post>created": (marks["created"] - start) * 1000}
        if "started" in marks:
            seg["created>started"] = (marks["started"] - marks["created"]) * 1000
            seg["started>ready"] = (now - marks["started"]) * 1000
        rec["segments"] = {k: round(v, 1) for k, v in seg.items()}
        tally.add("ready")
    except (OSError, http.client.HTTPException, RuntimeError, ValueError, KeyError) as e:
        rec.update(outcome="error", error=f"{type(e).__name__}: {e}", ready_ms=round((time.monotonic() - start) * 1000, 1))
        tally.add("errors")
    return rec


def cmd_direct(a):
    threading.stack_size(512 * 1024)
    key, _, value = a.label.partition("=")
    log(f"direct: {a.n} starts through the engine API, one every {a.interval * 1000:.0f} ms over {a.n * a.interval:.0f} s")
    tally = Tally()
    t0 = time.monotonic() + 0.5
    sampler = Sampler(a.socket, a.label, a.sample, t0, progress=tally.snapshot, name_prefix="burst-direct-")
    cpu = CPUMeter(parse_cpu(a.cpu))
    cpu.start()
    sampler.start()
    stop_progress = threading.Event()

    def progress():
        while not stop_progress.wait(10):
            log("direct: " + sampler.progress_line())

    threading.Thread(target=progress, daemon=True).start()
    results = run_schedule(a.n, a.interval, lambda i, due: direct_one(a, i, due, key, value, tally), t0)
    reachable_after(results, lambda r: ("127.0.0.1", r["port"], r["base_path"], {"Authorization": f"token {r['token']}"}), "direct")
    for rec in results:
        rec.pop("token", None)
    time.sleep(a.sample * 2)
    sampler.stop()
    stop_progress.set()
    cpu_used = cpu.stop()
    os.makedirs(a.out, exist_ok=True)
    write_jsonl(os.path.join(a.out, "direct-launches.jsonl"), results)
    write_jsonl(os.path.join(a.out, "direct-samples.jsonl"), sampler.rows())
    with open(os.path.join(a.out, "direct-summary.json"), "w") as f:
        json.dump({"n": a.n, "interval": a.interval, "sample": a.sample, "cpu": cpu_used}, f)
    c = tally.snapshot()
    log(f"direct: done: {c['c_ready']} ready, {c['c_errors']} errors")


# ------------------------------------------------------------------------------ report


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}"


def load(out, phase):
    path = os.path.join(out, f"{phase}-launches.jsonl")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        launches = [json.loads(l) for l in f if l.strip()]
    with open(os.path.join(out, f"{phase}-samples.jsonl")) as f:
        samples = [json.loads(l) for l in f if l.strip()]
    with open(os.path.join(out, f"{phase}-summary.json")) as f:
        summary = json.load(f)
    return launches, samples, summary


def split_samples(rows):
    out = {"engine": [], "ping": [], "db": [], "conmon": []}
    for r in rows:
        out.setdefault(r.get("kind", "engine"), []).append(r)
    return out


def cmd_report(a):
    portal = load(a.out, "portal")
    direct = load(a.out, "direct")
    if portal is None:
        print("no portal results")
        print("violations: n/a")
        sys.exit(1)
    pl, ps_rows, psum = portal
    ps = split_samples(ps_rows)
    dl, ds, dsum = (direct[0], split_samples(direct[1]), direct[2]) if direct else ([], {"engine": [], "ping": [], "db": [], "conmon": []}, {})
    cap = psum["cap"]
    rows = []

    def vals(launches, field, outcome=None):
        return [r[field] for r in launches if r.get(field) is not None and (outcome is None or r.get("outcome") == outcome)]

    def count(launches, outcome):
        return sum(1 for r in launches if r.get("outcome") == outcome)

    def add(label, pv, dv="", ratio=False, digits=0):
        r = ""
        if ratio and isinstance(pv, (int, float)) and isinstance(dv, (int, float)) and dv:
            r = f"{pv / dv:.2f}"
        rows.append((label, fmt(pv, digits), fmt(dv, digits) if dv != "" else "", r))

    def p50p95(values):
        return f"{fmt(pct(values, 50))} / {fmt(pct(values, 95))}" if values else "-"

    D = bool(direct)
    p_db = vals(pl, "db_ready_ms", "ready")
    p_poll = vals(pl, "ready_ms", "ready")
    d_ready = vals(dl, "ready_ms", "ready")
    add("launches (scheduled)", len(pl), len(dl) if D else "-")
    add("rate, launches/s", 1 / psum["interval"], 1 / dsum["interval"] if D else "-", digits=1)
    add("first → last launch sent, s", (len(pl) - 1) * psum["interval"], (len(dl) - 1) * dsum["interval"] if D else "-", digits=1)
    add("client lateness max ms", max(vals(pl, "late_ms")), max(vals(dl, "late_ms")) if D else "-")
    add("ready", count(pl, "ready"), count(dl, "ready") if D else "-")
    add("  of which answering api/status after the burst", sum(1 for r in pl if r.get("after") == 200),
        sum(1 for r in dl if r.get("after") == 200) if D else "-")
    add("refused (429)", count(pl, "refused"), "-" if D else "")
    add("failed (the start failed)", count(pl, "failed"), "-" if D else "")
    other = {}
    for r in pl:
        if r.get("outcome") == "error":
            key = f"HTTP {r['status']}" if r.get("status") not in (None, 303) else "no answer / timeout"
            other[key] = other.get(key, 0) + 1
    add("errors (anything else)", count(pl, "error"), count(dl, "error") if D else "-")
    for key, n in sorted(other.items()):
        add(f"  of which {key}", n, "")
    for p in (50, 95):
        add(f"launch→ready p{p} ms", pct(p_db, p), pct(d_ready, p) if D else "-", ratio=True)
    add("launch→ready max ms", max(p_db) if p_db else None, max(d_ready) if d_ready else "-", ratio=True)
    rows.append((f"  seen by the student (polls every {psum['poll']:g} s), p50 / p95 / max", f"{p50p95(p_poll)} / {fmt(max(p_poll) if p_poll else None)}", "", ""))
    add("launch POST p50 ms", pct(vals(pl, "launch_ms"), 50), "")
    add("launch POST p95 ms", pct(vals(pl, "launch_ms"), 95), "")
    for status, label in ((303, "303, environment starting"), (429, "429, over the cap")):
        v = [r["launch_ms"] for r in pl if r.get("status") == status]
        if v:
            rows.append((f"  {label}: p50 / p95 ms", p50p95(v), "", ""))
    v = [r["launch_ms"] for r in pl if r.get("status") not in (303, 429) and r.get("launch_ms") is not None]
    if v:
        rows.append(("  anything else: p50 / p95 ms", p50p95(v), "", ""))
    rows.append(("a start, step by step (ready ones), p50 / p95 ms", "", "", ""))
    steps = [("post>requested", None, "  POST → recorded (launch, admission, placement)"),
             ("requested>preparing", None, "  → the start job begins"),
             ("preparing>created", "post>created", "  → home volume + container created"),
             ("created>started", "created>started", "  → started, port known (inspect)"),
             ("started>ready", "started>ready", "  → readiness probe answered 200")]
    for key, dkey, label in steps:
        pv = [r["segments"][key] for r in pl if r.get("outcome") == "ready" and key in (r.get("segments") or {})]
        dv = [r["segments"][dkey] for r in dl if dkey and dkey in (r.get("segments") or {})]
        rows.append((label, p50p95(pv), p50p95(dv) if dkey and D else ("-" if D else ""), ""))
    add("  the portal's own share of the start (portal_ms) p50", pct(vals(pl, "portal_ms"), 50), "")
    eng, db, ping = ps["engine"], ps["db"], ps["ping"]
    e_hold = [s["holding"] for s in eng if "holding" in s]
    e_run = [s["running"] for s in eng if "running" in s]
    d_live = [s["live"] for s in db if "live" in s]
    add("max containers on the engine (running + created)", max(e_hold) if e_hold else None, max((s["holding"] for s in ds["engine"] if "holding" in s), default=None) if D else "-")
    add("max running containers (engine)", max(e_run) if e_run else None, max((s["running"] for s in ds["engine"] if "running" in s), default=None) if D else "-")
    c_run = [s["count"] for s in ps["conmon"] if "count" in s]
    add("max started containers (conmon processes)", max(c_run) if c_run else None,
        max((s["count"] for s in ds["conmon"] if "count" in s), default=None) if D else "-")
    add("max live environments (database)", max(d_live) if d_live else None, "")
    add("cap (admission.max_running)", cap, "")
    v_engine = sum(1 for x in e_hold if x > cap)
    v_conmon = sum(1 for x in c_run if x > cap)
    v_db = sum(1 for x in d_live if x > cap)
    add("violations: engine samples above the cap", v_engine, "")
    add("violations: conmon samples above the cap", v_conmon, "")
    add("violations: database samples above the cap", v_db, "")

    def gap(samples):
        ts = [s["t"] for s in samples]
        return max((b - a for a, b in zip(ts, ts[1:])), default=None)

    rows.append(("engine samples (count, longest gap s)", f"{len(eng)}, {fmt(gap(eng), 1)}", f"{len(ds['engine'])}, {fmt(gap(ds['engine']), 1)}" if D else "-", ""))
    rows.append(("database samples (count, longest gap s)", f"{len(db)}, {fmt(gap(db), 1)}", "", ""))
    rows.append(("conmon samples (count, longest gap s)", f"{len(ps['conmon'])}, {fmt(gap(ps['conmon']), 1)}",
                 f"{len(ds['conmon'])}, {fmt(gap(ds['conmon']), 1)}" if D else "-", ""))
    lm = [s["took_ms"] for s in eng]
    dlm = [s["took_ms"] for s in ds["engine"]]
    rows.append(("engine: list containers p50 / max ms", f"{fmt(pct(lm, 50))} / {fmt(max(lm) if lm else None)}", f"{fmt(pct(dlm, 50))} / {fmt(max(dlm) if dlm else None)}" if D else "-", ""))
    pm = [s["took_ms"] for s in ping]
    dpm = [s["took_ms"] for s in ds["ping"]]
    pfail = sum(1 for s in ping if not s.get("ok"))
    rows.append(("engine: _ping p50 / max ms (failed)", f"{fmt(pct(pm, 50))} / {fmt(max(pm) if pm else None)} ({pfail})",
                 f"{fmt(pct(dpm, 50))} / {fmt(max(dpm) if dpm else None)} ({sum(1 for s in ds['ping'] if not s.get('ok'))})" if D else "-", ""))
    mem = [s["mem_available_mib"] for s in ping if "mem_available_mib" in s]
    dmem = [s["mem_available_mib"] for s in ds["ping"] if "mem_available_mib" in s]
    rows.append(("machine memory available: first → lowest MiB", f"{mem[0]:,} → {min(mem):,}" if mem else "-",
                 f"{dmem[0]:,} → {min(dmem):,}" if dmem else "-", ""))
    rows.append(("PostgreSQL: max active / on the admission lock / connections",
                 f"{max((s.get('pg_active', 0) for s in db), default='-')} / {max((s.get('pg_advisory_waits', 0) for s in db), default='-')} / "
                 f"{max((s.get('pg_connections', 0) for s in db), default='-')}", "", ""))
    rows.append(("admission_refusals (database)", ", ".join(f"{k} {v}" for k, v in sorted(psum.get("refusals", {}).items())) or "none", "", ""))
    cpu_p, cpu_d = dict(psum.get("cpu", {})), dict(dsum.get("cpu", {}))
    by_p, by_d = cpu_p.pop("by command", {}), cpu_d.pop("by command", {})
    for c in (cpu_p, cpu_d):
        if "machine (all)" in c:
            c["everything else"] = round(c["machine (all)"] - sum(v for k, v in c.items() if k not in ("machine (all)", "wall s")), 1)
    order = ["portal", "postgres", "podman service", "bench client", "everything else", "machine (all)", "wall s"]
    for name in order + sorted(set(cpu_p) - set(order)):
        if name not in cpu_p and name not in cpu_d:
            continue
        label = "phase wall time, s" if name == "wall s" else f"CPU s: {name}"
        add(label, cpu_p.get(name, "-"), cpu_d.get(name, "-") if D else "-", digits=1)

    w0 = max(len(r[0]) for r in rows)
    w1 = max(len("portal"), max(len(r[1]) for r in rows))
    w2 = max(len("direct"), max(len(r[2]) for r in rows))
    print(f"class-start burst: {len(pl)} LTI launches by distinct students of one course, one every {psum['interval'] * 1000:.0f} ms, "
          f"admission.max_running {cap}; light profile; launch→ready = POST sent → the environment's ready_at "
          f"(direct: create sent → probe 200); engine and database sampled every {psum['sample']:g} s")
    if a.note:
        print(a.note)
    print(f"{'':{w0}}  {'portal':>{w1}}  {'direct':>{w2}}  portal/direct")
    for label, pv, dv, r in rows:
        print(f"{label:{w0}}  {pv:>{w1}}  {dv:>{w2}}  {r}")

    for name, c in (("portal", by_p), ("direct", by_d)):
        if c:
            print(f"CPU s by command, {name} phase (processes alive at its end, with the children they reaped): "
                  + ", ".join(f"{k} {v:g}" for k, v in list(c.items())[:10]))

    problems = {}
    for r in pl + dl:
        if r.get("outcome") in ("error", "failed"):
            who = "direct" if "user" not in r else "portal"
            k = (r.get("db_message") or r.get("error") or "?").split("\n")[0][:150]
            if k.startswith("launch answered"):
                k = k.split(":")[0]
            problems[(who, k)] = problems.get((who, k), 0) + 1
    if problems:
        print("\nerrors and failed starts:")
        for (who, k), n in sorted(problems.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4d}  {who}: {k}")

    def timeline(samples, kinds, columns, every=5.0):
        end = max((s["t"] for k in kinds for s in samples[k]), default=0)
        mark, prev = 0.0, -1e9
        lines = []
        while True:
            row = {"t": mark}
            for k in kinds:
                window = [s for s in samples[k] if prev < s["t"] <= mark]
                upto = [s for s in samples[k] if s["t"] <= mark]
                row[k] = upto[-1] if upto else {}
                row[k + "_max"] = window
            lines.append(row)
            if mark >= end:
                break
            prev, mark = mark, mark + every
        print("  ".join(f"{h:>{w}}" for h, w, _ in columns))
        for row in lines:
            print("  ".join(f"{fn(row)!s:>{w}}" for _, w, fn in columns))

    def mx(row, kind, field):
        v = [s.get(field) for s in row[kind + "_max"] if s.get(field) is not None]
        return f"{max(v):.0f}" if v else "-"

    def last(row, kind, field):
        v = row[kind].get(field)
        return "-" if v is None else v

    print("\ntimeline of the burst through the portal (t: s since the first launch; counts at t; ms and waits: worst in the 5 s before t):")
    timeline(ps, ["engine", "ping", "db", "conmon"], [
        ("t", 4, lambda r: f"{r['t']:.0f}"),
        ("sent", 5, lambda r: last(r, "db", "c_posted")),
        ("429", 4, lambda r: last(r, "db", "c_refused")),
        ("err", 4, lambda r: last(r, "db", "c_errors")),
        ("requested", 9, lambda r: last(r, "db", "requested")),
        ("starting", 8, lambda r: last(r, "db", "starting")),
        ("ready", 5, lambda r: last(r, "db", "ready")),
        ("failed", 6, lambda r: last(r, "db", "failed")),
        ("live", 5, lambda r: last(r, "db", "live")),
        ("lock waits", 10, lambda r: mx(r, "db", "pg_advisory_waits")),
        ("containers", 10, lambda r: last(r, "engine", "holding")),
        ("conmon", 6, lambda r: last(r, "conmon", "count")),
        ("list ms", 7, lambda r: mx(r, "engine", "took_ms")),
        ("_ping ms", 8, lambda r: mx(r, "ping", "took_ms")),
    ])
    print("  (requested…live: environments by state in the database; lock waits: admissions waiting on the advisory lock;\n"
          "   containers: this portal's containers on the engine, running + created (as of its last list);\n"
          "   conmon: of those, started ones counted from /proc; list/_ping: the engine's answer times)")
    if D:
        print("\ntimeline of the direct starts:")
        timeline(ds, ["engine", "ping", "conmon"], [
            ("t", 4, lambda r: f"{r['t']:.0f}"),
            ("sent", 5, lambda r: last(r, "engine", "c_posted")),
            ("ready", 5, lambda r: last(r, "engine", "c_ready")),
            ("err", 4, lambda r: last(r, "engine", "c_errors")),
            ("containers", 10, lambda r: last(r, "engine", "holding")),
            ("conmon", 6, lambda r: last(r, "conmon", "count")),
            ("list ms", 7, lambda r: mx(r, "engine", "took_ms")),
            ("_ping ms", 8, lambda r: mx(r, "ping", "took_ms")),
        ])
    if D and p_db and d_ready:
        print(f"\nratio: launch→ready portal/direct p50 {pct(p_db, 50) / pct(d_ready, 50):.2f}, p95 {pct(p_db, 95) / pct(d_ready, 95):.2f} "
              f"({len(p_db)} ready through the portal, {len(d_ready)} directly)")
    print(f"violations: {v_engine + v_conmon + v_db}")


# ------------------------------------------------------------------------------ main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("portal")
    s.add_argument("--url", required=True, help="the launch URL, e.g. http://127.0.0.1:PORT/lti/launch")
    s.add_argument("--key", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--interval", type=float, required=True, help="seconds between launches")
    s.add_argument("--cap", type=int, required=True)
    s.add_argument("--socket", required=True)
    s.add_argument("--installation", required=True)
    s.add_argument("--psql-host", required=True, help="the embedded PostgreSQL's socket directory")
    s.add_argument("--out", required=True)
    s.add_argument("--poll", type=float, default=0.25)
    s.add_argument("--sample", type=float, default=0.5)
    s.add_argument("--timeout", type=float, default=180)
    s.add_argument("--cpu", action="append", help="NAME=PID: report the CPU this process tree used")
    s.set_defaults(func=cmd_portal)

    d = sub.add_parser("direct")
    d.add_argument("--socket", required=True)
    d.add_argument("--image", required=True)
    d.add_argument("--n", type=int, required=True)
    d.add_argument("--interval", type=float, required=True)
    d.add_argument("--label", required=True, help="K=V on every container and volume created")
    d.add_argument("--out", required=True)
    d.add_argument("--sample", type=float, default=0.5)
    d.add_argument("--timeout", type=float, default=120)
    d.add_argument("--cpu", action="append")
    d.set_defaults(func=cmd_direct)

    c = sub.add_parser("clean")
    c.add_argument("--socket", required=True)
    c.add_argument("--label", action="append", required=True)
    c.set_defaults(func=cmd_clean)

    r = sub.add_parser("report")
    r.add_argument("--out", required=True)
    r.add_argument("--note", default="", help="a line printed under the title (e.g. the phase order)")
    r.set_defaults(func=cmd_report)

    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
