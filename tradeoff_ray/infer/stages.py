"""The evaluation stages as pure functions over lists of rows, and the Ray actors that wrap them.

Each stage is a function tests call directly (no Ray) and a thin callable class that Ray Data runs
in an actor pool: the class builds its state once in `__init__` (an engine, or a scorer with its
read-only connections) and its `__call__` converts a Ray Data batch to rows and back.

- generation: prompt -> raw_generation (greedy, stops at the end of the statement / turn)
- SQL scoring: raw_generation -> extracted SQL -> execution-accuracy verdict, error class, hardness
  (the scoring core's `SqlScorer`, with its per-query timeout: a hanging query costs one timeout)
- MMLU: log-likelihood of ' A'..' D' -> chosen letter (or, in generative mode, a parsed letter)

Scoring code never imports torch: the scorer actor imports only `tradeoff_ray.score`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from tradeoff_ray.infer.tasks import (MMLU_GENERATIVE_MAX_NEW_TOKENS, Row, loglikelihood_requests, question_hardness,
                                     row_continuations)
from tradeoff_ray.records import MmluResult, SqlResult

# --------------------------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine inside an actor (picklable; the model is loaded where it runs)."""

    kind: str  # 'hf' | 'vllm'
    model_path: str
    dtype: str = "auto"
    batch_size: int = 32
    threads: int | None = None
    revision: str | None = None
    adapters: tuple[dict[str, Any], ...] = ()  # vLLM unmerged adapters: {name, path, rank} (AdapterRef fields)
    default_adapter: str | None = None  # the adapter the `Engine` protocol methods use
    vllm: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_engine(spec: EngineSpec):
    """The `Engine` a spec describes."""
    if spec.kind == "hf":
        from tradeoff_ray.infer.hf_engine import HfEngine

        return HfEngine(spec.model_path, dtype=spec.dtype, batch_size=spec.batch_size, threads=spec.threads,
                        revision=spec.revision)
    if spec.kind == "vllm":
        from tradeoff_ray.config import VllmConfig
        from tradeoff_ray.infer.vllm_engine import AdapterRef, VllmEngine

        return VllmEngine(spec.model_path, cfg=VllmConfig(**spec.vllm), dtype=spec.dtype,
                          adapters=[AdapterRef(**a) for a in spec.adapters], default_adapter=spec.default_adapter)
    raise ValueError(f"unknown engine kind {spec.kind!r}")


# ------------------------------------------------------------------------------------------ pure stages


def generate_rows(engine: Any, rows: list[Row], *, max_new_tokens: int, stop: list[str]) -> list[Row]:
    """Rows plus raw_generation, n_new_tokens and gen_s (the batch's wall time shared per row)."""
    if not rows:
        return []
    gens = engine.generate([r["prompt"] for r in rows], max_new_tokens=max_new_tokens, stop=list(stop))
    return [{**r, "raw_generation": g.text, "n_new_tokens": int(g.n_new_tokens), "gen_s": float(g.seconds)}
            for r, g in zip(rows, gens)]


def preset_rows(rows: list[Row], *, column: str) -> list[Row]:
    """Rows whose 'generation' is the text already in `column` (gold mode: the gold SQL; re-scoring)."""
    return [{**r, "raw_generation": str(r[column]), "n_new_tokens": 0, "gen_s": 0.0} for r in rows]


def score_sql_rows(scorer: Any, rows: list[Row], *, extract: bool = True) -> list[Row]:
    """Rows plus pred_sql, ex (0/1, None = unscorable), error, error_detail, exec_s, hardness.

    `scorer` is the scoring core's `SqlScorer` (its timeout bounds every query); `extract=False`
    scores the text as SQL as it is (gold mode, re-scoring).
    """
    out = []
    for r in rows:
        if not _missing(r.get("engine_error")):  # the engine could not run this prompt: wrong, with the reason kept
            out.append({**r, "pred_sql": None, "ex": 0, "error": "engine_error", "error_detail": r["engine_error"],
                        "exec_s": 0.0, "hardness": question_hardness(r["gold_sql"])})
            continue
        v = scorer.score(r["db_id"], r["db_path"], r["gold_sql"], r["raw_generation"], extract=extract)
        out.append({**r, "pred_sql": v["pred_sql"], "ex": v["ex"], "error": v["error"],
                    "error_detail": v["error_detail"], "exec_s": float(v["exec_s"] or 0.0),
                    "hardness": v["hardness"] or "unknown"})
    return out


def mmlu_loglikelihood_rows(engine: Any, rows: list[Row]) -> list[Row]:
    """Rows plus the four continuation log-probs, the chosen letter and correct (0/1)."""
    from tradeoff_ray.score.mmlu_score import choose_option

    if not rows:
        return []
    requests = [req for r in rows for req in loglikelihood_requests(r)]
    t0 = time.perf_counter()
    scores = engine.loglikelihood(requests)
    share = (time.perf_counter() - t0) / len(rows)
    out = []
    for i, r in enumerate(rows):
        lp = [float(x) for x in scores[4 * i:4 * i + 4]]
        pred = choose_option(lp, row_continuations(r), normalize=bool(r.get("normalize")))
        out.append({**r, "logprobs": lp, "pred": pred, "correct": int(pred == r["answer"]),
                    "raw_generation": None, "gen_s": share})
    return out


def mmlu_generative_rows(engine: Any, rows: list[Row]) -> list[Row]:
    """Rows plus a short greedy answer, the letter read from it (None = no answer) and correct (0/1)."""
    from tradeoff_ray.score.mmlu_score import extract_letter

    gens = generate_rows(engine, rows, max_new_tokens=MMLU_GENERATIVE_MAX_NEW_TOKENS, stop=["\n\n"])
    out = []
    for r in gens:
        pred = extract_letter(r["raw_generation"], list(r["choices"]))
        out.append({**r, "logprobs": None, "pred": pred, "correct": int(pred == r["answer"])})
    return out


# ------------------------------------------------------------------------------------------- records


def sql_result(row: Row, label: str) -> SqlResult:
    return SqlResult(
        label=label, example_id=row["example_id"], db_id=row["db_id"], question=row["question"],
        gold_sql=row["gold_sql"], hardness=row["hardness"], prompt_hash=row["prompt_hash"],
        raw_generation=row["raw_generation"], pred_sql=_opt_str(row.get("pred_sql")), ex=_opt_int(row.get("ex")),
        error=_opt_str(row.get("error")), error_detail=_opt_str(row.get("error_detail")),
        latency_s=float(row.get("gen_s") or 0.0), exec_s=float(row.get("exec_s") or 0.0),
    )


def mmlu_result(row: Row, label: str) -> MmluResult:
    lp = row.get("logprobs")
    extra: dict[str, Any] = {}
    if int(row.get("exemplars", row["shots"])) != int(row["shots"]):
        extra["exemplars"] = int(row["exemplars"])  # the dev split had fewer than k exemplars
    if not _missing(row.get("engine_error")):
        extra["engine_error"] = str(row["engine_error"])
    return MmluResult(
        label=label, example_id=row["example_id"], subject=row["subject"], category=row["category"],
        shots=int(row["shots"]), answer=row["answer"], pred=_opt_str(row.get("pred")), correct=int(row["correct"]),
        prompt_hash=row["prompt_hash"], logprobs=None if lp is None else [float(x) for x in lp],
        raw_generation=_opt_str(row.get("raw_generation")), latency_s=float(row.get("gen_s") or 0.0), extra=extra,
    )


def _missing(value: Any) -> bool:
    try:
        return value is None or value != value  # None or NaN (pandas fills missing values with NaN)
    except (TypeError, ValueError):
        return False


def _opt_str(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _opt_int(value: Any) -> int | None:
    return None if _missing(value) else int(value)


# ------------------------------------------------------------------------------------ Ray actor shells


def _records(batch: Any) -> list[Row]:
    """A Ray Data batch (pandas) as row dicts with plain Python values."""
    rows = batch.to_dict("records")
    for r in rows:
        for k, v in r.items():
            if hasattr(v, "tolist"):  # numpy arrays / scalars from Arrow list columns
                r[k] = v.tolist()
    return rows


def _frame(rows: Iterable[Row]):
    import pandas as pd

    return pd.DataFrame(list(rows))


class GenerationActor:
    """Ray Data stage: an engine loaded once per actor; each call generates one batch."""

    def __init__(self, spec: dict[str, Any], max_new_tokens: int, stop: list[str]) -> None:
        self.engine = build_engine(EngineSpec(**spec))
        self.max_new_tokens, self.stop = max_new_tokens, list(stop)

    def __call__(self, batch):
        return _frame(generate_rows(self.engine, _records(batch), max_new_tokens=self.max_new_tokens, stop=self.stop))


class MmluActor:
    """Ray Data stage: MMLU letters by log-likelihood (or generation, in generative mode)."""

    def __init__(self, spec: dict[str, Any], mode: str) -> None:
        self.engine = build_engine(EngineSpec(**spec))
        self.mode = mode

    def __call__(self, batch):
        rows = _records(batch)
        if self.mode == "generative":
            return _frame(mmlu_generative_rows(self.engine, rows))
        return _frame(mmlu_loglikelihood_rows(self.engine, rows))


class SqlScorerActor:
    """Ray Data stage: a CPU actor holding read-only connections to the databases it has seen."""

    def __init__(self, timeout_s: float, max_rows: int, keep_distinct: bool, extract: bool) -> None:
        from tradeoff_ray.score.sql_score import SqlScorer

        self.scorer = SqlScorer(timeout_s=timeout_s, max_rows=max_rows, keep_distinct=keep_distinct)
        self.extract = extract

    def __call__(self, batch):
        return _frame(score_sql_rows(self.scorer, _records(batch), extract=self.extract))


def preset_batch(batch, column: str):
    """Ray Data task (no model): gold mode's 'generation' stage."""
    return _frame(preset_rows(_records(batch), column=column))
