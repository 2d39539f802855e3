"""The command line, black-box: `portcullis init` (root key printed once,
a config that passes `config check`, refusing to overwrite an instance),
`version`, `help` and unknown commands.
"""
import hashlib
import os
import re
import stat

import pytest

from conftest import KEY_RE, free_port, run_cli

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


# --- One option parser for every subcommand (issue 9, item 11) -------------

ORG = "01" + "J" * 24
# Each command with the arguments it needs to run: {conf} is a config whose
# SQLite file does not exist yet, {new} a directory that does not exist yet.
COMMANDS = {
    "init": ["init", "--data-dir", "{new}", "--bcrypt-cost", "4"],
    "serve": ["serve", "-c", "{conf}"],
    "migrate": ["migrate", "-c", "{conf}"],
    "config check": ["config", "check", "-c", "{conf}"],
    "config example": ["config", "example"],
    "root-key create": ["root-key", "create", "-c", "{conf}", "--name", "n"],
    "user create": ["user", "create", "--email", "a@example.com", "-c", "{conf}"],
    "user disable": ["user", "disable", "--email", "a@example.com", "-c", "{conf}"],
    "keys list": ["keys", "list", "--org", ORG, "-c", "{conf}"],
    "kill": ["kill", "global", "--reason", "test", "-c", "{conf}"],
    "unkill": ["unkill", "global", "-c", "{conf}"],
    "audit verify": ["audit", "verify", "-c", "{conf}"],
    "retention run": ["retention", "run", "-c", "{conf}"],
    "version": ["version"],
    "help": ["help"],
}


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A config naming a database that does not exist yet, and a directory
    name that does not exist yet, run from an empty working directory;
    check() asserts that both are still absent and that nothing appeared."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("PORTCULLIS_CONFIG", raising=False)
    conf = tmp_path / "portcullis.conf"
    db = tmp_path / "portcullis.db"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:{free_port()}\n\n"
                    f"[store]\nurl = sqlite://{db}\n\n[kv]\nurl = memory://\n\n"
                    f"[security]\nmaster_key = {'ab' * 32}\n")
    new = tmp_path / "new-instance"

    class Fresh:
        def fmt(self, args):
            return [a.format(conf=conf, new=new) for a in args]

        def args(self, name):
            return self.fmt(COMMANDS[name])

        def check(self, p):
            assert not KEY_RE.search(p.stdout + p.stderr), "a key was created"
            assert sorted(os.listdir(tmp_path)) == ["cwd", "portcullis.conf"], \
                "the command ran (a database or directory was created)"
            assert os.listdir(cwd) == [], "the command ran (it wrote to its directory)"

    return Fresh()


def words(name):
    return name.split()


def help_listing():
    """(synopsis, summary) of every command, as `portcullis help` lists them."""
    p = run_cli("help", check=True)
    lines = p.stdout.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("  portcullis "):
            out.append((line.strip(), lines[i + 1].strip()))
    return out


@pytest.mark.parametrize("flag", ["-h", "--help"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_after_a_subcommand_prints_its_usage_and_does_nothing(name, flag, fresh):
    args = fresh.args(name)
    n = len(words(name))
    # -h right after the command's words, --help at the end.
    args = args[:n] + [flag] + args[n:] if flag == "-h" else args + [flag]
    p = run_cli(*args, timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    first = p.stdout.splitlines()[0]
    assert first.startswith(f"usage: portcullis {name}"), p.stdout
    # The usage line is the one `portcullis help` lists for the command.
    assert first[len("usage: "):] in [s for s, _ in help_listing()]
    assert "-h, --help" in p.stdout
    fresh.check(p)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_unknown_option_is_refused_with_the_usage(name, fresh):
    p = run_cli(*fresh.args(name), "--bogus", timeout=20)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stdout == ""
    assert "unknown option --bogus" in p.stderr
    assert f"usage: portcullis {name}" in p.stderr
    fresh.check(p)


def missing_value_cases():
    """Every option given with a value in COMMANDS, once without it: last on
    the line, and where another option follows, just before that one."""
    cases = []
    for name, args in COMMANDS.items():
        for i, a in enumerate(args):
            if not a.startswith("-") or i + 1 == len(args) or args[i + 1].startswith("-"):
                continue
            rest = args[:i] + args[i + 2:]
            cases.append(pytest.param(name, rest + [a], id=f"{name} {a} last"))
            if i + 2 < len(args):
                cases.append(pytest.param(name, args[:i + 1] + args[i + 2:],
                                          id=f"{name} {a} before {args[i + 2]}"))
    return cases


@pytest.mark.parametrize("name,args", missing_value_cases())
def test_an_option_without_its_value_is_refused_with_the_usage(name, args, fresh):
    p = run_cli(*fresh.fmt(args), timeout=20)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stdout == ""
    assert "needs a value" in p.stderr
    assert f"usage: portcullis {name}" in p.stderr
    fresh.check(p)


@pytest.mark.parametrize("args", [
    ["root-key", "create", "--name", "x", "--help"],
    ["kill", "global", "--reason", "x", "--help"],
    ["unkill", "global", "--help"],
    ["retention", "run", "--help"],
    ["migrate", "--help"],
    ["root-key", "create", "--name", "x", "--bogus"],
    ["kill", "global", "--reason"],
    ["kill", "global", "--reason", "--bogus"],
], ids=" ".join)
def test_help_or_a_bad_option_leaves_an_instance_untouched(make_instance, args):
    inst = make_instance(store="sqlite")  # compares the instance's files
    if args[0] == "unkill":  # something for it to lift
        run_cli("kill", "global", "--reason", "test", "-c", inst.conf, check=True)
    before = instance_state(inst.dir)
    p = run_cli(*args, "-c", inst.conf)
    if "--help" in args:
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"usage: portcullis {args[0]}"), p.stdout
    else:
        assert p.returncode == 2, p.stdout + p.stderr
        assert p.stdout == ""
        assert f"usage: portcullis {args[0]}" in p.stderr
    assert not KEY_RE.search(p.stdout + p.stderr)
    # No key was added, no kill switch engaged or lifted, no row purged,
    # no migration applied: not a byte of the instance changed.
    assert instance_state(inst.dir) == before


def test_a_command_without_its_subcommand_lists_the_subcommands():
    for args in (["config", "--help"], ["help", "config"]):
        p = run_cli(*args)
        assert p.returncode == 0, p.stderr
        assert "portcullis config check" in p.stdout
        assert "portcullis config example" in p.stdout
    for args in (["config"], ["root-key"], ["keys", "frobnicate"], ["retention", "--bogus"]):
        p = run_cli(*args)
        assert p.returncode == 2, args
        assert p.stdout == ""
        assert f"portcullis {args[0]} " in p.stderr, p.stderr
    p = run_cli("help", "kill")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: portcullis kill key|org|global [ID] --reason TEXT")
    assert run_cli("help", "frobnicate").returncode == 2
    assert run_cli("help", "config", "frobnicate").returncode == 2


def test_kill_refuses_extra_or_misplaced_operands(tmp_path):
    conf = tmp_path / "none.conf"  # never read: the line is refused first
    for args in (["kill", "global", ORG], ["kill", "key", ORG, ORG], ["unkill"],
                 ["kill", "key"], ["kill", "frob", ORG]):
        p = run_cli(*args, "--reason", "r", "-c", str(conf)) if args[0] == "kill" else \
            run_cli(*args, "-c", str(conf))
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert f"usage: portcullis {args[0]} key|org|global [ID]" in p.stderr, p.stderr


def readme_commands():
    """(synopsis, summary) of every row of README.md's command-line table."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    with open(path) as f:
        text = f.read()
    table = text.split("| command | what it does |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = re.split(r"(?<!\\)\|", line)[1:-1]
        syn, what = (c.strip().replace("\\|", "|") for c in cells)
        rows.append((syn.strip("`"), what.replace("`", "")))
    return rows


def test_readme_command_table_matches_portcullis_help():
    assert readme_commands() == help_listing()


# --- init validates first and creates last (issue 9, item 12) ---------------

BAD_INIT = [
    pytest.param(["--listen", "nope"], {}, id="listen without a port"),
    pytest.param(["--listen", "127.0.0.1:99999"], {}, id="listen port out of range"),
    pytest.param(["--listen", "127.0.0.1:80\n[security]"], {}, id="listen with a newline"),
    pytest.param(["--upstream", "ftp://example.com"], {}, id="upstream not http"),
    pytest.param(["--upstream", "http://a\nmaster_key = 00"], {}, id="upstream with a newline"),
    pytest.param(["--bcrypt-cost", "3"], {}, id="bcrypt cost out of range"),
    pytest.param([], {"PORTCULLIS_LOG_LEVEL": "loud"}, id="a bad environment override"),
    # Fails only after the config was written: what init made is removed.
    pytest.param([], {"PORTCULLIS_STORE_URL": "postgres://127.0.0.1:1/none"},
                 id="a store that cannot be opened"),
]


@pytest.mark.parametrize("existing", [False, True], ids=["new dir", "existing empty dir"])
@pytest.mark.parametrize("bad,env", BAD_INIT)
def test_init_with_a_bad_input_leaves_nothing_and_a_rerun_works(tmp_path, bad, env, existing):
    d = tmp_path / "inst"
    if existing:
        d.mkdir()
    p = run_cli("init", "--data-dir", str(d), "--bcrypt-cost", "4", *bad, env=env)
    assert p.returncode != 0, p.stdout
    assert not KEY_RE.search(p.stdout + p.stderr)
    if existing:
        assert os.listdir(d) == []
    else:
        assert not d.exists(), os.listdir(d)
    # A re-run with good values is not blocked by a half-made instance.
    port = free_port()
    p = run_cli("init", "--data-dir", str(d), "--bcrypt-cost", "4", "--listen",
                f"127.0.0.1:{port}", "--upstream", "http://127.0.0.1:9")
    assert p.returncode == 0, p.stderr
    assert KEY_RE.search(p.stdout)
    assert run_cli("config", "check", "-c", str(d / "portcullis.conf")).returncode == 0
