"""Limits under attack, with a good client's latency measured beside them
(issue #14 item 5): a slow-loris spread over many addresses that fills the
listener's max_connections, and a connection flood (connections opened and
dropped as fast as the client can, others opened and left idle). A good
client on its own address sends a request on a new connection every
50 ms before and during each attack; the test prints the latencies
(`pytest -s` shows them) and holds every answer to 200 and the attack's
latencies to a bound a stalled server could not meet.

And shutdown on the connection layer: SIGTERM stops accepting, closes idle
keep-alive connections, lets a request waiting on the upstream finish
within the grace, and exits 0.

Loopback has all of 127.0.0.0/8: attackers bind to 127.0.1.x, the good
client to 127.0.0.2.
"""
import os
import re
import signal
import socket
import statistics
import threading
import time

import pytest
import requests

from test_connections import closed_after, connect_from, get_from, read_status_line
from test_forward import Upstream, gateway_key, upstream_conf

GOOD = "127.0.0.2"


def attacker(i):
    return f"127.0.1.{10 + i}"


def sample_latency(inst, seconds, interval=0.05):
    """A good client's GETs of /healthz on new connections for `seconds`:
    (status lines, seconds taken for each)."""
    statuses, times = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status, took = get_from(inst, GOOD, timeout=5)
        statuses.append(status)
        times.append(took)
        time.sleep(interval)
    return statuses, times


def summary(times):
    q = statistics.quantiles(times, n=20)
    return (f"n={len(times)} p50={statistics.median(times) * 1000:.1f}ms "
            f"p95={q[18] * 1000:.1f}ms max={max(times) * 1000:.1f}ms")


def started(make_instance, **server):
    """An instance with these [server] settings (2 workers), and the good
    client's latencies before any attack."""
    conf = "[server]\nworkers = 2\n" + "".join(f"{k} = {v}\n" for k, v in server.items())
    inst = make_instance(store="sqlite", config=conf).start()
    return inst, sample_latency(inst, 1.5)[1]


def metric(inst, name):
    text = requests.get(inst.url("/metrics"), timeout=5).text
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def test_slow_loris_from_many_addresses_at_the_global_limit(make_instance):
    """30 addresses hold 10 connections each, every one dripping a head a
    byte every 0.3 s: three times [server] max_connections (100). The
    listener stays full, each new connection takes the place of the one
    that has waited longest for its head, and the good client's requests
    are answered at once."""
    inst, before = started(make_instance, max_connections=100, max_connections_per_ip=20,
                           header_timeout_s=30, connection_timeout_s=60)
    stop = threading.Event()
    drips = []
    lock = threading.Lock()

    def drip(i):
        socks = []
        for _ in range(10):
            try:
                socks.append(connect_from(inst, attacker(i), timeout=2))
            except OSError:
                pass
        with lock:
            drips.extend(socks)
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 400
        k = 0
        while not stop.is_set():
            for s in socks:
                try:
                    s.send(head[k % len(head):k % len(head) + 1])
                except OSError:
                    pass
            k += 1
            stop.wait(0.3)

    threads = [threading.Thread(target=drip, args=(i,), daemon=True) for i in range(30)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)  # every attacker connection is open (or was given way to)
        statuses, during = sample_latency(inst, 3.0)
        evicted = metric(inst, "portcullis_connections_evicted_total")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        for s in drips:
            s.close()
    print(f"\nslow-loris, 300 connections from 30 addresses, max_connections 100:"
          f"\n  good client before: {summary(before)}\n  good client during: {summary(during)}"
          f"\n  evicted: {evicted}")
    assert all(s.startswith("HTTP/1.1 200") for s in statuses), [
        s for s in statuses if not s.startswith("HTTP/1.1 200")]
    assert evicted >= 200 - 5, evicted  # the listener was full: the oldest gave way
    assert max(during) < 1.5, summary(during)
    assert statistics.median(during) < 0.2, summary(during)
    assert inst.proc.poll() is None


def test_a_full_listener_never_evicts_a_connection_it_has_not_read(make_instance):
    """A full listener lets the connection that has waited longest for a
    head give way to a new one, but never one it has not read yet: that one's
    request may be waiting in its socket. The server is stopped (SIGSTOP)
    while the good client connects and sends its request and two attackers
    connect after it, so one batch of accepts takes all three in that order
    with the listener (max_connections 2) already holding an idle
    connection. The first attacker takes the idle one's place. The second
    used to take the good client's, which was closed unanswered (seen as a
    rare empty status in the connection-flood test below). Now it is
    refused."""
    inst = make_instance(store="sqlite", config="[server]\nworkers = 1\nmax_connections = 2\n")
    inst.start()
    idle = connect_from(inst, attacker(0))
    time.sleep(0.5)  # its first event has run: it is an idle connection, free to give way
    os.kill(inst.proc.pid, signal.SIGSTOP)
    try:
        good = connect_from(inst, GOOD)
        good.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        later = [connect_from(inst, attacker(i)) for i in (1, 2)]
    finally:
        os.kill(inst.proc.pid, signal.SIGCONT)
    try:
        status = read_status_line(good)
        assert status.startswith("HTTP/1.1 200"), status
        assert closed_after(idle, 2.0) is not None  # the idle connection gave way to the first attacker
    finally:
        for s in [idle, good] + later:
            s.close()
    assert inst.proc.poll() is None


def flood(inst, hold):
    """Eight threads on eight addresses open connections as fast as they
    can: half dropped at once, half sent a partial head and left open (up to
    `hold` per address, the oldest closed beyond that). Meanwhile the good
    client samples its latency for 3 s. Returns (connections opened per
    address, the good client's status lines, its latencies, seconds)."""
    stop = threading.Event()
    counts = [0] * 8
    held = [[] for _ in range(8)]

    def run(i):
        while not stop.is_set():
            try:
                s = connect_from(inst, attacker(i), timeout=1)
            except OSError:
                continue
            counts[i] += 1
            if counts[i] % 2:
                s.close()
                continue
            try:
                s.send(b"GET / HTTP/1.1\r\nHo")
            except OSError:
                pass
            held[i].append(s)
            if len(held[i]) > hold:
                held[i].pop(0).close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        statuses, during = sample_latency(inst, 3.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        elapsed = time.monotonic() - t0
        for h in held:
            for s in h:
                s.close()
    return counts, statuses, during, elapsed


def test_connection_flood_leaves_a_good_client_served(make_instance):
    """A connection flood from eight addresses, each holding more open than
    its limit of 20 (the rest are refused at accept): eight times 20 leaves
    room in the listener's 200, so the per-address limit alone keeps the
    good client served throughout, at a latency a stalled server could not
    meet."""
    inst, before = started(make_instance, max_connections=200, max_connections_per_ip=20,
                           header_timeout_s=5)
    counts, statuses, during, elapsed = flood(inst, hold=30)
    refused = metric(inst, "portcullis_connections_refused_total")
    print(f"\nconnection flood, {sum(counts)} connections in {elapsed:.1f} s from 8 addresses"
          f" ({sum(counts) / elapsed:.0f}/s):"
          f"\n  good client before: {summary(before)}\n  good client during: {summary(during)}"
          f"\n  refused over the per-address limit: {refused}")
    assert sum(counts) > 1000, counts
    assert refused > 0
    assert all(s.startswith("HTTP/1.1 200") for s in statuses), [
        s for s in statuses if not s.startswith("HTTP/1.1 200")]
    # A SYN of the good client's may meet a full accept queue (thousands of
    # connections a second on two shared cores) and be sent again after 1 s.
    assert max(during) < 2.5, summary(during)
    assert statistics.median(during) < 0.2, summary(during)
    assert inst.proc.poll() is None


def test_connection_flood_over_a_full_listener_keeps_serving(make_instance):
    """The same flood with eight times the address limit (50) above the
    listener's 200: the listener is full, and each new connection makes the
    one that has waited longest for a head give way, at thousands a second.
    Before the connection layer freed closed connections only after each
    batch of events, an accept that evicted a connection with an event in
    the same batch was a use after free (ASan aborted the server here). The
    good client is mostly answered; it is not guaranteed every time, since
    a flood that fills the listener can make its connection the oldest
    waiting one before its request is read. After the flood it is answered."""
    inst, before = started(make_instance, max_connections=200, max_connections_per_ip=50,
                           header_timeout_s=5)
    counts, statuses, during, elapsed = flood(inst, hold=60)
    evicted = metric(inst, "portcullis_connections_evicted_total")
    ok = sum(s.startswith("HTTP/1.1 200") for s in statuses)
    print(f"\nconnection flood over a full listener, {sum(counts)} connections in {elapsed:.1f} s"
          f"\n  good client during: {summary(during)}, {ok} of {len(statuses)} answered"
          f"\n  evicted: {evicted}")
    assert sum(counts) > 1000, counts
    assert evicted > 0
    assert ok >= len(statuses) * 0.8, statuses
    assert statistics.median(during) < 0.2, summary(during)
    assert inst.proc.poll() is None
    status, _ = get_from(inst, GOOD)
    assert status.startswith("HTTP/1.1 200"), status


def refused_within(port, seconds):
    """True once a connection to port is refused (every worker has closed
    its listening socket), trying for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def slow_upstream():
    up = Upstream()
    yield up
    up.close()


def test_shutdown_finishes_a_forwarded_request_in_flight_and_exits_0(make_instance,
                                                                      slow_upstream):
    """A request waits on the upstream (1.5 s) when SIGTERM comes: new
    connections are refused at once, an idle keep-alive connection is
    closed, the request is answered 200 within the grace (5 s), and the
    process exits 0 with its access line written."""
    gw = make_instance(config=upstream_conf(slow_upstream, timeout_ms=10000) +
                       "\n[server]\nshutdown_grace_s = 5").start()
    _, k = gateway_key(gw)
    idle = connect_from(gw, GOOD)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")  # now idle between requests
    result = {}

    def slow():
        try:
            r = gw.request("GET", "/work/slow?ms=1500", key=k["key"], timeout=10)
            result["status"] = r.status_code
        except requests.RequestException as e:
            result["error"] = repr(e)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    while slow_upstream.count("/work/slow") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow_upstream.count("/work/slow") == 1
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    try:
        took = closed_after(idle, 2)
        assert took is not None and took < 1.0, took  # the idle connection goes at once
    finally:
        idle.close()
    assert refused_within(gw.port, 1.0), "still accepting 1 s after SIGTERM"
    t.join(timeout=10)
    assert result.get("status") == 200, result
    assert gw.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    events = gw.log_events()
    access = [e for e in events if e.get("event") == "access" and e.get("path") == "/work/slow"]
    assert access and access[-1]["completed"] == "ok", access
    assert events[-1]["event"] == "stopped"
