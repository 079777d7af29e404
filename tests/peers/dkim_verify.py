#!/usr/bin/env python3
"""A second DKIM implementation (dkimpy) checking Sealpost's signatures.

  dkim_verify.py --record 'v=DKIM1; k=rsa; p=...' --name s1._domainkey.example.org < message

The record is served to dkimpy for --name only (no DNS); prints {"ok": bool, "error": str}.
"""
import argparse
import json
import sys

import dkim

ap = argparse.ArgumentParser()
ap.add_argument("--record", required=True)
ap.add_argument("--name", required=True)
a = ap.parse_args()
message = sys.stdin.buffer.read()


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    if name.rstrip(".").lower() == a.name.rstrip(".").lower():
        return a.record.encode()
    return None


try:
    ok = dkim.verify(message, dnsfunc=dnsfunc)
    print(json.dumps({"ok": bool(ok), "error": ""}))
except Exception as e:  # a broken signature may raise instead of returning False
    print(json.dumps({"ok": False, "error": str(e)}))
