"""Kill notices by email, black-box (WEBHOOKS.md "Email notices"): engaging or
lifting a kill (key, organisation, global) mails the organisation's
contact_email through a real SMTP server (aiosmtpd, STARTTLS on the test CA,
webhook_peers.py) and says what happened, the scope, the reason and the
request id, never a key or secret; STARTTLS required is never sent in clear;
SMTP AUTH from password_file; a mail server that is down at first gets the
mail once it is up (the durable outbox). On SQLite and on PostgreSQL.
"""
import os
import re
import time

import pytest

from conftest import free_port
from test_keys import create_key, new_org
from test_webhooks import (Hooks, ca, hooks_instance, kill_via_api,  # noqa: F401
                           receiver)
from webhook_peers import SmtpServer

CONTACT = "ops@example.com"


@pytest.fixture
def smtp(ca):  # noqa: F811
    s = SmtpServer(ca)
    yield s
    s.close()


def assert_no_secrets(text, *secrets, start=None):
    """No key or secret: pcl_ appears only as the key's start (its public prefix)."""
    if start:
        text = text.replace(start, "")
    assert "pcl_" not in text, text
    assert "whsec_" not in text, text
    for s in secrets:
        assert s not in text, text


def mailed(smtp, n=1, to=CONTACT, timeout=20):
    got = smtp.wait_mails(n, timeout=timeout, to=to)
    assert len(got) >= n, [m.message["Subject"] for m in smtp.mails]
    return got


def test_a_key_kill_and_its_lifting_are_mailed_to_the_contact(make_instance, receiver, ca,
                                                               smtp):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca, smtp=smtp)
    hooks = Hooks(inst, receiver, contact_email=CONTACT)
    ep = hooks.endpoint("/kills", event_types=["api_key.killed"])
    k = create_key(inst, hooks.key, name="deploy bot")
    rid = kill_via_api(inst, hooks.key, k["id"], "leaked in a CI log")
    (m,) = mailed(smtp)
    assert m.tls, "mail sent without STARTTLS"
    assert m.rcpt_tos == [CONTACT]
    assert "portcullis@localhost" in m.mail_from
    assert "portcullis@localhost" in str(m.message["From"])
    assert CONTACT in str(m.message["To"])
    assert m.message["Date"] and m.message["Message-ID"]
    text = m.text()
    assert "kill" in text.lower()
    assert k["id"] in text
    assert "leaked in a CI log" in text
    assert rid in text
    assert re.search(r"\bkey\b", text.lower())
    assert_no_secrets(m.data.decode("utf-8", "replace"), k["key"], k["key"].split(".", 1)[1],
                      hooks.key.split(".", 1)[1], inst.root_key.split(".", 1)[1], ep["secret"],
                      start=k["start"])
    # The same kill reached the subscribed endpoint.
    (req,) = receiver.wait_requests(1, "/kills")
    assert '"api_key.killed"' in req.body.decode()
    # Lifting it is mailed too.
    r = inst.request("DELETE", f"/v1/api-keys/{k['id']}/kill", key=hooks.key)
    assert r.status_code == 200, r.text
    mails = mailed(smtp, 2)
    lifted = mails[1].text()
    assert k["id"] in lifted and r.headers["X-Request-Id"] in lifted
    assert "lift" in lifted.lower()
    assert_no_secrets(mails[1].data.decode("utf-8", "replace"), k["key"], start=k["start"])


def test_an_organisation_kill_is_mailed(make_instance, receiver, ca, smtp):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca, smtp=smtp)
    org = new_org(inst, "acme", contact_email=CONTACT)
    r = inst.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "abuse report 7"})
    assert r.status_code == 200, r.text
    (m,) = mailed(smtp)
    text = m.text()
    assert "abuse report 7" in text and r.headers["X-Request-Id"] in text
    assert "organi" in text.lower()
    assert_no_secrets(m.data.decode("utf-8", "replace"), inst.root_key.split(".", 1)[1])


def test_a_global_kill_is_mailed_to_every_organisations_contact(make_instance, receiver, ca,
                                                                  smtp):  # noqa: F811
    inst = hooks_instance(make_instance, receiver, ca, smtp=smtp)
    new_org(inst, "one", contact_email="one@example.com")
    new_org(inst, "two", contact_email="two@example.com")
    new_org(inst, "three")  # no contact: no mail
    r = inst.root("POST", "/v1/kill-switch", json={"reason": "incident 42"})
    assert r.status_code == 200, r.text
    for to in ("one@example.com", "two@example.com"):
        (m,) = mailed(smtp, to=to)
        assert "incident 42" in m.text() and r.headers["X-Request-Id"] in m.text()
        assert "global" in m.text().lower()
    time.sleep(1)
    assert sorted(t for m in smtp.mails for t in m.rcpt_tos) == ["one@example.com",
                                                                 "two@example.com"]


def test_starttls_required_never_sends_in_clear(make_instance, receiver, ca):  # noqa: F811
    plain = SmtpServer(ca, tls=False)  # offers no STARTTLS
    try:
        inst = hooks_instance(make_instance, receiver, ca, smtp=plain)
        org = new_org(inst, "acme", contact_email=CONTACT)
        assert inst.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "r"}).status_code \
            == 200
        deadline = time.time() + 15
        while plain.sessions == 0 and time.time() < deadline:
            time.sleep(0.1)
        assert plain.sessions > 0, "the mailer never tried"
        time.sleep(3)
        assert plain.mails == []
    finally:
        plain.close()


def test_smtp_auth_uses_the_password_file(make_instance, receiver, ca, tmp_path):  # noqa: F811
    password = "pw-" + os.urandom(6).hex()
    srv = SmtpServer(ca, auth=("notices", password))
    try:
        pw_file = tmp_path / "smtp.pw"
        pw_file.write_text(password + "\n")
        pw_file.chmod(0o600)
        inst = hooks_instance(make_instance, receiver, ca, smtp=srv,
                              mail=f"username = notices\npassword_file = {pw_file}")
        org = new_org(inst, "acme", contact_email=CONTACT)
        assert inst.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "r"}).status_code \
            == 200
        (m,) = mailed(srv)
        assert m.auth == "notices" and m.tls
        assert password not in inst.read_log()
    finally:
        srv.close()


def test_a_mail_server_down_at_first_gets_the_mail_later(make_instance, receiver, ca):  # noqa
    port = free_port()
    inst = hooks_instance(make_instance, receiver, ca, smtp=f"smtp://localhost:{port}",
                          retry_schedule="0s,1s,2s,4s")
    org = new_org(inst, "acme", contact_email=CONTACT)
    r = inst.root("POST", f"/v1/orgs/{org}/kill", json={"reason": "down then up"})
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    srv = SmtpServer(ca, port=port)
    try:
        (m,) = mailed(srv, timeout=20)
        assert "down then up" in m.text()
    finally:
        srv.close()
