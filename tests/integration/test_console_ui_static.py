"""The web UI's files (ui/) obey the console's Content-Security-Policy by
construction: no inline script or style anywhere (CONSOLE_UI_CSP in
src/console/assets.h allows only script-src 'self' and style-src 'self'),
no event-handler attributes, no javascript: URLs, no HTML built from
strings in the modules, and every file a page names is in ui/ and built in
(src/console/meson.build). No server needed.
"""
import json
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
UI = os.path.join(ROOT, "ui")


def ui_files():
    out = []
    for d, _, names in os.walk(UI):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), UI).replace(os.sep, "/"))
    return sorted(out)


def read(rel):
    with open(os.path.join(UI, rel), encoding="utf-8") as f:
        return f.read()


MARKUP = [f for f in ui_files() if f.endswith((".html", ".svg"))]
SCRIPTS = [f for f in ui_files() if f.endswith(".js")]

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
INLINE_MARKUP = [
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event-handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
    (re.compile(r"<(?:iframe|object|embed|base)\b", re.I), "an iframe, object, embed or base element"),
]
INLINE_JS = [
    (re.compile(r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write"), "HTML from a string"),
    (re.compile(r"setAttribute\(\s*['\"](?:style|on[a-z]+)['\"]", re.I), "an inline style or handler attribute"),
    (re.compile(r"\.style\.cssText|\.style\s*=", re.I), "an inline style"),
    (re.compile(r"\beval\s*\(|new\s+Function\s*\(|setTimeout\(\s*['\"`]"), "code from a string"),
    (re.compile(r"https?://(?!www\.w3\.org/2000/svg)", re.I), "an absolute URL (no third-party script or request)"),
]


@pytest.mark.parametrize("rel", MARKUP)
def test_markup_has_no_inline_script_or_style(rel):
    text = read(rel)
    for attrs, body in SCRIPT_TAG.findall(text):
        assert "src=" in attrs, f"{rel}: an inline <script>"
        assert not body.strip(), f"{rel}: a <script src> with a body"
    if rel.endswith(".svg"):
        assert "<script" not in text.lower(), f"{rel}: script in an SVG"
    for pat, what in INLINE_MARKUP:
        assert not pat.search(text), f"{rel}: {what}"


@pytest.mark.parametrize("rel", SCRIPTS)
def test_modules_build_no_inline_script_or_style(rel):
    text = read(rel)
    for pat, what in INLINE_JS:
        m = pat.search(text)
        assert not m, f"{rel}: {what}: {m.group(0)!r}"


def test_the_scan_finds_what_it_looks_for():
    """The patterns are not vacuous: each refuses a sample of what it bans."""
    bad_html = ['<script>alert(1)</script>', '<p style="color:red">', '<style>p{}</style>',
                '<button onclick="x()">', '<a href="javascript:x()">']
    for s in bad_html:
        inline = any(not a.count("src=") or b.strip() for a, b in SCRIPT_TAG.findall(s))
        assert inline or any(p.search(s) for p, _ in INLINE_MARKUP), s
    for s in ["el.innerHTML = x", "el.setAttribute('style', 'x')", "el.style.cssText = 'x'",
              "eval('1')", "import 'https://cdn.example/x.js'"]:
        assert any(p.search(s) for p, _ in INLINE_JS), s


def test_every_file_is_built_in():
    with open(os.path.join(ROOT, "src", "console", "meson.build"), encoding="utf-8") as f:
        listed = set(re.findall(r"'\.\./\.\./ui/([^']+)'", f.read()))
    assert listed == set(ui_files())


def test_every_page_has_its_module_and_every_reference_resolves():
    pages = json.loads(read("pages.json"))
    files = set(ui_files())
    for p in pages:
        assert f"pages/{p['path']}.js" in files, p
    for rel in MARKUP:
        for ref in re.findall(r'(?:src|href)="/console/([^"#?]+)"', read(rel)):
            assert ref in files, f"{rel} names /console/{ref}"
    for rel in SCRIPTS:
        base = os.path.dirname(rel)
        for ref in re.findall(r"""from\s+['"](\.{1,2}/[^'"]+)['"]""", read(rel)):
            target = os.path.normpath(os.path.join(base, ref)).replace(os.sep, "/")
            assert target in files, f"{rel} imports {ref}"
