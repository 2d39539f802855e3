"""Console users from the command line (docs/console.md "People and roles"):
`portcullis user create` makes a user (an operator with --operator), an
address is unique whatever its case, malformed addresses are usage errors,
`portcullis user disable` disables the user; both are audited with the
system actor. On SQLite and on PostgreSQL.
"""
import re

from conftest import run_cli

USER_RE = re.compile(r"user ([0-9A-HJKMNP-TV-Z]{26}) created")


def user_create(inst, email, *extra):
    p = run_cli("user", "create", "--email", email, *extra, "-c", inst.conf, env=inst.env)
    assert p.returncode == 0, p.stderr
    m = USER_RE.search(p.stdout)
    assert m, p.stdout
    return m.group(1)


def audit_actions(inst, action):
    r = inst.root("GET", "/v1/audit-events?limit=100")
    assert r.status_code == 200, r.text
    return [e for e in r.json()["data"] if e["action"] == action]


def test_user_create_and_disable(make_instance):
    inst = make_instance()
    uid = user_create(inst, "Ada@Example.com", "--name", "Ada Lovelace", "--operator")
    p = run_cli("user", "create", "--email", "ada@EXAMPLE.com", "-c", inst.conf, env=inst.env)
    assert p.returncode == 1 and "exists" in p.stderr, (p.stdout, p.stderr)
    for bad in ("ada", "ada@@example.com", "ad\u00e9@example.com", "a b@example.com"):
        p = run_cli("user", "create", "--email", bad, "-c", inst.conf, env=inst.env)
        assert p.returncode == 2, (bad, p.stdout, p.stderr)
    p = run_cli("user", "disable", "--email", "ADA@example.com", "-c", inst.conf, env=inst.env)
    assert p.returncode == 0, p.stderr
    assert f"user {uid} disabled" in p.stdout
    p = run_cli("user", "disable", "--email", "nobody@example.com", "-c", inst.conf,
                env=inst.env)
    assert p.returncode == 1 and "no user" in p.stderr
    inst.start()
    (created,) = audit_actions(inst, "user.created")
    assert created["actor"] == {"type": "system", "id": "cli"}, created
    assert created["target"] == {"type": "user", "id": uid}, created
    assert created["details"] == {"email": "ada@example.com", "operator": True}
    (disabled,) = audit_actions(inst, "user.disabled")
    assert disabled["target"]["id"] == uid
