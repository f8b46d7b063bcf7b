#!/usr/bin/env python3
"""Refreezes tests/fixtures/abi-1.0 from plugin-api/: the sources as they
are, minus the test-only `ktstr_abi_next`/`ktstr_abi_mismatch` items and
the crate's own tests. Run it only when an ABI major is released; a frozen
copy must never change afterwards (see tests/fixtures/abi-1.0/README.md)."""

import pathlib
import re
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC, DST = ROOT / "plugin-api/src", ROOT / "tests/fixtures/abi-1.0/src"
CFG = re.compile(r"^\s*#\[cfg\((ktstr_abi_next|ktstr_abi_mismatch|all\(ktstr_abi_next.*)\)\]\s*$")


def strip(lines):
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\s*#\[cfg\(not\(any\(ktstr_abi_next, ktstr_abi_mismatch\)\)\)\]\s*$", line):
            i += 1  # the 1.0 item stays, unconditionally
            continue
        if not CFG.match(line):
            out.append(line)
            i += 1
            continue
        while out and out[-1].lstrip().startswith("///"):
            out.pop()  # the removed item's doc comment
        i += 1
        depth, started = 0, False
        while i < len(lines):  # the item: up to its `;`/`,` or its closing brace
            depth += lines[i].count("{") - lines[i].count("}")
            started |= "{" in lines[i]
            done = (started and depth <= 0) or (not started and lines[i].rstrip().endswith((",", ";")))
            i += 1
            if done:
                break
    return out


shutil.rmtree(DST, ignore_errors=True)
for path in SRC.rglob("*.rs"):
    if path.name.endswith("_tests.rs"):
        continue
    text = path.read_text().splitlines(keepends=True)
    kept = "".join(strip(text))
    kept = re.sub(r"#\[cfg\(test\)\]\nmod \w+_tests;\n", "", kept)
    target = DST / path.relative_to(SRC)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(kept)
print(f"refroze {DST}")
