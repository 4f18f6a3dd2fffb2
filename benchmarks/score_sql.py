"""Benchmark: scoring speed of Spider dev gold-vs-gold pairs (every executable question).

    SPIDER_DIR=/path/to/spider python benchmarks/score_sql.py [--workers 1,2] [--repeats 1]

Each gold query is scored against itself, so every pair executes twice (gold once, prediction
once) and must come out EX = 1. Every run starts cold: fresh worker processes and empty caches.
Target (issue 3): the whole dev set in under 20 s on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path

from tradeoff_ray.score import hardness as hardness_mod
from tradeoff_ray.score import sql_text
from tradeoff_ray.score.sql_batch import SqlTask, make_task, score_tasks


def _clear_caches() -> None:
    hardness_mod.hardness.cache_clear()
    sql_text.strip_distinct.cache_clear()
    sql_text.has_order_by.cache_clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spider-dir", default=os.environ.get("SPIDER_DIR"), help="Spider root (or SPIDER_DIR).")
    parser.add_argument("--workers", default="1,2", help="Comma-separated worker counts to time.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per worker count (the best is reported).")
    args = parser.parse_args()
    if not args.spider_dir:
        parser.error("pass --spider-dir or set SPIDER_DIR")
    spider_dir = Path(args.spider_dir)
    dev = json.loads((spider_dir / "dev.json").read_text())
    tasks = [make_task(i, {"db_id": e["db_id"], "query": e["query"], "pred": e["query"]}, spider_dir)
             for i, e in enumerate(dev)]
    tasks = [t for t in tasks if isinstance(t, SqlTask) and t.db_path is not None]

    print(f"machine: {platform.platform()}, {platform.machine()}, os.cpu_count()={os.cpu_count()}, "
          f"usable cpus={len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}")
    print(f"pairs: {len(tasks)} executable Spider dev gold-vs-gold pairs (of {len(dev)} questions)")
    for workers in (int(w) for w in args.workers.split(",")):
        best = None
        for _ in range(args.repeats):
            _clear_caches()
            start = time.perf_counter()
            results = score_tasks(tasks, workers=workers)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
            ex = sum(r["ex"] or 0 for r in results.values()) / len(results)
        mode = "in-process" if workers == 1 else "processes"
        print(f"workers={workers} ({mode}): {best:.2f} s, {len(tasks) / best:.0f} questions/s, EX={ex:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
