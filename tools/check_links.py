"""Relative links and #anchors in the README and docs/*.md: every file exists, every anchor is a heading.

    python tools/check_links.py            # one line per broken link; exit 1 when there is any
    python tools/check_links.py FILE.md    # those files only

A link is `[text](target)` or `![alt](target)` outside code blocks and code spans; links with a
scheme (https:, mailto:) are left alone. An anchor must be the slug GitHub gives a heading of the
target file: lower case, punctuation but `-` and `_` dropped, spaces to `-`, and `-1`, `-2`, ...
after a repeated slug.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^()\s>]+(?:\([^()\s]*\))?)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            mark = match.group(1)
            if fence is None:
                fence = mark[0] * len(mark)
            elif mark.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def broken_links(path: Path) -> list[str]:
    """One line per link of this Markdown file whose file or anchor does not exist."""
    problems = []
    cache: dict[Path, set[str]] = {}
    shown = _shown(path)
    for number, line in prose_lines(path.read_text()):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / unquote(file_part)).resolve() if file_part else path
            where = f"{shown}:{number}: ({target})"
            if not dest.exists():
                problems.append(f"{where}: no such file {_shown(dest)}")
                continue
            if anchor:
                if dest.suffix != ".md" or dest.is_dir():
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                    continue
                known = cache.setdefault(dest, anchors(dest))
                if unquote(anchor).lower() not in known:
                    problems.append(f"{where}: no heading #{anchor} in {_shown(dest)}")
    return problems


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def main() -> None:
    paths = [Path(p).resolve() for p in sys.argv[1:]] or documents()
    problems = [line for path in paths for line in broken_links(path)]
    for line in problems:
        print(line)
    if problems:
        print(f"check_links: {len(problems)} broken link{'s' * (len(problems) > 1)}", file=sys.stderr)
        sys.exit(1)
    print(f"check_links: every relative link and anchor of {len(paths)} files resolves")


if __name__ == "__main__":
    main()
