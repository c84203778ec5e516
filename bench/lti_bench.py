#!/usr/bin/env python3
"""Helpers for bench/lti-launch.sh: sign LTI 1.1 launches, warm a user pool, collect results.

Subcommands
  sign     write pre-signed launch bodies (one urlencoded form body per line), spread over one
           file per wrk thread: PREFIX.0, PREFIX.1, ...
  warm     launch users PREFIX0..N-1 once each (signed just in time), over a few parallel
           keep-alive connections; fail unless every launch was accepted (2xx/3xx)
  quiet    wait until the machine is nearly idle (other work would distort the numbers) and
           print the CPU % that was busy
  record   read a wrk run's output, pull out the LTIBENCH line printed by lti-launch.lua, label it
           and append it to a JSON-lines results file; prints the run's accepted launches/s
  report   print the comparison table, the ratios and the final `ratio: X` line
  cpusnap  print a JSON snapshot of CPU time (machine and per process), for record's
           --cpu-before/--cpu-after: how much CPU other work took during a run
  free-port  print a free TCP port on 127.0.0.1

Signing uses oauthlib (Python's reference OAuth 1.0a implementation; HMAC-SHA1, signature in
the body), which shares no code with the portal: its RFC 5849 primitives (base string URI,
parameter normalisation, HMAC-SHA1) sign each body, and once per file set the result is checked
against oauthlib's full `Client.sign`. Each body gets a nonce that is unique by construction (a
fresh random run token plus the body's index) and the time of signing as its timestamp.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import socket
import sys
import threading
import time
import urllib.parse
import uuid

# A launch shaped like the ones Moodle sends for a student opening an external-tool activity.
BASE_PARAMS = [
    ("lti_message_type", "basic-lti-launch-request"),
    ("lti_version", "LTI-1p0"),
    ("resource_link_id", "bench-link-1"),
    ("resource_link_title", "Week 1: notebooks"),
    ("context_id", "bench-course-1"),
    ("context_label", "DS101"),
    ("context_title", "Data Science 101"),
    ("context_type", "CourseSection"),
    ("roles", "Learner"),
    ("launch_presentation_locale", "en"),
    ("launch_presentation_document_target", "window"),
    (
        "launch_presentation_return_url",
        "https://vle.example.ac.uk/mod/lti/return.php?course=2&launch_container=4&instanceid=1&sesskey=0123456789",
    ),
    ("tool_consumer_instance_guid", "vle.example.ac.uk"),
    ("tool_consumer_instance_name", "Example University VLE"),
    ("tool_consumer_info_product_family_code", "moodle"),
    ("tool_consumer_info_version", "2024100700"),
]


# --------------------------------------------------------------------------------------- sign


def _launch_params(uid):
    return list(BASE_PARAMS) + [
        ("user_id", uid),
        ("lis_person_name_given", "Student"),
        ("lis_person_name_family", uid),
        ("lis_person_name_full", f"Student {uid}"),
        ("lis_person_contact_email_primary", f"{uid}@students.example.ac.uk"),
    ]


def _oauth_params(key, nonce, timestamp):
    return [
        ("oauth_consumer_key", key),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", timestamp),
        ("oauth_nonce", nonce),
        ("oauth_version", "1.0"),
        ("oauth_callback", "about:blank"),
    ]


def _sign_fast(url_base, secret, params):
    """RFC 5849 HMAC-SHA1 signature with oauthlib's primitives (3x faster than Client.sign)."""
    from oauthlib.oauth1.rfc5849 import signature

    base = signature.signature_base_string("POST", url_base, signature.normalize_parameters(params))
    return signature.sign_hmac_sha1(base, secret, "")


def _sign_client(url, key, secret, params, nonce, timestamp):
    """The same launch signed through oauthlib's full OAuth1 Client (used as a cross-check)."""
    from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

    client = Client(
        key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        callback_uri="about:blank",
        nonce=nonce,
        timestamp=timestamp,
    )
    _, _, body = client.sign(
        url, http_method="POST", body=params, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    return dict(urllib.parse.parse_qsl(body))["oauth_signature"]


def _sign_chunk(job):
    """Sign bodies [start, stop); returns (start, [body, ...])."""
    from oauthlib.oauth1.rfc5849 import signature

    url, key, secret, token, start, stop, user_prefix, pool_size = job
    url_base = signature.base_string_uri(url)
    out = []
    for i in range(start, stop):
        uid = f"{user_prefix}{i % pool_size}" if pool_size else f"{user_prefix}{i}"
        params = _launch_params(uid) + _oauth_params(key, f"{token}{i:09d}", str(int(time.time())))
        params.append(("oauth_signature", _sign_fast(url_base, secret, params)))
        # Encoded the way a browser submits the VLE's auto-posting form (spaces as '+'); the
        # signature covers the decoded values, so the encoding does not affect it.
        out.append(urllib.parse.urlencode(params))
    return start, out


def cmd_sign(a):
    token = uuid.uuid4().hex[:16] + "-"
    # Cross-check the fast path against oauthlib's full client once per file set.
    ts = str(int(time.time()))
    params = _launch_params("check") + _oauth_params(a.key, token + "check", ts)
    from oauthlib.oauth1.rfc5849.signature import base_string_uri

    fast = _sign_fast(base_string_uri(a.url), a.secret, params)
    full = _sign_client(a.url, a.key, a.secret, _launch_params("check"), token + "check", ts)
    if fast != full:
        sys.exit(f"signature self-check failed: {fast} != {full}")
    n = a.count
    workers = max(1, min(a.workers, math.ceil(n / 2000)))
    step = math.ceil(n / (workers * 4)) if n else 1
    jobs = [
        (a.url, a.key, a.secret, token, s, min(n, s + step), a.user_prefix, a.pool_size)
        for s in range(0, n, step)
    ]
    t0 = time.time()
    files = [open(f"{a.out}.{t}", "w") for t in range(a.threads)]
    written = 0
    try:
        if workers == 1:
            results = map(_sign_chunk, jobs)
        else:
            pool = multiprocessing.get_context("fork").Pool(workers)
            results = pool.imap(_sign_chunk, jobs)
        for start, bodies in results:
            for k, body in enumerate(bodies):
                i = start + k
                files[i % a.threads].write(body + "\n")
                written += 1
        if workers != 1:
            pool.close()
            pool.join()
    finally:
        for f in files:
            f.close()
    print(
        f"signed {written} launches for {a.url} in {time.time() - t0:.1f}s "
        f"({'pool of ' + str(a.pool_size) + ' users' if a.pool_size else 'distinct users'})",
        file=sys.stderr,
    )


# --------------------------------------------------------------------------------------- warm


def cmd_warm(a):
    """Launch users PREFIX0..N-1 once each. Every launch is signed just before it is sent, so a
    slow server cannot push the later ones out of ltiauthenticator's 30-second window."""
    from oauthlib.oauth1.rfc5849.signature import base_string_uri

    u = urllib.parse.urlsplit(a.url)
    url_base = base_string_uri(a.url)
    token = uuid.uuid4().hex[:16] + "-w"
    lock = threading.Lock()
    counts: dict[int, int] = {}
    it = iter(range(a.count))

    def body_for(i):
        params = _launch_params(f"{a.user_prefix}{i}") + _oauth_params(
            a.key, f"{token}{i:09d}", str(int(time.time()))
        )
        params.append(("oauth_signature", _sign_fast(url_base, a.secret, params)))
        return urllib.parse.urlencode(params)

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                break
            status = -1
            for _attempt in range(2):  # a dropped keep-alive connection gets one retry
                try:
                    conn.request(
                        "POST",
                        u.path,
                        body=body_for(i),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            with lock:
                counts[status] = counts.get(status, 0) + 1
        conn.close()

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ok = sum(v for k, v in counts.items() if 200 <= k < 400)
    print(
        f"warm-up: {ok}/{a.count} launches accepted in {time.time() - t0:.1f}s, statuses {counts}",
        file=sys.stderr,
    )
    if ok != a.count:
        sys.exit("warm-up failed: not every launch was accepted")


# -------------------------------------------------------------------------------------- quiet


def _cpu_sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v[:8]), idle


def cmd_cpusnap(a):
    """Print a snapshot of CPU time: the machine's /proc/stat totals and every process's."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        # rest[0] is field 3 (state): ppid is field 4, utime/stime fields 14/15
        procs[pid] = [comm, int(rest[1]), int(rest[11]) + int(rest[12])]
    json.dump({"total": sum(v[:8]), "busy": sum(v[:8]) - v[3] - v[4], "procs": procs}, sys.stdout)


def _others_pct(before_file, after_file, server_pid):
    """% of the machine's CPU used during a run by anything but the server under test (and its
    child processes), wrk, and PostgreSQL: i.e. by work that competes with the benchmark."""
    with open(before_file) as f:
        b = json.load(f)
    with open(after_file) as f:
        e = json.load(f)
    children = {}
    for pid, (_comm, ppid, _t) in e["procs"].items():
        children.setdefault(str(ppid), []).append(pid)
    ours = set()
    stack = [str(server_pid)]
    while stack:
        p = stack.pop()
        if p in ours:
            continue
        ours.add(p)
        stack += children.get(p, [])
    used = 0
    for pid, (comm, _ppid, t) in e["procs"].items():
        if pid in ours or comm in ("wrk", "postgres", "postmaster"):
            bt = b["procs"].get(pid)
            used += t - (bt[2] if bt and bt[0] == comm else 0)
    total = e["total"] - b["total"]
    others = (e["busy"] - b["busy"]) - used
    return max(0.0, 100.0 * others / total) if total > 0 else 0.0


def cmd_quiet(a):
    """Wait (at most --max-wait s) until the machine is nearly idle; print the busy percentage.

    Run while the server under test is idle, so any CPU in use belongs to something else
    (a compiler, another benchmark) that would distort the numbers."""
    deadline = time.time() + a.max_wait
    busy = 0.0
    warned = False
    while True:
        t1, i1 = _cpu_sample()
        time.sleep(1.0)
        t2, i2 = _cpu_sample()
        busy = 100.0 * (1 - (i2 - i1) / max(1, t2 - t1))
        if busy <= a.max_busy or time.time() >= deadline:
            break
        if not warned:
            print(
                f"machine busy ({busy:.0f}% CPU in use by other processes); waiting up to "
                f"{a.max_wait:.0f}s for it to quieten",
                file=sys.stderr,
            )
            warned = True
    if busy > a.max_busy:
        print(f"WARNING: still {busy:.0f}% CPU busy with other work; this run's numbers are unreliable", file=sys.stderr)
    print(f"{busy:.0f}")


# ------------------------------------------------------------------------------------- record


def cmd_record(a):
    line = None
    with open(a.wrk_output) as f:
        for raw in f:
            if raw.startswith("LTIBENCH "):
                line = raw[len("LTIBENCH ") :]
    if line is None:
        sys.exit(f"no LTIBENCH line in {a.wrk_output} (did wrk run the Lua script?)")
    r = json.loads(line)
    window = r["t_last"] - r["t_first"] if r["t_last"] > r["t_first"] else 0.0
    if r["exhausted_threads"] > 0:
        # Some connections ran out of bodies and went quiet before wrk's clock stopped; count
        # only the time during which launches were actually being answered.
        seconds = window
    else:
        seconds = r["duration_s"]
    r["seconds"] = seconds
    r["rate"] = r["accepted"] / seconds if seconds > 0 else 0.0
    if a.cpu_before and a.cpu_after:
        r["others_during_pct"] = round(_others_pct(a.cpu_before, a.cpu_after, a.server_pid), 1)
    else:
        r["others_during_pct"] = 0.0
    r.update(
        server=a.server,
        scenario=a.scenario,
        connections=a.connections,
        kind=a.kind,
        background_busy_pct=a.background_busy,
    )
    with open(a.results, "a") as f:
        f.write(json.dumps(r) + "\n")
    disturbed = int(a.background_busy > a.max_busy or r["others_during_pct"] > a.max_busy)
    print(f"{r['rate']:.1f} {int(r['exhausted_threads'] > 0)} {disturbed}")
    flag = "  (bodies ran out)" if r["exhausted_threads"] else ""
    print(
        f"  {a.server} {a.scenario} c{a.connections} [{a.kind}]: {r['rate']:.1f} accepted/s, "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
        f"{r['accepted']} accepted, {r['refused']} refused {r['codes'] or ''}, "
        f"socket errors {r['socket_errors']}, other work {a.background_busy:.0f}% before / "
        f"{r['others_during_pct']:.0f}% during{flag}",
        file=sys.stderr,
    )


# ------------------------------------------------------------------------------------- report


BUSY_LIMIT = 15.0


def _disturbed(r):
    return r.get("background_busy_pct", 0) > BUSY_LIMIT or r.get("others_during_pct", 0) > BUSY_LIMIT


def _fmt_rate(r):
    flags = ("*" if r["exhausted_threads"] else "") + ("!" if _disturbed(r) else "")
    return f"{r['rate']:.1f}{flags}"


def cmd_report(a):
    global BUSY_LIMIT
    BUSY_LIMIT = a.max_busy
    rows = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    rows = [r for r in rows if r["kind"] == "measure"]
    # The last measurement of each (server, scenario, connections) wins (a re-run with more
    # bodies replaces one whose bodies ran out).
    final = {}
    for r in rows:
        final[(r["server"], r["scenario"], r["connections"])] = r
    servers = [s for s in ("portal", "jupyterhub") if any(k[0] == s for k in final)]
    scenarios = ["first-time", "returning"]
    conns = sorted({k[2] for k in final})

    hdr = f"{'server':<11} {'scenario':<11} {'conns':>5} {'launches/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'accepted':>9} {'non-2xx/3xx':>11} {'sock err':>8}"
    print(hdr)
    print("-" * len(hdr))
    for s in servers:
        for sc in scenarios:
            for c in conns:
                r = final.get((s, sc, c))
                if not r:
                    continue
                print(
                    f"{s:<11} {sc:<11} {c:>5} {_fmt_rate(r):>11} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
                    f"{r['accepted']:>9} {r['refused']:>11} {r['socket_errors']:>8}"
                )
    if any(r["exhausted_threads"] for r in final.values()):
        print("* bodies ran out before the end of the run: rate over the time launches were answered")
    if any(_disturbed(r) for r in final.values()):
        print(
            f"! other work used more than {BUSY_LIMIT:.0f}% of the machine's CPU just before or during "
            "this run: unreliable"
        )
    for r in final.values():
        if r["codes"]:
            print(f"non-accepted statuses, {r['server']} {r['scenario']} c{r['connections']}: {r['codes']}")

    ratio = None
    if "portal" in servers and "jupyterhub" in servers:
        print()
        print("portal / JupyterHub")
        for sc in scenarios:
            for c in conns:
                p, j = final.get(("portal", sc, c)), final.get(("jupyterhub", sc, c))
                if not p or not j:
                    continue
                rr = p["rate"] / j["rate"] if j["rate"] > 0 else float("inf")
                print(
                    f"  {sc:<11} c{c:<4} launches/s x{rr:.2f}   "
                    f"p50 {p['p50_ms']:.1f} vs {j['p50_ms']:.1f} ms   p99 {p['p99_ms']:.1f} vs {j['p99_ms']:.1f} ms"
                )
        c = a.ratio_connections
        p, j = final.get(("portal", "first-time", c)), final.get(("jupyterhub", "first-time", c))
        if p and j and j["rate"] > 0:
            ratio = p["rate"] / j["rate"]
    if ratio is None:
        print(f"ratio: n/a (need portal and JupyterHub first-time runs at {a.ratio_connections} connections)")
    else:
        print(
            f"headline: portal first-time launches/s / JupyterHub first-time launches/s at {a.ratio_connections} connections"
        )
        print(f"ratio: {ratio:.2f}")


def cmd_free_port(a):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("sign")
    s.add_argument("--url", required=True, help="exact launch URL the server will see")
    s.add_argument("--key", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--out", required=True, help="file prefix; writes PREFIX.0 .. PREFIX.<threads-1>")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--user-prefix", required=True)
    s.add_argument("--pool-size", type=int, default=0, help="0: every body a new user; N: users PREFIX0..N-1")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    s.set_defaults(func=cmd_sign)

    w = sub.add_parser("warm")
    w.add_argument("--url", required=True)
    w.add_argument("--key", required=True)
    w.add_argument("--secret", required=True)
    w.add_argument("--user-prefix", required=True)
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--concurrency", type=int, default=8)
    w.set_defaults(func=cmd_warm)

    q = sub.add_parser("quiet")
    q.add_argument("--max-busy", type=float, default=15.0)
    q.add_argument("--max-wait", type=float, default=120.0)
    q.set_defaults(func=cmd_quiet)

    r = sub.add_parser("record")
    r.add_argument("--wrk-output", required=True)
    r.add_argument("--results", required=True)
    r.add_argument("--server", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--connections", type=int, required=True)
    r.add_argument("--kind", default="measure", choices=["measure", "calibrate"])
    r.add_argument("--background-busy", type=float, default=0.0, help="CPU %% busy just before the run")
    r.add_argument("--cpu-before", help="cpusnap output taken just before wrk")
    r.add_argument("--cpu-after", help="cpusnap output taken just after wrk")
    r.add_argument("--server-pid", type=int, default=0)
    r.add_argument("--max-busy", type=float, default=15.0)
    r.set_defaults(func=cmd_record)

    rp = sub.add_parser("report")
    rp.add_argument("--results", required=True)
    rp.add_argument("--ratio-connections", type=int, default=128)
    rp.add_argument("--max-busy", type=float, default=15.0)
    rp.set_defaults(func=cmd_report)

    cs = sub.add_parser("cpusnap")
    cs.set_defaults(func=cmd_cpusnap)

    fp = sub.add_parser("free-port")
    fp.set_defaults(func=cmd_free_port)

    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
