"""Fixtures for local mode: a steerable target, folders, and `sla-operator local` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from local_support import LocalProcess, Target


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = Target()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    return folder


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def local(manifests: Path, state: Path, tmp_path: Path) -> Iterator[Callable[[], LocalProcess]]:
    """Makes local-mode processes on the test's folders; every one is stopped at the end."""
    made: list[LocalProcess] = []

    def make() -> LocalProcess:
        process = LocalProcess(manifests, state, tmp_path / f"local-{len(made)}.log")
        made.append(process)
        return process

    yield make
    for process in made:
        if process.process is not None:
            process.stop()
