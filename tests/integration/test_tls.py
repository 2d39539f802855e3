"""HTTPS: serving with [server] tls_cert/tls_key, HSTS, TLS 1.2 and 1.3 only,
and the plain-HTTP redirect listener ([server] redirect_listen).
"""
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest
import requests

from conftest import free_port, run_cli

RID_RE = re.compile(r"req_[0-9A-HJKMNP-TV-Z]{26}")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed P-256 certificate for localhost and 127.0.0.1: (cert, key) paths."""
    d = str(tmp_path_factory.mktemp("tls"))
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
         "-keyout", key, "-out", crt],
        check=True, capture_output=True)
    return crt, key


def tls_config(cert, redirect_port=None, listen=None):
    lines = ["[server]", f"tls_cert = {cert[0]}", f"tls_key = {cert[1]}"]
    if redirect_port:
        lines.append(f"redirect_listen = 127.0.0.1:{redirect_port}")
    if listen:
        lines.append(f"listen = {listen}")
    return "\n".join(lines)


def start_tls(inst, cert, host="127.0.0.1"):
    """Start inst and wait until /healthz answers over HTTPS (verified against cert)."""
    inst.base = f"https://{host}:{inst.port}"
    inst.start(wait=False)
    deadline = time.time() + 15
    while time.time() < deadline:
        if inst.proc.poll() is not None:
            raise AssertionError(f"server exited {inst.proc.returncode}: {inst.read_log()}")
        try:
            if requests.get(inst.url("/healthz"), verify=cert[0], timeout=1).status_code == 200:
                return inst
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError("HTTPS server did not start: " + inst.read_log())


def client_context(version):
    """A client that offers exactly one TLS version (old ones included) and checks nothing."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def https_get(ctx, port, path="/healthz"):
    """GET path over a TLS connection made with ctx; returns (tls version, response head)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return s.version(), data.decode("latin-1")


def client_can_speak(version, cert):
    """True when this Python/OpenSSL can complete a handshake at version at all
    (against an in-process server that allows it): the control for the refusal test."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sctx.minimum_version = version
        sctx.maximum_version = version
    sctx.load_cert_chain(cert[0], cert[1])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def serve():
        try:
            conn, _ = lsock.accept()
            with sctx.wrap_socket(conn, server_side=True) as s:
                s.recv(1)
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_context(version).wrap_socket(raw, server_hostname="localhost") as s:
                return s.version() is not None
    except (OSError, ssl.SSLError):
        return False
    finally:
        t.join(timeout=5)
        lsock.close()


def test_https_serves_with_hsts(make_instance, cert):
    inst = start_tls(make_instance(config=tls_config(cert)), cert)
    r = requests.get(inst.url("/healthz"), verify=cert[0])
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    hsts = r.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))
    assert max_age >= 31536000
    assert "includeSubDomains" in hsts
    assert RID_RE.fullmatch(r.headers["X-Request-Id"])
    # Errors over HTTPS carry HSTS too.
    r = requests.get(inst.url("/nowhere"), verify=cert[0])
    assert r.status_code == 404
    assert r.headers["Strict-Transport-Security"] == hsts
    # Plain HTTP on the HTTPS port is not served.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{inst.port}/healthz", timeout=3)
    assert requests.get(inst.url("/healthz"), verify=cert[0]).status_code == 200


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_1_2_and_1_3_work(make_instance, cert, version):
    inst = start_tls(make_instance(config=tls_config(cert)), cert)
    v = getattr(ssl.TLSVersion, version)
    negotiated, head = https_get(client_context(v), inst.port)
    assert negotiated == version.replace("_", ".")
    assert head.startswith("HTTP/1.1 200"), head
    assert "Strict-Transport-Security:" in head


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_before_1_2_is_refused(make_instance, cert, version):
    v = getattr(ssl.TLSVersion, version)
    if not client_can_speak(v, cert):
        pytest.skip(f"this OpenSSL cannot offer {version} at all, so a refusal would prove nothing")
    inst = start_tls(make_instance(config=tls_config(cert)), cert)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(client_context(v), inst.port)
    # The refused handshake does not hurt the server.
    assert requests.get(inst.url("/healthz"), verify=cert[0]).status_code == 200


def test_redirect_listener_answers_308_to_https(make_instance, cert):
    rport = free_port()
    inst = start_tls(make_instance(config=tls_config(cert, redirect_port=rport)), cert)
    plain = f"http://127.0.0.1:{rport}"
    for method in ("GET", "POST", "DELETE"):
        r = requests.request(method, plain + "/v1/api-keys/abc?limit=5&x=a%20b",
                             allow_redirects=False, data=b"ignored" if method == "POST" else None)
        assert r.status_code == 308
        assert r.headers["Location"] == \
            f"https://127.0.0.1:{inst.port}/v1/api-keys/abc?limit=5&x=a%20b"
        assert RID_RE.fullmatch(r.headers["X-Request-Id"])
    # The host comes from the Host header, with the HTTPS port instead of the plain one.
    r = requests.get(plain + "/p?q=1", headers={"Host": f"api.example.com:{rport}"},
                     allow_redirects=False)
    assert r.headers["Location"] == f"https://api.example.com:{inst.port}/p?q=1"
    # A Host header that is not a host name falls back to the listen address.
    r = requests.get(plain + "/p", headers={"Host": "evil.example/@x"}, allow_redirects=False)
    assert r.headers["Location"] == f"https://127.0.0.1:{inst.port}/p"
    # HTTP/1.0 without a Host header.
    with socket.create_connection(("127.0.0.1", rport), timeout=5) as s:
        s.sendall(b"GET /old?client=1 HTTP/1.0\r\n\r\n")
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 308") or head.startswith("HTTP/1.0 308"), head
    assert f"Location: https://127.0.0.1:{inst.port}/old?client=1\r\n" in head
    # Request ids are unique.
    ids = {requests.get(plain + "/", allow_redirects=False).headers["X-Request-Id"]
           for _ in range(5)}
    assert len(ids) == 5
    # Following the redirect reaches the HTTPS listener.
    r = requests.get(plain + "/healthz?probe=1", verify=cert[0])
    assert r.status_code == 200
    assert r.url == f"https://127.0.0.1:{inst.port}/healthz?probe=1"
    assert [h.status_code for h in r.history] == [308]


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_redirect_to_an_ipv6_listener_brackets_the_address(make_instance, cert):
    rport = free_port()
    inst = make_instance(init=True)
    with open(inst.conf, "a") as f:
        f.write("\n" + tls_config(cert, redirect_port=rport,
                                  listen=f"[::1]:{inst.port}") + "\n")
    start_tls(inst, cert, host="[::1]")
    with socket.create_connection(("127.0.0.1", rport), timeout=5) as s:
        s.sendall(b"GET /a?b=c HTTP/1.0\r\n\r\n")
        head = s.recv(4096).decode("latin-1")
    assert f"Location: https://[::1]:{inst.port}/a?b=c\r\n" in head, head


def test_redirect_listen_without_tls_is_refused(make_instance):
    inst = make_instance(config=f"[server]\nredirect_listen = 127.0.0.1:{free_port()}")
    p = run_cli("serve", "-c", inst.conf, env={"ASAN_OPTIONS": "detect_leaks=0"}, timeout=20)
    assert p.returncode == 2  # a configuration error (docs/configuration.md)
    assert "redirect_listen needs tls_cert and tls_key" in p.stderr
    p = run_cli("config", "check", "-c", inst.conf)
    assert p.returncode == 2 and "redirect_listen needs tls_cert and tls_key" in p.stderr


def test_unreadable_certificate_stops_start_up(make_instance, cert):
    inst = make_instance(config=tls_config(("/nonexistent/cert.pem", cert[1])))
    p = run_cli("serve", "-c", inst.conf, env={"ASAN_OPTIONS": "detect_leaks=0"}, timeout=20)
    assert p.returncode == 1
    assert "/nonexistent/cert.pem" in p.stderr


# ---------- what the TLS listener offers (checked with GnuTLS's own client) ----------

GNUTLS_CLI = shutil.which("gnutls-cli")
needs_gnutls_cli = pytest.mark.skipif(
    not GNUTLS_CLI and not os.environ.get("CI"),
    reason="gnutls-cli missing (Debian gnutls-bin; scripts/deps.sh installs it)")


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory):
    """A self-signed RSA certificate: with it, RSA key exchange and the
    ECDHE-RSA suites are possible at all, so refusing them means something."""
    d = str(tmp_path_factory.mktemp("tls-rsa"))
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", crt],
        check=True, capture_output=True)
    return crt, key


@pytest.fixture(scope="module")
def rsa_tls_instance(rsa_cert, tmp_path_factory):
    """One HTTPS instance with the RSA certificate and HTTP/2 on (ALPN h2),
    shared by the handshake checks."""
    from conftest import Instance
    inst = Instance(config=tls_config(rsa_cert).replace(
        "[server]\n", "[server]\nhttp2_max_concurrent_streams = 16\n", 1))
    start_tls(inst, rsa_cert)
    yield inst
    inst.stop()
    shutil.rmtree(inst.dir, ignore_errors=True)


def gnutls_handshake(port, priority):
    """Handshake with gnutls-cli offering only what priority allows, then close.
    Returns (ok, description): description is GnuTLS's summary of the session,
    e.g. (TLS1.2)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)."""
    p = subprocess.run([GNUTLS_CLI, "--insecure", "--priority", priority, "--port", str(port),
                        "127.0.0.1"], input=b"", capture_output=True, timeout=20)
    out = p.stdout.decode("latin-1") + p.stderr.decode("latin-1")
    m = re.search(r"- Description: (\S+)", out)
    return p.returncode == 0 and m is not None, (m.group(1) if m else out[-400:])


@needs_gnutls_cli
@pytest.mark.parametrize("what,priority", [
    ("RSA key exchange only (no forward secrecy)",
     "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA"),
    ("CBC suites only", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC"),
    ("SHA-1 MAC suites only", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-MAC-ALL:+SHA1"),
    ("TLS 1.1 only", "NORMAL:-VERS-ALL:+VERS-TLS1.1"),
    ("TLS 1.0 only", "NORMAL:-VERS-ALL:+VERS-TLS1.0"),
])
def test_tls_refuses_weak_offers(rsa_tls_instance, what, priority):
    ok, desc = gnutls_handshake(rsa_tls_instance.port, priority)
    assert not ok, f"{what}: handshake succeeded: {desc}"
    # The refused handshake does not hurt the server.
    assert gnutls_handshake(rsa_tls_instance.port, "NORMAL")[0]


@needs_gnutls_cli
@pytest.mark.parametrize("version,priority", [
    ("TLS1.2", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-128-GCM"),
    ("TLS1.2", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+CHACHA20-POLY1305"),
    ("TLS1.3", "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM"),
    ("TLS1.3", "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305"),
])
def test_tls_forward_secret_aead_suites_work(rsa_tls_instance, version, priority):
    ok, desc = gnutls_handshake(rsa_tls_instance.port, priority)
    assert ok, desc
    assert desc.startswith(f"({version}-"), desc


@needs_gnutls_cli
def test_tls_server_order_picks_the_suite(rsa_tls_instance):
    """A client that prefers AES-128-GCM still gets AES-256-GCM, the server's first choice."""
    ok, desc = gnutls_handshake(
        rsa_tls_instance.port,
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM")
    assert ok, desc
    assert desc.endswith("-(AES-256-GCM)"), desc


def test_redirect_listener_limits_one_address(make_instance, cert):
    """The plain-HTTP redirect listener (256 connections) gives one address at
    most a quarter of them, so one client cannot hold the redirects of all."""
    rport = free_port()
    inst = start_tls(make_instance(store="sqlite", config=tls_config(cert, redirect_port=rport)),
                     cert)
    socks = []
    try:
        for _ in range(80):
            s = socket.create_connection(("127.0.0.1", rport), timeout=5)
            socks.append(s)
        deadline = time.time() + 5
        while time.time() < deadline and sum(not _closed(s) for s in socks) > 64:
            time.sleep(0.05)
        time.sleep(0.3)
        assert sum(not _closed(s) for s in socks) == 64
        # Another address is still redirected meanwhile.
        with socket.socket() as other:
            other.settimeout(5)
            other.bind(("127.0.0.2", 0))
            other.connect(("127.0.0.1", rport))
            other.sendall(b"GET /x HTTP/1.0\r\n\r\n")
            head = other.recv(4096).decode("latin-1")
        assert head.split(" ")[1] == "308", head
    finally:
        for s in socks:
            s.close()


def _closed(s):
    """True when the server closed s (EOF or reset), without blocking."""
    import select
    if not select.select([s], [], [], 0)[0]:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def test_a_stalled_tls_handshake_is_dropped_at_the_header_deadline(make_instance, cert):
    """The request-head deadline ([server] header_timeout_s) runs from the
    connection's start, so a handshake that never finishes is closed too,
    long before the idle timeout (connection_timeout_s, 30 s)."""
    inst = start_tls(make_instance(store="sqlite",
                                   config=tls_config(cert) + "\nheader_timeout_s = 1"), cert)
    with socket.create_connection(("127.0.0.1", inst.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello record, then nothing
        t0 = time.monotonic()
        s.settimeout(4)
        try:
            data = s.recv(4096)
            while data:
                data = s.recv(4096)
        except ConnectionResetError:
            pass
        took = time.monotonic() - t0
    assert 0.7 <= took <= 2.5, took
    assert requests.get(inst.url("/healthz"), verify=cert[0]).status_code == 200


TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")


# testssl's notes about the scanning machine, not findings about the server.
TESTSSL_NOTES = {"engine_problem"}


def test_testssl_finds_only_tls12_tls13_forward_secret_aead(rsa_tls_instance, tmp_path):
    """testssl.sh (Debian's testssl.sh, a real scanner) over the listener with HTTP/2 on:
    protocols and ALPN (h2 offered), the cipher categories, forward secrecy, the server's
    preference, the known vulnerabilities (-U) and the HTTP headers, read from its JSON
    findings: nothing above LOW."""
    assert TESTSSL, "testssl.sh missing (Debian testssl.sh; scripts/deps.sh installs it)"
    out = tmp_path / "testssl.json"
    p = subprocess.run(
        [TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "--ip", "one",
         "--protocols", "--std", "--fs", "--server-preference", "--vulnerable", "--headers",
         "--jsonfile", str(out), f"127.0.0.1:{rsa_tls_instance.port}"],
        capture_output=True, timeout=300)
    assert out.exists(), p.stdout.decode("latin-1")[-2000:] + p.stderr.decode("latin-1")[-2000:]
    import json
    findings = json.loads(out.read_text())
    found = {f["id"]: f["finding"] for f in findings}
    above_low = [(f["id"], f["severity"], f["finding"]) for f in findings
                 if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL")
                 and f["id"] not in TESTSSL_NOTES]
    assert not above_low, above_low
    assert "h2" in found["ALPN_HTTP2"].split(), found["ALPN_HTTP2"]
    assert found["ALPN"].split() == ["http/1.1"], found["ALPN"]
    # The vulnerability checks ran (their severities are in above_low's check).
    for vuln in ("heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "CRIME_TLS",
                 "POODLE_SSL", "SWEET32", "FREAK", "LOGJAM", "BEAST", "LUCKY13", "RC4"):
        assert vuln in found, (vuln, sorted(found))
    assert found["secure_renego"] == "supported", found["secure_renego"]  # RFC 5746
    assert found.get("security_headers") != "--"  # nosniff (test_http.py) is one
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert found[old].startswith("not offered"), (old, found[old])
    assert found["TLS1_2"].startswith("offered"), found["TLS1_2"]
    assert found["TLS1_3"].startswith("offered"), found["TLS1_3"]
    # testssl 3.0's categories of --std: nothing but STRONG (AEAD) offered.
    for weak in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                 "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"):
        assert found[weak].startswith("not offered"), (weak, found[weak])
    assert found["cipherlist_STRONG"].startswith("offered"), found["cipherlist_STRONG"]
    assert found["PFS"].startswith("offered"), found["PFS"]
    assert found["cipher_order"] == "server", found["cipher_order"]
    # Every TLS 1.2 suite forward secret (EC)DHE and AEAD, in the server's order.
    suites12 = found["cipherorder_TLSv1_2"].split()
    assert suites12 and suites12[0] == "ECDHE-RSA-AES256-GCM-SHA384", suites12
    for suite in suites12:
        assert re.match(r"(EC)?DHE-", suite) and re.search(r"GCM|CHACHA20-POLY1305", suite), suite
    assert set(found["cipherorder_TLSv1_3"].split()) <= {
        "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}


# ---------- session tickets and certificate reload ----------

def _der(cert_path):
    return ssl.PEM_cert_to_DER_cert(open(cert_path).read())


def _tls_request(s, path="/healthz"):
    """One keep-alive GET on the TLS socket s; returns the status line."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length:
        body += s.recv(65536)
    return head.split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_sessions_resume_from_tickets(make_instance, cert, version):
    inst = start_tls(make_instance(config=tls_config(cert)), cert)
    ctx = client_context(getattr(ssl.TLSVersion, version))
    with socket.create_connection(("127.0.0.1", inst.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert _tls_request(s).startswith("HTTP/1.1 200")  # TLS 1.3 tickets come after
            session = s.session
            assert not s.session_reused
    assert session is not None and session.has_ticket
    with socket.create_connection(("127.0.0.1", inst.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert _tls_request(s).startswith("HTTP/1.1 200")
            assert s.session_reused, "the ticket was not accepted"


def _make_cert(d, cn):
    crt, key = os.path.join(d, f"{cn}.pem"), os.path.join(d, f"{cn}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", crt],
        check=True, capture_output=True)
    return crt, key


def _peer_der(port):
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def _wait_event(inst, name, count, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(e.get("event") == name for e in inst.log_events()) >= count:
            return True
        time.sleep(0.05)
    return False


def test_sighup_reloads_the_certificate_without_dropping_connections(make_instance, tmp_path):
    import signal
    d = str(tmp_path)
    first, second = _make_cert(d, "first"), _make_cert(d, "second")
    live = (os.path.join(d, "live.pem"), os.path.join(d, "live.key"))
    shutil.copy(first[0], live[0])
    shutil.copy(first[1], live[1])
    inst = start_tls(make_instance(config=tls_config(live)), live)
    assert _peer_der(inst.port) == _der(first[0])
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    raw = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
    old = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        assert _tls_request(old).startswith("HTTP/1.1 200")
        shutil.copy(second[0], live[0])
        shutil.copy(second[1], live[1])
        inst.proc.send_signal(signal.SIGHUP)
        assert _wait_event(inst, "tls_reloaded", 1), inst.read_log()[-2000:]
        # New handshakes get the new certificate ...
        assert _peer_der(inst.port) == _der(second[0])
        # ... while the connection made before keeps working on the old one.
        assert _tls_request(old).startswith("HTTP/1.1 200")
        assert old.getpeercert(binary_form=True) == _der(first[0])
        # A broken file is refused: the last good certificate stays, the server runs on.
        with open(live[0], "w") as f:
            f.write("not a certificate\n")
        inst.proc.send_signal(signal.SIGHUP)
        assert _wait_event(inst, "tls_reload_failed", 1), inst.read_log()[-2000:]
        assert _peer_der(inst.port) == _der(second[0])
        assert _tls_request(old).startswith("HTTP/1.1 200")
    finally:
        old.close()
    assert inst.proc.poll() is None
    assert inst.stop() == 0
