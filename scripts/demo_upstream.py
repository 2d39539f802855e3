#!/usr/bin/env python3
"""demo_upstream.py PORT: the demo upstream `make run` starts.

An echo service: every request is answered with JSON showing what arrived
(method, path, query, headers, body size), so you can see what Portcullis
forwards: no Authorization header, plus X-Request-Id and the X-Portcullis-*
identity headers. Loopback only.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        out = json.dumps({
            "service": "portcullis demo upstream",
            "method": self.command,
            "path": path,
            "query": query,
            "headers": {k: v for k, v in self.headers.items()},
            "body_bytes": len(body),
        }, indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
