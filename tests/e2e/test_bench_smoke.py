"""`make bench-smoke` inside `make test`: every benchmark case runs end to end with tiny counts.

It asserts that the harness works — the servers start, the load runs, the checks inside each case
hold (e.g. every callback applied exactly once) and a results file with every case is written —
never how fast anything is. Speed is `make bench`'s business, never a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.services import need, postgres_available

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CASES = {"B1", "B2", "B3", "B4", "B5", "B6", "B7"}


@pytest.mark.timeout(600)
def test_bench_smoke_runs_every_case(tmp_path: Path) -> None:
    need("PostgreSQL", postgres_available())
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    [results] = list(out.glob("*.json"))
    document = json.loads(results.read_text())
    assert document["smoke"] is True
    assert {figure["case"] for figure in document["figures"]} == CASES
    assert {figure["engine"] for figure in document["figures"] if figure["case"] == "B1"} == {"sqlite", "postgres"}
    several = {figure["case"] for figure in document["figures"] if figure["name"].endswith("2 processes ÷ 1")}
    assert several == {"B1", "B2"}  # PostgreSQL with `serve --workers 2`, and the scaling
    assert not [note for note in document["notes"] if "failed" in note]
    # B3's streams are on payments it seeds itself: a seed the schema has outgrown opens none.
    [idle] = [figure for figure in document["figures"] if figure["name"].startswith("idle SSE streams (")]
    assert idle["detail"]["held"] == idle["detail"]["wanted"], idle["detail"]
    assert "| B1 |" in run.stdout  # the table is printed
