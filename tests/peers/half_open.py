#!/usr/bin/env python3
"""Holds many HTTP requests whose heads never finish, as a stranger starving a web server would.

Opens --count connections to 127.0.0.1:--port, spread over --sources source addresses
(127.0.1.1, 127.0.1.2, ... : loopback answers to all of 127/8), each sending the start of a
request head and never the blank line that ends it. Prints one JSON line when every attempt
was made: {"attempted": N, "open": M} (M: connections the server had not closed by then).
Then holds them until standard input closes, and prints {"still_open": K} before exiting.
"""
import argparse
import json
import resource
import select
import socket
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--sources", type=int, default=250)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 256
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for i in range(a.count):
        src = "127.0.1.%d" % (1 + i % a.sources)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.bind((src, 0))
            s.connect(("127.0.0.1", a.port))
            s.sendall(b"GET /inbox HTTP/1.1\r\nHost: portal.example.test\r\nX-Slow: ")
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    print(json.dumps({"attempted": a.count, "open": count_open(socks)}), flush=True)
    sys.stdin.read()
    print(json.dumps({"still_open": count_open(socks)}), flush=True)


def count_open(socks):
    """Connections the server has not closed (a closed one reads as EOF or an error)."""
    n = 0
    for s in socks:
        try:
            p = select.poll()
            p.register(s, select.POLLIN)
            if not p.poll(0):
                n += 1
                continue
            if s.recv(1, socket.MSG_PEEK):
                n += 1
        except OSError:
            pass
    return n


if __name__ == "__main__":
    main()
