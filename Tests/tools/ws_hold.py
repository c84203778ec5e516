#!/usr/bin/env python3
"""Opens a WebSocket through the portal and holds it until the portal (or the server) closes it,
with the `websockets` library.

  ws_hold.py URL COOKIE ORIGIN READY_FILE

ORIGIN is sent as the Origin header ("-" for none). Once the socket is open (and an echo answered),
"open" is written to READY_FILE. Prints {"status": 101, "echo": ..., "closed_after": seconds} when it
closes, or {"status": the refusal's status} when the handshake is refused. Gives up after minutes.
"""
import json
import sys
import time

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

LIVENESS = 180


def main(url, cookie, origin, ready_file):
    try:
        with connect(url, additional_headers={"Cookie": cookie}, origin=None if origin == "-" else origin, open_timeout=60) as ws:
            ws.send("ping through the portal")
            echo = ws.recv(timeout=60)
            with open(ready_file, "w") as ready:
                ready.write("open\n")
            opened = time.monotonic()
            try:
                while time.monotonic() - opened < LIVENESS:
                    ws.recv(timeout=LIVENESS)
                print(json.dumps({"status": 101, "echo": echo, "closed_after": None}))
            except (ConnectionClosed, TimeoutError):
                print(json.dumps({"status": 101, "echo": echo, "closed_after": round(time.monotonic() - opened, 2)}))
    except InvalidStatus as refused:
        print(json.dumps({"status": refused.response.status_code}))


if __name__ == "__main__":
    main(*sys.argv[1:])
