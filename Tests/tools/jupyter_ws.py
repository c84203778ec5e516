#!/usr/bin/env python3
"""WebSocket checks through the portal's proxy, with the `websockets` library (an independent client).

  jupyter_ws.py execute BASE_URL COOKIE [CODE]
                                          starts a kernel through the REST API, opens its channels
                                          WebSocket with Jupyter's subprotocol, runs CODE (default
                                          print(6*7)); prints {"subprotocol", "output", "frames"}
  jupyter_ws.py handshake BASE_URL COOKIE opens a kernel-channels WebSocket (COOKIE may be "-" for
                                          none); prints {"status": 101 or the refusal's status}
  jupyter_ws.py ask URL COOKIE [NAME=VALUE ...]
                                          opens the WebSocket at URL (http://… under the prefix) with
                                          COOKIE and the extra headers, sends one message and prints
                                          the first answer
BASE_URL is http://host:port/user/<user>/<course>/ (the environment's prefix through the portal).
"""
import json
import sys
import urllib.request
import uuid

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def ws_url(base, path):
    return "ws" + base[len("http"):] + path


def headers(cookie):
    return {} if cookie == "-" else {"Cookie": cookie}


def execute(base, cookie, code="print(6*7)"):
    request = urllib.request.Request(base + "api/kernels", data=b"{}", method="POST",
                                     headers={**headers(cookie), "Content-Type": "application/json"})
    kernel = json.load(urllib.request.urlopen(request, timeout=60))["id"]
    frames = 0
    with connect(ws_url(base, f"api/kernels/{kernel}/channels"), additional_headers=headers(cookie),
                 subprotocols=["v1.kernel.websocket.jupyter.org"], max_size=None, open_timeout=30) as ws:
        subprotocol = ws.subprotocol
    # The v1 subprotocol frames messages in binary; the JSON protocol is simpler to drive here.
    with connect(ws_url(base, f"api/kernels/{kernel}/channels"), additional_headers=headers(cookie), max_size=None, open_timeout=30) as ws:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "", "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False},
        }))
        output = None
        while output is None:
            message = json.loads(ws.recv(timeout=60))
            frames += 1
            if message.get("msg_type") == "stream" and message.get("parent_header", {}).get("msg_id") == msg_id:
                output = message["content"]["text"]
    print(json.dumps({"subprotocol": subprotocol, "output": output, "frames": frames}))


def handshake(base, cookie):
    try:
        with connect(ws_url(base, "api/kernels/00000000-0000-0000-0000-000000000000/channels"), additional_headers=headers(cookie), open_timeout=30):
            print(json.dumps({"status": 101}))
    except InvalidStatus as refused:
        print(json.dumps({"status": refused.response.status_code, "body": refused.response.body.decode("utf-8", "replace")}))


def ask(url, cookie, *extra):
    extra_headers = dict(pair.split("=", 1) for pair in extra)
    with connect(ws_url(url, ""), additional_headers={**headers(cookie), **extra_headers}, open_timeout=30) as ws:
        ws.send("?")
        print(ws.recv(timeout=60))


if __name__ == "__main__":
    {"execute": execute, "handshake": handshake, "ask": ask}[sys.argv[1]](*sys.argv[2:])
