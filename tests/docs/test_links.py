"""Every relative link in the repository's Markdown leads to a file, and an anchor to a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_markdown import ROOT, anchors, links, markdown_files

FILES = markdown_files()


def test_the_markdown_files_include_the_readme_and_the_api() -> None:
    assert {ROOT / "README.md", ROOT / "docs" / "API.md", ROOT / "CHANGELOG.md"} <= set(FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for line, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists() or not destination.is_relative_to(ROOT):
            broken.append(f"{path.relative_to(ROOT)}:{line}: {target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{path.relative_to(ROOT)}:{line}: {target}: no heading #{anchor}")
    assert broken == []


GENERATED = {"tests/browser/out/"}  # written by the tests that the text names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_the_text_names_in_code_exists(path: Path) -> None:
    """`examples/payments-api.yaml`, `../seed/x.txt`: a path in a code span names a file too."""
    top = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
    missing = []
    inside = False
    for number, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if text.lstrip().startswith(("```", "~~~")):
            inside = not inside
            continue
        for span in re.findall(r"`([^`\s]+)`", "" if inside else text):
            first = span.split("/", 1)[0]
            if "/" not in span or span in GENERATED or not (first == ".." or first in top):
                continue
            base = path.parent if first == ".." else ROOT
            if not (base / span).exists():
                missing.append(f"{path.relative_to(ROOT)}:{number}: {span}")
    assert missing == []


def test_the_examples_point_only_at_the_demo_target_on_this_machine() -> None:
    """A local URL in an example is one the demo target serves (8099); the operator's own ports
    serve no runbooks (a runbook URL there answered 404)."""
    local = {(path.relative_to(ROOT).as_posix(), url)
             for path in sorted((ROOT / "examples").rglob("*.y*ml"))
             for url in re.findall(r"https?://(?:127\.0\.0\.1|localhost)(?::\d+)?[^\s'\"]*",
                                   path.read_text(encoding="utf-8"))}
    assert local and all(":8099/" in url for _, url in local), sorted(local)
