"""`make bench` / `make bench-smoke`: run the cases, print the table, write bench/results/.

python -m bench [--smoke] [--cases B1,B2,...] [--reps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.context import Baseline, Context
from bench.harness import CONNECTIONS, ROOT, bare_server, run_load

CASES = {
    "B1": "bench.cases.b1_callbacks",
    "B2": "bench.cases.b2_payments",
    "B3": "bench.cases.b3_realtime",
    "B4": "bench.cases.b4_webhooks",
    "B5": "bench.cases.b5_reconcile",
    "B6": "bench.cases.b6_growth",
    "B7": "bench.cases.b7_memory",
}
BODY = '{"Body":{"stkCallback":{"MerchantRequestID":"' + "x" * 900 + '"}}}'


def measure_baseline(ctx: Context) -> Baseline:
    """The bare ASGI app on the same server: a ~1 KB POST (a callback's size) and a GET."""
    count = ctx.scale(20_000, 300)
    post = ("POST", "/", {"Content-Type": "application/json"}, BODY)
    get = ("GET", "/", {}, "")
    with bare_server(ctx.log_dir).start() as server:
        run_load(server.port, request=post, count=count // 4)  # warm-up
        posts = [run_load(server.port, request=post, count=count, measured=[server]) for _ in range(ctx.reps)]
        gets = [run_load(server.port, request=get, count=count, measured=[server]) for _ in range(ctx.reps)]
    pick = lambda loads: sorted(loads, key=lambda load: load.rate)[len(loads) // 2]  # noqa: E731
    return Baseline(post=pick(posts), get=pick(gets))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks that every case works")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases (default: all)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per figure (default 3, smoke 1)")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    parser.add_argument("--engines", default="", help="comma-separated: sqlite,postgres (default: both)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SQLite files)")
    args = parser.parse_args(argv)
    wanted = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}")
    reps = args.reps or (1 if args.smoke else 3)
    out = args.out or (ROOT / "bench" / ("results-smoke" if args.smoke else "results"))
    work = Path(tempfile.mkdtemp(prefix="mpesa-bench-"))
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    ctx = Context(smoke=args.smoke, reps=reps, work=work, only_engines=engines)
    started = datetime.now(UTC)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    failed: list[str] = []
    try:
        t0 = time.monotonic()
        ctx.baseline = measure_baseline(ctx)
        print(
            f"baseline: bare app {ctx.baseline.post.rate:,.0f} POST/s, {ctx.baseline.get.rate:,.0f} GET/s "
            f"({time.monotonic() - t0:.0f} s)",
            flush=True,
        )
        for case in wanted:
            t0 = time.monotonic()
            try:
                importlib.import_module(CASES[case]).run(ctx)
            except Exception:
                failed.append(case)
                ctx.notes.append(f"{case} failed: {traceback.format_exc(limit=3).strip().splitlines()[-1]}")
                traceback.print_exc()
            finally:
                ctx.drop_databases()
            print(f"{case} done in {time.monotonic() - t0:.0f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    settings = {
        "connections": CONNECTIONS,
        "repetitions": reps,
        "cases": wanted,
        "statistic": "median",
        "load_average_at_start": load_at_start,
        "bridge": "serve, development env, SQLite or PostgreSQL, INFO logs as JSON, rate limits off",
    }
    path, text = report.write(ctx, out, started, settings)
    print()
    print(text)
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
