#!/usr/bin/env python3
"""Sends a fixed run of HTTP/1.1 requests down one connection and reads the answers with Python's
own HTTP parser (http.client), for proxy tests of keep-alive and pipelining: requests the portal
forwards itself and requests its router answers, mixed on one connection.

  pipeline_client.py HOST PORT BASE COOKIE MODE
    MODE "pipelined": every request written at once, before any answer is read
    MODE "trickle":   the same bytes written 7 at a time, with pauses, so heads arrive in pieces
    MODE "sequential": one request, then its answer, then the next

Prints one JSON object: {"responses": [{"status", "headers", "length", "sha256", "text"}...],
"closed": whether the server closed the connection after the last answer}. The requests, in order:
  GET echo/1; HEAD echo/2; POST upload (Content-Length, 100000 bytes); GET chunked;
  GET echo/3 without the session cookie; POST upload (chunked, 3 chunks); GET echo/4; GET closed
"""
import hashlib
import json
import socket
import sys
import time
from http.client import HTTPResponse

HOST, PORT, BASE, COOKIE, MODE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def request(method, path, body=b"", cookie=True, chunked=False, extra=""):
    lines = [f"{method} {BASE}{path} HTTP/1.1", f"Host: {HOST}:{PORT}"]
    if cookie:
        lines.append(f"Cookie: portal_session={COOKIE}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        payload = b"".join(b"%x;piece\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nX-Trailer: t\r\n\r\n"
    else:
        if method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        payload = body
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload, method


upload = bytes(range(256)) * 400
steps = [
    request("GET", "echo/1"),
    request("HEAD", "echo/2"),
    request("POST", "upload", upload[:100000]),
    request("GET", "chunked"),
    request("GET", "echo/3", cookie=False, extra="Accept: application/json"),
    request("POST", "upload", upload[:3000], chunked=True),
    request("GET", "echo/4"),
    request("GET", "closed"),
]


class Unclosed:
    """The connection's buffered reader, which http.client may not close after one response."""

    def __init__(self, reader):
        self.reader = reader

    def __getattr__(self, name):
        return getattr(self.reader, name)

    def close(self):
        pass


class OneFile:
    """Hands http.client the same buffered reader for every response, so none reads past its own."""

    def __init__(self, reader):
        self.reader = reader

    def makefile(self, *args, **kwargs):
        return Unclosed(self.reader)


def read_answer(source, method):
    response = HTTPResponse(source, method=method)
    response.begin()
    body = response.read()
    return {
        "status": response.status,
        "headers": [[k.lower(), v] for k, v in response.getheaders()],
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "text": body[:200].decode("utf-8", "replace"),
    }


sock = socket.create_connection((HOST, PORT), timeout=30)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
source = OneFile(sock.makefile("rb"))
responses = []
if MODE == "sequential":
    for data, method in steps:
        sock.sendall(data)
        responses.append(read_answer(source, method))
else:
    data = b"".join(data for data, _ in steps)
    if MODE == "trickle":
        for start in range(0, len(data), 7):
            sock.sendall(data[start:start + 7])
            if start % 700 == 0:
                time.sleep(0.002)
    else:
        sock.sendall(data)
    for _, method in steps:
        responses.append(read_answer(source, method))
closed = source.reader.read(1) == b""
print(json.dumps({"responses": responses, "closed": closed, "upload": [
    hashlib.sha256(upload[:100000]).hexdigest(), hashlib.sha256(upload[:3000]).hexdigest()]}))
