#!/usr/bin/env python3
"""Helpers for bench/proxy-vs-nginx.sh.

Subcommands
  launch  URL KEY SECRET       one signed LTI 1.1 launch (oauthlib), then polls /environment/status
                               until the environment is ready; prints the portal_session cookie's
                               value (exit 1 with the reason if the launch is refused or the start
                               fails)
  ws      URL [options]        WebSocket echo round trips: each of --connections connections sends
                               a message, waits for it to come back (checked byte for byte) and
                               sends the next, for --seconds; prints one JSON object:
                               {"round_trips", "rate", "p50_ms", "p99_ms", "errors", "error"?}
  wrk     FILE                 a `wrk --latency` output as one JSON object: requests/s, transfer
                               MiB/s, p50/p99 ms, requests, non-2xx and socket errors
  brief   RESULTS LEG          one line about one leg (progress output)
  report  RESULTS              the table, the added latencies, the ratios and `ratio: X` (last)

The WebSocket client is `websockets` (asyncio, on uvloop when installed), without compression:
the same client for every leg, so its own cost is the same everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import sys
import time
import urllib.parse
import uuid


# ------------------------------------------------------------------------------------- launch


def cmd_launch(a):
    from oauthlib import oauth1

    user = "proxy-bench-" + uuid.uuid4().hex[:8]
    params = [
        ("lti_message_type", "basic-lti-launch-request"), ("lti_version", "LTI-1p0"),
        ("resource_link_id", "bench-proxy"), ("user_id", user), ("roles", "Learner"),
        ("context_id", "bench-proxy-course"), ("context_label", "BENCH-PROXY"),
        ("context_title", "Proxy benchmark"), ("lis_person_name_full", "Bench " + user),
    ]
    client = oauth1.Client(a.key, client_secret=a.secret, signature_type=oauth1.SIGNATURE_TYPE_BODY)
    _, _, body = client.sign(a.url, http_method="POST", body=params,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    parts = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    if response.status != 303:
        sys.exit(f"the launch was refused: HTTP {response.status}")
    cookie = None
    for name, value in response.getheaders():
        if name.lower() == "set-cookie" and value.startswith("portal_session="):
            cookie = value.split(";", 1)[0].split("=", 1)[1]
    if not cookie:
        sys.exit("the launch answered 303 without a portal_session cookie")
    deadline = time.monotonic() + a.timeout
    status = {}
    while time.monotonic() < deadline:
        conn.request("GET", "/environment/status", headers={"Cookie": "portal_session=" + cookie})
        reply = conn.getresponse()
        status = json.loads(reply.read() or b"{}")
        if status.get("state") == "ready":
            print(cookie)
            return
        if status.get("state") == "failed":
            sys.exit(f"the environment failed to start: {status.get('message')}")
        time.sleep(0.1)
    sys.exit(f"the environment was not ready within {a.timeout} s: {status}")


# ----------------------------------------------------------------------------------------- ws


async def ws_run(a):
    from websockets.asyncio.client import connect

    headers = []
    for h in a.header:
        name, _, value = h.partition(":")
        headers.append((name.strip(), value.strip()))
    message = (b"x" * a.size) if a.binary else ("x" * a.size)
    latencies = []
    errors = []
    opened = [0]
    all_open = asyncio.Event()  # every connection is open (or one failed): start the clock
    start = asyncio.Event()
    deadline = [0.0]
    ended = []

    async def one():
        try:
            async with connect(a.url, compression=None, additional_headers=headers, open_timeout=10,
                               ping_interval=None, max_size=16 << 20, close_timeout=2) as ws:
                opened[0] += 1
                if opened[0] == a.connections:
                    all_open.set()
                await start.wait()
                clock = time.perf_counter
                record = latencies.append
                while clock() < deadline[0]:
                    t0 = clock()
                    await ws.send(message)
                    reply = await ws.recv()
                    record(clock() - t0)
                    if reply != message:
                        errors.append("an echo differed from the message sent")
                        break
                ended.append(clock())  # before the closing handshake, which is not measured
        except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
            errors.append(f"{type(e).__name__}: {e}")
            all_open.set()

    tasks = [asyncio.create_task(one()) for _ in range(a.connections)]
    try:
        await asyncio.wait_for(all_open.wait(), timeout=15)
    except asyncio.TimeoutError:
        errors.append(f"only {opened[0]} of {a.connections} connections opened within 15 s")
    began = time.perf_counter()
    deadline[0] = began + a.seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = max(1e-9, (max(ended) if ended else time.perf_counter()) - began)
    latencies.sort()

    def pct(p):
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 3)

    out = {
        "connections": a.connections, "seconds": round(elapsed, 2), "round_trips": len(latencies),
        "rate": round(len(latencies) / elapsed, 1), "p50_ms": pct(50), "p99_ms": pct(99), "errors": len(errors),
    }
    if errors:
        out["error"] = errors[0]
    return out


def cmd_ws(a):
    try:
        import uvloop
        result = uvloop.run(ws_run(a))
    except ImportError:
        result = asyncio.run(ws_run(a))
    print(json.dumps(result))
    if result["errors"] and not result["round_trips"]:
        sys.exit(1)


# ---------------------------------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_SIZES = {"B": 1 / 1048576, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0, "TB": 1048576.0}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(text):
    out = {"rps": None, "mib_s": None, "p50_ms": None, "p99_ms": None, "requests": 0, "non2xx": 0, "socket_errors": 0}
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M):
        out["rps"] = float(m.group(1))
    if m := re.search(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)", text, re.M):
        out["mib_s"] = float(m.group(1)) * _SIZES[m.group(2)]
    for p, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{p}(?:\.0+)?%\s+(\S+)", text, re.M):
            out[key] = _ms(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        out["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out["socket_errors"] = sum(int(x) for x in m.groups())
    return out


def cmd_wrk(a):
    with open(a.file) as f:
        out = parse_wrk(f.read())
    out["connections"] = a.connections
    if out["rps"] is None:
        out["error"] = "wrk gave no result (see " + a.file + ")"
    print(json.dumps(out))


# ------------------------------------------------------------------------------------- report


REPORT_ROWS = [  # (label, test, key, format, higher is better)
    ("small: req/s", "small", "rps", ".0f", True),
    ("small: p50 ms", "small", "p50_ms", ".3f", False),
    ("small: p99 ms", "small", "p99_ms", ".3f", False),
    ("one connection: req/s", "lat", "rps", ".0f", True),
    ("one connection: p50 ms", "lat", "p50_ms", ".3f", False),
    ("one connection: p99 ms", "lat", "p99_ms", ".3f", False),
    ("1 MiB: req/s", "big", "rps", ".0f", True),
    ("1 MiB: MiB/s", "big", "mib_s", ".0f", True),
    ("1 MiB: p99 ms", "big", "p99_ms", ".2f", False),
    ("WebSocket 1 conn: rt/s", "ws1", "rate", ".0f", True),
    ("WebSocket 1 conn: p50 ms", "ws1", "p50_ms", ".3f", False),
    ("WebSocket 1 conn: p99 ms", "ws1", "p99_ms", ".3f", False),
    ("WebSocket N conns: rt/s", "wsn", "rate", ".0f", True),
    ("WebSocket N conns: p99 ms", "wsn", "p99_ms", ".3f", False),
]
LEGS = ("direct", "nginx", "portal")


def load_results(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.setdefault(r["leg"], {})[r["test"]] = r
    return rows


def cmd_report(a):
    rows = load_results(a.results)

    def get(leg, test, key):
        r = rows.get(leg, {}).get(test)
        return None if r is None or r.get("skipped") else r.get(key)

    def fmt(v, spec, width=10):
        return f"{'n/a':>{width}}" if v is None else f"{v:>{width}{spec}}"

    def ratio(test, key):
        p, n = get("portal", test, key), get("nginx", test, key)
        return None if p is None or not n else p / n

    conns = {t: next((r.get(k) for leg in LEGS for r in [rows.get(leg, {}).get(t)] if r and r.get(k)), None)
             for t, k in (("small", "connections"), ("big", "connections"), ("wsn", "connections"))}
    print()
    print(f"{'':28}" + "".join(f"{leg:>10}" for leg in LEGS) + f"{'portal/nginx':>14}")
    for label, test, key, spec, _ in REPORT_ROWS:
        print(f"{label:28}" + "".join(fmt(get(leg, test, key), spec) for leg in LEGS) + fmt(ratio(test, key), ".2f", 14))
    errors = []
    for leg in LEGS:
        n = 0
        for r in rows.get(leg, {}).values():
            n += (r.get("non2xx") or 0) + (r.get("socket_errors") or 0) + (r.get("errors") or 0)
        errors.append(n if leg in rows else None)
    print(f"{'errors':28}" + "".join(fmt(e, "d") for e in errors))
    print(f"{'CPU busy before the leg %':28}" + "".join(fmt(get(leg, "quiet", "busy_pct"), ".0f") for leg in LEGS))
    print(f"(small = ~100-byte page, {conns['small']} connections; one connection = the same page over 1 "
          f"connection, unloaded; 1 MiB = {conns['big']} connections; WebSocket N = {conns['wsn']} connections; "
          "errors = non-2xx + socket errors + WebSocket failures; CPU busy = other work on the machine "
          "just before the leg, after waiting up to BENCH_QUIET_WAIT for it to drop to BENCH_MAX_BUSY)")
    for leg in LEGS:
        reasons = {r["skipped"] for r in rows.get(leg, {}).values() if r.get("skipped")}
        for reason in sorted(reasons):
            print(f"{leg}: skipped: {reason}")
        for test, r in rows.get(leg, {}).items():
            if r.get("error") and not r.get("skipped"):
                print(f"{leg}: {test}: {r['error']}")

    print()
    for leg in ("nginx", "portal"):
        def added(test, key):
            v, d = get(leg, test, key), get("direct", test, key)
            return "n/a" if v is None or d is None else f"{v - d:+.3f} ms"
        print(f"p99 added latency, {leg} - direct: {added('small', 'p99_ms')} under load ({conns['small']} connections), "
              f"{added('lat', 'p99_ms')} on one connection (p50 {added('lat', 'p50_ms')}); "
              f"WebSocket round trip p50 {added('ws1', 'p50_ms')}")
    print(f"ratio: {'n/a' if ratio('small', 'rps') is None else format(ratio('small', 'rps'), '.2f')}")


def cmd_brief(a):
    r = load_results(a.results).get(a.leg, {})

    def f(test, key, spec):
        v = r.get(test, {}).get(key)
        return "n/a" if v is None else format(v, spec)

    print(f"small {f('small', 'rps', '.0f')} req/s, p99 {f('small', 'p99_ms', '.2f')} ms; "
          f"one connection p99 {f('lat', 'p99_ms', '.3f')} ms; 1 MiB {f('big', 'mib_s', '.0f')} MiB/s; "
          f"WebSocket {f('ws1', 'rate', '.0f')} rt/s (1 conn), {f('wsn', 'rate', '.0f')} rt/s (N conns)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    la = sub.add_parser("launch")
    la.add_argument("url")
    la.add_argument("key")
    la.add_argument("secret")
    la.add_argument("--timeout", type=float, default=180)
    la.set_defaults(func=cmd_launch)

    w = sub.add_parser("ws")
    w.add_argument("url")
    w.add_argument("--seconds", type=float, default=5)
    w.add_argument("--connections", type=int, default=1)
    w.add_argument("--size", type=int, default=64, help="message bytes")
    w.add_argument("--binary", action="store_true", help="binary messages (default text)")
    w.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    w.set_defaults(func=cmd_ws)

    wr = sub.add_parser("wrk")
    wr.add_argument("file")
    wr.add_argument("--connections", type=int)
    wr.set_defaults(func=cmd_wrk)

    b = sub.add_parser("brief")
    b.add_argument("results")
    b.add_argument("leg")
    b.set_defaults(func=cmd_brief)

    r = sub.add_parser("report")
    r.add_argument("results")
    r.set_defaults(func=cmd_report)

    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
