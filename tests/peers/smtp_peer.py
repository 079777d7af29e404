#!/usr/bin/env python3
"""A real SMTP server for Sealpost's outbound tests, built on aiosmtpd.

Each accepted message is written to DIR/NNNNNN.eml (raw bytes as received) and described by
one JSON line in DIR/index.jsonl: sequence, file, envelope, TLS and AUTH state, and which
connection it came over (so tests can see connection reuse).

  smtp_peer.py --port P --dir DIR [--tls CERT KEY] [--auth USER:PASS]
               [--tempfail-first N] [--reject SUBSTR]

--tempfail-first N  answers 451 to the first N RCPT commands, then accepts.
--reject SUBSTR     answers 550 to recipients containing SUBSTR.
Prints "ready" on stdout once it accepts connections; stops on SIGTERM.
"""
import argparse
import itertools
import json
import os
import signal
import ssl
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--dir", required=True)
ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
ap.add_argument("--auth", metavar="USER:PASS")
ap.add_argument("--tempfail-first", type=int, default=0)
ap.add_argument("--reject", metavar="SUBSTR")
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)

lock = threading.Lock()
counter = itertools.count(1)
tempfails_left = [args.tempfail_first]


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if args.reject and args.reject in address:
            return "550 5.1.1 <%s>: no such user here" % address
        with lock:
            if tempfails_left[0] > 0:
                tempfails_left[0] -= 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with lock:
            n = next(counter)
            name = "%06d.eml" % n
            tmp = os.path.join(args.dir, "." + name)
            with open(tmp, "wb") as f:
                f.write(envelope.original_content)
            os.rename(tmp, os.path.join(args.dir, name))
            auth = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            record = {
                "seq": n,
                "file": name,
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "connection": "%s:%d" % tuple(session.peer[:2]),
                "tls": session.ssl is not None,
                "auth": auth,
                "size": len(envelope.original_content),
                "time": time.time(),
            }
            with open(os.path.join(args.dir, "index.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
        return "250 2.0.0 Ok: queued as peer%06d" % n


options = {}
if args.tls:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*args.tls)
    options.update(tls_context=context, require_starttls=True)
if args.auth:
    user, password = args.auth.split(":", 1)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    options.update(authenticator=authenticator, auth_required=True,
                   auth_require_tls=bool(args.tls))
    warnings.filterwarnings("ignore")

controller = Controller(Handler(), hostname="127.0.0.1", port=args.port,
                        data_size_limit=64 << 20, decode_data=False,
                        enable_SMTPUTF8=True, ready_timeout=10, **options)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()
