#!/usr/bin/python3
"""Checks that code shown in the docs is taken from files the build uses.

Every ```cpp, ```cmake and ```python block in README.md and docs/*.md must
be introduced, within the three lines before it, by a link to the file it
comes from, and its lines must appear in that file, in order and contiguous.
A cpp block links a .cpp/.hpp file under examples/ or tests/consumer/ (both
compiled by `make test`); a cmake block links a CMakeLists.txt or .cmake
file anywhere in the tree; a python block links a .py file under examples/
or clients/python/tests/ (which the Python tests run). A block indented in a list is compared without
its indentation. Exits 1 on a mismatch, naming the doc, the block and the
file.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINKS = {
    "cpp": re.compile(r"\]\(((?:\.\./)?(?:examples|tests/consumer)/[^)]+\.(?:cpp|hpp))\)"),
    "cmake": re.compile(r"\]\(((?:\.\./)?(?:[^)]+/)?(?:CMakeLists\.txt|[^)/]+\.cmake))\)"),
    "python": re.compile(r"\]\(((?:\.\./)?(?:examples|clients/python/tests)/[^)]+\.py)\)"),
}
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def blocks(text):
    """Yields (line index, language, the three lines before, body) per checked block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence and fence.group(2) in LINKS:
            indent, language = fence.group(1), fence.group(2)
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                line = lines[i]
                body.append(line[len(indent):] if line.startswith(indent) else line)
                i += 1
            yield start, language, lines[max(0, start - 3):start], body
        elif fence and fence.group(2):
            # Another language's block: skip it whole, its lines are not fences.
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
        i += 1


def main():
    failures = 0
    checked = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line_no, language, before, body in blocks(doc.read_text()):
            checked += 1
            where = f"{doc.relative_to(ROOT)}:{line_no + 1}"
            links = [m.group(1) for line in before for m in LINKS[language].finditer(line)]
            if not links:
                print(f"{where}: {language} block with no link to the file it comes from")
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
