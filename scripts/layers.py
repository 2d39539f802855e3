#!/usr/bin/python3
"""layers.py: the module order of docs/architecture.md, checked against src/.

docs/architecture.md's "Module layout" lists the modules top to bottom and
says dependencies point down the list. This script reads that list (the
`src/...` lines of the block after the heading, in order), then every
`#include "module/file.h"` line under src/, and fails on an include that
points up the list: a file of module A including a header of module B where
B stands above A. Includes inside one module are free. A module directory
under src/ that the doc does not list is an error too, so the list stays
complete.

Handlers get their dependencies at registration (docs/architecture.md "How
modules get their dependencies"): the script also fails on `req->app` (the
running instance reached from a request) in any file but those in
REACH_ALLOWED below, each with its reason, and on any mention of the
instance (`struct app`, an `#include "app/..."`) in the modules of
INSTANCE_FREE, which get typed deps structs instead.

The order is strict: there are no sibling modules. An upward edge the
project accepts for now must be in ALLOWED below, with the reason; keep it
empty when possible.

  layers.py [ROOT]      check ROOT (default: the repository holding this script)
  layers.py --self-test check that a deliberately upward include fails and a
                        downward one passes (on a throw-away tree)
Exit status 0 when the layering holds, 1 otherwise.
"""
import os
import re
import shutil
import sys
import tempfile

# (from_module, to_module) -> reason. Upward edges accepted on purpose.
ALLOWED = {}

# src/ file -> reason. The only files that may read the instance through req->app. None:
# struct http_request has no app field any more (the console listener's fallback reads its
# router through http_fallback_data); the check stays so that nobody brings it back.
REACH_ALLOWED = {}
REACH = re.compile(r'\breq->app\b')

# module -> reason. Modules that never see the instance: no `struct app`, no app/*.h.
INSTANCE_FREE = {
    "gateway": "the data plane gets struct gateway_deps (gateway/gateway_deps.h) from cli/serve.c",
    "console": "the console gets struct console_deps and route data from cli/serve.c",
}
APP_STRUCT = re.compile(r'\bstruct\s+app\b')

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
DOC_LINE = re.compile(r'^src/([A-Za-z0-9_]+)(?:/|\.c\b)')


def doc_order(root):
    """The modules of the Module layout block, top first."""
    path = os.path.join(root, "docs", "architecture.md")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        start = lines.index("## Module layout")
    except ValueError:
        raise SystemExit(f"{path}: no '## Module layout' section")
    order, in_block = [], False
    for line in lines[start + 1:]:
        if line.startswith("```"):
            if in_block:
                break
            in_block = True
            continue
        if in_block:
            m = DOC_LINE.match(line)
            if m and m.group(1) not in order:
                order.append(m.group(1))
    if not order:
        raise SystemExit(f"{path}: the Module layout block lists no src/ module")
    return order


def module_of(src, path):
    """The module a file under src/ belongs to: its first directory, or the
    file's stem for a file directly under src/ (src/main.c is 'main')."""
    rel = os.path.relpath(path, src).split(os.sep)
    return rel[0] if len(rel) > 1 else os.path.splitext(rel[0])[0]


def check(root, instance_free=None):
    """Return the list of problems (strings); empty when the layering holds."""
    if instance_free is None:
        instance_free = INSTANCE_FREE
    order = doc_order(root)
    rank = {m: i for i, m in enumerate(order)}
    src = os.path.join(root, "src")
    problems = []
    for name in sorted(os.listdir(src)):
        full = os.path.join(src, name)
        if os.path.isdir(full) and name not in rank:
            problems.append(f"src/{name}/: not in docs/architecture.md's Module layout")
    for dirpath, _, files in os.walk(src):
        for fn in sorted(files):
            if not fn.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, fn)
            mod = module_of(src, path)
            if mod not in rank:
                continue  # reported above (or a generated file)
            rel = os.path.relpath(path, root)
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    code = line.split("//")[0]
                    comment = code.lstrip().startswith(("*", "/*"))
                    if REACH.search(code) and rel not in REACH_ALLOWED and not comment:
                        problems.append(f"{rel}:{lineno}: reads req->app; give the handler what "
                                        f"it uses at registration (route data)")
                    if mod in instance_free and APP_STRUCT.search(code) and not comment:
                        problems.append(f"{rel}:{lineno}: {mod} names struct app; it gets its "
                                        f"own deps ({instance_free[mod]})")
                    m = INCLUDE.match(line)
                    if not m or "/" not in m.group(1):
                        continue  # "build_info.h" and other build-generated headers
                    inc = m.group(1)
                    if inc.startswith("."):  # "../app/app.h": resolve it from the file
                        inc = os.path.relpath(os.path.normpath(os.path.join(dirpath, inc)), src)
                    target = inc.split(os.sep)[0].split("/")[0]
                    if target == "app" and mod in instance_free:
                        problems.append(f"{rel}:{lineno}: {mod} includes \"{m.group(1)}\"; it "
                                        f"gets its own deps ({instance_free[mod]})")
                        continue
                    if target == mod or target not in rank:
                        continue
                    if rank[target] < rank[mod] and (mod, target) not in ALLOWED:
                        rel = os.path.relpath(path, root)
                        problems.append(f"{rel}:{lineno}: {mod} includes \"{m.group(1)}\", "
                                        f"but {target} stands above {mod} in the Module layout")
    return problems


def self_test():
    """A throw-away tree: a downward include passes, an upward one fails."""
    tmp = tempfile.mkdtemp(prefix="layers-selftest.")
    try:
        os.makedirs(os.path.join(tmp, "docs"))
        with open(os.path.join(tmp, "docs", "architecture.md"), "w") as f:
            f.write("# x\n\n## Module layout\n\n```\nsrc/main.c   m\nsrc/top/     t\n"
                    "src/bottom/  b\n```\n")
        for d in ("top", "bottom"):
            os.makedirs(os.path.join(tmp, "src", d))
        with open(os.path.join(tmp, "src", "main.c"), "w") as f:
            f.write('#include "top/t.h"\n#include "build_info.h"\n')
        with open(os.path.join(tmp, "src", "top", "t.c"), "w") as f:
            f.write('#include "top/t.h"\n#include "bottom/b.h"\n')
        bad = os.path.join(tmp, "src", "bottom", "b.c")
        with open(bad, "w") as f:
            f.write('#include "bottom/b.h"\n')
        if check(tmp):
            return "a tree whose includes point down was refused: " + "; ".join(check(tmp))
        with open(bad, "a") as f:
            f.write('#  include "top/t.h"\n')
        got = check(tmp)
        if len(got) != 1 or "src/bottom/b.c:2" not in got[0]:
            return f"an upward include (bottom -> top) was not reported alone: {got}"
        with open(bad, "w") as f:
            f.write('#include "bottom/b.h"\n#include "../top/t.h"\n')
        got = check(tmp)
        if len(got) != 1 or "src/bottom/b.c:2" not in got[0]:
            return f"a relative upward include (../top) was not reported: {got}"
        with open(bad, "w") as f:
            f.write('#include "bottom/b.h"\n/* req->app in a comment is fine */\n'
                    'void h(struct http_request *req) { use(req->app); }\n')
        got = check(tmp)
        if len(got) != 1 or "src/bottom/b.c:3" not in got[0] or "req->app" not in got[0]:
            return f"a handler reading req->app was not reported alone: {got}"
        with open(bad, "w") as f:
            f.write('#include "bottom/b.h"\n/* struct app in a comment is fine */\n'
                    '#include "app/app.h"\nvoid h(const struct  app *a);\n')
        if check(tmp):
            return f"the instance was refused in a module free to use it: {check(tmp)}"
        got = check(tmp, {"bottom": "test"})
        if (len(got) != 2 or "src/bottom/b.c:3" not in got[0] or "app/app.h" not in got[0]
                or "src/bottom/b.c:4" not in got[1] or "struct app" not in got[1]):
            return f"the instance in an instance-free module was not reported (twice): {got}"
        os.remove(bad)
        with open(os.path.join(tmp, "src", "main.c"), "a") as f:
            f.write("\n")
        os.makedirs(os.path.join(tmp, "src", "stray"))
        got = check(tmp)
        if len(got) != 1 or "src/stray/" not in got[0]:
            return f"a module missing from the doc was not reported: {got}"
        return None
    finally:
        shutil.rmtree(tmp)


def main(argv):
    if argv[1:2] == ["--self-test"]:
        err = self_test()
        if err:
            print(f"layers: self-test FAILED: {err}")
            return 1
        print("layers: self-test ok")
        return 0
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"layers: FAILED ({len(problems)} problem(s) against docs/architecture.md)")
        return 1
    order = doc_order(root)
    print(f"layers: ok ({' > '.join(order)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
