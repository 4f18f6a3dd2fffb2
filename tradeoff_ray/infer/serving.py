"""One engine per GPU for a whole evaluation stage: every label (base, adapters, checkpoints) and every task.

    rows of all labels and tasks ── spread (by database / subject) ──> EngineActor per GPU
        (columns: task, label, adapter, prompt, ...)                    one engine, all rows queued at once,
                                                                        finished rows streamed back in chunks

A row names its kind ('generate': greedy generation; 'choice': continuation log-probs, tasks/base.py) and
the adapter that serves it (None = the base model or a merged copy). `serve_rows` turns rows into engine
requests, hands them to the engine in one go and streams finished rows back; the engine's scheduler
batches them (vLLM: continuous batching, multi-LoRA). An engine without `stream` (the HF engine) is
driven in its own batches (generations grouped by budget and stop strings), one model per engine.

`EngineActor` is the thin Ray actor over `serve_rows`: built once per GPU, it serves `serve` calls for as
long as the stage lasts, so the engine starts once per GPU per stage, not once per label and task.
"""
from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from tradeoff_ray.infer.engine import (
    Choice,
    ChoiceRequest,
    Failed,
    Generation,
    GenerateRequest,
    StreamingEngine,
)
from tradeoff_ray.tasks import CHOICE, GENERATE, Row

if TYPE_CHECKING:
    from tradeoff_ray.infer.stages import EngineSpec

SERVE_COLUMNS = {
    "task": "the task the row belongs to (tradeoff_ray/tasks/)",
    "kind": "'generate' (prompt, max_new_tokens, stop) or 'choice' (prompt, continuations)",
    "label": "the evaluated model's label (results go to evals/<label>/)",
    "adapter": "name of the served adapter, or None for the engine's own weights",
    "prompt": "the rendered prompt (the task's `rows`)",
}
CHUNK_ROWS = 512  # finished rows per streamed chunk ...
CHUNK_S = 2.0  # ... or per this many seconds, whichever comes first (progress and partial files)


def require_columns(rows: Sequence[Row], columns: dict[str, str], *, stage: str) -> None:
    """ValueError naming the columns a stage needs that its first row lacks, with what each holds."""
    if not rows:
        return
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        detail = "; ".join(f"{c}: {columns[c]}" for c in missing)
        raise ValueError(f"{stage} rows lack column(s) {missing} ({detail})")


def serve_order(rows: Iterable[Row]) -> list[Row]:
    """Rows in the order they are queued: generations before choices (long decodes carry the prefills),
    then by label, then by prompt (rows of one database or subject are neighbours, so the prefix cache
    holds their shared header)."""
    return sorted(rows, key=lambda r: (r["kind"] != GENERATE, str(r["label"]), r["prompt"]))


def group_key(row: Row) -> str:
    """Rows that share a prompt prefix: one label's questions on one database or one MMLU subject."""
    return f"{row['label']}|{row['task']}|{row.get('db_id') or row.get('subject') or ''}"


def spread(rows: Sequence[Row], n: int) -> list[list[Row]]:
    """Rows split over `n` engines, prefix groups kept whole, each engine given about the same count."""
    if n <= 1:
        return [list(rows)]
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    shares: list[list[Row]] = [[] for _ in range(n)]
    for key in sorted(groups, key=lambda k: (-len(groups[k]), zlib.crc32(k.encode()))):
        min(shares, key=len).extend(groups[key])
    return shares


def row_request(row: Row) -> GenerateRequest | ChoiceRequest:
    """The engine request of one row."""
    adapter = row.get("adapter") or None
    if row["kind"] == GENERATE:
        return GenerateRequest(row["prompt"], int(row["max_new_tokens"]), tuple(row.get("stop") or ()), adapter)
    if row["kind"] == CHOICE:
        return ChoiceRequest(row["prompt"], tuple(row["continuations"]), adapter)
    raise ValueError(f"row kind {row['kind']!r} is not {GENERATE!r} or {CHOICE!r}")


def finish_row(row: Row, result: Generation | Choice | Failed) -> Row:
    """The row plus the engine's output: raw_generation and n_new_tokens, or logprobs; gen_s (engine time
    charged to it). A `Failed` request keeps its reason in `engine_error`: its task scores it as wrong."""
    if isinstance(result, Failed):
        return {**row, "raw_generation": None, "n_new_tokens": 0, "logprobs": None, "gen_s": result.seconds,
                "engine_error": result.error}
    if isinstance(result, Choice):
        return {**row, "raw_generation": None, "n_new_tokens": 0, "logprobs": [float(x) for x in result.logprobs],
                "gen_s": float(result.seconds), "engine_error": None}
    return {**row, "raw_generation": result.text, "n_new_tokens": int(result.n_new_tokens), "logprobs": None,
            "gen_s": float(result.seconds), "engine_error": None}


def serve_rows(engine: Any, rows: Sequence[Row], *, chunk_rows: int = CHUNK_ROWS,
               chunk_s: float = CHUNK_S) -> Iterator[list[Row]]:
    """Finished rows in chunks, in completion order: every row of `rows` exactly once."""
    require_columns(rows, SERVE_COLUMNS, stage="serve")
    ordered = serve_order(rows)
    requests = [row_request(r) for r in ordered]
    results = engine.stream(requests) if isinstance(engine, StreamingEngine) else _batched(engine, requests)
    chunk: list[Row] = []
    last = time.perf_counter()
    for i, result in results:
        chunk.append(finish_row(ordered[i], result))
        if len(chunk) >= chunk_rows or time.perf_counter() - last >= chunk_s:
            yield chunk
            chunk, last = [], time.perf_counter()
    if chunk:
        yield chunk


def _batched(engine: Any, requests: list[GenerateRequest | ChoiceRequest]) -> Iterator[tuple[int, Any]]:
    """An `Engine` without `stream` (HF): one model, so no adapter may be asked for; requests run in the
    engine's own batches, generations grouped by their settings, choices through `loglikelihood`."""
    asked = sorted({r.adapter for r in requests if r.adapter})
    if asked:
        raise ValueError(f"{engine.describe()} serves one model; rows ask for adapters {asked} "
                         "(serve them merged, one engine per label)")
    gens: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    choices: list[int] = []
    for i, r in enumerate(requests):
        if isinstance(r, GenerateRequest):
            gens.setdefault((r.max_new_tokens, r.stop), []).append(i)
        else:
            choices.append(i)
    for (max_new, stop), idx in gens.items():
        out = engine.generate([requests[i].prompt for i in idx], max_new_tokens=max_new, stop=list(stop))
        yield from zip(idx, out)
    if choices:
        pairs = [(requests[i].context, c) for i in choices for c in requests[i].continuations]
        t0 = time.perf_counter()
        scores = engine.loglikelihood(pairs)
        share = (time.perf_counter() - t0) / len(choices)
        at = 0
        for i in choices:
            k = len(requests[i].continuations)
            yield i, Choice(logprobs=[float(x) for x in scores[at:at + k]], seconds=share)
            at += k


class EngineActor:
    """Ray actor: one engine (on one GPU) serving every label and task of a stage for as long as it lives."""

    def __init__(self, spec: EngineSpec) -> None:
        from tradeoff_ray.infer.stages import build_engine

        t0 = time.perf_counter()
        self.engine = build_engine(spec)
        self.start_s = time.perf_counter() - t0

    def info(self) -> dict[str, Any]:
        return {"served": self.engine.describe(), "engine_start_s": round(self.start_s, 2)}

    def serve(self, rows: list[Row]) -> Iterator[list[Row]]:
        """Streaming method (`num_returns='streaming'`): finished rows, chunk by chunk."""
        yield from serve_rows(self.engine, rows)
