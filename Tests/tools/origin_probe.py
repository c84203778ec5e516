#!/usr/bin/env python3
"""What a page of another site could do to a student's Jupyter server through the portal, with the
student's cookie, and what the student's own pages can do (an independent client: urllib and the
`websockets` library).

  origin_probe.py BASE_URL COOKIE CLAIM [TERMINAL]

CLAIM says where the requests claim to come from, as a browser would say it:
  origin:URL     an Origin header (e.g. origin:http://evil.example, origin:null)
  fetch:SITE     no Origin, Sec-Fetch-Site: SITE (cross-site, same-site, same-origin)
  none           neither (a program)
It then tries, in order: POST api/contents (a JSON body), POST api/kernels (no body), POST
api/terminals (no body), and a WebSocket to terminals/websocket/NAME (the terminal just created, or
TERMINAL) running `echo $((6*7))`. Prints one JSON object: each step's status, the terminal's name,
and what the terminal printed.
BASE_URL is http://host:port/user/<user>/<course>/ (the environment's prefix through the portal).
"""
import json
import sys
import urllib.error
import urllib.request

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def claim_headers(claim):
    if claim.startswith("origin:"):
        return {"Origin": claim[len("origin:"):]}
    if claim.startswith("fetch:"):
        return {"Sec-Fetch-Site": claim[len("fetch:"):]}
    return {}


def post(url, headers, body):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode("utf-8", "replace")


def main(base, cookie, claim, terminal=None):
    headers = {"Cookie": cookie, **claim_headers(claim)}
    result = {}
    result["contents"], _ = post(base + "api/contents", {**headers, "Content-Type": "application/json"}, b'{"type": "notebook"}')
    result["kernels"], _ = post(base + "api/kernels", headers, b"")
    result["terminals"], body = post(base + "api/terminals", headers, b"")
    if result["terminals"] == 200:
        terminal = json.loads(body)["name"]
    result["terminal"] = terminal
    if terminal is not None:
        ws_headers = {"Cookie": cookie}
        origin = None
        if claim.startswith("origin:"):
            origin = claim[len("origin:"):]
        elif claim.startswith("fetch:"):
            ws_headers["Sec-Fetch-Site"] = claim[len("fetch:"):]
        url = "ws" + base[len("http"):] + f"terminals/websocket/{terminal}"
        try:
            with connect(url, additional_headers=ws_headers, origin=origin, open_timeout=60) as ws:
                result["websocket"] = 101
                ws.send(json.dumps(["stdin", "echo $((6*7))\r"]))
                printed = ""
                while "42" not in printed:
                    message = json.loads(ws.recv(timeout=60))
                    if message[0] == "stdout":
                        printed += message[1]
                result["output"] = "42"
        except InvalidStatus as refused:
            result["websocket"] = refused.response.status_code
            result["websocket_body"] = refused.response.body.decode("utf-8", "replace")
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
