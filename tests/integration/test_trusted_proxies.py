"""Client addresses behind a proxy ([server] trusted_proxies).

The brute-force guard counts failures per client address. Behind nginx
auth_request every request comes from the proxy, so without this setting one
client's failures would lock out every client of that proxy.
"""
from conftest import assert_problem
from test_keys import admin, create_key, with_secret, secret_of

GUARD = "[auth]\nfailed_attempts_max = 3\nfailed_attempts_window_s = 60\n"


def wrong_secret(inst, adm):
    """adm's key id with another key's (well-formed) secret: a real bcrypt failure."""
    other = create_key(inst, adm["key"], name="other")["key"]
    return with_secret(adm["key"], secret_of(other))


def bad_verify(inst, bad, xff):
    return inst.request("GET", "/v1/verify", key=bad, headers={"X-Forwarded-For": xff})


def test_without_trusted_proxies_forwarded_for_is_ignored(make_instance):
    inst = make_instance(config=GUARD).start()
    _, adm = admin(inst)
    bad = wrong_secret(inst, adm)
    for i in range(3):
        assert bad_verify(inst, bad, f"203.0.113.{i}").status_code == 401
    # All came from 127.0.0.1: a claimed new address does not escape the guard.
    assert_problem(bad_verify(inst, bad, "203.0.113.99"), 429, "TOO_MANY_FAILED_ATTEMPTS")


def test_trusted_proxy_forwarded_for_names_the_client(make_instance):
    inst = make_instance(config=GUARD + "[server]\ntrusted_proxies = 127.0.0.1, ::1\n").start()
    _, adm = admin(inst)
    bad = wrong_secret(inst, adm)
    for _ in range(3):
        assert bad_verify(inst, bad, "198.51.100.1, 203.0.113.7").status_code == 401
    # The right-most untrusted entry is the client: 203.0.113.7 is blocked ...
    assert_problem(bad_verify(inst, bad, "203.0.113.7"), 429, "TOO_MANY_FAILED_ATTEMPTS")
    # ... whatever it claims further left, and another client is not.
    assert_problem(bad_verify(inst, bad, "10.9.9.9, 203.0.113.7"), 429,
                   "TOO_MANY_FAILED_ATTEMPTS")
    assert bad_verify(inst, bad, "203.0.113.8").status_code == 401
    assert inst.request("GET", "/v1/verify", key=adm["key"],
                        headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
    # The addresses are used, never logged.
    assert "203.0.113" not in inst.read_log()


def test_trusted_proxies_must_be_addresses(make_instance, tmp_path):
    from conftest import run_cli
    conf = tmp_path / "p.conf"
    conf.write_text("[server]\ntrusted_proxies = 127.0.0.1, nginx.local\n")
    p = run_cli("config", "check", "-c", str(conf))
    assert p.returncode == 2 and "p.conf:2:" in p.stderr and "trusted_proxies" in p.stderr
