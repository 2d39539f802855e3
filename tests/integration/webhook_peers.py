"""Real peers for the webhook and mail tests (test_webhooks.py, test_mail.py):

- TestCA: a CA and a server certificate for localhost / 127.0.0.1 / ::1, made
  with the openssl command line at test time (nothing checked in).
- Receiver: an HTTPS server (http.server's ThreadingHTTPServer + ssl, one
  thread per connection, HTTP/1.1 keep-alive) that records every request
  (method, path, headers, body, time, connection) and every accepted TCP
  connection, and answers per path as scripted: a list of answers used one per
  request, the last one repeated (200, 500 then 200, 410, 429/503 with
  Retry-After, 3xx with Location, never answering, slow).
- verify_signatures: Standard Webhooks' reference library (the npm
  `standardwebhooks` package, pinned in scripts/deps.sh) run by node on
  recorded requests (webhook_verify.js): `new Webhook(secret).verify(...)`.
- SmtpServer: Debian's aiosmtpd as a real SMTP server with STARTTLS on the
  test CA's certificate (optionally required, optionally with AUTH),
  recording every message.
"""
import base64
import email
import email.policy
import http.server
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
VERIFY_JS = os.path.join(HERE, "webhook_verify.js")
SW_MODULE = os.path.join(REPO, "third_party", "standardwebhooks", "node_modules",
                         "standardwebhooks")


# ---- certificates ----

class TestCA:
    """A throw-away CA (EC P-256) and a server certificate it signed for
    localhost, 127.0.0.1 and ::1, in dir: ca.pem, server.pem, server.key."""

    __test__ = False  # not a pytest class

    def __init__(self, dir=None, names=("localhost",), ips=("127.0.0.1", "::1")):
        self.dir = dir or tempfile.mkdtemp(prefix="pcl-ca-")
        self.ca_file = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.cert_file = os.path.join(self.dir, "server.pem")
        self.key_file = os.path.join(self.dir, "server.key")
        san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
        ext = os.path.join(self.dir, "server.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        csr = os.path.join(self.dir, "server.csr")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", self.ca_key, "-out", self.ca_file, "-days", "2",
                      "-subj", "/CN=Portcullis test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", self.key_file, "-out", csr, "-subj", f"/CN={names[0]}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", self.cert_file, "-days", "2", "-extfile", ext)

    @staticmethod
    def _openssl(*args):
        p = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (args, p.stderr)

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


# ---- the HTTPS receiver ----

class Answer:
    """One scripted answer. status/headers/body as sent; delay seconds before
    answering; hang: never answer (the connection is held until the receiver
    stops)."""

    def __init__(self, status=200, headers=None, body=b"ok", delay=0.0, hang=False):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body if isinstance(body, bytes) else body.encode()
        self.delay = delay
        self.hang = hang

    def __repr__(self):
        return f"Answer({self.status}, hang={self.hang}, delay={self.delay})"


class Request:
    """One recorded request. headers: lower-cased name -> value (the last
    one); header_list: every (name, value) as received."""

    def __init__(self, method, path, header_list, body, started, at, conn):
        self.method = method
        self.path = path
        self.header_list = header_list
        self.headers = {k.lower(): v for k, v in header_list}
        self.body = body
        self.started = started  # time.time() when the request line arrived
        self.at = at  # time.time() when the body was read
        self.conn = conn  # connection number (accept order)

    def __repr__(self):
        return f"Request({self.method} {self.path} id={self.headers.get('webhook-id')})"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle kept-alive connection is closed after this

    def setup(self):
        super().setup()
        self.conn_no = self.server.conn_numbers.get(id(self.request), 0)

    def log_message(self, fmt, *args):  # quiet
        pass

    def _serve(self):
        rx = self.server.receiver
        started = time.time()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        req = Request(self.command, self.path, list(self.headers.items()), body, started,
                      time.time(), self.conn_no)
        ans = rx._record_and_pick(req)
        if ans.hang:
            rx._stopping.wait(rx.hang_max)
            self.close_connection = True
            return
        if ans.delay:
            if rx._stopping.wait(ans.delay):
                self.close_connection = True
                return
        self.send_response(ans.status)
        for k, v in ans.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(ans.body)))
        self.end_headers()
        self.wfile.write(ans.body)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, receiver, ctx):
        self.receiver = receiver
        self.ctx = ctx
        self.conn_numbers = {}
        super().__init__(addr, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        no = self.receiver._accepted(addr)
        tls = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.conn_numbers[id(tls)] = no
        return tls, addr

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, bounded.
        request.settimeout(10)
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError) as e:
            self.receiver._handshake_failed(e)
            return
        request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):  # a peer closing is not an error
        pass


class Receiver:
    """An HTTPS receiver on 127.0.0.1 (a free port) with the test CA's
    certificate for localhost and 127.0.0.1. url(path) gives the URL with
    host (default "localhost"). script(path, [Answer, ...]) sets how path
    answers: one answer per request in order, the last one repeated; paths
    without a script answer 200 "ok"."""

    hang_max = 120.0

    def __init__(self, ca, host="127.0.0.1"):
        self.ca = ca
        self._lock = threading.Condition()
        self._scripts = {}
        self._used = {}
        self.requests = []
        self.accepts = []  # (time, peer address) of every accepted TCP connection
        self.handshake_errors = []
        self._stopping = threading.Event()
        self.server = _Server((host, 0), self, ca.server_context())
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()

    def url(self, path="/", host="localhost"):
        return f"https://{host}:{self.port}{path}"

    def script(self, path, answers):
        if isinstance(answers, Answer):
            answers = [answers]
        with self._lock:
            self._scripts[path] = list(answers)
            self._used[path] = 0

    def _accepted(self, addr):
        with self._lock:
            self.accepts.append((time.time(), addr))
            self._lock.notify_all()
            return len(self.accepts)

    def _handshake_failed(self, e):
        with self._lock:
            self.handshake_errors.append(repr(e))

    def _record_and_pick(self, req):
        with self._lock:
            self.requests.append(req)
            key = req.path.split("?")[0]
            answers = self._scripts.get(key)
            if answers:
                i = self._used.get(key, 0)
                self._used[key] = i + 1
                ans = answers[min(i, len(answers) - 1)]
            else:
                ans = Answer()
            self._lock.notify_all()
            return ans

    def requests_for(self, path=None, msg_id=None):
        with self._lock:
            return [r for r in self.requests
                    if (path is None or r.path == path)
                    and (msg_id is None or r.headers.get("webhook-id") == msg_id)]

    def wait_requests(self, n, path=None, msg_id=None, timeout=15.0):
        """Until at least n requests (to path / for msg_id) arrived; returns them
        (fewer on timeout)."""
        deadline = time.time() + timeout
        with self._lock:
            while True:
                got = [r for r in self.requests
                       if (path is None or r.path == path)
                       and (msg_id is None or r.headers.get("webhook-id") == msg_id)]
                left = deadline - time.time()
                if len(got) >= n or left <= 0:
                    return got
                self._lock.wait(min(left, 0.2))

    def accept_count(self):
        with self._lock:
            return len(self.accepts)

    def close(self):
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()


# ---- the Standard Webhooks reference library ----

def verify_signatures(cases):
    """cases: dicts {body: bytes, headers: {webhook-id, webhook-timestamp,
    webhook-signature}, secret, now?: Unix seconds}. Runs
    `new Webhook(secret).verify(body, headers)` of the npm standardwebhooks
    package on each (one node process for all); returns a list of
    {"ok": bool, "error": str|None, "payload": parsed JSON|None}."""
    assert os.path.isdir(SW_MODULE), \
        "run scripts/deps.sh test (installs third_party/standardwebhooks)"
    wire = [{"body_b64": base64.b64encode(c["body"]).decode(),
             "headers": c["headers"], "secret": c["secret"],
             **({"now": c["now"]} if "now" in c else {})} for c in cases]
    p = subprocess.run(["node", VERIFY_JS], input=json.dumps(wire), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out) == len(cases)
    return out


def signature_headers(req):
    """The three Standard Webhooks headers of a recorded request."""
    return {k: req.headers.get(k) for k in ("webhook-id", "webhook-timestamp",
                                            "webhook-signature")}


def verify_request(req, secret):
    return verify_signatures([{"body": req.body, "headers": signature_headers(req),
                               "secret": secret}])[0]


# ---- SMTP ----

class Mail:
    def __init__(self, mail_from, rcpt_tos, data, tls, auth, at):
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.data = data
        self.tls = tls  # the session had STARTTLS (or implicit TLS) on
        self.auth = auth  # the AUTH login, or None
        self.at = at
        self.message = email.message_from_bytes(data, policy=email.policy.default)

    def text(self):
        """Every text part, decoded, joined (what a reader sees), plus the subject."""
        parts = [str(self.message.get("Subject", ""))]
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                parts.append(part.get_content())
        return "\n".join(parts)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 (a free port, or port) with STARTTLS on the test
    CA's certificate (tls=False: no STARTTLS offered at all). require_tls:
    refuse mail before STARTTLS. auth: (user, password) to require AUTH
    PLAIN/LOGIN (over TLS). mails: every message received."""

    def __init__(self, ca, require_tls=True, auth=None, tls=True, port=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.mails = []
        self.sessions = 0
        self._lock = threading.Condition()
        server = self

        class Handler:
            async def handle_EHLO(self, srv, session, envelope, hostname, responses):
                with server._lock:
                    server.sessions += 1
                session.host_name = hostname
                return responses

            async def handle_DATA(self, srv, session, envelope):
                login = None
                if session.auth_data is not None and hasattr(session.auth_data, "login"):
                    login = session.auth_data.login
                    login = login.decode() if isinstance(login, bytes) else login
                m = Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                         or envelope.content, session.ssl is not None, login, time.time())
                with server._lock:
                    server.mails.append(m)
                    server._lock.notify_all()
                return "250 OK"

        def authenticator(srv, session, envelope, mechanism, auth_data):
            ok = (auth is not None and hasattr(auth_data, "login")
                  and auth_data.login.decode() == auth[0]
                  and auth_data.password.decode() == auth[1])
            if ok:
                return AuthResult(success=True, auth_data=auth_data)
            return AuthResult(success=False, handled=False)

        self.port = port or _free_port()
        kw = dict(tls_context=ca.server_context(), require_starttls=require_tls) if tls else {}
        if auth:
            kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        elif tls:
            kw.update(auth_require_tls=True)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost", ready_timeout=10, **kw)
        self.controller.start()
        self.url = f"smtp://localhost:{self.port}"

    def wait_mails(self, n, timeout=15.0, to=None):
        deadline = time.time() + timeout
        with self._lock:
            while True:
                got = [m for m in self.mails if to is None or to in m.rcpt_tos]
                left = deadline - time.time()
                if len(got) >= n or left <= 0:
                    return got
                self._lock.wait(min(left, 0.2))

    def close(self):
        self.controller.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- configuration for the instance under test ----

def webhooks_config(ca, allow_ranges="127.0.0.0/8", retry_schedule="0s,1s,2s", lease_s=3,
                    timeout_s=None, smtp=None, mail="", extra=""):
    """The [webhooks] (and [mail], when smtp is an SmtpServer or an smtp:// URL)
    sections an instance delivering to the local peers needs; mail: more
    [mail] lines (starttls, username, password_file)."""
    lines = ["[webhooks]", f"retry_schedule = {retry_schedule}", f"lease_s = {lease_s}",
             f"ca_file = {ca.ca_file}"]
    if allow_ranges:
        lines.append(f"allow_ranges = {allow_ranges}")
    # A lease must outlast the delivery timeout (the worker refuses it otherwise).
    lines.append(f"timeout_s = {timeout_s or lease_s - 1}")
    if smtp is not None:
        url = smtp if isinstance(smtp, str) else smtp.url
        lines += ["[mail]", f"url = {url}", "from = portcullis@localhost",
                  f"ca_file = {ca.ca_file}"]
        if "starttls" not in mail:
            lines.append("starttls = required")
        if mail:
            lines.append(mail)
    return "\n".join(lines) + "\n" + extra
