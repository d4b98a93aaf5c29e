"""Check the relative links of README.md, bench/README.md and docs/*.md: every target file exists, and every
``#anchor`` into a markdown file names one of its headings (GitHub's slugs).

    python docs/check_links.py        # prints each broken link; exit code 1 if there is one
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    text = CODE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def broken_links(files):
    """``[(file, target, reason)]`` for every relative link in ``files`` that does not resolve."""
    out = []
    for md in files:
        text = CODE.sub("", md.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            name, _, anchor = target.partition("#")
            dest = (md.parent / name).resolve() if name else md
            if not dest.exists():
                out.append((md, target, "no such file"))
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                out.append((md, target, "no such heading"))
    return out


def main():
    files = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    bad = broken_links(files)
    for md, target, reason in bad:
        print(f"{md.relative_to(ROOT)}: {target}: {reason}")
    n = sum(len(LINK.findall(CODE.sub("", f.read_text(encoding="utf-8")))) for f in files)
    print(f"{len(files)} files, {n} links, {len(bad)} broken")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
