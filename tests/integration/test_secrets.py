"""Secrets sealed at rest, black-box with the real binary (WEBHOOKS.md
"Secrets at rest"): `portcullis init` creates the key pair (a 0600 private
key file named in the config, the public key in the store), and
`portcullis secrets init|rotate|rewrap|retire|list` manage it. Only key ids
are ever printed. Each test runs on SQLite, and on PostgreSQL when the test
server is up.

Endpoint secrets created and rotated through the API are re-sealed by rewrap
(retire refused until then) and, on SQLite, opened here with libsodium for
their context. A value moved to another row, and values that do not open, are
covered against the store in tests/unit/test_store_secrets.c.
"""
import base64
import hashlib
import os
import re
import stat

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import run_cli

LINE_RE = re.compile(r"^pcsk1:([0-9a-f]{16}):([A-Za-z0-9+/]{43}=)$")
LIST_RE = re.compile(r"^([0-9a-f]{16})\s+(\S+)\s+(current|old|retired)\s+(-?\d+)\s+(yes|no|\?)$")


def key_lines(path):
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n")
    out = []
    for line in text.splitlines():
        m = LINE_RE.match(line)
        assert m, "not a pcsk1 line"
        out.append((m.group(1), m.group(2)))
    return out


def key_id_of(sk_b64):
    """The key id the contract defines: hex of SHA-256(public key)[:8]."""
    sk = X25519PrivateKey.from_private_bytes(base64.b64decode(sk_b64))
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(pk).hexdigest()[:16], base64.b64encode(pk).decode()


def secrets(inst, *args, cwd=None):
    return run_cli("secrets", *args, "-c", inst.conf, env=inst.env) if cwd is None else \
        _in(cwd, inst, *args)


def _in(cwd, inst, *args):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return run_cli("secrets", *args, "-c", inst.conf, env=inst.env)
    finally:
        os.chdir(old)


def listed(inst):
    p = secrets(inst, "list")
    assert p.returncode == 0, p.stderr
    rows = {}
    for line in p.stdout.splitlines()[1:]:
        m = LIST_RE.match(line)
        assert m, line
        rows[m.group(1)] = {"state": m.group(3), "sealed": int(m.group(4)), "in_file": m.group(5)}
    return rows


def assert_no_key_material(inst, p, path):
    for _, sk in key_lines(path):
        assert sk not in p.stdout and sk not in p.stderr
        assert sk not in inst.read_log()


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_init_creates_a_0600_private_key_file_and_stores_its_public_key(make_instance):
    inst = make_instance()
    path = os.path.join(inst.dir, "secrets.key")
    assert mode_of(path) == 0o600
    assert stat.S_ISREG(os.lstat(path).st_mode)
    with open(inst.conf) as f:
        assert f"private_key_file = {path}\n" in f.read()
    (kid, sk), = key_lines(path)
    # The line's key id is the key's, and init names it (and nothing of the key).
    assert key_id_of(sk)[0] == kid
    assert kid in inst.init_stdout
    assert sk not in inst.init_stdout
    # The store holds that public key: it is the current one.
    assert listed(inst) == {kid: {"state": "current", "sealed": 0, "in_file": "yes"}}
    if inst.store == "sqlite":
        import sqlite3
        db = sqlite3.connect(inst.db_path)
        rows = db.execute("SELECT key_id, public_key, retired_at FROM secret_keys").fetchall()
        db.close()
        assert rows == [(kid, key_id_of(sk)[1], None)]
    # A second key pair is refused; the file is untouched.
    before = open(path).read()
    p = secrets(inst, "init")
    assert p.returncode == 1
    assert "already has a key pair" in p.stderr and kid in p.stderr
    assert open(path).read() == before


def test_rotate_rewrap_retire(make_instance):
    inst = make_instance()
    path = os.path.join(inst.dir, "secrets.key")
    (old, _), = key_lines(path)

    p = secrets(inst, "rotate")
    assert p.returncode == 0, p.stderr
    lines = key_lines(path)
    assert [k for k, _ in lines][0] == old and len(lines) == 2
    new = lines[1][0]
    assert new != old and key_id_of(lines[1][1])[0] == new
    assert f"Key {new} is now current" in p.stdout
    assert_no_key_material(inst, p, path)
    assert mode_of(path) == 0o600
    assert not [n for n in os.listdir(inst.dir) if ".tmp" in n]
    rows = listed(inst)
    assert rows[old]["state"] == "old" and rows[new]["state"] == "current"

    # The current key cannot be retired; a malformed or unknown id is refused.
    p = secrets(inst, "retire", new)
    assert p.returncode == 1 and "is the current key" in p.stderr
    assert secrets(inst, "retire", "XYZ").returncode == 2
    p = secrets(inst, "retire", "0123456789abcdef")
    assert p.returncode == 1 and "no key 0123456789abcdef" in p.stderr

    p = secrets(inst, "rewrap")
    assert p.returncode == 0, p.stderr
    assert f"Rewrapped 0 value(s) to key {new}" in p.stdout

    p = secrets(inst, "retire", old)
    assert p.returncode == 0, p.stderr
    assert [k for k, _ in key_lines(path)] == [new]
    assert mode_of(path) == 0o600
    rows = listed(inst)
    assert rows[old] == {"state": "retired", "sealed": 0, "in_file": "no"}
    assert rows[new]["state"] == "current"
    # Retired once is retired: a second retire finds nothing to do.
    assert secrets(inst, "retire", old).returncode == 1


def test_a_group_or_world_readable_key_file_is_refused(make_instance):
    inst = make_instance()
    path = os.path.join(inst.dir, "secrets.key")
    before = open(path).read()
    for mode in (0o640, 0o604, 0o644):
        os.chmod(path, mode)
        for args in (("rotate",), ("rewrap",)):
            p = secrets(inst, *args)
            assert p.returncode == 1, args
            assert "chmod 600" in p.stderr
        assert open(path).read() == before
    os.chmod(path, 0o600)
    # A directory in its place is not a key file either.
    os.rename(path, path + ".moved")
    os.mkdir(path)
    p = secrets(inst, "rotate")
    assert p.returncode == 1 and "not a regular file" in p.stderr


def test_another_instances_key_file_is_refused(make_instance):
    a = make_instance()
    b = make_instance()
    a_path = os.path.join(a.dir, "secrets.key")
    b_path = os.path.join(b.dir, "secrets.key")
    with open(b_path) as f:
        b_text = f.read()
    with open(a_path, "w") as f:
        f.write(b_text)
    (a_kid, _), = [(k, s) for k, s in key_lines(os.path.join(a.dir, "secrets.key"))]
    current = [k for k, r in listed(a).items() if r["state"] == "current"][0]
    assert current != a_kid
    p = secrets(a, "rotate")
    assert p.returncode == 1
    assert f"lacks the current key {current}" in p.stderr
    assert open(a_path).read() == b_text


def test_the_key_file_is_relative_to_the_config_file(make_instance, tmp_path):
    inst = make_instance()
    os.mkdir(os.path.join(inst.dir, "keys"))
    os.rename(os.path.join(inst.dir, "secrets.key"), os.path.join(inst.dir, "keys", "k"))
    with open(inst.conf) as f:
        conf = f.read()
    conf = re.sub(r"(?m)^private_key_file = .*$", "private_key_file = keys/k", conf)
    with open(inst.conf, "w") as f:
        f.write(conf)
    p = secrets(inst, "rotate", cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert len(key_lines(os.path.join(inst.dir, "keys", "k"))) == 2
    assert os.listdir(tmp_path) == []


def test_only_src_crypto_calls_libsodium():
    """crypto/ is the only layer that may call libsodium (docs/architecture.md)."""
    root = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    inc = re.compile(r'^\s*#\s*include\s*[<"]sodium(\.h|/)', re.M)
    found = []
    for dirpath, _, files in os.walk(root):
        for fn in files:
            if fn.endswith((".c", ".h")):
                with open(os.path.join(dirpath, fn), encoding="utf-8") as f:
                    if inc.search(f.read()):
                        found.append(os.path.relpath(os.path.join(dirpath, fn), root))
    assert found == ["crypto/sealed.c"]


# ---- stored values, opened here with libsodium itself ----

def _sodium():
    import ctypes
    import ctypes.util
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    return lib


def open_sealed(stored, key_file):
    """Open a pcs1 value with the key file's matching key: (context fields, secret)."""
    import ctypes
    m = re.match(r"^pcs1:([0-9a-f]{16}):([A-Za-z0-9+/=]+)$", stored)
    assert m, stored
    keys = dict(key_lines(key_file))
    sk = base64.b64decode(keys[m.group(1)])
    box = base64.b64decode(m.group(2))
    lib = _sodium()
    pk = ctypes.create_string_buffer(32)
    assert lib.crypto_scalarmult_base(pk, sk) == 0
    out = ctypes.create_string_buffer(len(box) - 48)
    assert lib.crypto_box_seal_open(out, box, ctypes.c_ulonglong(len(box)), pk, sk) == 0
    pt, fields, p = out.raw, [], 0
    for _ in range(4):
        n = pt[p]
        fields.append(pt[p + 1:p + 1 + n].decode())
        p += 1 + n
    return fields, pt[p:].decode()


def test_rewrap_reseals_stored_endpoint_secrets_to_the_new_key(make_instance):
    from test_keys import new_org
    inst = make_instance()
    path = os.path.join(inst.dir, "secrets.key")
    (k1, _), = key_lines(path)
    inst.start()
    org = new_org(inst)
    shown = {}
    for i in range(3):
        r = inst.root("POST", f"/v1/orgs/{org}/webhook-endpoints",
                      json={"url": f"https://receiver{i}.example/hook"})
        assert r.status_code == 201, r.text
        shown[r.json()["id"]] = [r.json()["secret"]]
    ep0 = sorted(shown)[0]
    r = inst.root("POST", f"/v1/webhook-endpoints/{ep0}/rotate-secret", json={})
    assert r.status_code == 200, r.text
    shown[ep0].append(r.json()["secret"])
    # No key material in the serving process's log.
    for line in key_lines(path):
        assert line[1] not in inst.read_log()
    assert listed(inst)[k1]["sealed"] == 4  # 3 secrets and one previous secret

    assert secrets(inst, "rotate").returncode == 0
    k2 = key_lines(path)[1][0]
    p = secrets(inst, "retire", k1)
    assert p.returncode == 1 and "4 value(s) are still sealed" in p.stderr
    p = secrets(inst, "rewrap")
    assert p.returncode == 0, p.stderr
    assert f"Rewrapped 4 value(s) to key {k2}" in p.stdout
    rows = listed(inst)
    assert rows[k1]["sealed"] == 0 and rows[k2]["sealed"] == 4
    if inst.store == "sqlite":
        import sqlite3
        db = sqlite3.connect(inst.db_path)
        got = db.execute("SELECT id, org_id, secret, prev_secret FROM webhook_endpoints").fetchall()
        db.close()
        for ep, org_id, sec, prev in got:
            assert sec.startswith(f"pcs1:{k2}:")
            fields, plain = open_sealed(sec, path)
            assert fields == ["webhook_endpoints", "secret", ep, org_id]
            assert plain == shown[ep][-1]
            if ep == ep0:
                assert prev.startswith(f"pcs1:{k2}:")
                assert open_sealed(prev, path)[1] == shown[ep][0]
    assert secrets(inst, "retire", k1).returncode == 0
    assert [k for k, _ in key_lines(path)] == [k2]
