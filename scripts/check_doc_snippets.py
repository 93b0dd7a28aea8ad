#!/usr/bin/python3
"""Checks that C++ examples in the docs are taken from files that compile.

Every ```cpp block in README.md and docs/*.md must be introduced, within the
three lines before it, by a link to a source file under examples/, and its
lines must appear in that file, in order and contiguous. Exits 1 on a
mismatch, naming the doc, the block and the file.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(((?:\.\./)?examples/[^)]+\.(?:cpp|hpp))\)")


def blocks(text):
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```cpp":
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            yield start, lines[max(0, start - 3):start], body
        i += 1


def main():
    failures = 0
    checked = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line_no, before, body in blocks(doc.read_text()):
            checked += 1
            where = f"{doc.relative_to(ROOT)}:{line_no + 1}"
            links = [m.group(1) for line in before for m in LINK.finditer(line)]
            if not links:
                print(f"{where}: C++ block with no link to the example file it comes from")
                failures += 1
                continue
            source = (doc.parent / links[-1]).resolve()
            if not source.exists():
                print(f"{where}: linked file {links[-1]} does not exist")
                failures += 1
                continue
            if "\n".join(body) not in source.read_text():
                print(f"{where}: block differs from {source.relative_to(ROOT)}")
                failures += 1
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
