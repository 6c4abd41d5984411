#!/usr/bin/env python3
"""Fails when a file under src/ includes a header of a layer it may not depend on.

The layer table is not written here: CMakeLists.txt holds it (COFFER_LAYERS), builds one static
library per layer from it, and passes the same table to this script, once per layer:

    check_layers.py --src src --layer util= --layer crypto=util --layer storage=crypto ...

A layer is a folder directly under src/ (src/core/framework belongs to core). `a=b,c` declares
that a depends on b and c; a file of layer a may include headers of a itself and of every layer
that a depends on directly or through others. Every other `#include "<layer>/..."` (or
<layer/...>, or a relative "../<layer>/...") is an error, reported as

    src/storage/memory_storage.cc:7: error: layer 'storage' may not include 'http' ...

Also errors: a folder under src/ that the table does not declare, a dependency on an unknown
layer, and a cycle in the table. Tests (`*_test.cc`) are linked into coffer_tests together with
every layer and are not checked: core's tests, for instance, mount the built-in engines through
registry/builtin.h.

--markdown prints the table (with each layer's full set of allowed layers) instead of checking.
--cmake CMakeLists.txt reads the table from `set(COFFER_LAYERS ...)` there instead of --layer:

    python3 scripts/check_layers.py --cmake CMakeLists.txt --markdown
    python3 scripts/check_layers.py --cmake CMakeLists.txt --src src
Exit status: 0 clean, 1 violations, 2 bad arguments or table. Python standard library only.
"""

import argparse
import os
import re
import sys

SOURCE_SUFFIXES = (".h", ".hh", ".hpp", ".cc", ".cpp", ".cxx", ".inc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*(?:"([^"]+)"|<([^>]+)>)')


def layers_from_cmake(path):
    """The quoted entries of `set(COFFER_LAYERS ...)` in a CMakeLists.txt."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = re.search(r"^\s*set\(\s*COFFER_LAYERS\b", text, re.M)
    if not start:
        raise ValueError(f"{path} has no set(COFFER_LAYERS ...)")
    body = []
    for line in text[start.end():].splitlines():
        line = line.split("#", 1)[0]  # comments may hold parentheses
        body.append(line.split(")", 1)[0])
        if ")" in line:
            return re.findall(r'"([^"]*)"', "\n".join(body))
    raise ValueError(f"{path}: set(COFFER_LAYERS ... has no closing parenthesis")


def parse_table(entries):
    """['util=', 'crypto=util', ...] -> ordered dict layer -> list of direct dependencies."""
    table = {}
    for entry in entries:
        name, sep, deps = entry.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"bad --layer '{entry}': expected name=dep1,dep2 (or name=)")
        if name in table:
            raise ValueError(f"layer '{name}' is declared twice")
        table[name] = [d.strip() for d in deps.split(",") if d.strip()]
    for name, deps in table.items():
        for d in deps:
            if d not in table:
                raise ValueError(f"layer '{name}' depends on '{d}', which is not a declared layer")
            if d == name:
                raise ValueError(f"layer '{name}' depends on itself")
    return table


def closure(table):
    """layer -> set of layers it may include (itself and everything below it). Rejects cycles."""
    allowed = {}
    visiting = []

    def visit(name):
        if name in allowed:
            return allowed[name]
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise ValueError("the layer table has a cycle: " + " -> ".join(cycle))
        visiting.append(name)
        result = {name}
        for d in table[name]:
            result |= visit(d)
        visiting.pop()
        allowed[name] = result
        return result

    for name in table:
        visit(name)
    return allowed


def include_target_layer(include, file_rel, layers):
    """The layer an include names, or None when it names none (a system or third-party header,
    or a file of the including folder)."""
    path = include
    if path.startswith("../") or path.startswith("./"):
        # Resolve against the including file's folder, relative to src/.
        path = os.path.normpath(os.path.join(os.path.dirname(file_rel), include))
        if path.startswith(".."):
            return None
    first, slash, _ = path.partition("/")
    if slash and first in layers:
        return first
    return None


def scan_file(path):
    """Yields (line number, include text) for each #include outside /* */ comments."""
    in_block = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            text = line
            if in_block:
                end = text.find("*/")
                if end < 0:
                    continue
                text = text[end + 2:]
                in_block = False
            m = INCLUDE_RE.match(text)
            if m:
                yield number, m.group(1) or m.group(2)
                continue
            start = text.find("/*")
            if start >= 0 and text.find("*/", start + 2) < 0 and "//" not in text[:start]:
                in_block = True


def check(src, table, allowed, root_for_messages):
    errors = []
    for entry in sorted(os.listdir(src)):
        full = os.path.join(src, entry)
        if os.path.isdir(full) and entry not in table and not entry.startswith("."):
            errors.append(
                f"{os.path.join(root_for_messages, entry)}/: error: folder '{entry}' is not a "
                f"layer: declare it in COFFER_LAYERS in CMakeLists.txt (with the layers it "
                f"depends on) so it is built and checked")
        elif os.path.isfile(full) and entry.endswith(SOURCE_SUFFIXES):
            errors.append(f"{os.path.join(root_for_messages, entry)}: error: source files belong "
                          f"in a layer's folder, not directly in src/")
    for layer in table:
        top = os.path.join(src, layer)
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SOURCE_SUFFIXES) or name.endswith("_test.cc"):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, src)
                shown = os.path.join(root_for_messages, rel)
                for number, include in scan_file(full):
                    target = include_target_layer(include, rel, table)
                    if target is None or target in allowed[layer]:
                        continue
                    below = ", ".join(sorted(allowed[layer] - {layer})) or "none"
                    errors.append(
                        f"{shown}:{number}: error: layer '{layer}' may not include '{target}' "
                        f"(#include \"{include}\"): the edge {layer} -> {target} runs upward or "
                        f"sideways. '{layer}' may include: {below}. Move the code to a lower "
                        f"layer, pass it in from above, or, if the dependency is right, declare "
                        f"it in COFFER_LAYERS in CMakeLists.txt.")
    return errors


def markdown(table, allowed):
    lines = ["| layer | folder | depends on (declared) | may include |", "|---|---|---|---|"]
    for name, deps in table.items():
        below = ", ".join(sorted(allowed[name] - {name})) or "—"
        lines.append(f"| {name} | `src/{name}/` | {', '.join(deps) or '—'} | {below} |")
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", help="the src/ folder to check")
    parser.add_argument("--cmake", metavar="CMAKELISTS",
                        help="read the table from set(COFFER_LAYERS ...) in this file")
    parser.add_argument("--layer", action="append", default=[], metavar="NAME=DEP,DEP",
                        help="one layer and its direct dependencies; repeat for each layer")
    parser.add_argument("--stamp", help="touch this file when the check passes (for the build)")
    parser.add_argument("--markdown", action="store_true", help="print the table and exit")
    parser.add_argument("--name", help="how to name the src folder in messages (default: --src)")
    args = parser.parse_args(argv)
    try:
        entries = list(args.layer)
        if args.cmake:
            entries += layers_from_cmake(args.cmake)
        table = parse_table(entries)
        if not table:
            raise ValueError("no --layer given")
        allowed = closure(table)
    except ValueError as e:
        print(f"check_layers: error: {e}", file=sys.stderr)
        return 2
    if args.markdown:
        print(markdown(table, allowed))
        return 0
    if not args.src or not os.path.isdir(args.src):
        print(f"check_layers: error: --src {args.src or '(missing)'} is not a folder",
              file=sys.stderr)
        return 2
    errors = check(args.src, table, allowed, args.name or args.src.rstrip("/"))
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        print(f"check_layers: {len(errors)} layering violation(s); the table is COFFER_LAYERS in "
              f"CMakeLists.txt and docs/architecture.md explains it", file=sys.stderr)
        return 1
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
