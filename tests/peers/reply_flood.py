#!/usr/bin/env python3
"""Sends many replies over several SMTP connections, retrying every message whose 250 it did
not see, as a sending mail server does. Used by the crash-safety test.

  reply_flood.py --port P --from ADDR --to ADDR --count N --conns C --acks FILE [--deadline S]

Message k has Message-ID <flood-k@client.example.test> and body "Reply number k".
Each acknowledged k is appended to FILE (flushed) as soon as its 250 arrives.
Exits 0 once every message is acknowledged, 1 at the deadline.
"""
import argparse
import os
import queue
import smtplib
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--from", dest="sender", required=True)
ap.add_argument("--to", required=True)
ap.add_argument("--count", type=int, required=True)
ap.add_argument("--conns", type=int, default=4)
ap.add_argument("--acks", required=True)
ap.add_argument("--deadline", type=float, default=240)
a = ap.parse_args()

work = queue.Queue()
for k in range(a.count):
    work.put(k)
acked = set()
lock = threading.Lock()
acks = open(a.acks, "a")
stop_at = time.time() + a.deadline


def message(k):
    return (f"From: Jane <{a.sender}>\r\nTo: {a.to}\r\nSubject: Re: Lab results\r\n"
            f"Message-ID: <flood-{k}@client.example.test>\r\n\r\nReply number {k}\r\n").encode()


def worker():
    conn = None
    while time.time() < stop_at:
        try:
            k = work.get_nowait()
        except queue.Empty:
            with lock:
                if len(acked) >= a.count:
                    break
            time.sleep(0.05)
            continue
        try:
            if conn is None:
                conn = smtplib.SMTP("127.0.0.1", a.port, timeout=10)
                conn.ehlo("client.example.test")
            conn.sendmail(a.sender, [a.to], message(k))
            with lock:
                acked.add(k)
                acks.write(f"{k}\n")
                acks.flush()
                os.fsync(acks.fileno())
        except Exception:
            work.put(k)
            try:
                if conn is not None:
                    conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.2)
    if conn is not None:
        try:
            conn.quit()
        except Exception:
            pass


threads = [threading.Thread(target=worker) for _ in range(a.conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
raise SystemExit(0 if len(acked) >= a.count else 1)
