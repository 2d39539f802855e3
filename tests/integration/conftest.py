"""Black-box harness: run the real portcullis binary on a free loopback port.

Every test gets its own instance (data directory, SQLite file or fresh
PostgreSQL database, log file). Instances are stopped when the test ends,
so no server outlives the run. Run with /usr/bin/python3 -m pytest.

PORTCULLIS_TEST_HTTP=2 runs the same tests over HTTP/2 (issue #14: every
gateway behaviour identical on both protocols): every instance gets
[server] h2c = true (prior-knowledge HTTP/2 on its plain listener, which
still speaks HTTP/1.1 too), and every `requests` call to an instance's
listener goes through H2Adapter, an httpx HTTP/2 client (Debian's
python3-httpx with python3-h2), which fails the test unless the answer
really came over HTTP/2. Tests marked http1_only (raw HTTP/1.1 bytes,
framing that HTTP/2 cannot carry) are skipped in that pass; scripts/test.sh
runs it over the data-plane files (HTTP2_FILES there).
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import requests
import requests.adapters
import requests.sessions
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

BIN = os.environ.get("PORTCULLIS_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build-test", "portcullis")
PG_URL = os.environ.get("PORTCULLIS_TEST_PG_URL")
REDIS_URL = os.environ.get("PORTCULLIS_TEST_REDIS_URL")
HTTP2 = os.environ.get("PORTCULLIS_TEST_HTTP", "1") == "2"
H2_CONFIG = "[server]\nh2c = true\nhttp2_max_concurrent_streams = 100\n"
GATEWAY_PORTS = set()  # every Instance's main listener: H2Adapter speaks HTTP/2 to these
H2_EXCHANGES = [0]     # requests answered over HTTP/2 in this run
KEY_RE = re.compile(r"\b([a-z]{2,8}_(?:live|test|root)_[0-9A-HJKMNP-TV-Z]{26}\.[0-9A-Za-z]{49})\b")


def flip_last(s):
    """s with its last character changed (so a key or secret surely differs)."""
    return s[:-1] + ("A" if s[-1] != "A" else "B")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, env=None, check=False, timeout=60):
    """Run `portcullis ARGS`; returns CompletedProcess with text output."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"portcullis {' '.join(args)} failed: {p.returncode} {p.stderr}")
    return p


# Connection-specific fields (RFC 9113 8.2.2): an HTTP/2 request cannot carry them.
H2_CONNECTION_FIELDS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "upgrade"}


class _RawBody:
    """What Response.raw needs once the body is read (close, release_conn)."""

    def close(self):
        pass

    def release_conn(self):
        pass


class H2Adapter(requests.adapters.HTTPAdapter):
    """A requests transport that speaks HTTP/2 (prior knowledge, h2c) to the
    instances' listeners through httpx and HTTP/1.1 to anything else (the
    test upstreams, webhook peers, TLS listeners). Mounted in every Session
    when HTTP2: requests.request() makes a Session per call, so each call
    opens its own HTTP/2 connection, as it opens its own HTTP/1.1 one."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._h2 = None

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        u = urllib.parse.urlsplit(request.url)
        if u.scheme != "http" or u.port not in GATEWAY_PORTS:
            return super().send(request, stream=stream, timeout=timeout, verify=verify,
                                cert=cert, proxies=proxies)
        import httpx
        if self._h2 is None:
            self._h2 = httpx.Client(http1=False, http2=True, trust_env=False)
        headers = []
        for k, v in request.headers.items():
            lk = k.lower()
            if lk == "connection" and v.lower() == "keep-alive":
                continue  # requests' own default
            if lk == "transfer-encoding":
                continue  # a body of unknown length: DATA frames without content-length
            if lk in H2_CONNECTION_FIELDS:
                raise AssertionError(f"{k} cannot be sent over HTTP/2: mark the test http1_only")
            headers.append((k, v))
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        elif hasattr(body, "read"):
            body = body.read()
        if isinstance(timeout, tuple):
            t = httpx.Timeout(timeout[1], connect=timeout[0])
        else:
            t = httpx.Timeout(timeout)
        req = httpx.Request(request.method, request.url, headers=headers, content=body)
        req.extensions["timeout"] = t.as_dict()
        try:
            r = self._h2.send(req)
        except httpx.ConnectTimeout as e:
            raise requests.exceptions.ConnectTimeout(e, request=request)
        except httpx.TimeoutException as e:
            raise requests.exceptions.ReadTimeout(e, request=request)
        except httpx.TransportError as e:
            raise requests.exceptions.ConnectionError(e, request=request)
        assert r.http_version == "HTTP/2", (request.method, request.url, r.http_version)
        H2_EXCHANGES[0] += 1
        resp = requests.Response()
        resp.status_code = r.status_code
        resp.reason = r.reason_phrase
        resp.headers = CaseInsensitiveDict()
        for k, v in r.headers.multi_items():  # repeated fields joined, as urllib3 does
            resp.headers[k] = resp.headers[k] + ", " + v if k in resp.headers else v
        resp._content = r.content
        resp._content_consumed = True
        resp.raw = _RawBody()
        resp.encoding = get_encoding_from_headers(resp.headers)
        resp.url = request.url
        resp.request = request
        resp.connection = self
        resp.http_version = r.http_version
        return resp

    def close(self):
        if self._h2 is not None:
            self._h2.close()
            self._h2 = None
        super().close()


if HTTP2:
    requests.sessions.HTTPAdapter = H2Adapter  # what Session() mounts for http:// and https://


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "http1_only: HTTP/1.1-specific (raw bytes, framing HTTP/2 cannot carry); "
        "skipped when PORTCULLIS_TEST_HTTP=2")


def pytest_collection_modifyitems(config, items):
    if not HTTP2:
        return
    skip = pytest.mark.skip(reason="HTTP/1.1 only (PORTCULLIS_TEST_HTTP=2)")
    for item in items:
        if item.get_closest_marker("http1_only"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if HTTP2:
        terminalreporter.write_line(f"http2: {H2_EXCHANGES[0]} requests answered over HTTP/2")


def pytest_sessionfinish(session, exitstatus):
    # A pass that never spoke HTTP/2 proves nothing.
    if HTTP2 and exitstatus == 0 and session.testscollected and not H2_EXCHANGES[0]:
        session.exitstatus = 1


def fresh_pg_database(server_url=None):
    """Create an empty database on the test server (or on the server of
    server_url, a database URL); returns its URL."""
    import psycopg2
    server_url = server_url or PG_URL
    name = "pcl_" + secrets.token_hex(6)
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    u = urllib.parse.urlparse(server_url)
    return urllib.parse.urlunparse(u._replace(path="/" + name))


class Instance:
    """One portcullis instance: `init`, then `serve` on a free port.

    store="postgres" creates a fresh database on the test server, unless env
    already names one in PORTCULLIS_STORE_URL (another node of a cluster).
    """

    def __init__(self, store="sqlite", bcrypt_cost=4, config="", env=None, init=True,
                 data_dir=None):
        self.dir = data_dir or tempfile.mkdtemp(prefix="pcl-it-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        GATEWAY_PORTS.add(self.port)
        self.env = dict(env or {})
        self.store = store
        if store == "postgres" and "PORTCULLIS_STORE_URL" not in self.env:
            self.env["PORTCULLIS_STORE_URL"] = fresh_pg_database()
        self.conf = os.path.join(self.dir, "portcullis.conf")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.root_key = None
        if init:
            p = run_cli("init", "--data-dir", self.dir, "--bcrypt-cost", str(bcrypt_cost),
                        "--listen", f"127.0.0.1:{self.port}", env=self.env)
            assert p.returncode == 0, p.stderr
            m = KEY_RE.search(p.stdout)
            assert m, p.stdout
            self.root_key = m.group(1)
            self.init_stdout = p.stdout
            if config:
                with open(self.conf, "a") as f:
                    f.write("\n" + config + "\n")
            if HTTP2:
                with open(self.conf, "a") as f:
                    f.write("\n" + H2_CONFIG)

    @property
    def db_path(self):
        """The SQLite file; a test that reads it runs only on SQLite."""
        if self.store != "sqlite":
            pytest.skip("reads the SQLite file directly")
        return os.path.join(self.dir, "portcullis.db")

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        e = dict(os.environ)
        e.update(self.env)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=e)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.read_log()}")
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not start: " + self.read_log())

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.log.close()
        return rc

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_events(self):
        out = []
        for line in self.read_log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def url(self, path):
        return self.base + path

    def request(self, method, path, key=None, **kw):
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = "Bearer " + key
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url(path), headers=headers, **kw)

    def root(self, method, path, **kw):
        return self.request(method, path, key=self.root_key, **kw)


def store_params():
    return ["sqlite", "postgres"] if PG_URL else ["sqlite"]


@pytest.fixture
def make_instance(request, store_kind):
    """make(**Instance kwargs): instances stopped and removed after the test.

    Every test that makes instances runs once per store backend (store_kind):
    an instance gets that backend unless the test names one, and a test that
    names another backend is skipped in this run (it runs in its own).
    """
    made = []

    def make(**kw):
        if "store" in kw and kw["store"] != store_kind and not kw.get("env", {}).get(
                "PORTCULLIS_STORE_URL"):
            pytest.skip(f"runs on {kw['store']} only")
        kw.setdefault("store", store_kind)
        inst = Instance(**kw)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.stop()
        GATEWAY_PORTS.discard(inst.port)  # the port may come back as a test upstream's
        shutil.rmtree(inst.dir, ignore_errors=True)


def add_node(make_instance, first):
    """Another node of first's deployment: its own data directory, port and
    log, the same portcullis.conf (but its own [server] listen), store and kv
    URLs (env) and root key. Not started."""
    node = make_instance(store=first.store, env=first.env, init=False,
                         data_dir=tempfile.mkdtemp(prefix="pcl-it-"))
    with open(first.conf) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^listen\s*=.*$", f"listen = 127.0.0.1:{node.port}", text, count=1)
    assert n == 1, text
    with open(node.conf, "w") as f:
        f.write(text)
    node.root_key = first.root_key
    return node


@pytest.fixture
def make_cluster(make_instance):
    """make_cluster(n=2, kv_url=None, store_url=None, config="", start=True, **kw):
    n nodes of one deployment on one PostgreSQL database and one Redis.

    kv_url defaults to PORTCULLIS_TEST_REDIS_URL; store_url (a database URL)
    to a fresh database on PORTCULLIS_TEST_PG_URL. config and the other
    keywords go to the first Instance; the others copy its configuration
    (add_node). Returns the list of nodes, started unless start=False, and
    then each has heard from all the others (its log says they "joined"), so
    a change waits for every node's acknowledgement from the first one on.
    """
    def make(n=2, kv_url=None, store_url=None, config="", start=True, **kw):
        env = dict(kw.pop("env", None) or {})
        env["PORTCULLIS_KV_URL"] = kv_url or REDIS_URL
        if store_url:
            env["PORTCULLIS_STORE_URL"] = store_url
        first = make_instance(store="postgres", config=config, env=env, **kw)
        nodes = [first] + [add_node(make_instance, first) for _ in range(n - 1)]
        if start:
            for node in nodes:
                node.start(wait=False)
            for node in nodes:
                node.wait_ready()
            deadline = time.time() + 15
            for node in nodes:
                while len(set(re.findall(r"change notices: node (\w+) joined",
                                         node.read_log()))) < n - 1:
                    assert time.time() < deadline, "nodes did not hear from each other"
                    time.sleep(0.02)
        return nodes

    return make


@pytest.fixture(params=store_params())
def store_kind(request):
    return request.param


@pytest.fixture
def gw(make_instance, store_kind):
    """A started instance on each store backend available."""
    return make_instance(store=store_kind).start()


# RFC 9110's phrases: with type about:blank, RFC 9457 makes the title the status phrase.
STATUS_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    422: "Unprocessable Content", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


def assert_problem(resp, status, code):
    """resp is an RFC 9457 problem+json error as docs/api.md ("Errors") defines it:
    title is the status phrase, detail the human text, message the same text (its old name)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["title"] == STATUS_TITLES[status], body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["message"] == body["detail"], body
    assert body["requestId"] == resp.headers["X-Request-Id"]
    assert re.fullmatch(r"req_[0-9A-HJKMNP-TV-Z]{26}", body["requestId"])
    return body
