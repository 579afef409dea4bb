#!/usr/bin/env python3
"""The local stack's demo action server (docs/dispatcher.md, "Trying it").

Verifies every call exactly as Flowent's docs describe for receivers: parse the JSON body, remove
`signature`, re-serialize with json.dumps(payload, separators=(",", ":")), HMAC-SHA256 it with the
key and compare the lowercase hex digests in constant time. The key is chosen by the
X-Signature-Key-Id header among the `KEY_ID VALUE` lines of the key file (re-read on every call, so a
new key can be added while it runs). Answers {"result": ..., "error": ""}; a bad signature gets 401.

Two kinds of paths stand in for broken action servers, to try registration's refusals (README, "API
examples"): `/status/NNN` answers status NNN without checking anything, `/error/TEXT` answers 200
with {"result": null, "error": "TEXT"}.

    demo-action-server.py PORT KEY_FILE
"""
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


def keys(path):
    with open(path, encoding="utf-8") as f:
        return dict(line.split(None, 1) for line in f.read().splitlines() if line.strip())


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        kind, _, arg = self.path.lstrip("/").partition("/")
        if kind == "status" and arg.isdigit() and 200 <= int(arg) <= 599:
            return self.answer(int(arg), {"result": None, "error": f"demo: status {arg}"})
        if kind == "error" and arg:
            return self.answer(200, {"result": None, "error": unquote(arg)})
        key = keys(self.server.key_file).get(self.headers.get("X-Signature-Key-Id", ""))
        try:
            payload = json.loads(raw)
            received = payload.pop("signature")
        except (ValueError, KeyError, AttributeError):
            return self.answer(400, {"result": None, "error": "not a signed JSON call"})
        if key is None:
            return self.answer(401, {"result": None, "error": "unknown X-Signature-Key-Id"})
        expected = hmac.new(key.strip().encode(), json.dumps(payload, separators=(",", ":")).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(received, expected):
            return self.answer(401, {"result": None, "error": "invalid signature"})
        if payload.get("test"):
            return self.answer(200, {"result": "ready", "error": ""})
        params = payload.get("parameters", {})
        print(f"call {payload['action_name']} idempotency-key={self.headers.get('Idempotency-Key')} "
              f"parameters={json.dumps(params)}", flush=True)
        self.answer(200, {"result": f"sent to {params.get('to', 'nobody')}", "error": ""})

    def log_message(self, fmt, *args):
        sys.stderr.write("demo-action-server: " + fmt % args + "\n")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.key_file = sys.argv[2]
    server.serve_forever()
