"""Multiprocess metrics: two real processes write their counters (and a live gauge) under one data
directory, as `serve --workers 2` and `worker` do; one scrape by a third shows the sum of both, and
a process that stops cleanly takes its live gauge with it. The files are private (0600 in 0700)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

WRITER = textwrap.dedent(
    """
    import os, sys
    os.umask(0o077)  # as `serve` and `worker` set it (cli/serve.py keep_files_private)
    from mpesa_bridge.observability import instruments
    from mpesa_bridge.observability.multiprocess import process_stopping
    n, stop = int(sys.argv[1]), sys.argv[2] == "stop"
    instruments.CALLBACKS_RECEIVED.labels("stk", "stored").inc(n)
    instruments.HTTP_REQUEST_SECONDS.labels("/v1/payments", "POST", "2xx").observe(0.01 * n)
    instruments.REALTIME_CONNECTIONS.labels("sse").inc(n)
    if stop:
        process_stopping()
    """
)

READER = textwrap.dedent(
    """
    import sys
    from mpesa_bridge.observability.multiprocess import render_counted
    sys.stdout.write(render_counted().decode())
    """
)


def run(code: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_one_scrape_sums_the_processes_of_both_roles(tmp_path: Path) -> None:
    from mpesa_bridge.observability.multiprocess import metrics_root

    # As the supervisor and the worker do at start: each empties and takes its role's directory.
    leftover = metrics_root(tmp_path) / "serve"
    leftover.mkdir(parents=True)
    (leftover / "counter_1.db").write_bytes(b"an earlier run")
    prepare = (
        "import sys; from pathlib import Path; from mpesa_bridge.observability.multiprocess import use_directory; "
    )
    for role in ("serve", "worker"):
        run(prepare + f"print(use_directory(Path(sys.argv[1]), {role!r}))", dict(os.environ), str(tmp_path))
    assert not (leftover / "counter_1.db").exists()

    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    serve = {**base, "PROMETHEUS_MULTIPROC_DIR": str(metrics_root(tmp_path) / "serve")}
    worker = {**base, "PROMETHEUS_MULTIPROC_DIR": str(metrics_root(tmp_path) / "worker")}
    run(WRITER, serve, "3", "keep")  # one server process, still "live" (never marked dead)
    run(WRITER, serve, "4", "stop")  # another, stopped cleanly
    run(WRITER, worker, "5", "keep")  # the worker process

    scraped = samples(run(READER, serve))

    assert scraped[("mpesa_bridge_callbacks_received_total", (("kind", "stk"), ("outcome", "stored")))] == 12
    labels = (("method", "POST"), ("route", "/v1/payments"), ("status", "2xx"))
    assert scraped[("mpesa_bridge_http_request_duration_seconds_count", labels)] == 3
    assert scraped[("mpesa_bridge_realtime_connections", (("transport", "sse"),))] == 8  # 3 + 5: the stopped one left

    root = metrics_root(tmp_path)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for role in ("serve", "worker"):
        assert stat.S_IMODE((root / role).stat().st_mode) == 0o700
        files = list((root / role).glob("*.db"))
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
