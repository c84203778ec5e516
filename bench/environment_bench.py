#!/usr/bin/env python3
"""Launch → ready for bench/environment-start.sh.

  portal  URL KEY SECRET N MODE   launches N distinct students into one course (MODE sequential or
                                  simultaneous), each signed with oauthlib, follows each to ready
                                  through /environment/status, prints one JSON line per launch:
                                  {"user", "launch_ms", "ready_ms"}
  direct  SOCKET IMAGE N MODE     the same Jupyter start without the portal: create + start through
                                  the engine API and poll /api/status, one JSON line per start:
                                  {"ready_ms"}; removes its containers
"""
import concurrent.futures
import http.client
import json
import socket
import sys
import time
import urllib.parse
import uuid

from oauthlib import oauth1


def launch_body(url, key, secret, user):
    params = [
        ("lti_message_type", "basic-lti-launch-request"), ("lti_version", "LTI-1p0"), ("resource_link_id", "bench-env"),
        ("user_id", user), ("roles", "Learner"), ("context_id", "bench-env-course"), ("context_label", "BENCH-ENV"),
        ("context_title", "Environment benchmark"), ("lis_person_name_full", "Bench " + user),
    ]
    client = oauth1.Client(key, client_secret=secret, signature_type=oauth1.SIGNATURE_TYPE_BODY)
    _, _, body = client.sign(url, http_method="POST", body=params, headers={"Content-Type": "application/x-www-form-urlencoded"})
    return body


def portal_one(url, key, secret, user):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    start = time.monotonic()
    conn.request("POST", parts.path, body=launch_body(url, key, secret, user), headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    launched = time.monotonic()
    if response.status != 303:
        return {"user": user, "error": f"launch answered {response.status}"}
    cookie = response.getheader("Set-Cookie").split(";")[0]
    state = ""
    while time.monotonic() - start < 180:
        conn.request("GET", "/environment/status", headers={"Cookie": cookie})
        status = conn.getresponse()
        state = json.loads(status.read() or b"{}").get("state", "")
        if state in ("ready", "failed"):
            break
        time.sleep(0.05)
    ready = time.monotonic()
    return {"user": user, "state": state, "launch_ms": round((launched - start) * 1000, 1), "ready_ms": round((ready - start) * 1000, 1)}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api(sock, method, path, body=None):
    conn = UnixHTTPConnection(sock)
    conn.request(method, "/v1.41" + path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data and data[:1] in b"{[" else None)


def direct_one(sock, image, index):
    token = uuid.uuid4().hex
    base = f"/bench/{index}/"
    start = time.monotonic()
    status, created = api(sock, "POST", f"/containers/create?name=portal-bench-direct-{uuid.uuid4().hex[:8]}", {
        "Image": image, "User": "1000:100", "Env": [f"JUPYTER_TOKEN={token}"],
        "Cmd": ["jupyter", "server", "--no-browser", "--ip=0.0.0.0", "--port=8888", f"--ServerApp.base_url={base}"],
        "Labels": {"portal.bench": "direct"}, "ExposedPorts": {"8888/tcp": {}},
        "HostConfig": {"Memory": 512 << 20, "NanoCpus": 1_000_000_000, "PidsLimit": 1024, "SecurityOpt": ["no-new-privileges"],
                       "CapDrop": ["ALL"], "PortBindings": {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}},
    })
    cid = created["Id"]
    api(sock, "POST", f"/containers/{cid}/start")
    port = None
    while time.monotonic() - start < 180:
        if port is None:
            _, info = api(sock, "GET", f"/containers/{cid}/json")
            bindings = ((info or {}).get("NetworkSettings", {}).get("Ports") or {}).get("8888/tcp") or []
            if bindings:
                port = int(bindings[0]["HostPort"])
        if port:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", base + "api/status", headers={"Authorization": f"token {token}"})
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
        time.sleep(0.05)
    ready = time.monotonic()
    api(sock, "DELETE", f"/containers/{cid}?force=true")
    return {"ready_ms": round((ready - start) * 1000, 1)}


def run(fn, n, mode):
    if mode == "sequential":
        return [fn(i) for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, range(n)))


def main():
    kind = sys.argv[1]
    if kind == "portal":
        url, key, secret, n, mode = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
        prefix = uuid.uuid4().hex[:6]
        results = run(lambda i: portal_one(url, key, secret, f"{mode[:3]}-{prefix}-{i}"), n, mode)
    else:
        sock, image, n, mode = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        results = run(lambda i: direct_one(sock, image, i), n, mode)
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
