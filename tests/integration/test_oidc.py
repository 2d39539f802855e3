"""OpenID Connect sign-in to the console against a real, certified OpenID provider.

The provider is panva's oidc-provider (npm, pinned in scripts/deps.sh; OpenID
Certified), run by tests/integration/oidc_provider.mjs over HTTPS on loopback
with a throw-away test CA (webhook_peers.TestCA). Portcullis reaches it through
the egress guard with [oidc.NAME] ca_file and allow_ranges = 127.0.0.0/8. Two
clients: `op` (RS256 ID tokens, client_secret_basic) and `opes` (ES256,
client_secret_post). The "browser" is requests: it follows the provider's
redirects itself; the provider's interaction page is finished by the script as
the account the test names (no login form), everything else is the library's.

How each refusal is provoked:
- wrong nonce: the test changes the nonce in the authorization URL before the
  browser follows it, so the real provider issues a token for another nonce;
- expired token: the provider's clock is moved back two hours just before the
  callback, so the real provider issues an ID token whose exp is past;
- unverified email: the provider's account says email_verified false;
- wrong audience: oidc-provider always issues aud = the client's own id, so
  here (and only here) the script signs the ID token again with the
  provider's own RS256 key, the one its JWKS serves, with aud changed.

Microsoft Entra ID never sends email_verified: a second provider (the `entra`
fixture) releases xms_edov instead, as Entra's optional claim does; `op` is
configured with verified_email_claim = xms_edov, `opes` is left at the default.
"""
import json
import os
import subprocess
import urllib.parse

import pytest
import requests

from conftest import free_port
from console_helpers import Browser, console_instance, user_create
from webhook_peers import TestCA

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(HERE, "oidc_provider.mjs")
MODULE = os.path.join(REPO, "third_party", "oidc-provider", "node_modules", "oidc-provider")

ACCOUNTS = {
    "ada": {"email": "Ada@Example.com", "email_verified": True, "name": "Ada Lovelace"},
    "eve": {"email": "eve@example.com", "email_verified": False, "name": "Eve"},
    "bob": {"email": "bob@example.com", "email_verified": True, "name": "Bob"},
}
# The Entra-like provider's accounts: xms_edov, never email_verified.
ENTRA_ACCOUNTS = {
    "ada": {"email": "ada@example.com", "xms_edov": True, "name": "Ada Lovelace"},
    "eve": {"email": "eve@example.com", "xms_edov": False, "name": "Eve"},
    "sam": {"email": "sam@example.com", "xms_edov": "true", "name": "Sam"},
    "kim": {"email": "kim@example.com", "name": "Kim"},
}


class Provider:
    """oidc_provider.mjs running on a free loopback port."""

    def __init__(self, tmp, console_port, accounts=None, verified_claim=None):
        if not os.path.isdir(MODULE):
            pytest.fail("oidc-provider is not installed: run scripts/deps.sh test")
        major = int(subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"],
                                   capture_output=True, text=True, timeout=30).stdout or 0)
        if major < 20:  # jose 6 (under oidc-provider 9) needs WebCrypto as globalThis.crypto
            pytest.fail(f"oidc-provider 9 needs Node.js 20 or later, this is {major}")
        self.ca = TestCA(dir=str(tmp))
        self.port = free_port()
        self.issuer = f"https://127.0.0.1:{self.port}"
        self.console_port = console_port
        cb = f"http://127.0.0.1:{console_port}/console/auth/oidc/%s/callback"
        self.secrets = {"op": "rs-secret:with/odd+chars", "opes": "es-secret"}
        self.verified_claim = verified_claim
        conf = {
            "port": self.port, "cert": self.ca.cert_file, "key": self.ca.key_file,
            "accounts": accounts or ACCOUNTS, "verified_claim": verified_claim,
            "clients": [
                {"client_id": "portcullis-rs", "client_secret": self.secrets["op"],
                 "redirect_uris": [cb % "op"], "token_endpoint_auth_method": "client_secret_basic"},
                {"client_id": "portcullis-es", "client_secret": self.secrets["opes"],
                 "redirect_uris": [cb % "opes"], "token_endpoint_auth_method": "client_secret_post",
                 "id_token_signed_response_alg": "ES256"},
            ],
        }
        path = os.path.join(str(tmp), "op.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        self.log_path = os.path.join(str(tmp), "op.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["node", SCRIPT, path], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("READY "), line + open(self.log_path).read()

    def control(self, **kw):
        r = requests.post(self.issuer + "/__test/control", json=kw, verify=self.ca.ca_file,
                          timeout=10)
        assert r.status_code == 200, r.text

    def config(self, tmp):
        text = ""
        for name, client in (("op", "portcullis-rs"), ("opes", "portcullis-es")):
            secret = os.path.join(str(tmp), f"{name}.secret")
            with open(secret, "w") as f:
                f.write(self.secrets[name] + "\n")
            os.chmod(secret, 0o600)
            text += (f"[oidc.{name}]\nissuer = {self.issuer}\nclient_id = {client}\n"
                     f"client_secret_file = {secret}\nscopes = openid email profile\n"
                     f"ca_file = {self.ca.ca_file}\nallow_ranges = 127.0.0.0/8\n")
            if self.verified_claim and name == "op":
                text += f"verified_email_claim = {self.verified_claim}\n"
        return text

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def provider_instance(make_instance, tmp_path, **kw):
    inst = console_instance(make_instance, None, None, start=False)
    op = Provider(tmp_path, inst.console_port, **kw)
    with open(inst.conf, "a") as f:
        f.write("\n" + op.config(tmp_path))
    op.control(login="ada", clock_offset_s=0, resign_aud=None)
    inst.start()
    return inst, op


@pytest.fixture
def oidc(make_instance, tmp_path):
    """(instance with a console and two [oidc] providers, provider)."""
    inst, op = provider_instance(make_instance, tmp_path)
    yield inst, op
    op.stop()


@pytest.fixture
def entra(make_instance, tmp_path):
    """Like oidc, the provider releasing xms_edov and never email_verified: [oidc.op] has
    verified_email_claim = xms_edov, [oidc.opes] the default."""
    inst, op = provider_instance(make_instance, tmp_path, accounts=ENTRA_ACCOUNTS,
                                 verified_claim="xms_edov")
    yield inst, op
    op.stop()


def to_provider(browser, name, tamper=None):
    """Start a sign-in in browser; the provider's authorization URL (tampered with)."""
    r = browser.get(f"/console/auth/oidc/{name}/start")
    assert r.status_code == 302, r.text
    assert any(c.startswith("__Host-pcl_oidc=") for c in r.raw.headers.getlist("Set-Cookie"))
    loc = r.headers["Location"]
    if tamper:
        u = urllib.parse.urlsplit(loc)
        q = dict(urllib.parse.parse_qsl(u.query))
        tamper(q)
        loc = urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))
    return loc


def through_provider(op, loc):
    """Follow the provider's redirects (its own cookies) until it sends the browser back."""
    s = requests.Session()
    s.verify = op.ca.ca_file
    for _ in range(10):
        r = s.get(loc, allow_redirects=False, timeout=20, verify=op.ca.ca_file)
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        loc = urllib.parse.urljoin(loc, r.headers["Location"])
        if loc.startswith(f"http://127.0.0.1:{op.console_port}/"):
            return loc
    raise AssertionError("the provider never sent the browser back")


def sign_in(inst, op, browser, name="op", tamper=None, before_callback=None):
    loc = to_provider(browser, name, tamper)
    back = through_provider(op, loc)
    if before_callback:
        before_callback()
    return browser.get(back[len(inst.console):]), back


def refused(r, status, reason):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["details"]["reason"] == reason, body
    assert not any(c.startswith("__Host-pcl_session=") and "Max-Age=0" not in c
                   for c in r.raw.headers.getlist("Set-Cookie"))


def no_secrets_logged(inst, *needles):
    text = inst.read_log()
    for n in needles:
        assert n not in text, n


def test_sign_in_rs256_client_secret_basic(oidc):
    inst, op = oidc
    user_create(inst, "ada@example.com")
    b = Browser(inst.console)
    r, back = sign_in(inst, op, b)
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == "/console/"
    assert "__Host-pcl_oidc" not in b.cookies  # the login is used up
    me = b.me()
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == "ada@example.com"
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))["code"]
    no_secrets_logged(inst, code, "ada@example.com", "Ada@Example.com", op.secrets["op"])
    # The same callback again (the code replayed, the cookie gone) signs nobody in.
    b2 = Browser(inst.console)
    r = b2.get(back[len(inst.console):])
    refused(r, 400, "state")


def test_sign_in_es256_client_secret_post(oidc):
    inst, op = oidc
    user_create(inst, "ada@example.com")
    b = Browser(inst.console)
    r, _ = sign_in(inst, op, b, name="opes")
    assert r.status_code == 303, r.text
    assert b.me().status_code == 200


def test_wrong_nonce_refused(oidc):
    inst, op = oidc
    user_create(inst, "ada@example.com")
    b = Browser(inst.console)

    def other_nonce(q):
        q["nonce"] = "not-the-browsers-" + q["nonce"][:20]

    r, _ = sign_in(inst, op, b, tamper=other_nonce)
    refused(r, 401, "nonce")
    assert b.me().status_code == 401


def test_wrong_audience_refused(oidc):
    """The one token the test shapes: oidc-provider always issues aud = the client's id,
    so oidc_provider.mjs signs the ID token again with the provider's own RS256 key (the
    one its JWKS serves) with aud = someone-else."""
    inst, op = oidc
    user_create(inst, "ada@example.com")
    op.control(resign_aud="someone-else")
    b = Browser(inst.console)
    r, _ = sign_in(inst, op, b)
    refused(r, 401, "aud")
    # The same shaping with aud = our client id passes: the re-signing is not what fails.
    op.control(resign_aud="portcullis-rs")
    r, _ = sign_in(inst, op, Browser(inst.console))
    assert r.status_code == 303, r.text


def test_expired_token_refused(oidc):
    inst, op = oidc
    user_create(inst, "ada@example.com")
    b = Browser(inst.console)
    r, _ = sign_in(inst, op, b, before_callback=lambda: op.control(clock_offset_s=-7200))
    refused(r, 401, "exp")


def test_unverified_email_refused(oidc):
    inst, op = oidc
    user_create(inst, "eve@example.com")
    op.control(login="eve")
    b = Browser(inst.console)
    r, _ = sign_in(inst, op, b)
    refused(r, 403, "email_unverified")
    assert b.me().status_code == 401


def test_verified_email_without_account_refused(oidc):
    inst, op = oidc
    op.control(login="bob")
    r, _ = sign_in(inst, op, Browser(inst.console))
    refused(r, 403, "no_account")


def test_pending_invitation_accepted_by_a_verified_email(oidc):
    """bob has no user, only an invitation: signing in with the provider accepts it."""
    inst, op = oidc
    user_create(inst, "ada@example.com", "--operator")
    ada = Browser(inst.console)
    r, _ = sign_in(inst, op, ada)
    assert r.status_code == 303 and ada.me().status_code == 200
    r = ada.post("/v1/orgs", json={"name": "acme"})
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    r = ada.post(f"/v1/orgs/{org}/invitations", json={"email": "bob@example.com",
                                                     "role": "developer"})
    assert r.status_code == 201, r.text
    op.control(login="bob")
    bob = Browser(inst.console)
    r, _ = sign_in(inst, op, bob)
    assert r.status_code == 303, r.text
    me = bob.me()
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == "bob@example.com"
    assert [(m["org_id"], m["role"]) for m in me.json()["memberships"]] == [(org, "developer")]


def test_callback_in_another_browser_refused(oidc):
    inst, op = oidc
    user_create(inst, "ada@example.com")
    a, other = Browser(inst.console), Browser(inst.console)
    back = through_provider(op, to_provider(a, "op"))
    refused(other.get(back[len(inst.console):]), 400, "state")
    # A state that is not the browser's own, in the right browser.
    u = urllib.parse.urlsplit(back)
    q = dict(urllib.parse.parse_qsl(u.query))
    q["state"] = "A" * 43
    forged = urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))
    refused(a.get(forged[len(inst.console):]), 400, "state")


def test_providers_listed_for_the_sign_in_page(oidc):
    inst, op = oidc
    r = Browser(inst.console).get("/console/api/providers")
    assert r.status_code == 200, r.text
    assert r.json() == {"data": [
        {"name": "op", "start": "/console/auth/oidc/op/start"},
        {"name": "opes", "start": "/console/auth/oidc/opes/start"},
    ]}


def test_routes_refuse_api_keys_and_unknown_providers(oidc):
    inst, op = oidc
    b = Browser(inst.console)
    r = b.get("/console/api/providers", headers={"Authorization": "Bearer " + inst.root_key})
    assert r.status_code == 401
    r = b.get("/console/auth/oidc/nope/start")
    assert r.status_code == 404
    r = b.get("/console/auth/oidc/op/start", headers={"Authorization": "Bearer " + inst.root_key})
    assert r.status_code == 401
    r = b.get("/console/auth/oidc/op/callback?code=x&state=y",
              headers={"Authorization": "Bearer " + inst.root_key})
    assert r.status_code == 401


def test_verified_email_claim_xms_edov(entra):
    """[oidc.NAME] verified_email_claim = xms_edov: a provider that never sends
    email_verified (Microsoft Entra ID) signs people in when xms_edov is true, and
    only then."""
    inst, op = entra
    for email in ("ada@example.com", "eve@example.com", "sam@example.com", "kim@example.com"):
        user_create(inst, email)
    b = Browser(inst.console)
    r, _ = sign_in(inst, op, b)
    assert r.status_code == 303, r.text
    me = b.me()
    assert me.status_code == 200 and me.json()["user"]["email"] == "ada@example.com", me.text
    # The same account through the provider left at the default claim: no email_verified.
    r, _ = sign_in(inst, op, Browser(inst.console), name="opes")
    refused(r, 403, "email_unverified")
    # false, the string "true", and no claim at all are not a verified address.
    for who in ("eve", "sam", "kim"):
        op.control(login=who)
        b = Browser(inst.console)
        r, _ = sign_in(inst, op, b)
        refused(r, 403, "email_unverified")
        assert b.me().status_code == 401
