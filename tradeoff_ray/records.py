"""Per-example result records and the run-directory layout: the contract between stages.

Evaluation writes one JSONL file per (model label, task); analysis and reports read only these
files, so `tradeoff-ray report` can rebuild everything without recomputation.

Run directory (`runs/<name>-<stamp>/`):
    config.yaml                     resolved ExperimentConfig
    stages/<stage>.json             cache markers: input hash, outputs, wall time
    manifests/<task>.json           the items each task scored (ids, source, selection settings)
    evals/<label>/<task>.jsonl      one record per scored item of each task (tradeoff_ray/tasks/):
                                    spider.jsonl SqlResult, mmlu.jsonl MmluResult (per question and
                                    shot count), gsm8k.jsonl Gsm8kResult
    evals/<label>/summary.json      that label's summary per task and measure (tasks.base.task_summary)
    train/<variant>/adapter/        final LoRA adapter (adapter_model.safetensors + config)
    train/<variant>/checkpoints/step-<N>/  adapters saved every save_steps
    train/<variant>/result.json     losses, steps, over-length counts, adapter path
    metrics.json  report.md  report.html  plots/*.png

Labels: 'baseline' (base model), '<variant>' (final adapter), '<variant>@step<N>' (checkpoint).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

BASELINE = "baseline"
TUNED = "tuned"  # label of the Tune sweep's chosen trial, the one model of a sweep scored on the test sets
GOLD = "gold"  # label of the gold check: each task's reference outputs served as predictions, scored as any model's


@dataclass
class SqlResult:
    """One scored Spider question. `ex` is None when the example cannot be scored (see `error`)."""

    label: str
    example_id: str
    db_id: str
    question: str
    gold_sql: str
    hardness: str
    prompt_hash: str
    raw_generation: str
    pred_sql: str | None
    ex: int | None
    error: str | None  # taxonomy: ok, extraction_failed, syntax_error, unknown_table, unknown_column,
    #                    timeout, other_exec_error, wrong_result, gold_error, missing_db
    error_detail: str | None = None  # wrong_result sub-kind or the SQLite message
    latency_s: float = 0.0
    exec_s: float = 0.0


@dataclass
class MmluResult:
    """One scored MMLU question at a given number of shots. `pred` None = no answer found."""

    label: str
    example_id: str
    subject: str
    category: str
    shots: int
    answer: str
    pred: str | None
    correct: int
    prompt_hash: str
    logprobs: list[float] | None = None
    raw_generation: str | None = None
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Gsm8kResult:
    """One GSM8K problem: the generation and both readings of its final number (strict, flexible)."""

    label: str
    example_id: str
    question: str
    target: str
    prompt_hash: str
    raw_generation: str
    pred_strict: str | None
    correct_strict: int
    pred_flexible: str | None
    correct_flexible: int
    n_new_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None  # engine_error when the engine could not run the prompt


def checkpoint_label(variant: str, step: int) -> str:
    return f"{variant}@step{step}"


def task_file(task: str) -> str:
    return f"{task}.jsonl"


def write_jsonl(path: Path, records: Iterable[Any]) -> int:
    """Write records (dataclasses or dicts) atomically; returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(asdict(r) if hasattr(r, "__dataclass_fields__") else r, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
    tmp.replace(path)
