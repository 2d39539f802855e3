#!/usr/bin/env python3
"""badkeys.py URL KEY RATE OUTFILE: fire RATE requests per second at URL with
KEY's key id and a wrong secret, until SIGTERM; then write the status counts
to OUTFILE as JSON.

The wrong secret has a valid checksum, so it passes the cheap shape check and
costs the server a real bcrypt verification (the case a brute-force attacker
creates); a bad checksum would be rejected before any store or bcrypt work.
A fresh secret per request, so no cache can short-circuit it. Requests are
paced on a fixed schedule and sent from a thread pool, so a slow answer does
not lower the offered rate.
"""
import collections
import http.client
import json
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor

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
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("GET", u.path, headers={"Authorization": "Bearer " + wrong_key(key)})
            status = str(c.getresponse().status)
            c.close()
        except OSError as e:
            status = type(e).__name__
        with lock:
            counts[status] += 1

    start = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(max_workers=64) as pool:
        while not stop.is_set():
            due = start + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                stop.wait(delay)
                continue
            pool.submit(one)
            sent += 1
    elapsed = time.monotonic() - start
    with open(outfile, "w") as f:
        json.dump({"sent": sent, "seconds": round(elapsed, 1), "status": dict(counts)}, f)


if __name__ == "__main__":
    main()
