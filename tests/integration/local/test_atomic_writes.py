"""A process killed with SIGKILL while it writes a state file leaves the old or the new file, whole."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest
from local_support import ROOT, read, wait_for

from sla_operator.local.files import remove_stale_temporaries

# Writes one large file after another, each a new version; nearly all its time is spent
# inside write_atomically, so the kills below land in the middle of writes.
WRITER = """
import sys
from pathlib import Path
from sla_operator.local.files import dump_yaml, write_atomically
target, spare = Path(sys.argv[1]), sys.argv[2] == "spare"
body = dump_yaml({"updates": [{"message": "x" * 200, "n": i} for i in range(2000)]})
version = 0
while True:
    version += 1
    write_atomically(target, f"version: {version}\\n" + body, spare=spare)
"""


@pytest.mark.parametrize("way", ["temporary", "spare"])
async def test_killing_a_writer_at_random_moments_never_leaves_a_torn_file(tmp_path: Path,
                                                                           way: str) -> None:
    target = tmp_path / "incidents" / "demo" / "shop.yaml"
    chance = random.Random(20261126)
    versions, interrupted = [], 0
    for _ in range(8):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), way], cwd=ROOT)
        try:
            await wait_for("the first write", target.exists)
            await asyncio.sleep(chance.uniform(0.0, 0.3))
        finally:
            writer.kill()
            writer.wait()
        document = read(target)
        assert len(document["updates"]) == 2000, "a reader saw a partly written file"
        versions.append(document["version"])
        interrupted += bool(remove_stale_temporaries(tmp_path))
        left = {p.name for p in target.parent.iterdir()}
        assert left - {".shop.yaml.spare"} == {"shop.yaml"}  # the spare is kept, not a temporary
        assert way == "spare" or left == {"shop.yaml"}
        for path in target.parent.iterdir():
            path.unlink()
    # Through a spare, an interrupted write leaves no temporary: the spare is written in place.
    assert max(versions) > 1 and (interrupted or way == "spare"), \
        "no kill landed in the middle of a write"
