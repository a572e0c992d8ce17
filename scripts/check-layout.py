#!/usr/bin/env python3
"""The layout's rules, checked against the code (docs/ARCHITECTURE.md "Tiers").

    check-layout.py SOURCE_DIR BUILD_DIR

Reads every #include "..." of the tree, resolved the way the compiler resolves it (the include
directories of each file's compile command in BUILD_DIR/compile_commands.json; headers take
those of a source file in their folder), and the link graph of the CMake targets (cmake
--graphviz). Fails, naming each offence, when:
  - a program (daemon, cli, verify, bench, examples) includes another program's header;
  - a library (lib/*, client-lib) includes a program's header, or any file outside a library
    includes that library's private header (only lib/X/include/ and lib/common/ are public);
    exceptions: a library's own unit tests and fuzzers (below);
  - daemon/backend includes a header of the daemon above it;
  - two modules of one folder include each other, directly or through others (a module is
    X.c with X.h);
  - a program's target links another program's target.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict

PROGRAMS = ["daemon", "cli", "verify", "bench", "examples"]
LIBRARIES = ["lib/common", "lib/protocol", "lib/pool", "lib/namespace", "lib/machine",
             "client-lib", "include"]
# Tests that may see private headers of what they test (white-box tests and fuzzers).
WHITE_BOX = {
    "tests/unit/pool": ["lib/pool"],
    "tests/fuzz": ["lib/pool", "daemon"],
    "tests/unit/backend": ["daemon/backend", "lib/pool"],
    "tests/unit": ["daemon"],  # test_options: the daemon's option parser
}
PROGRAM_TARGETS = {"daxpoold": "daemon", "daxpoolctl": "cli", "daxpool-verify": "verify",
                   "daxpool-bench": "bench", "daxpool-demo": "examples"}
# Targets each program owns (its code in a library target of its own, for its tests).
PROGRAM_OWNS = {"daemon": {"daxpoold_core", "daxpool_backend"}}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def component(rel):
    """The component a repository path belongs to: 'daemon/backend', 'lib/pool', 'tests/unit/pool' ..."""
    parts = rel.split("/")
    if parts[0] == "lib" and len(parts) > 2:
        return "lib/" + parts[1]
    if parts[0] == "daemon" and len(parts) > 2 and parts[1] == "backend":
        return "daemon/backend"
    if parts[0] == "tests":
        for wb in sorted(WHITE_BOX, key=len, reverse=True):
            if rel.startswith(wb + "/"):
                return wb
        return "tests"
    return parts[0]


def is_public(rel):
    parts = rel.split("/")
    if parts[0] == "lib":
        return parts[1] == "common" or parts[1] == "machine" or (len(parts) > 3 and parts[2] == "include")
    if parts[0] in ("include", "client-lib"):
        return parts[0] == "include"
    return False


def program_of(comp):
    top = comp.split("/")[0]
    return top if top in PROGRAMS else None


def main():
    src, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    with open(os.path.join(build, "compile_commands.json")) as f:
        db = json.load(f)
    incdirs = {}  # source file -> include dirs in order
    for e in db:
        args = e.get("arguments") or e["command"].split()
        dirs, i = [], 0
        while i < len(args):
            a = args[i]
            if a in ("-I", "-isystem"):
                dirs.append(args[i + 1])
                i += 2
                continue
            if a.startswith("-I"):
                dirs.append(a[2:])
            i += 1
        path = os.path.normpath(os.path.join(e["directory"], e["file"]))
        incdirs[path] = [os.path.normpath(os.path.join(e["directory"], d)) for d in dirs]
    folder_dirs = defaultdict(list)
    for path, dirs in incdirs.items():
        for d in dirs:
            if d not in folder_dirs[os.path.dirname(path)]:
                folder_dirs[os.path.dirname(path)].append(d)

    files = []
    for root, dnames, fnames in os.walk(src):
        rel_root = os.path.relpath(root, src)
        dnames[:] = [d for d in dnames if not d.startswith((".", "build")) and
                     not (rel_root == "." and d in ("docs", "debian"))]
        for n in fnames:
            if n.endswith((".c", ".h")):
                files.append(os.path.join(root, n))

    offences = []
    edges = defaultdict(set)  # rel file -> rel headers
    for path in files:
        rel = os.path.relpath(path, src)
        with open(path, errors="replace") as f:
            text = f.read()
        dirs = incdirs.get(path) or folder_dirs.get(os.path.dirname(path), [])
        for name in INCLUDE_RE.findall(text):
            cands = [os.path.join(os.path.dirname(path), name)] + [os.path.join(d, name) for d in dirs]
            target = next((c for c in cands if os.path.isfile(c)), None)
            if not target:
                continue  # generated, or a system header written with quotes
            trel = os.path.relpath(os.path.normpath(target), src)
            if trel.startswith(".."):
                continue
            edges[rel].add(trel)
            a, b = component(rel), component(trel)
            if a == b:
                continue
            pa, pb = program_of(a), program_of(b)
            if pb and pa != pb and not (a in WHITE_BOX and pb in WHITE_BOX[a]) and \
                    not (a in WHITE_BOX and b in WHITE_BOX[a]):
                offences.append(f"{rel} includes {trel}: a header of the program {pb}")
            elif a == "daemon/backend" and b == "daemon":
                offences.append(f"{rel} includes {trel}: the backend reaches up into the daemon")
            elif b.startswith("lib/") or b in ("client-lib",):
                if not is_public(trel) and not (a in WHITE_BOX and b in WHITE_BOX[a]):
                    offences.append(f"{rel} includes {trel}: a private header of {b}")

    # Module loops within a folder: X depends on Y when X.c or X.h includes Y.h.
    # X-internal.h is the private half of module X.
    def module(rel):
        m = os.path.splitext(rel)[0]
        return m[:-len("-internal")] if m.endswith("-internal") else m

    mod_edges = defaultdict(set)
    for f, hs in edges.items():
        fm = module(f)
        for h in hs:
            hm = module(h)
            if hm != fm and os.path.dirname(hm) == os.path.dirname(fm):
                mod_edges[fm].add(hm)
    seen, stack, onstack = set(), [], set()
    loops = set()

    def dfs(m):
        seen.add(m)
        stack.append(m)
        onstack.add(m)
        for n in sorted(mod_edges.get(m, ())):
            if n in onstack:
                cyc = stack[stack.index(n):]
                k = cyc.index(min(cyc))
                loops.add(tuple(cyc[k:] + cyc[:k]))
            elif n not in seen:
                dfs(n)
        stack.pop()
        onstack.discard(m)

    sys.setrecursionlimit(10000)
    for m in sorted(mod_edges):
        if m not in seen:
            dfs(m)
    for cyc in sorted(loops):
        offences.append("include loop: " + " -> ".join(c for c in cyc + (cyc[0],)))

    # Link lines: a program's target links no other program's target.
    with tempfile.TemporaryDirectory() as tmp:
        dot = os.path.join(tmp, "deps.dot")
        subprocess.run(["cmake", "--graphviz=" + dot, "."], cwd=build, check=True,
                       stdout=subprocess.DEVNULL)
        names, links = {}, defaultdict(set)
        with open(dot) as f:
            for line in f:
                m = re.match(r'\s*"(node\d+)"\s*\[\s*label\s*=\s*"([^"]+)"', line)
                if m:
                    names[m.group(1)] = m.group(2)
                # a link has a style; an edge without one is a build-order dependency
                # (add_dependencies: bench runs the daemon it benchmarks, links nothing of it)
                m = re.match(r'\s*"(node\d+)"\s*->\s*"(node\d+)"\s*\[.*style', line)
                if m:
                    links[m.group(1)].add(m.group(2))
    owner = {}
    for node, label in names.items():
        if label in PROGRAM_TARGETS:
            owner[label] = PROGRAM_TARGETS[label]
        for prog, owned in PROGRAM_OWNS.items():
            if label in owned:
                owner[label] = prog
    for node, outs in links.items():
        a = names.get(node)
        if a not in PROGRAM_TARGETS:
            continue
        for o in outs:
            b = names.get(o)
            if b in owner and owner[b] != PROGRAM_TARGETS[a]:
                offences.append(f"target {a} ({PROGRAM_TARGETS[a]}) links {b} ({owner[b]})")

    for o in offences:
        print("check-layout: " + o)
    n_edges = sum(len(v) for v in edges.values())
    if offences:
        print(f"check-layout: {len(offences)} offence(s) in {len(files)} files, {n_edges} includes")
        return 1
    print(f"check-layout: {len(files)} files, {n_edges} includes, no program includes another's "
          "header, no private header crosses its library, no include loop, no program links another")
    return 0


if __name__ == "__main__":
    sys.exit(main())
