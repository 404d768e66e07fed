#!/usr/bin/env python3
"""deploy/openapi.yaml against the real thing.

Starts floodgate (with a real upstream on 127.0.0.1, a room, admin tokens and a
state_dir), calls every endpoint the document describes in the ways an operator
would (success, validation error, wrong token, viewer token, unknown room), and
checks each answer: its status is documented for that path and method, and its
JSON body validates against the documented schema (JSON Schema 2020-12, via
Debian's python3-jsonschema). Also checks that every documented path and method
was exercised, so the document and the server cannot drift apart silently.

    openapi_test.py --floodgate build/release/gateway/floodgate --spec deploy/openapi.yaml
"""
import argparse
import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import jsonschema
import yaml

OPERATOR = "op-0123456789abcdef0123"
VIEWER = "view-0123456789abcdef01"


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"site\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Checker:
    def __init__(self, spec, admin_port):
        self.spec = spec
        self.port = admin_port
        self.resolver = jsonschema.RefResolver.from_schema(spec)
        self.seen = set()  # (spec path, method)
        self.failures = []
        self.checks = 0
        self.templates = []
        for path in spec["paths"]:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
            self.templates.append((re.compile(rx), path))
        # Concrete paths before templates: /admin/v1/keys/rotate is not /rooms/{room}.
        self.templates.sort(key=lambda t: t[1].count("{"))

    def template_of(self, path):
        for rx, tmpl in self.templates:
            if rx.match(path):
                return tmpl
        return None

    def fail(self, what):
        self.failures.append(what)
        print("FAIL:", what)

    def call(self, method, target, body=None, token=OPERATOR, expect=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, target, body=data, headers=headers)
        res = conn.getresponse()
        raw = res.read()
        conn.close()
        self.check(method, target, res.status, dict(res.getheaders()), raw, expect)
        return res.status, raw

    def check(self, method, target, status, headers, raw, expect):
        self.checks += 1
        path = target.split("?")[0]
        label = f"{method} {target} -> {status}"
        if expect is not None and status != expect:
            self.fail(f"{label}: expected {expect}: {raw[:300]!r}")
        tmpl = self.template_of(path)
        if tmpl is None:
            return self.fail(f"{label}: path not in the document")
        op = self.spec["paths"][tmpl].get(method.lower())
        if op is None:
            return self.fail(f"{label}: method not in the document for {tmpl}")
        self.seen.add((tmpl, method.lower()))
        doc = op["responses"].get(str(status))
        if doc is None:
            return self.fail(f"{label}: status not documented for {method} {tmpl}")
        if "$ref" in doc:
            doc = self.resolver.resolve(doc["$ref"])[1]
        content = doc.get("content", {})
        ctype = headers.get("Content-Type", "").split(";")[0].strip()
        if status == 204:
            if raw:
                self.fail(f"{label}: 204 with a body")
            return
        if ctype not in content:
            return self.fail(f"{label}: content type {ctype!r} not documented ({list(content)})")
        for name in doc.get("headers", {}):
            if name not in headers:
                self.fail(f"{label}: documented header {name} missing")
        if ctype == "application/json":
            try:
                value = json.loads(raw)
            except ValueError as e:
                return self.fail(f"{label}: body is not JSON: {e}")
            self.validate(value, content[ctype]["schema"], label)

    def validate(self, value, schema, label):
        try:
            jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(value)
        except jsonschema.ValidationError as e:
            self.fail(f"{label}: {e.message} at {list(e.absolute_path)}")

    def stream_event(self, token):
        """The first event of /admin/v1/stream, as (status, event name, data)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/admin/v1/stream", headers={"Authorization": "Bearer " + token} if token else {})
        res = conn.getresponse()
        if res.status != 200:
            raw = res.read()
            self.check("GET", "/admin/v1/stream", res.status, dict(res.getheaders()), raw, None)
            conn.close()
            return res.status, None, None
        self.check("GET", "/admin/v1/stream", 200, dict(res.getheaders()), b"", 200)
        buf = b""
        while b"\n\n" not in buf.replace(b"retry: 2000\n", b""):
            chunk = res.fp.readline()
            if not chunk:
                break
            buf += chunk
        conn.close()
        event, data = None, None
        for line in buf.decode().splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        return 200, event, data


def wait_for_ports(path, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"floodgate exited with {proc.returncode}")
        if os.path.exists(path):
            ports = {}
            for line in open(path):
                parts = line.split()
                if parts[0] == "admin":
                    ports["admin"] = int(parts[1].rsplit(":", 1)[1])
                elif parts[0] == "listen":
                    ports["listen"] = int(parts[2].rsplit(":", 1)[1])
            if "admin" in ports:
                return ports
        time.sleep(0.05)
    raise SystemExit("floodgate did not write its ports file")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floodgate", required=True)
    ap.add_argument("--spec", required=True)
    args = ap.parse_args()
    spec = yaml.safe_load(open(args.spec))
    jsonschema.Draft202012Validator.check_schema({"$defs": spec["components"]["schemas"]})

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    tmp = tempfile.TemporaryDirectory(prefix="fg-openapi-")
    d = tmp.name
    with open(f"{d}/tokens", "w") as f:
        f.write(f"operator alice {OPERATOR}\nviewer bob {VIEWER}\n")

    def config(rate="2"):
        return (f"threads: 1\nlisten: [{{address: 127.0.0.1:0}}]\n"
                f"admin: {{address: 127.0.0.1:0, tokens_file: {d}/tokens}}\n"
                f"state_dir: {d}/state\naccess_log: off\n"
                f"upstreams:\n  app: {{servers: [127.0.0.1:{upstream.server_address[1]}]}}\n"
                f"default_upstream: app\n"
                f"rooms:\n  sale:\n    match: {{paths: [/reserve]}}\n"
                f"    admission: {{rate: {rate}, burst: 1}}\n    mode: queue_all\n")

    with open(f"{d}/floodgate.yaml", "w") as f:
        f.write(config())
    out = open(f"{d}/floodgate.log", "w")
    proc = subprocess.Popen([args.floodgate, "--config", f"{d}/floodgate.yaml", "--ports-file", f"{d}/ports"],
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        ports = wait_for_ports(f"{d}/ports", proc)
        c = Checker(spec, ports["admin"])
        for _ in range(5):  # people in line, so the stats are not all zero
            conn = http.client.HTTPConnection("127.0.0.1", ports["listen"], timeout=5)
            conn.request("GET", "/reserve", headers={"Accept": "application/json"})
            conn.getresponse().read()
            conn.close()

        c.call("GET", "/healthz", token=None, expect=200)
        c.call("GET", "/readyz", token=None, expect=200)
        c.call("GET", "/dashboard/", token=None, expect=200)
        c.call("GET", "/metrics", expect=200)
        c.call("GET", "/metrics", token=None, expect=401)
        c.call("GET", "/admin/v1/rooms", expect=200)
        c.call("GET", "/admin/v1/rooms", token="not-a-known-token-000", expect=401)
        c.call("GET", "/admin/v1/rooms/sale", token=VIEWER, expect=200)
        c.call("GET", "/admin/v1/rooms/nosuch", expect=404)
        c.call("PATCH", "/admin/v1/rooms/sale", {"rate": 3.5, "banner": "hello", "idle_timeout_s": 90}, expect=200)
        c.call("PATCH", "/admin/v1/rooms/sale", {"rate": None}, expect=200)
        c.call("PATCH", "/admin/v1/rooms/sale", {"burst": 0}, expect=400)
        c.call("PATCH", "/admin/v1/rooms/sale", "{not json", expect=400)
        c.call("PATCH", "/admin/v1/rooms/sale", {"rate": 5}, token=VIEWER, expect=403)
        c.call("PATCH", "/admin/v1/rooms/nosuch", {"rate": 5}, expect=404)
        for action in ("pause", "resume", "queue-all", "close"):
            c.call("POST", f"/admin/v1/rooms/sale/{action}", expect=200)
        c.call("POST", "/admin/v1/rooms/sale/pause", token=VIEWER, expect=403)
        c.call("POST", "/admin/v1/rooms/nosuch/pause", expect=404)
        concert = {"name": "concert", "match": {"paths": ["/concert"]}, "admission": {"rate": 3}}
        c.call("POST", "/admin/v1/rooms", concert, expect=201)
        c.call("POST", "/admin/v1/rooms", concert, expect=409)
        c.call("POST", "/admin/v1/rooms", {"name": "x", "match": {"paths": ["nope"]}}, expect=400)
        c.call("POST", "/admin/v1/rooms", concert, token=VIEWER, expect=403)
        c.call("GET", "/admin/v1/rooms/concert", expect=200)
        c.call("DELETE", "/admin/v1/rooms/sale", expect=409)
        c.call("DELETE", "/admin/v1/rooms/concert", token=VIEWER, expect=403)
        c.call("DELETE", "/admin/v1/rooms/concert", expect=204)
        c.call("DELETE", "/admin/v1/rooms/concert", expect=404)
        c.call("POST", "/admin/v1/keys/rotate", expect=200)
        c.call("POST", "/admin/v1/keys/rotate", token=VIEWER, expect=403)
        c.call("POST", "/admin/v1/reload", expect=200)
        c.call("POST", "/admin/v1/reload", token=VIEWER, expect=403)
        with open(f"{d}/floodgate.yaml", "w") as f:
            f.write(config(rate="lots"))
        c.call("POST", "/admin/v1/reload", expect=422)
        c.call("GET", "/admin/v1/audit", expect=200)
        c.call("GET", "/admin/v1/audit?limit=3", token=VIEWER, expect=200)
        c.call("GET", "/admin/v1/audit?limit=none", expect=400)
        time.sleep(1.2)  # at least one sample a second in the history
        status, raw = c.call("GET", "/admin/v1/history", expect=200)
        if not json.loads(raw)["rooms"].get("sale"):
            c.fail("GET /admin/v1/history: no samples for room sale")
        status, event, data = c.stream_event(VIEWER)
        if event != "stats":
            c.fail(f"stream: first event {event!r}, expected stats")
        else:
            c.validate(data, {"$ref": "#/components/schemas/RoomList"}, "stream stats event")
        c.stream_event(None)
        # The audit entries, as the stream and the API give them.
        _, raw = c.call("GET", "/admin/v1/audit?limit=1000", expect=200)
        actions = [e["action"] for e in json.loads(raw)["entries"]]
        for a in ("room.patch", "room.pause", "room.resume", "room.queue-all", "room.close", "room.create",
                  "room.delete", "keys.rotate", "config.reload"):
            if a not in actions:
                c.fail(f"audit: no {a} entry after that change")

        for path, item in spec["paths"].items():
            for method in item:
                if method in ("get", "post", "patch", "delete", "put") and (path, method) not in c.seen:
                    c.fail(f"{method.upper()} {path} is documented but was not exercised")
        print(f"{c.checks} answers checked against {args.spec}, {len(c.failures)} failures")
        return 1 if c.failures else 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        upstream.shutdown()
        out.close()
        if proc.returncode not in (0, -signal.SIGTERM):
            print(open(f"{d}/floodgate.log").read()[-4000:])


if __name__ == "__main__":
    sys.exit(main())
