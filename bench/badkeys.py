#!/usr/bin/env python3
"""badkeys.py URL KEY RATE OUTFILE: fire RATE requests per second at URL with
KEY's key id and a wrong secret, until SIGTERM; then write the status counts
to OUTFILE as JSON (requests not answered when it stops are counted as
"unanswered_at_stop"; "TimeoutError" means no answer within 10 s).

The wrong secret has a valid checksum, so it passes the cheap shape check and
costs the server a real bcrypt verification (the case a brute-force attacker
creates); a bad checksum would be rejected before any store or bcrypt work.
A fresh secret per request, so no cache can short-circuit it. Requests are
paced on a fixed schedule and sent from a thread pool big enough for every
request to wait out its timeout, so slow answers do not lower the offered rate.
"""
import collections
import http.client
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_S = 10
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def wrong_key(key):
    """Same prefix, env and key id as key; a new random secret with a valid CRC32."""
    head = key.rsplit(".", 1)[0]
    rnd = "".join(secrets.choice(B62) for _ in range(43))
    crc = zlib.crc32(rnd.encode())
    sum6 = ""
    for _ in range(6):
        sum6 = B62[crc % 62] + sum6
        crc //= 62
    bad = f"{head}.{rnd}{sum6}"
    assert bad != key
    return bad


def main():
    url, key, rate, outfile = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    u = urllib.parse.urlsplit(url)
    counts = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def one():
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT_S)
            c.request("GET", u.path, headers={"Authorization": "Bearer " + wrong_key(key)})
            status = str(c.getresponse().status)
            c.close()
        except OSError as e:
            status = type(e).__name__
        with lock:
            counts[status] += 1

    start = time.monotonic()
    sent = 0
    # Enough threads that every request can wait out its timeout without
    # holding back the next ones: the offered rate stays RATE.
    pool = ThreadPoolExecutor(max_workers=int(rate * TIMEOUT_S) + 16)
    while not stop.is_set():
        due = start + sent / rate
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
            continue
        pool.submit(one)
        sent += 1
    elapsed = time.monotonic() - start
    with lock:
        answered = sum(counts.values())
        out = {"sent": sent, "seconds": round(elapsed, 1), "status": dict(counts),
               "unanswered_at_stop": sent - answered}
    with open(outfile, "w") as f:
        json.dump(out, f)
    # Requests still queued on the server would keep this process for up to
    # their timeout: their outcome is already counted as unanswered.
    os._exit(0)


if __name__ == "__main__":
    main()
