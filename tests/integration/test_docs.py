"""The docs cite only files the repository has: every `NAME.md` (or `path/NAME.md`) that
docs/*.md and README.md mention exists, next to the page or from the repository root. The
design contract they cite is docs/contract.md; CONTRACT.md, ARCHITECTURE.md and STYLE.md are
the design's own files, outside the repository, and a reader of the repository cannot open
them.
"""
import glob
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MD_RE = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.md)\b")


def test_every_markdown_file_the_docs_cite_exists():
    missing = []
    for page in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + [
            os.path.join(ROOT, "README.md")]:
        text = open(page).read()
        for name in set(MD_RE.findall(text)):
            here = os.path.join(os.path.dirname(page), name)
            if not (os.path.exists(here) or os.path.exists(os.path.join(ROOT, name))):
                missing.append(f"{os.path.relpath(page, ROOT)} cites {name}")
    assert missing == []
