#!/usr/bin/env python3
"""A stand-in environment server on a unix socket, for proxy tests of what Jupyter does not show
easily: server-sent events, long polls, header rewriting, chunked uploads.

  stream_upstream.py SOCKET BASE      serves under BASE (e.g. /user/abc/def/) until killed:
    GET  BASE events         text/event-stream: "data: one", then waits for GET BASE ack, then "data: two"
    GET  BASE ack            releases the event stream
    GET  BASE poll           a long poll: answers "released" once GET BASE release arrives
    GET  BASE release        releases the long poll
    GET  BASE headers        the request's headers as JSON
    POST BASE upload         reads the body (chunked or Content-Length); answers {"length", "sha256"}
    GET  BASE echo/N         "echo N" with a Content-Length (HEAD: the same head, no body)
    GET  BASE chunked        a chunked body of 300 numbered lines
    GET  BASE closed         a body delimited by closing the connection (no length, no chunks)
"""
import hashlib
import json
import os
import signal
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

SOCKET, BASE = sys.argv[1], sys.argv[2]
acked, released = threading.Event(), threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"

    def reply(self, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        path = self.path[len(BASE):] if self.path.startswith(BASE) else None
        if path == "events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk("data: one\n\n")
            acked.wait(60)
            self.chunk("data: two\n\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "ack":
            acked.set()
            self.reply("ok")
        elif path == "poll":
            released.wait(60)
            self.reply("released")
        elif path == "release":
            released.set()
            self.reply("ok")
        elif path is not None and path.startswith("echo/"):
            self.reply("echo " + path[5:])
        elif path == "chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for number in range(300):
                self.chunk("line %d\n" % number)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "closed":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close\n" * 1000)
            self.close_connection = True
        elif path == "headers":
            self.reply(json.dumps([[k, v] for k, v in self.headers.items()]), "application/json")
        else:
            self.send_error(404)

    def do_HEAD(self):
        path = self.path[len(BASE):] if self.path.startswith(BASE) else ""
        body = ("echo " + path[5:]).encode()
        self.send_response(200 if path.startswith("echo/") else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

    def do_POST(self):
        digest, length = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data = self.rfile.read(size)
                self.rfile.readline()
                digest.update(data)
                length += len(data)
        else:
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining:
                data = self.rfile.read(min(remaining, 1 << 16))
                digest.update(data)
                length += len(data)
                remaining -= len(data)
        self.reply(json.dumps({"length": length, "sha256": digest.hexdigest()}), "application/json")


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


# A parent that ignores SIGTERM (a Swift test process running the portal does) passes that on.
signal.signal(signal.SIGTERM, signal.SIG_DFL)
if os.path.exists(SOCKET):
    os.unlink(SOCKET)
with Server(SOCKET, Handler) as server:
    print("ready", flush=True)
    server.serve_forever()
