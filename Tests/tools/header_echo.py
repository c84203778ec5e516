#!/usr/bin/env python3
"""An app behind jupyter-server-proxy, for the tests: answers every HTTP GET with the request's
headers as JSON ([[name, value], ...]); over a WebSocket, answers the client's first message with
one text message holding the handshake's headers. Standard library only; run inside the environment as `python3 -c "$(cat header_echo.py)" PORT`
(jupyter-server-proxy fills in PORT; the script has no braces, which it would take for a template).
"""
import base64
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        seen = json.dumps([[name, value] for name, value in self.headers.items()]).encode()
        if self.headers.get("Upgrade", "").lower() != "websocket":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(seen)))
            self.end_headers()
            self.wfile.write(seen)
            return
        accept = hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WEBSOCKET_GUID).encode()).digest()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", base64.b64encode(accept).decode())
        self.end_headers()
        self.wfile.flush()
        self.skip_frame()
        length = len(seen)
        if length < 126:
            head = bytes([0x81, length])
        elif length < 65536:
            head = bytes([0x81, 126]) + length.to_bytes(2, "big")
        else:
            head = bytes([0x81, 127]) + length.to_bytes(8, "big")
        self.wfile.write(head + seen)
        self.wfile.flush()
        while self.rfile.read(1):  # until the peer closes
            pass
        self.close_connection = True

    def skip_frame(self):
        """Reads one (masked) client frame and ignores it."""
        first = self.rfile.read(2)
        length = first[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self.rfile.read(2), "big")
        elif length == 127:
            length = int.from_bytes(self.rfile.read(8), "big")
        self.rfile.read(4 + length)  # the mask, then the payload

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo)
server.daemon_threads = True
server.serve_forever()
