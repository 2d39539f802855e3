"""The command line, black-box: `portcullis init` (root key printed once,
a config that passes `config check`, refusing to overwrite an instance),
`version`, `help` and unknown commands.
"""
import hashlib
import os
import re
import stat

from conftest import KEY_RE, run_cli

CONTRACT_KEY_RE = re.compile(r"^[a-z]{2,8}_(live|test|root)_[0-9A-HJKMNP-TV-Z]{26}\.[0-9A-Za-z]{49}$")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def instance_state(d):
    """Hash and mtime of every file in an instance directory."""
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        out[name] = (digest(p), os.stat(p).st_mtime_ns)
    return out


def test_init_prints_the_root_key_once_in_the_contract_shape(make_instance):
    inst = make_instance()
    keys = KEY_RE.findall(inst.init_stdout)
    assert keys == [inst.root_key], inst.init_stdout
    assert CONTRACT_KEY_RE.match(inst.root_key)
    assert inst.root_key.startswith("pcl_root_")
    key_id = inst.root_key.split("_")[2].split(".")[0]
    assert key_id in inst.init_stdout
    assert "shown once" in inst.init_stdout
    # Neither the key nor its secret is stored anywhere in the instance directory.
    secret = inst.root_key.split(".")[1]
    for name in os.listdir(inst.dir):
        with open(os.path.join(inst.dir, name), "rb") as f:
            data = f.read()
        assert secret.encode() not in data, name
    # The key works: the operator API accepts it.
    inst.start()
    r = inst.root("GET", "/v1/orgs")
    assert r.status_code == 200, r.text
    assert inst.root_key not in inst.read_log()
    assert secret not in inst.read_log()


def test_init_writes_a_config_that_passes_check(make_instance):
    inst = make_instance()
    p = run_cli("config", "check", "-c", inst.conf)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{inst.conf}: ok"
    # It holds the master key: only the owner may read it.
    mode = stat.S_IMODE(os.stat(inst.conf).st_mode)
    assert mode & 0o077 == 0, oct(mode)
    with open(inst.conf) as f:
        text = f.read()
    assert re.search(r"^master_key = [0-9a-f]{64}$", text, re.M)
    assert f"listen = 127.0.0.1:{inst.port}" in text
    assert f"url = sqlite://{os.path.realpath(inst.db_path)}" in text


def test_init_generates_a_different_master_key_each_time(make_instance):
    keys = []
    for _ in range(2):
        with open(make_instance().conf) as f:
            keys.append(re.search(r"^master_key = (\w+)$", f.read(), re.M).group(1))
    assert keys[0] != keys[1]


def test_init_twice_refuses_and_leaves_the_first_instance_untouched(make_instance):
    inst = make_instance(store="sqlite")  # compares the instance's files
    before = instance_state(inst.dir)
    assert "portcullis.db" in before and "portcullis.conf" in before
    for args in (["--listen", "127.0.0.1:1"], []):
        p = run_cli("init", "--data-dir", inst.dir, "--bcrypt-cost", "4", *args)
        assert p.returncode != 0
        assert "refus" in p.stderr
        assert not KEY_RE.search(p.stdout + p.stderr)
        assert instance_state(inst.dir) == before
    # The first instance still starts with its own root key.
    inst.start()
    assert inst.root("GET", "/v1/orgs").status_code == 200


def test_init_refuses_a_directory_holding_only_a_config(make_instance, tmp_path):
    d = str(tmp_path / "inst")
    os.mkdir(d)
    conf = os.path.join(d, "portcullis.conf")
    with open(conf, "w") as f:
        f.write("# mine\n")
    p = run_cli("init", "--data-dir", d, "--bcrypt-cost", "4")
    assert p.returncode != 0
    assert "refus" in p.stderr
    with open(conf) as f:
        assert f.read() == "# mine\n"
    assert not os.path.exists(os.path.join(d, "portcullis.db"))


def test_init_without_data_dir_is_a_usage_error():
    p = run_cli("init")
    assert p.returncode == 2
    assert "usage" in p.stderr


def test_version_help_and_unknown_command():
    p = run_cli("version")
    assert p.returncode == 0
    assert re.fullmatch(r"portcullis \d+\.\d+\.\d+\n", p.stdout)
    p = run_cli("help")
    assert p.returncode == 0
    for cmd in ("init", "serve", "migrate", "config check", "config example", "root-key create"):
        assert cmd in p.stdout
    p = run_cli("frobnicate")
    assert p.returncode == 2
    assert "unknown command" in p.stderr
    p = run_cli()
    assert p.returncode == 2
