"""Connections: what one client address may hold (the per-address limit,
global across workers, and the reserve kept for everyone else), the
request-head deadline ([server] header_timeout_s) that drops slow-loris
connections however slowly they drip, and shutdown while requests are
still in pool jobs.

Loopback has all of 127.0.0.0/8, so a test binds its client sockets to
127.0.0.7 (the "attacker") and 127.0.0.2 (everyone else); the harness's own
readiness checks come from 127.0.0.1, and a connection of theirs the server
has not yet seen close must not count against the attacker.
"""
import re
import select
import signal
import socket
import sqlite3
import threading
import time

import requests

ATTACKER, OTHER = "127.0.0.7", "127.0.0.2"


def connect_from(inst, source, timeout=5):
    """A TCP connection to inst from the loopback address source."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", inst.port))
    return s


def is_closed_by_server(s):
    """True when the server closed s (EOF or reset), without blocking."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def read_status_line(s):
    """The status line the server answers on s ("" when it closes first)."""
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def get_from(inst, source, path="/healthz", timeout=5):
    """GET path on a new connection from source; returns (status line, seconds taken)."""
    t0 = time.monotonic()
    with connect_from(inst, source, timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        status = read_status_line(s)
    return status, time.monotonic() - t0


# ---------- shutdown ----------

def test_sigterm_with_requests_stuck_in_a_pool_job_exits_cleanly(make_instance):
    """The grace passes while API requests wait in control-pool jobs (blocked
    on the SQLite write lock the test holds). The pools must drain before the
    workers are freed: the jobs resume their requests on them when they end
    (ASan in the test build reports the use after free otherwise)."""
    inst = make_instance(store="sqlite", config="[server]\nshutdown_grace_s = 0")
    inst.start()
    assert inst.root("GET", "/v1/orgs").status_code == 200  # the root key is cached now
    db = sqlite3.connect(inst.db_path, timeout=5, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # every write of the server waits (busy timeout 5 s)
    try:
        def create(i):
            try:
                inst.root("POST", "/v1/orgs", json={"name": f"stuck-{i}"}, timeout=15)
            except requests.RequestException:
                pass  # the server went away without answering: expected
        clients = [threading.Thread(target=create, args=(i,), daemon=True) for i in range(3)]
        for t in clients:
            t.start()
        time.sleep(0.5)  # the requests are in their pool jobs, blocked on the lock
        inst.proc.send_signal(signal.SIGTERM)
        time.sleep(0.7)  # the grace (0 s) has passed: the workers have given up
        assert inst.proc.poll() is None, "exited while pool jobs still ran"
    finally:
        db.execute("ROLLBACK")  # the jobs finish now and resume their requests
        db.close()
    rc = inst.proc.wait(timeout=20)
    log = inst.read_log()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]
    assert rc == 0, log[-3000:]
    assert "shutdown grace passed" in log
    assert inst.log_events()[-1]["event"] == "stopped"


# ---------- what one address may hold ----------

def open_from(inst, source, n):
    return [connect_from(inst, source) for _ in range(n)]


def settle_open(socks, expected, within=5.0):
    """How many of socks the server kept open, once it has closed what it refuses
    (waits until at most expected are open, then a little longer)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if sum(not is_closed_by_server(s) for s in socks) <= expected:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return sum(not is_closed_by_server(s) for s in socks)


def close_all(socks):
    for s in socks:
        s.close()


def test_per_address_limit_holds_across_workers(make_instance):
    inst = make_instance(store="sqlite",
                         config="[server]\nworkers = 4\nmax_connections_per_ip = 10")
    inst.start()
    socks = open_from(inst, ATTACKER, 30)
    try:
        assert settle_open(socks, 10) == 10
        # Another address is not affected.
        status, took = get_from(inst, OTHER)
        assert status.startswith("HTTP/1.1 200"), status
        # Slots come back when connections close.
        close_all([s for s in socks if not is_closed_by_server(s)][:4])
        time.sleep(1.0)  # the server sees the four closes
        more = open_from(inst, ATTACKER, 8)
        assert settle_open(more, 4) == 4
        socks += more
    finally:
        close_all(socks)
    metrics = requests.get(inst.url("/metrics"), timeout=5).text
    assert "portcullis_connections_refused_total 24" in metrics, metrics


def test_one_address_never_holds_more_than_a_quarter_of_max_connections(make_instance):
    """With no per-address limit of its own (0), the reserve still holds:
    max_connections = 40, so one address gets 10 and 30 stay for others."""
    inst = make_instance(store="sqlite", config="[server]\nworkers = 2\nmax_connections = 40\n"
                                                "max_connections_per_ip = 0")
    inst.start()
    socks = open_from(inst, ATTACKER, 30)
    try:
        assert settle_open(socks, 10) == 10
        others = open_from(inst, OTHER, 10)
        socks += others
        assert settle_open(others, 10) == 10
        status, _ = get_from(inst, "127.0.0.3")
        assert status.startswith("HTTP/1.1 200"), status
    finally:
        close_all(socks)


def test_trusted_proxies_are_not_limited(make_instance):
    inst = make_instance(store="sqlite", config="[server]\nmax_connections_per_ip = 3\n"
                                f"trusted_proxies = {ATTACKER}")
    inst.start()
    socks = open_from(inst, ATTACKER, 12)
    try:
        assert settle_open(socks, 12) == 12
        others = open_from(inst, OTHER, 6)
        socks += others
        assert settle_open(others, 3) == 3
    finally:
        close_all(socks)


def test_slow_loris_from_one_address_leaves_other_clients_served(make_instance):
    """300 connections from one address dripping a request head a byte at a
    time: other addresses are still answered promptly."""
    inst = make_instance(store="sqlite", config="[server]\nworkers = 2\nmax_connections = 200")
    inst.start()
    drips = open_from(inst, ATTACKER, 300)
    stop = threading.Event()

    def drip():
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200
        i = 0
        while not stop.is_set() and i < len(head):
            for s in drips:
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(0.5)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        times = []
        for _ in range(8):
            status, took = get_from(inst, OTHER, timeout=3)
            assert status.startswith("HTTP/1.1 200"), status
            times.append(took)
            time.sleep(0.2)
        assert max(times) < 1.5, times
        assert sum(not is_closed_by_server(s) for s in drips) <= 50  # a quarter of 200
    finally:
        stop.set()
        t.join(timeout=5)
        close_all(drips)


# ---------- the request-head deadline ----------

def closed_after(s, limit):
    """Seconds until the server closed s (reading and discarding), or None after limit."""
    t0 = time.monotonic()
    s.settimeout(0.1)
    while time.monotonic() - t0 < limit:
        try:
            if s.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - t0
    return None


def test_a_dripping_head_is_dropped_at_the_header_deadline(make_instance):
    """A byte every 0.25 s keeps the idle timeout (connection_timeout_s)
    from ever firing; the head deadline (2 s) closes the connection anyway,
    whether it drips the request line or the headers after it."""
    inst = make_instance(store="sqlite",
                         config="[server]\nheader_timeout_s = 2\nconnection_timeout_s = 30")
    inst.start()
    line = connect_from(inst, OTHER)
    headers = connect_from(inst, OTHER)
    headers.sendall(b"GET /healthz HTTP/1.1\r\n")
    stop = threading.Event()

    def drip():
        for i in range(40):
            for s, b in ((line, b"GET /healthz?x=aaaaaaaaaaaaaaaaaaaaaaaaaaa"[i:i + 1] or b"a"),
                         (headers, b"X-Slow: b"[i:i + 1] or b"b")):
                try:
                    s.send(b)
                except OSError:
                    pass
            if stop.wait(0.25):
                return

    t0 = time.monotonic()
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        took_line = closed_after(line, 6)
        took_headers = closed_after(headers, 6 - (time.monotonic() - t0))
        assert took_line is not None, "a dripping request line was never dropped"
        assert took_headers is not None, "dripping headers were never dropped"
        assert 1.5 <= took_line <= 4.0, took_line
        assert time.monotonic() - t0 <= 4.5
    finally:
        stop.set()
        t.join(timeout=5)
        line.close()
        headers.close()
    metrics = requests.get(inst.url("/metrics"), timeout=5).text
    m = re.search(r"^portcullis_header_timeouts_total (\d+)$", metrics, re.M)
    assert m and int(m.group(1)) >= 2, metrics


def test_the_deadline_restarts_for_each_request_and_spares_slow_bodies(make_instance):
    """On a keep-alive connection each request head gets its own deadline
    (requests every 0.4 s for 3 s on a 1 s deadline are all answered); a
    body that takes longer than the deadline is not cut (its head was
    complete); an idle keep-alive connection is closed after the deadline."""
    inst = make_instance(store="sqlite", config="[server]\nheader_timeout_s = 1")
    inst.start()
    with connect_from(inst, OTHER) as s:
        f = s.makefile("rb")
        for _ in range(8):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            status = f.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while True:
                h = f.readline()
                if h in (b"\r\n", b""):
                    break
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            f.read(length)
            time.sleep(0.4)
        # A slow body: 2 s for 100 bytes, after a complete head.
        s.sendall(b"POST /slow/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
                  b"Content-Type: application/octet-stream\r\n\r\n")
        for _ in range(10):
            time.sleep(0.2)
            s.sendall(b"b" * 10)
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 404"), status
        f.close()
    idle = connect_from(inst, OTHER)
    try:
        took = closed_after(idle, 5)
        assert took is not None and 0.8 <= took <= 3.5, took
    finally:
        idle.close()
