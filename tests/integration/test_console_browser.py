"""The web UI in a real browser: Debian's chromium, headless, driven by
python3-selenium through chromium-driver, against the real binary with a
console listener mailing through a local SMTP server (aiosmtpd).

One owner signs in by magic link (the link read from the mail), creates a
key and copies it (the clipboard holds the very key, which /v1/verify
accepts), kills it (the status changes, /v1/verify answers 503), lifts
it, rotates it (the new secret shown once and copied; /v1/verify accepts
it and refuses the old one), deletes another key (revoked, refused), opens
the usage charts, the request log, the audit log (the chain check), the
incident view, adds a webhook endpoint (its signing secret shown once and
copied: a test message to a local HTTPS receiver is signed with it),
invites a developer (the mail reaches the SMTP server; the link opened in
a second browser signs the invitee in with that role), opens projects,
members and sessions, and signs out; then an operator signs in and opens
the operator page. On every page: no Content-Security-Policy violation
and no script error in chromium's console log, and at 360 px wide no
horizontal scroll.

The main pages' screenshots go to a temporary directory, so a run leaves
the tree as it was (the test checks that docs/console/ is untouched); with
PORTCULLIS_SCREENSHOT_DIR set they go there instead: `make screenshots`
writes docs/console/ (docs/console.md, "The pages").

Skipped when chromium or chromium-driver is not installed (scripts/deps.sh
installs both).
"""
import os
import re
import shutil
import time

import pytest
import requests

from conftest import KEY_RE
from console_helpers import LINK_RE, console_instance, user_create
from test_mail import smtp  # noqa: F401
from test_webhooks import ca, receiver  # noqa: F401
from webhook_peers import verify_request

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
DOCS_SHOTS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "console")
OWNER = "owner@acme.example"
OPERATOR = "ops@platform.example"

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium-driver not installed")

# A value drawn as text by mistake (a null child, an object), alone on its line.
STRAY_RE = re.compile(r"^(null|undefined|NaN|\[object Object\])$", re.M)

# What chromium logs for a violated policy ("Refused to apply inline style because it
# violates the following Content Security Policy directive ...").
CSP_RE = re.compile(r"Content Security Policy|Content-Security-Policy", re.I)


@pytest.fixture
def con(make_instance, ca, smtp):  # noqa: F811
    return console_instance(make_instance, ca, smtp)


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: PORTCULLIS_SCREENSHOT_DIR (make screenshots: docs/console/),
    else the test's temporary directory."""
    return os.environ.get("PORTCULLIS_SCREENSHOT_DIR") or str(tmp_path / "screenshots")


def pngs(d):
    """{name: bytes} of the PNG files in d."""
    if not os.path.isdir(d):
        return {}
    out = {}
    for n in sorted(os.listdir(d)):
        if n.endswith(".png"):
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
    return out


def new_browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-sync", "--lang=en"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_page_load_timeout(30)
    return d


@pytest.fixture
def browser():
    d = new_browser()
    yield d
    d.quit()


def grant_clipboard(d, origin):
    d.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})


class UI:
    """The browser on the console: waits, page checks, screenshots."""

    def __init__(self, d, inst, smtp, shots=None):  # noqa: F811
        self.d, self.inst, self.smtp, self.shots = d, inst, smtp, shots
        self.wait = WebDriverWait(d, 20)
        self.expected_errors = []  # substrings of console errors a step expects

    def css(self, sel):
        return self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, sel)))

    def click(self, sel):
        el = self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, sel)))
        el.click()
        return el

    def text_in(self, sel, text):
        self.wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, sel), text))
        return self.d.find_element(By.CSS_SELECTOR, sel).text

    def idle(self):
        """The page has drawn: no 'Loading' placeholder left."""
        self.wait.until(lambda d: "Loading" not in d.find_element(By.ID, "main").text)

    def open(self, page):
        self.d.get(self.inst.console + "/console/" + page)
        self.css(f'[data-page="{page.split("?")[0]}"]')
        self.idle()

    def logs(self):
        return self.d.get_log("browser")

    def check_console(self, where):
        """No CSP violation, no script error; network errors only where expected."""
        for e in self.logs():
            msg = e["message"]
            assert not CSP_RE.search(msg), (where, msg)
            if e["level"] == "SEVERE":
                assert any(x in msg for x in self.expected_errors), (where, msg)

    def check_text(self, where):
        """No stray null, undefined or [object Object] drawn on the page."""
        text = self.d.find_element(By.ID, "main").text
        assert not STRAY_RE.search(text), (where, text)

    def check_narrow(self, where):
        """At 360 px CSS width the document does not scroll sideways."""
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 780, "deviceScaleFactor": 1,
                                "mobile": True})
        try:
            time.sleep(0.2)
            sw, cw = self.d.execute_script(
                "return [document.documentElement.scrollWidth, "
                "document.documentElement.clientWidth]")
            assert cw == 360 and sw <= cw, (where, sw, cw)
        finally:
            self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def shot(self, name):
        os.makedirs(self.shots, exist_ok=True)
        assert self.d.save_screenshot(os.path.join(self.shots, name + ".png"))

    def page(self, page, shot=None):
        """Open page, check it wide and narrow, and keep its screenshot."""
        self.open(page)
        if shot:
            self.shot(shot)
        self.check_text(page)
        self.check_narrow(page)
        self.check_console(page)

    def sign_in(self, email):
        """By magic link: ask on the sign-in page, open the mailed link."""
        # Only sign-in mails count: an invitation to the same address may still be
        # on its way from serve's mail thread (it arrived after this count under
        # load, and its link was opened in place of the sign-in link).
        def signin_mails(timeout):
            deadline = time.monotonic() + timeout
            while True:
                got = [m for m in self.smtp.wait_mails(0, timeout=0, to=email)
                       if m.message.get("Subject") == "Sign in to Portcullis"]
                if len(got) >= n or time.monotonic() > deadline:
                    return got
                time.sleep(0.05)

        n = 0
        n = len(signin_mails(0)) + 1
        self.d.get(self.inst.console + "/")
        self.css("#signin-email").send_keys(email)
        self.click("#signin-send")
        self.text_in("#signin-msg", "Check your mail")
        got = signin_mails(20)
        assert len(got) >= n
        link = LINK_RE.search(got[n - 1].text()).group(1)
        self.d.get(link)  # 303 to /console/, then the keys page
        self.text_in("#user", email)
        self.css('[data-page="keys"]')
        self.idle()

    def secret_shown_once(self, pattern):
        """The open secret dialog: its value (matching pattern), the warning, the copy
        button putting that very value on the clipboard. Returns the value; the
        dialog stays open."""
        shown = self.css("dialog[open] #secret-value").get_attribute("value")
        assert re.fullmatch(pattern, shown), shown
        assert "cannot be shown again" in self.css("dialog[open] .warning").text
        self.click("#copy-secret")
        self.text_in("dialog[open] .copy-status", "Copied.")
        copied = self.d.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))")
        assert copied == shown
        return shown

    def close_dialog(self):
        self.click("#secret-done")
        self.wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))


def verify(inst, key):
    return requests.get(inst.url("/v1/verify"), headers={"Authorization": "Bearer " + key},
                        timeout=10)


def test_console_flows_in_chromium(con, smtp, browser, shots, receiver):  # noqa: F811
    docs_before = pngs(DOCS_SHOTS)
    root = con.root_key
    r = con.request("POST", "/v1/orgs", key=root, json={"name": "Acme"})
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    r = con.request("POST", f"/v1/orgs/{org}/invitations", key=root,
                    json={"email": OWNER, "role": "owner"})
    assert r.status_code == 201, r.text
    ui = UI(browser, con, smtp, shots)
    grant_clipboard(browser, con.console)

    # Signed out, every page is the sign-in page; asking for /console/api/me is a 401.
    ui.expected_errors = ["/console/api/me - Failed to load resource: the server responded "
                          "with a status of 401"]
    ui.d.get(con.console + "/console/keys")
    ui.css("#signin-form")
    assert browser.current_url == con.console + "/console/signin"
    ui.shot("signin")
    ui.check_narrow("signin")
    ui.check_console("signin")

    # Sign in by magic link: the invitation is accepted, the owner's organisation chosen.
    ui.sign_in(OWNER)
    assert "Acme" in ui.css("#org-select").text
    ui.check_console("keys")

    # A project, then a key of it, shown once and copied.
    ui.open("projects")
    ui.click("#project-create")
    ui.css("#project-name").send_keys("Mobile app")
    ui.css("#project-name").send_keys(Keys.ENTER)
    ui.text_in("#projects-list", "Mobile app")
    ui.open("keys")
    ui.click("#key-create")
    ui.css("#key-name").send_keys("ci")
    browser.find_element(By.CSS_SELECTOR, "#key-project option:nth-child(2)").click()
    ui.click('dialog button[type="submit"]')
    shown = ui.secret_shown_once(KEY_RE.pattern)
    # The screenshot for the docs shows the key's public start only.
    browser.execute_script("document.getElementById('secret-value').value = arguments[0]",
                           shown[:36] + "." + "x" * 49)
    ui.shot("key-created")
    # Escape closes the dialog; focus returns to the page.
    ui.css("#secret-done").send_keys(Keys.ESCAPE)
    ui.wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))
    r = verify(con, shown)
    assert r.status_code == 200, r.text
    key_id = shown.split("_")[2].split(".")[0]
    for _ in range(5):
        verify(con, shown)
    ui.text_in(f'[data-key-status="{key_id}"]', "active")
    ui.shot("keys")

    # Kill it: a dialog names the key; the status changes; /v1/verify refuses it.
    ui.click(f'button[data-action="kill"][data-key="{key_id}"]')
    dlg = ui.css("dialog[open]")
    assert '"ci"' in dlg.text and shown[:12] in dlg.text
    assert browser.switch_to.active_element.get_attribute("id") == "dlg-reason"
    browser.switch_to.active_element.send_keys("leaked in a CI log")
    # Tab stays in the dialog (focus is trapped).
    for _ in range(6):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.execute_script(
            "return document.querySelector('dialog[open]').contains(document.activeElement)")
    ui.click("dialog[open] button.danger")
    ui.text_in(f'[data-key-status="{key_id}"]', "killed")
    r = verify(con, shown)
    assert r.status_code == 503 and r.json()["code"] == "KILL_SWITCH", r.text
    ui.check_console("keys")

    # The incident view: the kill step done, the next steps as buttons.
    ui.page(f"incident?key_id={key_id}", "incident")
    assert "killed" in ui.css("#incident-status").text
    steps = ui.css("#incident-steps")
    assert "(done)" in steps.find_element(By.CSS_SELECTOR, '[data-step="kill"]').text
    assert steps.find_element(By.ID, "step-replace").tag_name == "button"
    assert steps.find_element(By.ID, "step-revoke").tag_name == "button"

    # Lift the kill from the keys page: the key works again.
    ui.open("keys")
    ui.click(f'button[data-action="lift"][data-key="{key_id}"]')
    ui.click("dialog[open] button.primary")
    ui.text_in(f'[data-key-status="{key_id}"]', "active")
    assert verify(con, shown).status_code == 200

    # Rotate it: a dialog names the key and says the old secret stops at once (no grace);
    # the new one is shown once and copied; /v1/verify takes the new one, refuses the old.
    ui.click(f'button[data-action="rotate"][data-key="{key_id}"]')
    dlg = ui.css("dialog[open]")
    assert '"ci"' in dlg.text and shown[:12] in dlg.text and "stops working at once" in dlg.text
    ui.click("dialog[open] button.primary")
    rotated = ui.secret_shown_once(KEY_RE.pattern)
    assert rotated != shown and rotated.split(".")[0] == shown.split(".")[0]
    ui.close_dialog()
    r = verify(con, shown)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED", r.text
    r = verify(con, rotated)
    assert r.status_code == 200 and r.json()["key_id"] == key_id, r.text
    ui.text_in(f'[data-key-status="{key_id}"]', "active")
    shown = rotated

    # Delete (revoke) another key: the dialog names it; revoked, its buttons gone, refused.
    r = con.request("POST", f"/v1/orgs/{org}/api-keys", key=root, json={"name": "old-ci"})
    assert r.status_code == 201, r.text
    old, old_id = r.json()["key"], r.json()["id"]
    assert verify(con, old).status_code == 200
    ui.open("keys")
    ui.click(f'button[data-action="delete"][data-key="{old_id}"]')
    dlg = ui.css("dialog[open]")
    assert '"old-ci"' in dlg.text and "cannot be undone" in dlg.text
    ui.click("dialog[open] button.danger")
    ui.text_in(f'[data-key-status="{old_id}"]', "revoked")
    assert not browser.find_elements(By.CSS_SELECTOR, f'button[data-key="{old_id}"]')
    r = verify(con, old)
    assert r.status_code == 401 and r.json()["code"] == "REVOKED", r.text
    ui.check_console("keys")

    # Usage: the charts are drawn from GET /v1/usage and count the key's requests.
    deadline = time.time() + 20
    while True:
        ui.page("usage")
        total = int(ui.css("#usage-requests").text)
        if total >= 7 or time.time() > deadline:
            break
        time.sleep(1)
    assert total >= 7, total
    for chart in ("#chart-totals", "#chart-projects", "#chart-keys", "#chart-routes"):
        assert ui.css(chart + " svg polyline, " + chart + " svg rect")
    ui.shot("usage")

    # The request log, filtered by key and status; the audit log with its chain check.
    ui.page("requests")
    ui.css("#rq-key").send_keys(key_id)
    ui.css("#rq-status").send_keys("503")
    ui.css("#rq-status").send_keys(Keys.ENTER)
    ui.text_in("#rq-list", "/v1/verify")
    assert "503" in ui.css("#rq-list").text and "200" not in ui.css("#rq-list tbody").text
    ui.shot("requests")
    ui.page("audit", None)
    ui.text_in("#audit-chain", "The hash chain holds")
    ui.text_in("#au-list", "api_key.killed")
    ui.shot("audit")
    ui.check_console("audit")

    # A webhook endpoint: its signing secret shown once and copied; a test message to
    # the endpoint (a local HTTPS receiver) is signed with that very secret.
    ui.page("webhooks")
    ui.click("#wh-create")
    url = receiver.url("/from-the-console")
    ui.css("#wh-url").send_keys(url)
    ui.css("#wh-desc").send_keys("Alerts")
    ui.click('dialog[open] button[type="submit"]')
    secret = ui.secret_shown_once(r"whsec_[A-Za-z0-9+/]{43}=")
    browser.execute_script("document.getElementById('secret-value').value = 'whsec_' + "
                           "'x'.repeat(44)")
    ui.shot("webhook-created")
    ui.close_dialog()
    ui.text_in("#wh-endpoints", url)
    (ep,) = [e for e in con.request("GET", "/v1/webhook-endpoints", key=root).json()["data"]
             if e["url"] == url]
    assert "secret" not in ep
    ui.click("#wh-endpoints button[data-action='test']")
    ui.wait.until(lambda d: receiver.wait_requests(1, "/from-the-console", timeout=0.5))
    (req,) = receiver.wait_requests(1, "/from-the-console")
    assert verify_request(req, secret)["ok"]
    ui.shot("webhooks")
    ui.check_text("webhooks")
    ui.check_narrow("webhooks")
    ui.check_console("webhooks")

    # Invite a developer: the mail reaches the SMTP server; its link, opened in a second
    # browser, shows a page whose button signs the invitee in, with the invited role.
    invitee = "dev@acme.example"
    r = con.request("POST", f"/v1/orgs/{org}/api-keys", key=root, json={"name": "org-wide"})
    assert r.status_code == 201, r.text
    org_wide_id = r.json()["id"]
    ui.page("members")
    ui.css("#invite-email").send_keys(invitee)
    browser.find_element(By.CSS_SELECTOR, '#invite-role option[value="developer"]').click()
    ui.click('#invite-form button[type="submit"]')
    ui.text_in("#invite-msg", f"Invited {invitee} as developer")
    ui.shot("members")
    got = smtp.wait_mails(1, timeout=20, to=invitee)
    assert got, [m.rcpt_tos for m in smtp.mails]
    link = LINK_RE.search(got[0].text()).group(1)
    assert "/console/auth/invitation?token=" in link
    second = new_browser()
    try:
        ui2 = UI(second, con, smtp, shots)
        second.get(link)
        ui2.click('form[action="/console/auth/invitation"] button')
        ui2.text_in("#user", invitee)
        ui2.css('[data-page="keys"]')
        ui2.idle()
        assert "Acme (developer)" in ui2.css("#org-select").text
        me = second.execute_async_script(
            "fetch('/console/api/me').then((r) => r.json()).then(arguments[0])")
        assert [(m["org_id"], m["role"]) for m in me["memberships"]] == [(org, "developer")]
        # A developer changes the project's key, not the organisation-wide one, and
        # creates keys of a project only (docs/console.md, "Roles and rights").
        ui2.text_in(f'[data-key-status="{org_wide_id}"]', "active")
        assert second.find_elements(By.CSS_SELECTOR,
                                    f'button[data-action="rotate"][data-key="{key_id}"]')
        assert not second.find_elements(By.CSS_SELECTOR, f'button[data-key="{org_wide_id}"]')
        ui2.click("#key-create")
        values = [o.get_attribute("value")
                  for o in second.find_elements(By.CSS_SELECTOR, "#key-project option")]
        assert values and "" not in values, values
        ui2.css("#key-name").send_keys(Keys.ESCAPE)
        ui2.wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))
        # The organisation-wide endpoint: listed, without the buttons that change it.
        ui2.open("webhooks")
        ui2.text_in("#wh-endpoints", url)
        assert not second.find_elements(By.CSS_SELECTOR, f'[data-endpoint="{ep["id"]}"]')
        ui2.check_text("invitee webhooks")
        ui2.check_console("invitee")
    finally:
        second.quit()
    r = con.request("GET", "/v1/audit-events?limit=100", key=root)
    assert "invitation.accepted" in [e["action"] for e in r.json()["data"]]

    ui.page("sessions", "sessions")
    ui.text_in("#sessions-list", "this browser")

    # Sign out: back to the sign-in page, and the session is gone.
    ui.click("#sign-out")
    ui.css("#signin-form")
    assert browser.current_url == con.console + "/console/signin"
    ui.check_console("sign-out")

    # An operator: the organisations and the kill switches (a reason is required).
    user_create(con, OPERATOR, "--operator")
    ui.sign_in(OPERATOR)
    ui.page("operator", "operator")
    ui.text_in("#orgs-list", "Acme")
    ui.click(f'button[data-org="{org}"]')
    ui.click("dialog[open] button.danger")
    ui.text_in("dialog[open] .error", "A reason is required")
    ui.css("#dlg-reason").send_keys("drill")
    ui.click("dialog[open] button.danger")
    ui.text_in("#orgs-list", "drill")
    assert verify(con, shown).status_code == 503
    ui.check_console("operator")
    assert os.listdir(shots), shots
    if os.path.realpath(shots) != os.path.realpath(DOCS_SHOTS):
        # A run without PORTCULLIS_SCREENSHOT_DIR leaves docs/console/ as it was.
        assert pngs(DOCS_SHOTS) == docs_before


def test_the_csp_check_sees_a_violation(con, smtp, browser):  # noqa: F811
    """check_console is not vacuous: an inline style added to a page is refused and
    logged, and the page's CSP is the one assets.h sets."""
    ui = UI(browser, con, smtp, None)
    ui.expected_errors = ["status of 401"]
    ui.d.get(con.console + "/console/signin")
    ui.css("#signin-form")
    ui.check_console("before")
    browser.execute_script(
        "const s = document.createElement('style'); s.textContent = 'body{color:red}';"
        "document.head.append(s);")
    time.sleep(0.3)
    with pytest.raises(AssertionError):
        ui.check_console("after")
    r = requests.get(con.console + "/console/signin", timeout=10)
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")
