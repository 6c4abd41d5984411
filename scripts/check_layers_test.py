#!/usr/bin/env python3
"""ctest `layers.checker`: shows that scripts/check_layers.py fails the build on an upward include.

Copies src/ to a temporary folder and runs the checker there with the layer table CMake passes
(the same COFFER_LAYERS the libraries are built from):

  0. --cmake CMakeLists.txt reads the same table as the one passed;
  1. the copy as it is passes;
  2. one upward include planted in a file of the lowest layer fails, and the message names the
     file, the line and the forbidden edge;
  3. the same include written as a relative path ("../<layer>/...") fails too;
  4. a folder under src/ that the table does not declare fails;
  5. a table with a cycle is rejected;
  6. the same upward include in a *_test.cc file passes (tests link every layer).

Usage: check_layers_test.py CHECKER SRC --layer a= --layer b=a ...
"""

import os
import shutil
import subprocess
import sys
import tempfile


def run(checker, src, layers):
    args = [sys.executable, checker, "--src", src]
    for layer in layers:
        args += ["--layer", layer]
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def fail(msg, output=""):
    print(f"FAIL: {msg}")
    if output:
        print(output)
    sys.exit(1)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    checker, src = sys.argv[1], sys.argv[2]
    layers = []
    rest = sys.argv[3:]
    while rest:
        if rest[0] == "--layer" and len(rest) > 1:
            layers.append(rest[1])
            rest = rest[2:]
        else:
            fail(f"unexpected argument {rest[0]}")
    table = {}
    for entry in layers:
        name, _, deps = entry.partition("=")
        table[name] = [d for d in deps.split(",") if d]
    # Lowest layer: one with no dependencies. Highest: one nothing depends on.
    lowest = next(n for n, d in table.items() if not d)
    depended = {d for deps in table.values() for d in deps}
    highest = next(n for n in reversed(list(table)) if n not in depended)

    # --cmake reads the same table from CMakeLists.txt (used to print docs/architecture.md's).
    cmakelists = os.path.join(os.path.dirname(os.path.abspath(src)), "CMakeLists.txt")
    if os.path.exists(cmakelists):
        p = subprocess.run([sys.executable, checker, "--cmake", cmakelists, "--markdown"],
                           capture_output=True, text=True)
        q = subprocess.run([sys.executable, checker, "--markdown"] +
                           [a for layer in layers for a in ("--layer", layer)],
                           capture_output=True, text=True)
        if p.returncode != 0 or p.stdout != q.stdout:
            fail("--cmake CMakeLists.txt should read the table CMake passes", p.stdout + p.stderr)
        print("ok: --cmake CMakeLists.txt reads the same table")

    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "src")
        shutil.copytree(src, copy)

        rc, out = run(checker, copy, layers)
        if rc != 0:
            fail("the unmodified copy of src/ should pass (is the real tree clean?)", out)
        print(f"ok: unmodified src/ passes ({len(table)} layers)")

        # A header of the highest layer, included from a file of the lowest one.
        target_header = None
        for dirpath, _, files in os.walk(os.path.join(copy, highest)):
            for f in sorted(files):
                if f.endswith(".h"):
                    target_header = os.path.relpath(os.path.join(dirpath, f), copy)
                    break
            if target_header:
                break
        if not target_header:
            fail(f"no header found in src/{highest}/ to plant an include of")
        victim = next(os.path.join(copy, lowest, f)
                      for f in sorted(os.listdir(os.path.join(copy, lowest)))
                      if f.endswith(".cc") and not f.endswith("_test.cc"))
        with open(victim) as f:
            original = f.read()
        lines = original.splitlines(keepends=True)
        planted_line = 1 + next((i + 1 for i, l in enumerate(lines) if l.startswith("#include")), 0)
        bad = f'#include "{target_header}"\n'
        with open(victim, "w") as f:
            f.write("".join(lines[:planted_line - 1] + [bad] + lines[planted_line - 1:]))
        rc, out = run(checker, copy, layers)
        where = f"{victim}:{planted_line}:"
        edge = f"{lowest} -> {highest}"
        if rc != 1:
            fail(f"planted upward include should fail with status 1, got {rc}", out)
        if where not in out or edge not in out or target_header not in out:
            fail(f"message should name {where}, the edge {edge} and {target_header}", out)
        if out.count("error:") != 1:
            fail("exactly one violation expected", out)
        print(f"ok: planted upward include fails: {out.splitlines()[0][:160]}...")

        relative = "../" + target_header
        with open(victim, "w") as f:
            f.write(original.replace("#include", f'#include "{relative}"\n#include', 1))
        rc, out = run(checker, copy, layers)
        if rc != 1 or edge not in out:
            fail("a relative upward include should fail too", out)
        print("ok: relative upward include fails")

        with open(victim, "w") as f:
            f.write(original)
        test_file = os.path.join(copy, lowest, "planted_layers_test.cc")
        with open(test_file, "w") as f:
            f.write(bad)
        rc, out = run(checker, copy, layers)
        if rc != 0:
            fail("an include in a *_test.cc file should be allowed", out)
        os.remove(test_file)
        print("ok: the same include in a *_test.cc passes")

        os.makedirs(os.path.join(copy, "newlayer"))
        with open(os.path.join(copy, "newlayer", "x.cc"), "w") as f:
            f.write(f'#include "{lowest}/x.h"\n')
        rc, out = run(checker, copy, layers)
        if rc != 1 or "folder 'newlayer' is not a layer" not in out:
            fail("an undeclared folder should fail", out)
        shutil.rmtree(os.path.join(copy, "newlayer"))
        print("ok: an undeclared folder under src/ fails")

        cyclic = [f"{lowest}={highest}" if l.startswith(lowest + "=") else l for l in layers]
        rc, out = run(checker, copy, cyclic)
        if rc != 2 or "cycle" not in out:
            fail("a table with a cycle should be rejected with status 2", out)
        print(f"ok: a cycle in the table is rejected: {out.strip()}")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
