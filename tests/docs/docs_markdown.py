"""The Markdown of the repository as data: its files, links, headings and shell blocks.

A shell block (```sh, ```bash, ```shell) is run by ``test_shell_blocks`` unless an HTML comment
right before it says why a line cannot run here::

    <!-- docs-test: cluster lines 1,4 -->   needs a Kubernetes cluster (the e2e tier has one)
    <!-- docs-test: e2e -->                 is `make test-e2e` or part of it
    <!-- docs-test: self lines 2 -->        is `make test`, which runs this tier itself

Without ``lines`` a reason covers the whole block; lines are counted from the block's first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_FROM = (ROOT / "README.md", ROOT / "docs" / "API.md")
REASONS = {"cluster", "e2e", "self"}
SHELL = {"sh", "bash", "shell"}
_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(\w+)(?:\s+lines\s+([\d,\s-]+))?\s*-->\s*$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_SKIPPED_FOLDERS = {".git", ".venv", "node_modules", ".state", ".pytest_cache", ".mypy_cache",
                    ".ruff_cache", ".hypothesis", "out"}


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, from 1
    info: str
    lines: list[str]
    skipped: dict[int, str] = field(default_factory=dict)  # block line (from 1) -> reason

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def commands(self) -> Iterator[tuple[int, str]]:
        """(block line, command) of every line that is a command and runs here."""
        for number, text in enumerate(self.lines, start=1):
            command = _without_comment(text).strip()
            if command and number not in self.skipped:
                yield number, command


def _without_comment(text: str) -> str:
    """A shell line without its trailing comment (none of the documented commands quotes #)."""
    return re.sub(r"(^|\s)#.*$", "", text)


def markdown_files() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*.md")):
        if not _SKIPPED_FOLDERS.intersection(path.relative_to(ROOT).parts[:-1]):
            found.append(path)
    return found


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a file, with the docs-test markers written just before it."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, info = opening.groups()
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].strip().startswith(fence[:3]):
            body.append(lines[index])
            index += 1
        block = Block(path, start + 1, info, body)
        back = start - 1
        while back >= 0 and lines[back].strip().startswith("<!--"):
            block.skipped.update(_marked(lines[back].strip(), len(body), f"{path}:{back + 1}"))
            back -= 1
        found.append(block)
        index += 1
    return found


def _marked(comment: str, length: int, where: str) -> dict[int, str]:
    match = _MARKER.match(comment)
    if match is None:
        return {}
    reason, numbers = match.groups()
    if reason not in REASONS:
        raise ValueError(f"{where}: docs-test reason {reason!r} is not one of {sorted(REASONS)}")
    if numbers is None:
        return dict.fromkeys(range(1, length + 1), reason)
    chosen: dict[int, str] = {}
    for part in numbers.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        chosen.update(dict.fromkeys(range(int(low), int(high or low) + 1), reason))
    return chosen


def shell_blocks() -> list[Block]:
    return [b for path in RUN_FROM for b in blocks(path) if b.info in SHELL]


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every Markdown link outside code blocks and code spans."""
    inside = False
    for number, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if _FENCE.match(text):
            inside = not inside
            continue
        if inside:
            continue
        for match in _LINK.finditer(re.sub(r"`[^`]*`", "", text)):
            yield number, match.group(1)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to -."""
    found: set[str] = set()
    inside = False
    for text in path.read_text(encoding="utf-8").split("\n"):
        if _FENCE.match(text):
            inside = not inside
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", text)
        if heading and not inside:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            base, count = slug, 1
            while slug in found:
                slug = f"{base}-{count}"
                count += 1
            found.add(slug)
    return found
