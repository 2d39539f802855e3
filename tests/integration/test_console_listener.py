"""The console listener's own TLS and the development link printing
(docs/console.md "The listener", "Magic links"): with [console] tls_cert and
tls_key the console serves HTTPS (with HSTS) on any address while the main
listener stays plain, and the other way round; dev_print_links prints the
sign-in mail on serve's output only while no [mail] url is set, and never
once one is (the link is mailed instead).
"""
import re
import time

import requests

from conftest import free_port
from console_helpers import Browser, console_instance, mailed_link, user_create
from test_mail import smtp  # noqa: F401
from test_tls import cert  # noqa: F401
from test_webhooks import ca  # noqa: F401

ADA = "ada@example.com"
PRINTED = re.compile(r"/console/auth/magic-link/callback\?token=[\w-]{43}")


def wait_https(url, cert_path, timeout=15):
    deadline = time.time() + timeout
    while True:
        try:
            return requests.get(url, verify=cert_path, timeout=2)
        except requests.RequestException:
            assert time.time() < deadline, "the console did not answer over HTTPS"
            time.sleep(0.1)


def test_console_has_its_own_tls(make_instance, cert):  # noqa: F811
    port = free_port()
    inst = make_instance(config=f"[console]\nlisten = 127.0.0.1:{port}\n"
                                f"tls_cert = {cert[0]}\ntls_key = {cert[1]}\n"
                                f"public_url = https://localhost:{port}\n").start()
    r = wait_https(f"https://localhost:{port}/", cert[0])
    assert r.status_code == 200 and r.url.endswith("/console/")  # after the redirect
    assert "max-age=" in r.history[0].headers["Strict-Transport-Security"]
    with_origin = requests.post(f"https://localhost:{port}/console/auth/magic-link",
                                json={"email": ADA}, verify=cert[0],
                                headers={"Origin": f"https://localhost:{port}"})
    assert with_origin.status_code == 202, with_origin.text
    # The main listener is still plain HTTP, without HSTS.
    r = requests.get(inst.url("/healthz"))
    assert r.status_code == 200 and "Strict-Transport-Security" not in r.headers
    # Plain HTTP to the console's port gets nothing.
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=3)
        raise AssertionError("the TLS console answered plain HTTP")
    except requests.RequestException:
        pass


def test_links_are_printed_only_without_mail(make_instance, ca, smtp):  # noqa: F811
    # No [mail] url, dev_print_links: printed on serve's output, saying why.
    quiet = console_instance(make_instance, ca, None, extra="dev_print_links = true\n")
    user_create(quiet, ADA)
    Browser(quiet.console).post("/console/auth/magic-link", json={"email": ADA})
    deadline = time.time() + 10
    while not PRINTED.search(quiet.read_log()):
        assert time.time() < deadline, quiet.read_log()
        time.sleep(0.1)
    assert "[mail] url is not set" in quiet.read_log()
    # Without dev_print_links nothing is printed.
    silent = console_instance(make_instance, ca, None)
    user_create(silent, ADA)
    Browser(silent.console).post("/console/auth/magic-link", json={"email": ADA})
    time.sleep(1)
    assert not PRINTED.search(silent.read_log())
    # With [mail] url set, dev_print_links changes nothing: mailed, never printed.
    mailing = console_instance(make_instance, ca, smtp, extra="dev_print_links = true\n")
    user_create(mailing, ADA)
    Browser(mailing.console).post("/console/auth/magic-link", json={"email": ADA})
    link = mailed_link(smtp, ADA)
    time.sleep(0.5)
    assert link.split("token=")[1] not in mailing.read_log()
    assert not PRINTED.search(mailing.read_log())
