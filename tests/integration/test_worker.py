"""The background tier's process: `serve` supervises `portcullis worker
--supervised` as its child (started with it, restarted after it dies,
stopped with it), `[worker] enabled = false` runs none, and `portcullis
worker` alone serves /readyz and /metrics on `[worker] listen`."""
import os
import signal
import subprocess
import time

import requests

from conftest import BIN, free_port


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def worker_child(inst, timeout=10, not_pid=None):
    """The pid of serve's worker child (other than not_pid), waiting for it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for c in children(inst.proc.pid):
            try:
                if c != not_pid and cmdline(c)[1:2] == [b"worker"]:
                    return c
            except FileNotFoundError:
                pass
        time.sleep(0.05)
    raise AssertionError("no worker child: " + inst.read_log())


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_serve_runs_the_worker_as_a_supervised_child_and_restarts_it(make_instance):
    inst = make_instance().start()
    child = worker_child(inst)
    assert cmdline(child)[1:] == [b"worker", b"-c", inst.conf.encode(), b"--supervised", b""]
    os.kill(child, signal.SIGKILL)
    again = worker_child(inst, not_pid=child)
    assert again != child
    assert any(e.get("event") == "worker_exited" and e.get("signal") == 9
               for e in inst.log_events())
    m = requests.get(inst.url("/metrics"), timeout=5).text
    assert "portcullis_worker_restarts_total 1" in m
    assert inst.stop() == 0
    assert wait_gone(again, 1), "the worker outlived serve"


def test_the_worker_dies_with_serve_even_after_kill_9(make_instance):
    inst = make_instance().start()
    child = worker_child(inst)
    inst.proc.kill()
    inst.proc.wait()
    assert wait_gone(child), "the worker outlived a killed serve"


def test_worker_enabled_false_runs_no_child(make_instance):
    inst = make_instance(config="[worker]\nenabled = false").start()
    time.sleep(0.5)
    assert not [c for c in children(inst.proc.pid) if alive(c)]
    assert "portcullis_worker_restarts_total" not in requests.get(inst.url("/metrics")).text


def test_portcullis_worker_alone_serves_readyz_and_metrics(make_instance):
    inst = make_instance()
    port = free_port()
    with open(inst.conf, "a") as f:
        f.write(f"\n[worker]\nlisten = 127.0.0.1:{port}\nnode_name = node-a\n")
    log = open(os.path.join(inst.dir, "worker.log"), "wb")
    p = subprocess.Popen([BIN, "worker", "-c", inst.conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 10
        r = None
        while time.time() < deadline:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.05)
        assert r is not None and r.status_code == 200, r
        assert r.json()["checks"] == {"store": True}
        m = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        assert m.status_code == 200 and "portcullis_build_info" in m.text
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
    with open(os.path.join(inst.dir, "worker.log")) as f:
        text = f.read()
    assert '"owner":"node-a"' in text and '"event":"worker_stopped"' in text


def ensure_key_file(inst):
    """The instance's [secrets] private_key_file (secrets.key beside the
    config), written in the pcsk1 format if init did not make one."""
    path = os.path.join(inst.dir, "secrets.key")
    if not os.path.exists(path):
        import base64
        import hashlib
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        k = X25519PrivateKey.generate()
        raw = serialization.Encoding.Raw
        sk = k.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        pk = k.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
        kid = hashlib.sha256(pk).hexdigest()[:16]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, f"pcsk1:{kid}:{base64.b64encode(sk).decode()}\n".encode())
        os.close(fd)
    return os.path.realpath(path)


def opened_or_mapped(pid, path):
    """Descriptors and mappings of pid that name path."""
    hits = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.path.realpath(os.readlink(f"/proc/{pid}/fd/{fd}")) == path:
                hits.append(f"fd {fd}")
        except FileNotFoundError:
            pass
    with open(f"/proc/{pid}/maps") as f:
        hits += [line.strip() for line in f if line.rstrip().endswith(path)]
    return hits


def test_serve_never_opens_the_private_key_its_child_reads(make_instance):
    inst = make_instance()
    key = ensure_key_file(inst)
    inst.start()
    child = worker_child(inst)
    deadline = time.time() + 10
    while time.time() < deadline and not any(
            e.get("event") == "secrets_keyring_loaded" for e in inst.log_events()):
        time.sleep(0.05)
    loaded = [e for e in inst.log_events() if e.get("event") == "secrets_keyring_loaded"]
    assert loaded and loaded[0]["keys"] >= 1, inst.read_log()
    assert alive(child)
    assert opened_or_mapped(inst.proc.pid, key) == []
    # The check itself sees an open key file: a process that holds one is found.
    with open(key) as held:
        assert opened_or_mapped(os.getpid(), key) == [f"fd {held.fileno()}"]


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def test_serve_metrics_show_what_the_worker_counts_across_a_restart(make_instance):
    """The worker's counters live in a page serve shares with it: one
    scrape of serve shows them, and a restarted worker keeps counting on."""
    import sqlite3
    inst = make_instance(store="sqlite").start()
    child = worker_child(inst)
    m = requests.get(inst.url("/metrics"), timeout=5).text
    assert metric(m, "portcullis_webhook_messages_total") == 0
    assert metric(m, "portcullis_webhook_attempts_in_flight") == 0
    assert 'portcullis_webhook_attempts_total{outcome="egress_refused"} 0' in m

    def add_message(i):
        with sqlite3.connect(inst.db_path) as db:
            db.execute("INSERT INTO webhook_messages (id, org_id, type, body, created_at) "
                       "VALUES (?, NULL, 'global.killed', '{}', ?)",
                       (f"msg_01TESTMESSAGE00000000000{i}", int(time.time() * 1000)))

    def wait_messages(n):
        deadline = time.time() + 10
        while time.time() < deadline:
            v = metric(requests.get(inst.url("/metrics"), timeout=5).text,
                       "portcullis_webhook_messages_total")
            if v == n:
                return
            time.sleep(0.05)
        raise AssertionError(f"messages_total never reached {n}: {v}")

    add_message(1)
    wait_messages(1)  # fanned out by the child, rendered by serve
    os.kill(child, signal.SIGKILL)
    worker_child(inst, not_pid=child)
    add_message(2)
    wait_messages(2)


def test_worker_with_a_setting_its_tier_refuses_exits_2(make_instance):
    """A configuration error (delivery_config_check), before anything is opened."""
    inst = make_instance(config="[webhooks]\nretry_schedule = soon, later")
    p = subprocess.run([BIN, "worker", "-c", inst.conf], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "[webhooks] retry_schedule: step 1" in p.stderr, p.stderr


def events(inst, name):
    return [e for e in inst.log_events() if e.get("event") == name]


def restarts(inst):
    r = requests.get(inst.base + "/metrics", timeout=5)
    for line in r.text.splitlines():
        if line.startswith("portcullis_worker_restarts_total"):
            return int(float(line.split()[-1]))
    return 0


def wait_for(cond, timeout, what, inst):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(what + ": " + inst.read_log()[-3000:])


def crash_looping(make_instance):
    """serve whose child cannot start ([worker] listen on a port held here), a thing serve's
    own check cannot know; returns the instance and the socket holding the port."""
    import socket
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    inst = make_instance(config=f"[worker]\nlisten = 127.0.0.1:{port}")
    inst.start()
    return inst, held


def test_a_crash_looping_worker_is_logged_once_then_on_recovery(make_instance):
    inst, held = crash_looping(make_instance)
    try:
        # 0.5, 1, 2 s backoff: four exits in about 4 s.
        wait_for(lambda: restarts(inst) >= 4, 30, "the child did not exit 4 times", inst)
        exited = events(inst, "worker_exited")
        assert len(exited) == 1, exited  # the first of the run, not one per restart
        assert exited[0].get("exit_code") == 1, exited
        assert events(inst, "worker_restarting") == []  # not yet a backoff ceiling since
    finally:
        held.close()
    # The port is free: the next child stays up, and the run of failures ends in one line.
    wait_for(lambda: events(inst, "worker_recovered"), 40, "no worker_recovered", inst)
    (rec,) = events(inst, "worker_recovered")
    assert rec["exits"] >= 4, rec
    assert len(events(inst, "worker_exited")) == 1
    # After it, a new failure is a new run: logged again.
    os.kill(worker_child(inst), signal.SIGKILL)
    wait_for(lambda: len(events(inst, "worker_exited")) == 2, 15, "no second exit", inst)
    assert events(inst, "worker_exited")[1].get("signal") == 9


def test_a_worker_that_keeps_dying_is_summarised_once_per_backoff_ceiling(make_instance):
    inst, held = crash_looping(make_instance)
    try:
        # Exits at about 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: the summary comes 30 s after
        # the first line, with the count.
        wait_for(lambda: events(inst, "worker_restarting"), 50, "no worker_restarting", inst)
        n = restarts(inst)
        (summary,) = events(inst, "worker_restarting")
        assert summary["exits"] >= 6 and summary.get("exit_code") == 1, summary
        assert len(events(inst, "worker_exited")) == 1
        assert n >= 6 and len(events(inst, "worker_exited")) + 1 < n
    finally:
        held.close()
