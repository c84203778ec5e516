#!/usr/bin/env python3
"""Signs LTI 1.1 launches with independent implementations, for the portal's tests.

Reads a JSON list of launch specs from the file named by argv[1] and writes a JSON list of results
to the file named by argv[2]. Each spec:
  {"impl": "oauthlib" | "lti", "url": launch URL, "key": ..., "secret": ...,
   "params": [[name, value], ...], "timestamp": optional int, "nonce": optional str,
   "signature_method": optional (oauthlib only, default HMAC-SHA1)}
Each result:
  {"body": urlencoded form body, "params": [[name, value], ...] (including oauth_*),
   "base_string": the signature base string oauthlib computes for it}
"oauthlib" signs with oauthlib's OAuth1 client (duplicate keys kept); "lti" uses the PyPI `lti`
package's ToolConsumer (as LMS test harnesses do), which takes a dict.
"""
import json
import sys
from urllib.parse import urlencode, urlsplit, parse_qsl

from oauthlib import oauth1
from oauthlib.oauth1.rfc5849 import signature


def sign_oauthlib(spec):
    client = oauth1.Client(
        spec["key"],
        client_secret=spec["secret"],
        signature_method=spec.get("signature_method", oauth1.SIGNATURE_HMAC),
        signature_type=oauth1.SIGNATURE_TYPE_BODY,
        timestamp=str(spec["timestamp"]) if spec.get("timestamp") is not None else None,
        nonce=spec.get("nonce"),
    )
    _, _, body = client.sign(
        spec["url"],
        http_method="POST",
        body=[tuple(p) for p in spec["params"]],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return body


def sign_lti(spec):
    from lti import ToolConsumer

    params = {name: value for name, value in spec["params"]}
    consumer = ToolConsumer(
        consumer_key=spec["key"], consumer_secret=spec["secret"], launch_url=spec["url"], params=params
    )
    if spec.get("timestamp") is not None or spec.get("nonce"):
        raise SystemExit("the lti ToolConsumer chooses its own timestamp and nonce")
    data = consumer.generate_launch_data()
    return urlencode(list(data.items()))


def base_string(url, body):
    pairs = parse_qsl(body, keep_blank_values=True)
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    params = signature.collect_parameters(uri_query=urlsplit(url).query, body=pairs, exclude_oauth_signature=True)
    normalized = signature.normalize_parameters(params)
    return signature.signature_base_string("POST", signature.base_string_uri(url), normalized)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        specs = json.load(f)
    results = []
    for spec in specs:
        body = sign_oauthlib(spec) if spec.get("impl", "oauthlib") == "oauthlib" else sign_lti(spec)
        results.append(
            {
                "body": body,
                "params": parse_qsl(body, keep_blank_values=True),
                "base_string": base_string(spec["url"], body),
            }
        )
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
