#!/usr/bin/env python3
"""wrkstat.py FILE: reduce one `wrk --latency` output to one line.

Prints "rps p50_ms p99_ms requests bad": requests per second, the 50th and
99th latency percentiles in milliseconds, the total from "N requests in",
and the number of responses that were not 2xx/3xx plus socket errors
(a benchmark line with bad > 0 measured errors, not the product).
"""
import re
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unknown latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def main():
    with open(sys.argv[1]) as f:
        out = f.read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        bad += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        bad += sum(int(g) for g in m.groups())
    print(f"{rps:.0f} {p50:.3f} {p99:.3f} {total} {bad}")


if __name__ == "__main__":
    main()
