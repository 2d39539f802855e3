"""Configuration, black-box: the documented defaults, the committed example
file and docs table, FILE:LINE errors with exit code 2 from `config check`
and `serve`, and PORTCULLIS_<SECTION>_<NAME> environment overrides.
"""
import os
import re

import pytest
import requests

from conftest import assert_problem, run_cli

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
NO_LEAK_CHECK = {"ASAN_OPTIONS": "detect_leaks=0"}

# Every setting and its default, as docs/configuration.md documents them.
DOCUMENTED_DEFAULTS = {
    "server.listen": "127.0.0.1:8080",
    "server.workers": "0",
    "server.max_header_bytes": "16384",
    "server.max_body_bytes": "10485760",
    "server.connection_timeout_s": "30",
    "server.max_connections": "1024",
    "server.max_connections_per_ip": "64",
    "server.header_timeout_s": "10",
    "server.shutdown_grace_s": "10",
    "server.http2_max_concurrent_streams": "0",
    "server.http2_window_bytes": "65535",
    "server.h2c": "false",
    "server.tls_cert": "",
    "server.tls_key": "",
    "server.redirect_listen": "",
    "server.trusted_proxies": "",
    "store.url": "sqlite://portcullis.db",
    "store.pool_size": "8",
    "store.statement_timeout_ms": "5000",
    "kv.url": "memory://",
    "auth.key_prefix": "pcl",
    "auth.bcrypt_cost": "12",
    "auth.verifier_threads": "0",
    "auth.verifier_queue": "32",
    "auth.failed_attempts_max": "20",
    "auth.failed_attempts_per_key_max": "20",
    "auth.failed_attempts_window_s": "60",
    "auth.stale_grace_seconds": "30",
    "security.contact": "mailto:security@example.com",
    "security.master_key": "",
    "log.level": "info",
    "log.format": "json",
    "upstream.url": "",
    "upstream.timeout_ms": "30000",
    "upstream.connect_timeout_ms": "5000",
    "upstream.ca_file": "",
    "upstream.max_response_bytes": "268435456",
    "rate_limit.requests": "100",
    "rate_limit.per_seconds": "1",
    "rate_limit.burst": "99",
    "idempotency.ttl_seconds": "86400",
    "idempotency.max_response_bytes": "1048576",
    "request_log.queue_size": "16384",
    "request_log.batch_size": "512",
    "retention.request_log_days": "30",
    "retention.webhook_days": "30",
    "retention.events_days": "90",
    "ingest.listen": "",
    "ingest.max_connections": "1024",
    "ingest.max_body_bytes": "512000",
    "ingest.queue_events": "20000",
    "ingest.rate_limit": "0",
    "retention.usage_days": "400",
    "geoip.database": "",
    "ingest.hash_paths": "",
    "console.listen": "",
    "console.tls_cert": "",
    "console.tls_key": "",
    "console.public_url": "",
    "console.session_idle_minutes": "30",
    "console.session_max_hours": "12",
    "console.allow_signup": "false",
    "console.dev_print_links": "false",
    "webhooks.retry_schedule": "0s,5s,5m,30m,2h,5h,10h,10h",
    "webhooks.timeout_s": "15",
    "webhooks.disable_after_hours": "120",
    "webhooks.failing_after_hours": "24",
    "webhooks.allow_ranges": "",
    "webhooks.ca_file": "",
    "webhooks.max_in_flight": "512",
    "webhooks.endpoint_concurrency": "16",
    "webhooks.lease_s": "60",
    "capi.base_url": "https://graph.facebook.com",
    "capi.api_version": "v21.0",
    "capi.timeout_s": "30",
    "capi.retry_schedule": "0s,30s,5m,30m,2h,6h",
    "mail.url": "",
    "mail.from": "",
    "mail.starttls": "required",
    "mail.username": "",
    "mail.password_file": "",
    "mail.ca_file": "",
    "secrets.private_key_file": "secrets.key",
    "secret_scanning.github_keys_url": "https://api.github.com/meta/public_keys/secret_scanning",
    "secret_scanning.action": "kill",
    "secret_scanning.refresh_min_s": "60",
    "worker.enabled": "true",
    "worker.listen": "",
    "worker.node_name": "",
}


def example_text():
    p = run_cli("config", "example", check=True)
    return p.stdout


def parse_example(text):
    """{'section.name': (default, help)} from `config example` output (settings only)."""
    out = {}
    section, comment = None, None
    for line in text.splitlines():
        if line.startswith("# Routes"):
            break
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        if line.startswith("# "):
            comment = line[2:]
            continue
        m = re.fullmatch(r";(\w+) = (.*)", line)
        if m and section:
            key = f"{section}.{m.group(1)}"
            assert key not in out, f"{key} listed twice"
            out[key] = (m.group(2).strip(), comment)
            comment = None
    return out


def write(tmp_path, text, name="p.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ---------- defaults, example file, docs ----------

def test_config_example_lists_every_setting_with_its_documented_default():
    settings = parse_example(example_text())
    missing = set(DOCUMENTED_DEFAULTS) - set(settings)
    extra = set(settings) - set(DOCUMENTED_DEFAULTS)
    assert not missing, f"not in `config example`: {sorted(missing)}"
    assert not extra, f"undocumented settings (add them to the docs and this test): {sorted(extra)}"
    for key, want in DOCUMENTED_DEFAULTS.items():
        default, help_text = settings[key]
        assert default == want, (key, default, want)
        assert help_text, f"{key} has no help line"


def test_config_example_shows_every_integer_range():
    for key, (default, help_text) in parse_example(example_text()).items():
        if re.fullmatch(r"-?\d+", default) and key != "server.listen":
            m = re.search(r"\((-?\d+) to (-?\d+)\)$", help_text)
            assert m, f"{key}: no range in {help_text!r}"
            assert int(m.group(1)) <= int(default) <= int(m.group(2)), key


def test_committed_example_file_is_the_command_output():
    with open(os.path.join(ROOT, "etc", "portcullis.conf.example")) as f:
        committed = f.read()
    assert committed == example_text(), \
        "etc/portcullis.conf.example is stale: regenerate it with `portcullis config example`"


def test_docs_settings_table_matches_the_example():
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        doc = f.read()
    rows = {}
    for m in re.finditer(r"^\| `\[(\w+)\] (\w+)` \| ([^|]*) \| ([^|]*) \| `(\w+)` \| (.*) \|$",
                         doc, re.M):
        section, name, default, allowed, env, meaning = m.groups()
        default = default.strip()
        default = "" if default == "(empty)" else default.strip("`")
        rows[f"{section}.{name}"] = (default, allowed.strip(), env, meaning)
    settings = parse_example(example_text())
    assert set(rows) == set(settings)
    for key, (default, help_text) in settings.items():
        d_default, allowed, env, meaning = rows[key]
        assert d_default == default, key
        assert env == "PORTCULLIS_" + key.replace(".", "_").upper(), key
        assert help_text == meaning + (f" ({allowed.replace(', ', '|')})" if allowed else ""), key


def test_example_with_every_setting_uncommented_passes_check(tmp_path):
    text = example_text()
    uncommented = []
    in_routes = False
    for line in text.splitlines():
        if line.startswith("# Routes"):
            in_routes = True
        if line.startswith(";") and not in_routes:
            line = line[1:]
        uncommented.append(line)
    path = write(tmp_path, "\n".join(uncommented) + "\n")
    p = run_cli("config", "check", "-c", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{path}: ok"
    # The sample route and [oidc] sections are valid too (the secret file is relative to the
    # config file's directory).
    (tmp_path / "oidc-google.secret").write_text("example-secret\n")
    routes = "\n".join(line[1:] if line.startswith(";") else line for line in text.splitlines())
    path2 = write(tmp_path, routes + "\n", "routes.conf")
    p = run_cli("config", "check", "-c", path2)
    assert p.returncode == 0, p.stderr


# ---------- errors ----------

BAD_FILES = [
    pytest.param("[server]\nlisten = 127.0.0.1:8080\nmax_header_bytes = 100\n", 3,
                 '[server] max_header_bytes must be an integer from 1024 to 1048576, got "100"',
                 id="range"),
    pytest.param("# comment\n\n[auth]\nbcrypt_cost = 32\n", 4,
                 '[auth] bcrypt_cost must be an integer from 4 to 31, got "32"',
                 id="range-high"),
    pytest.param("[server]\nworkers = 4 threads\n", 2,
                 '[server] workers must be an integer from 0 to 256, got "4 threads"',
                 id="trailing-garbage"),
    # The kv tier keeps at most 16 MiB of a response: the setting cannot promise more.
    pytest.param("[idempotency]\nmax_response_bytes = 16777217\n", 2,
                 '[idempotency] max_response_bytes must be an integer from 0 to 16777216, '
                 'got "16777217"', id="idempotency-over-kv-cap"),
    pytest.param("[upstream]\nmax_response_bytes = 1023\n", 2,
                 '[upstream] max_response_bytes must be an integer from 1024 to 1073741824, '
                 'got "1023"', id="upstream-response-range"),
    pytest.param("[log]\nlevel = info\nformat = yaml\n", 3,
                 '[log] format must be one of json|text, got "yaml"', id="enum"),
    pytest.param("[server]\nlisten = 127.0.0.1:8080\nmax_headers = 8192\n", 3,
                 'unknown setting "max_headers" in [server]', id="unknown-key"),
    pytest.param("[sever]\nlisten = 127.0.0.1:8080\n", 2,
                 'unknown setting "listen" in [sever]', id="unknown-section"),
]


@pytest.mark.parametrize("text,line,message", BAD_FILES)
def test_config_check_reports_file_and_line_and_exits_2(tmp_path, text, line, message):
    path = write(tmp_path, text)
    p = run_cli("config", "check", "-c", path)
    assert p.returncode == 2
    assert p.stderr.strip() == f"portcullis: {path}:{line}: {message}"
    assert "ok" not in p.stdout


@pytest.mark.parametrize("text,line,message", BAD_FILES[:1] + BAD_FILES[4:5])
def test_serve_reports_the_same_error_and_exits_2(tmp_path, text, line, message):
    path = write(tmp_path, text)
    p = run_cli("serve", "-c", path, env=NO_LEAK_CHECK, timeout=20)
    assert p.returncode == 2
    assert f"{path}:{line}: {message}" in p.stderr


# ---------- settings the background tier refuses when it opens ----------

MAIL = "[mail]\nurl = smtp://127.0.0.1:2525\nfrom = portcullis@example.com\n"

DELIVERY_REFUSED = [
    pytest.param("[mail]\nurl = http://127.0.0.1:2525\nfrom = a@example.com\n", "[mail] url",
                 "[mail] url must be smtp://host:port or smtps://host:port", id="mail-url-scheme"),
    pytest.param("[mail]\nurl = smtp://127.0.0.1:2525\nfrom = not an address\n", "[mail] from",
                 "[mail] from must be an address (a@b or Name <a@b>)", id="mail-from"),
    pytest.param(MAIL + "password_file = /nonexistent/pw\n", "password_file",
                 "[mail] password_file: cannot read /nonexistent/pw: No such file or directory",
                 id="mail-password-file"),
    pytest.param(MAIL + "ca_file = /nonexistent/mail-ca.pem\n", "ca_file",
                 "[mail] ca_file: cannot read /nonexistent/mail-ca.pem: No such file or directory",
                 id="mail-ca-file"),
    pytest.param("[webhooks]\nca_file = /nonexistent/hooks-ca.pem\n", "ca_file",
                 "[webhooks] ca_file: cannot read /nonexistent/hooks-ca.pem: "
                 "No such file or directory", id="webhooks-ca-file"),
    pytest.param("[webhooks]\nretry_schedule = 0s,soon\n", "retry_schedule",
                 "[webhooks] retry_schedule: ", id="retry-schedule"),
    pytest.param("[webhooks]\nallow_ranges = 10.0.0.0/33\n", "allow_ranges",
                 "[webhooks] allow_ranges: ", id="allow-ranges"),
    pytest.param("[webhooks]\nlease_s = 10\ntimeout_s = 10\n", None,
                 "[webhooks] lease_s (10) must be greater than [webhooks] timeout_s (10)",
                 id="lease-not-over-timeout"),
    pytest.param("[capi]\nretry_schedule = 0s,later\n", "retry_schedule",
                 "[capi] retry_schedule: ", id="capi-retry-schedule"),
    pytest.param("[capi]\nbase_url = http://graph.facebook.com\n", None,
                 "[capi] base_url must be an https URL", id="capi-base-url-http"),
    pytest.param("[capi]\nbase_url = https://10.0.0.1\n", None,
                 "[capi] base_url must be an https URL", id="capi-base-url-private"),
    pytest.param("[capi]\napi_version = 21\n", None,
                 "[capi] base_url must be an https URL without userinfo and api_version like "
                 "v21.0 (api_version)", id="capi-api-version"),
    pytest.param("[secrets]\nprivate_key_file =\n", "private_key_file",
                 "[secrets] private_key_file must be set", id="no-private-key-file"),
]


@pytest.mark.parametrize("text,setting,message", DELIVERY_REFUSED)
def test_config_check_refuses_what_the_worker_would_refuse(tmp_path, text, setting, message):
    path = write(tmp_path, text)
    p = run_cli("config", "check", "-c", path)
    assert p.returncode == 2, p.stdout
    assert p.stderr.startswith("portcullis: " + message), p.stderr
    if setting:  # named once
        assert p.stderr.count(setting) == 1, p.stderr
    assert "ok" not in p.stdout


def oidc_section(secret, extra=""):
    return ("[oidc.corp]\nissuer = https://login.example.com\nclient_id = portcullis\n"
            f"client_secret_file = {secret}\n" + extra)


@pytest.mark.parametrize("extra,message", [
    ("", "[oidc.corp] client_secret_file: cannot read /nonexistent/oidc.secret: "
         "No such file or directory"),
    ("ca_file = /nonexistent/oidc-ca.pem\n", "[oidc.corp] ca_file: cannot read"),
    ("allow_ranges = 10.0.0.0/33\n", "[oidc.corp] allow_ranges: "),
], ids=["secret-file", "ca-file", "allow-ranges"])
def test_config_check_refuses_what_serve_would_refuse_of_oidc(tmp_path, extra, message):
    secret = "/nonexistent/oidc.secret"
    if extra:
        (tmp_path / "oidc.secret").write_text("s3cret\n")
        secret = str(tmp_path / "oidc.secret")
    # serve opens the store before the providers: keep its database in tmp_path.
    store = f"[store]\nurl = sqlite://{tmp_path}/p.db\n"
    path = write(tmp_path, store + oidc_section(secret, extra))
    for cmd in (["config", "check"], ["serve"]):
        p = run_cli(*cmd, "-c", path, env=NO_LEAK_CHECK, timeout=20)
        assert p.returncode == 2, (cmd, p.stdout, p.stderr)
        assert message in p.stderr, (cmd, p.stderr)
        assert "s3cret" not in p.stderr


def test_config_check_refuses_a_private_issuer_and_an_empty_secret(tmp_path):
    secret = tmp_path / "oidc.secret"
    secret.write_text("\n")
    p = run_cli("config", "check", "-c", write(tmp_path, oidc_section(secret)))
    assert p.returncode == 2
    assert "[oidc.corp] client_secret_file: the file's first line is empty" in p.stderr
    secret.write_text("s3cret\n")
    text = oidc_section(secret).replace("https://login.example.com", "https://10.1.2.3")
    p = run_cli("config", "check", "-c", write(tmp_path, text))
    assert p.returncode == 2
    assert "[oidc.corp] issuer refused by the egress guard (private_address)" in p.stderr
    p = run_cli("config", "check", "-c",
                write(tmp_path, text + "allow_ranges = 10.0.0.0/8\n"))
    assert p.returncode == 0, p.stderr


def test_config_check_accepts_a_lease_longer_than_the_timeout_and_what_exists(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2\n")
    path = write(tmp_path, MAIL + f"password_file = {pw}\n[webhooks]\nlease_s = 16\n"
                 "timeout_s = 15\nallow_ranges = 127.0.0.0/8\nretry_schedule = 0s,1s\n")
    p = run_cli("config", "check", "-c", path)
    assert p.returncode == 0, p.stderr
    # No private key file is needed on an API-only node.
    path = write(tmp_path, "[secrets]\nprivate_key_file =\n[worker]\nenabled = false\n",
                 "api.conf")
    assert run_cli("config", "check", "-c", path).returncode == 0


def test_serve_with_a_bad_mail_setting_exits_at_start_with_the_message(make_instance):
    inst = make_instance(config=MAIL + "password_file = /nonexistent/pw\n")
    inst.start(wait=False)
    rc = inst.proc.wait(timeout=30)
    inst.log.close()
    assert rc == 2, inst.read_log()
    log = inst.read_log()
    assert "[mail] password_file: cannot read /nonexistent/pw: No such file or directory" in log
    assert "worker_started" not in log and "worker_exited" not in log


def test_missing_config_file_exits_2(tmp_path):
    path = str(tmp_path / "absent.conf")
    p = run_cli("config", "check", "-c", path)
    assert p.returncode == 2
    assert path in p.stderr and "cannot open" in p.stderr


# ---------- environment overrides ----------

def test_env_override_changes_behaviour(make_instance):
    # The file says 8192; the environment says 2048 and wins.
    inst = make_instance(config="[server]\nmax_header_bytes = 8192",
                         env={"PORTCULLIS_SERVER_MAX_HEADER_BYTES": "2048"}).start()
    assert inst.request("GET", "/healthz", headers={"X-Pad": "p" * 1500}).status_code == 200
    r = inst.request("GET", "/healthz", headers={"X-Pad": "p" * 3000})
    body = assert_problem(r, 431, "HEADERS_TOO_LARGE")
    assert body["details"]["limit"] == 2048


def test_without_env_the_file_value_holds(make_instance):
    inst = make_instance(config="[server]\nmax_header_bytes = 8192").start()
    assert inst.request("GET", "/healthz", headers={"X-Pad": "p" * 3000}).status_code == 200
    r = inst.request("GET", "/healthz", headers={"X-Pad": "p" * 9000})
    assert assert_problem(r, 431, "HEADERS_TOO_LARGE")["details"]["limit"] == 8192


def test_env_override_of_a_string_setting(make_instance):
    inst = make_instance(env={"PORTCULLIS_SECURITY_CONTACT": "mailto:env@corp.example"}).start()
    r = requests.get(inst.url("/.well-known/security.txt"))
    assert "Contact: mailto:env@corp.example\n" in r.text


@pytest.mark.parametrize("name,value", [
    ("PORTCULLIS_SERVER_MAX_HEADER_BYTES", "lots"),
    ("PORTCULLIS_SERVER_MAX_HEADER_BYTES", "100"),
    ("PORTCULLIS_LOG_LEVEL", "chatty"),
])
def test_bad_env_value_is_reported_naming_the_variable(tmp_path, name, value):
    path = write(tmp_path, "[server]\nlisten = 127.0.0.1:8080\n")
    p = run_cli("config", "check", "-c", path, env={name: value})
    assert p.returncode == 2
    assert p.stderr.startswith(f"portcullis: {name}: ")
    assert f'got "{value}"' in p.stderr
    p = run_cli("serve", "-c", path, env={name: value, **NO_LEAK_CHECK}, timeout=20)
    assert p.returncode == 2
    assert f"{name}: " in p.stderr
