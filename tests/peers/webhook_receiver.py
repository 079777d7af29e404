#!/usr/bin/env python3
"""A webhook receiver for Sealpost's tests: a real HTTP server (Python's http.server).

Every request is described by one JSON line in DIR/received.jsonl: method, path, headers
(lower-case names), body, and the status it was answered with.

  webhook_receiver.py --port P --dir DIR [--fail-first N] [--status S] [--tls CERT KEY]

--fail-first N  answers 500 to the first N requests, then --status (default 204).
Prints "ready" on stdout once it accepts connections; stops on SIGTERM.
"""
import argparse
import json
import os
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--dir", required=True)
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--status", type=int, default=204)
ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
args = ap.parse_args()

lock = threading.Lock()
seen = 0
log_path = os.path.join(args.dir, "received.jsonl")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global seen
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with lock:
            seen += 1
            status = 500 if seen <= args.fail_first else args.status
            entry = {
                "method": "POST",
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "answered": status,
            }
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
if args.tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
print("ready", flush=True)
server.serve_forever()
