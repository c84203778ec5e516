#!/usr/bin/env python3
"""Hostile and broken HTTP clients against the portal, on raw sockets (nothing of the portal's own).

  http_probe.py HOST PORT malformed             each malformed request of the security issue on its
                                                own connection: {name: {status, closed, seconds}}
  http_probe.py HOST PORT silent                connects and sends nothing: {closed, seconds}
  http_probe.py HOST PORT trickle               a request head a byte a second: {status, closed, seconds, sent}
  http_probe.py HOST PORT keepalive             one request, then idle: {status, closed, idle_seconds}
  http_probe.py HOST PORT http10                HTTP/1.0 without keep-alive: {status, closed}
  http_probe.py HOST PORT body-pause            a body that stops after 3 of 100 bytes: {closed, seconds}
  http_probe.py HOST PORT late-upgrade PATH COOKIE
                                                a request, then a WebSocket upgrade on the same
                                                connection: {statuses, closed}
  http_probe.py HOST PORT slow N FILE           N connections each sending part of a head; writes
                                                "open" to FILE once all are open, then waits until
                                                the portal has closed them: {opened, closed, seconds}
  http_probe.py HOST PORT oversized N           N launch forms of 2 MiB with Connection: close, one
                                                after another: {statuses}

Every wait has a liveness limit of minutes; `closed` says whether the portal closed the connection
(end of stream or reset) before it.
"""
import json
import socket
import sys
import time

LIVENESS = 180


def connect(host, port):
    s = socket.create_connection((host, port), timeout=LIVENESS)
    return s


def read_until_closed(s, limit=LIVENESS):
    """Everything the portal sends until it closes the connection; (bytes, closed)."""
    s.settimeout(limit)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, True
            out += chunk
    except socket.timeout:
        return out, False
    except (ConnectionResetError, BrokenPipeError):
        return out, True


def status_of(data):
    line = data.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else None


def send_all(s, data):
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass


MALFORMED = {
    "bare LF": b"GET /healthz HTTP/1.1\nHost: x\n\n",
    "CL and TE": b"POST /lti/launch HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two Content-Lengths": b"POST /lti/launch HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    "lower-case method": b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "1 MB header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
    "100 KB target": b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/0.9": b"GET /\r\n",
    "TLS on the plain port": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 64,
    "10,000 headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 10_000 + b"\r\n",
}


def malformed(host, port):
    results = {}
    for name, data in MALFORMED.items():
        s = connect(host, port)
        started = time.monotonic()
        send_all(s, data)
        out, closed = read_until_closed(s)
        results[name] = {"status": status_of(out), "closed": closed, "seconds": round(time.monotonic() - started, 2)}
        s.close()
    return results


def silent(host, port):
    s = connect(host, port)
    started = time.monotonic()
    out, closed = read_until_closed(s)
    return {"closed": closed, "seconds": round(time.monotonic() - started, 2), "bytes": len(out)}


def trickle(host, port):
    s = connect(host, port)
    started = time.monotonic()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    sent = 0
    s.settimeout(1)
    out = b""
    closed = False
    while sent < len(request) and time.monotonic() - started < LIVENESS:
        try:
            s.send(request[sent:sent + 1])
            sent += 1
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        try:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
            rest, closed = read_until_closed(s)
            out += rest
            break
        except socket.timeout:
            pass
    return {"status": status_of(out), "closed": closed, "seconds": round(time.monotonic() - started, 2), "sent": sent, "length": len(request)}


def keepalive(host, port):
    s = connect(host, port)
    send_all(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(LIVENESS)
    out = b""
    while b"\r\n\r\n" not in out or not out.endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    answered = time.monotonic()
    rest, closed = read_until_closed(s)
    return {"status": status_of(out), "closed": closed, "idle_seconds": round(time.monotonic() - answered, 2)}


def http10(host, port):
    s = connect(host, port)
    send_all(s, b"GET /healthz HTTP/1.0\r\n\r\n")
    out, closed = read_until_closed(s)
    return {"status": status_of(out), "closed": closed}


def body_pause(host, port):
    s = connect(host, port)
    started = time.monotonic()
    send_all(s, b"POST /lti/launch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nabc")
    out, closed = read_until_closed(s)
    return {"closed": closed, "seconds": round(time.monotonic() - started, 2), "status": status_of(out)}


def late_upgrade(host, port, path, cookie):
    s = connect(host, port)
    send_all(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(LIVENESS)
    first = b""
    while not first.endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        first += chunk
    send_all(s, (f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
    out, closed = read_until_closed(s)
    return {"statuses": [status_of(first), status_of(out)], "closed": closed}


def slow(host, port, count, ready_file):
    sockets = []
    for _ in range(int(count)):
        s = connect(host, port)
        send_all(s, b"GET /healthz HTTP/1.1\r\nHo")
        sockets.append(s)
    started = time.monotonic()
    with open(ready_file, "w") as ready:
        ready.write("open\n")
    closed = 0
    for s in sockets:
        _, was_closed = read_until_closed(s, max(1, LIVENESS - (time.monotonic() - started)))
        closed += 1 if was_closed else 0
        s.close()
    return {"opened": len(sockets), "closed": closed, "seconds": round(time.monotonic() - started, 2)}


def oversized(host, port, count):
    statuses = []
    body = b"user_id=" + b"x" * (2 << 20)
    for _ in range(int(count)):
        s = connect(host, port)
        send_all(s, b"POST /lti/launch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
                 + b"Content-Length: %d\r\n\r\n" % len(body))
        send_all(s, body)
        out, _ = read_until_closed(s)
        statuses.append(status_of(out))
        s.close()
    return {"statuses": statuses}


if __name__ == "__main__":
    host, port, probe = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    probes = {"malformed": malformed, "silent": silent, "trickle": trickle, "keepalive": keepalive, "http10": http10,
              "body-pause": body_pause, "late-upgrade": late_upgrade, "slow": slow, "oversized": oversized}
    print(json.dumps(probes[probe](host, port, *sys.argv[4:])))
