#!/usr/bin/env python3
"""A real SMTP client (python's smtplib) for Sealpost's inbound tests.

  smtp_send.py --port P --from ADDR --to ADDR [--to ADDR ...] [--file MSG]
               [--starttls --cafile CA] [--helo NAME]

Reads the message from --file (or stdin), runs EHLO, [STARTTLS, EHLO,] MAIL, RCPT for each
recipient, and DATA when a recipient was accepted; prints one JSON object with every reply:
  {"ehlo": [code, text], "tls": bool, "mail": [...], "rcpt": {"addr": [...]}, "data": [...] or null}
"""
import argparse
import json
import smtplib
import ssl
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--from", dest="sender", required=True)
ap.add_argument("--to", action="append", required=True)
ap.add_argument("--file")
ap.add_argument("--starttls", action="store_true")
ap.add_argument("--cafile")
ap.add_argument("--helo", default="client.example.test")
a = ap.parse_args()
data = open(a.file, "rb").read() if a.file else sys.stdin.buffer.read()

s = smtplib.SMTP("127.0.0.1", a.port, local_hostname=a.helo, timeout=60)
out = {"ehlo": list(s.ehlo()), "tls": False}
out["ehlo"][1] = out["ehlo"][1].decode()
if a.starttls:
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.check_hostname = False
    code, text = s.starttls(context=ctx)
    out["tls"] = code == 220
    s.ehlo()
code, text = s.mail("" if a.sender == "<>" else a.sender)
out["mail"] = [code, text.decode()]
out["rcpt"] = {}
accepted = 0
for r in a.to:
    code, text = s.rcpt(r)
    out["rcpt"][r] = [code, text.decode()]
    accepted += 200 <= code < 300
if accepted:
    code, text = s.data(data)
    out["data"] = [code, text.decode()]
else:
    out["data"] = None
    s.rset()
s.quit()
print(json.dumps(out))
