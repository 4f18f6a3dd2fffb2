"""`tradeoff-ray score-sql`: re-score an existing predictions file with Spider execution accuracy.

    tradeoff-ray score-sql --spider-dir /data/spider --predictions preds.jsonl [--workers 2]

Input: a JSON list or JSONL of records with `db_id`, the gold query (`gold` / `query` /
`ground_truth_sql` / `gold_sql`) and the prediction (`pred` / `predicted_sql` / `prediction` /
`pred_sql`, or a raw `raw_generation` / `generation`); this accepts the files the source studies
published and this project's own evals/<label>/sql.jsonl. A prediction that is not plain SQL
(fences, chat tokens, prose first) goes through extract_sql; the record keeps both.
Output JSONL: every input record plus ex (0/1, null = not scorable), error, error_detail,
hardness, scored_sql (what was executed), extracted, exec_s. The summary prints EX overall and
per hardness with counts and 95% CIs, the error classes, and why records were not scorable.

The destination is checked before any scoring, and an existing file is replaced only with
`--force`. Ctrl-C stops the run: nothing is written to the destination, and the records finished
so far go to `<out>.partial.jsonl` (marked `"partial": true`); rerun the command to score them all.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from tradeoff_ray.errors import UserError
from tradeoff_ray.records import write_jsonl
from tradeoff_ray.score.sql_batch import SqlTask, make_task, resolve_workers, score_tasks
from tradeoff_ray.score_options import SqlScoringOptions


def load_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON list or JSONL file; bad input raises UserError naming the line."""
    if not path.is_file():
        raise UserError(f"predictions file not found: {path}; pass --predictions with a JSON list or JSONL file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    if not text.strip():
        raise UserError(f"{path} is empty; it needs one record per line (JSONL) or a JSON list of records")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {err.lineno} column {err.colno}: invalid JSON ({err.msg}); "
                            "fix the file, or write one JSON object per line (JSONL)") from None
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise UserError(f"{path}: item {i} of the JSON list is {type(item).__name__}, not an object "
                                "with db_id, gold and prediction fields")
        return data
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {lineno}: invalid JSON ({err.msg} at column {err.colno}); "
                            "each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}, line {lineno}: expected a JSON object with db_id, gold and prediction "
                            f"fields, got {type(obj).__name__}")
        records.append(obj)
    return records


def check_destination(out: Path, *, force: bool) -> None:
    """UserError unless `out` can be written: a file path (not a folder) in a writable folder,
    not an existing file unless `force`. Creates the missing parent folders."""
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file path such as {out / 'scored.jsonl'}")
    if out.exists() and not force:
        raise UserError(f"--out {out} already exists; pass --force to replace it, or choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.with_name(f".{out.name}.{os.getpid()}.probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"--out {out} cannot be written ({err.strerror or err}); choose a path in a writable "
                        "folder") from None


def scoring_options(*, timeout: float, max_rows: int, keep_distinct: bool) -> SqlScoringOptions:
    """The scoring options the command's flags give; a UserError naming the flag when one is out of range."""
    if not math.isfinite(timeout) or timeout <= 0:
        raise UserError(f"--timeout must be a finite number of seconds > 0 (got {timeout})")
    if max_rows < 1:
        raise UserError(f"--max-rows must be >= 1 (got {max_rows})")
    return SqlScoringOptions(timeout_s=timeout, max_rows=max_rows, keep_distinct=keep_distinct)


def main(*, spider_dir: Path, predictions: Path, out: Path | None, timeout: float, max_rows: int,
         keep_distinct: bool, workers: int, force: bool) -> int:
    spider_dir, predictions = Path(spider_dir), Path(predictions)
    if not (spider_dir / "database").is_dir():
        raise UserError(f"no database/ folder under --spider-dir {spider_dir}; pass the Spider root that holds "
                        "database/<db_id>/<db_id>.sqlite")
    options = scoring_options(timeout=timeout, max_rows=max_rows, keep_distinct=keep_distinct)
    if workers < 0:
        raise UserError(f"--workers must be >= 0 (0 = one per core), got {workers}")
    records = load_records(predictions)
    out = Path(out) if out else predictions.with_name(predictions.stem + ".scored.jsonl")
    if out.resolve() == predictions.resolve():
        raise UserError(f"--out {out} is the predictions file itself; choose another path")
    check_destination(out, force=force)

    results: dict[int, dict] = {}
    tasks: list[SqlTask] = []
    for i, record in enumerate(records):
        task = make_task(i, record, spider_dir)
        if isinstance(task, SqlTask):
            tasks.append(task)
        else:
            results[i] = task
    n_workers = resolve_workers(workers)
    console = Console(stderr=True)
    start = time.monotonic()
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        bar = progress.add_task("score", total=len(tasks))
        try:
            score_tasks(tasks, options=options, workers=n_workers, on_progress=lambda n: progress.advance(bar, n),
                        into=results)
        except KeyboardInterrupt:
            return _interrupted(records, results, out, console)
    elapsed = time.monotonic() - start
    merged = [{**record, **results[i]} for i, record in enumerate(records)]
    write_jsonl(out, merged)
    print_summary(merged, Console())
    Console().print(f"{len(records)} records, {len(tasks)} sent to scoring, in {elapsed:.1f} s with {n_workers} "
                    f"worker(s); wrote {out}")
    return 0


def _interrupted(records: list[dict], results: dict[int, dict], out: Path, console: Console) -> int:
    """Keep the finished records in <out>.partial.jsonl; the destination itself stays untouched."""
    finished = [{**records[i], **results[i], "partial": True} for i in sorted(results)]
    partial = out.with_name(out.name.removesuffix(".jsonl") + ".partial.jsonl")
    write_jsonl(partial, finished)
    console.print(f"[yellow]interrupted: {len(finished)} of {len(records)} records finished (kept in {partial}, "
                  f"marked partial); nothing written to {out}. Rerun the command to score every record.[/yellow]")
    return 130


def summarize(scored: list[dict]) -> dict[str, Any]:
    """The spider task's summary of scored records (EX overall and by hardness, error classes, unscorable
    reasons): the same function `tradeoff-ray eval` and the report use."""
    from types import SimpleNamespace

    from tradeoff_ray.tasks import get_task
    from tradeoff_ray.tasks.base import task_summary

    records = [SimpleNamespace(example_id=str(i), ex=r.get("ex"), hardness=r.get("hardness") or "unknown",
                               error=r.get("error")) for i, r in enumerate(scored)]
    return task_summary(get_task("spider"), records)["spider"]


def print_summary(scored: list[dict], console: Console) -> None:
    s = summarize(scored)
    table = Table(title="Spider execution accuracy")
    for col in ("hardness", "scored", "EX", "95% CI"):
        table.add_column(col, justify="right" if col != "hardness" else "left")
    cells = [*s["by_group"].items(), ("all", s)]
    for name, cell in cells:
        n = cell["n"]
        table.add_row(name, str(n), f"{cell['accuracy_pct'] / 100:.3f}" if n else "-",
                      f"{cell['ci_low_pct'] / 100:.3f}-{cell['ci_high_pct'] / 100:.3f}" if n else "-",
                      end_section=name == cells[-2][0] if len(cells) > 1 else False)
    console.print(table)
    errors = Table(title="outcomes")
    errors.add_column("class")
    errors.add_column("records", justify="right")
    outcomes = Counter(r.get("error") for r in scored)
    for name, count in outcomes.most_common():
        errors.add_row(str(name), str(count))
    console.print(errors)
    if s["n_unscorable"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(Counter(r.get("error") for r in scored
                                                                   if r.get("ex") is None).items()))
        console.print(f"[yellow]{s['n_unscorable']} of {len(scored)} records not scorable "
                      f"({reasons})[/yellow]")
    else:
        console.print(f"all {len(scored)} records scorable")
