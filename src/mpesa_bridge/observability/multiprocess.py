"""Metrics across processes: prometheus-client's multiprocess mode.

`serve --workers N` runs N server processes behind one port, and `mpesa-bridge worker` runs the
background loops in a process of its own: a scrape reaches one process, but must count them all.
Per-process labels would need the scraper to reach every process (they share one port) and would
leave a dead process's series behind; instead every process writes its values to memory-mapped
files in a private directory, and whichever process answers a scrape adds them up.

The directory is `<data_dir>/metrics/<role>` (role: `serve` or `worker`), mode 0700, its files 0600
(the process's umask 077, `cli/serve.py`). The process that starts the others empties its role's
directory at start (an earlier run's values are not this run's: counters start again at 0, which
Prometheus's `rate()` understands) and hands the path to the processes it starts through
`PROMETHEUS_MULTIPROC_DIR`. A scrape merges both roles' directories, so a `worker` on the same
data directory is counted too. A server process that stops cleanly takes its live gauges (open
connections) with it; one that is killed leaves its last values until the next start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ENV = "PROMETHEUS_MULTIPROC_DIR"
ROLES = ("serve", "worker")


def metrics_root(data_dir: Path) -> Path:
    return data_dir / "metrics"


def use_directory(data_dir: Path, role: str) -> Path:
    """Switch this process, and every process it starts, to file-backed metrics in
    `<data_dir>/metrics/<role>`, emptied first. Called once, by the process that starts the others."""
    if role not in ROLES:
        raise ValueError(f"unknown metrics role {role!r}")
    root = metrics_root(data_dir)
    path = root / role
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    for folder in (root, path):
        folder.chmod(0o700)
    os.environ[ENV] = str(path)
    # prometheus-client chose its value class when it was imported; every instrument has labels,
    # so no value exists yet and the new class serves all of them.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def shared_root() -> Path | None:
    """The metrics root of this process's multiprocess mode, None when its values are in memory."""
    path = os.environ.get(ENV)
    return Path(path).parent if path else None


class _Files:
    """Every role's files, merged (counters and histograms summed, live gauges summed)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def collect(self) -> Iterable[Metric]:
        files = sorted(str(f) for role in ROLES for f in (self._root / role).glob("*.db"))
        merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged


def render_counted() -> bytes:
    """The counted metrics of every process (multiprocess mode) or of this one, as Prometheus text."""
    root = shared_root()
    if root is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Files(root))
    return generate_latest(registry)


def process_stopping() -> None:
    """A server process stopping cleanly: its live gauges (open connections) stop counting."""
    if os.environ.get(ENV):
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
