"""A small synthetic run directory, written by code, for analysis/report tests and the notebook.

`make_run_dir(path)` writes the layout of `tradeoff_ray.records` with: baseline, two variants
(lora-r8, lora-r16), checkpoints lora-r16@step10 / @step20, a `gold` label (the gold SQL as predictions),
MMLU 0-shot and 5-shot for every model label, train/<variant>/result.json and stages/*.json.
Examples of db `wta_1` are unscorable (missing_db) and one has a failing gold query (gold_error),
like the real Spider dev set. Outcomes are drawn from a per-example latent difficulty shared by all
labels, so labels are correlated the way real paired evaluations are. `write_run_dir` writes a run
dir from explicit records, for tests that need hand-computable numbers.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from tradeoff_ray.config import config_from_dict
from tradeoff_ray.records import BASELINE, GOLD, MmluResult, SqlResult, task_file, write_json, write_jsonl

DBS = (("concert_singer", 16), ("pets_1", 12), ("car_1", 12), ("wta_1", 8))  # wta_1: no database file
MISSING_DB = "wta_1"
HARDNESS_CYCLE = ("easy", "medium", "medium", "hard", "extra", "easy", "medium", "hard")
CATEGORIES = {"STEM": ("college_physics", "astronomy"), "humanities": ("philosophy", "world_religions"),
              "social_sciences": ("econometrics", "sociology"), "other": ("nutrition", "marketing")}
PER_SUBJECT = 12
SHOTS = (0, 5)
VARIANTS = ("lora-r8", "lora-r16")
CHECKPOINTS = {"lora-r16": (10, 20)}
FINAL_STEP = 30
# Probability that an example of average difficulty is right: SQL rises with training, MMLU falls.
SQL_SKILL = {BASELINE: 0.35, "lora-r8": 0.55, "lora-r16@step10": 0.45, "lora-r16@step20": 0.55, "lora-r16": 0.65}
MMLU_SKILL = {BASELINE: 0.52, "lora-r8": 0.49, "lora-r16@step10": 0.50, "lora-r16@step20": 0.46, "lora-r16": 0.42}
EXEC_ERRORS = ("extraction_failed", "syntax_error", "unknown_table", "unknown_column", "timeout",
               "other_exec_error", "wrong_result", "wrong_result", "wrong_result")
WRONG_KINDS = ("different_rows", "row_order", "empty_vs_nonempty", "distinct_only")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sql_record(label: str, example_id: str, ex: int | None, *, error: str | None = None, db_id: str = "concert_singer",
               hardness: str = "easy", pred_sql: str | None = "", gold_sql: str = "SELECT count(*) FROM singer",
               **extra: Any) -> SqlResult:
    """One SqlResult; error defaults to 'ok' / 'wrong_result' from ex; pred_sql '' means 'gold if right'."""
    if error is None:
        error = {1: "ok", 0: "wrong_result"}.get(ex, "missing_db")
    if pred_sql == "":
        pred_sql = gold_sql if ex == 1 else f"SELECT name FROM singer -- {label} {example_id}"
    fields = dict(label=label, example_id=example_id, db_id=db_id, question=f"Question {example_id}?",
                  gold_sql=gold_sql, hardness=hardness, prompt_hash=_hash(example_id),
                  raw_generation=f"```sql\n{pred_sql}\n```" if pred_sql else "I cannot answer.",
                  pred_sql=pred_sql, ex=ex, error=error)
    fields.update(extra)
    return SqlResult(**fields)


def mmlu_record(label: str, example_id: str, correct: int, *, shots: int = 0, category: str = "STEM",
                subject: str = "astronomy", answer: str = "A", pred: str | None = "", **extra: Any) -> MmluResult:
    """One MmluResult; pred '' means the answer when correct, else the next letter."""
    if pred == "":
        pred = answer if correct else "ABCD"[("ABCD".index(answer) + 1) % 4]
    fields = dict(label=label, example_id=example_id, subject=subject, category=category, shots=shots,
                  answer=answer, pred=pred, correct=int(correct), prompt_hash=_hash(f"{example_id}/{shots}"))
    fields.update(extra)
    return MmluResult(**fields)


def write_run_dir(path: Path, *, sql: dict[str, list[SqlResult]] | None = None,
                  mmlu: dict[str, dict[int, list[MmluResult]]] | None = None, config: dict[str, Any] | None = None,
                  training: dict[str, dict] | None = None, stages: dict[str, dict] | None = None,
                  results: dict[str, dict[str, list]] | None = None) -> Path:
    """Write config.yaml (validated ExperimentConfig), evals/<label>/<task>.jsonl (spider from `sql`, mmlu from
    `mmlu` with every shot count in one file, any task from `results`: task -> label -> records), train/ and
    stages/ files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = config_from_dict(config or {"name": "fixture"}, source="run_fixture")
    (path / "config.yaml").write_text(cfg.to_yaml())
    for label, records in (sql or {}).items():
        write_jsonl(path / "evals" / label / task_file("spider"), records)
    for label, per_shot in (mmlu or {}).items():
        write_jsonl(path / "evals" / label / task_file("mmlu"), [r for k in sorted(per_shot) for r in per_shot[k]])
    for task, per_label in (results or {}).items():
        for label, records in per_label.items():
            write_jsonl(path / "evals" / label / task_file(task), records)
    for variant, result in (training or {}).items():
        write_json(path / "train" / variant / "result.json", result)
    for stage, marker in (stages or {}).items():
        write_json(path / "stages" / f"{stage}.json", marker)
    return path


def _sql_examples() -> list[dict[str, Any]]:
    examples, i = [], 0
    for db, n in DBS:
        for _ in range(n):
            examples.append({"example_id": f"dev-{i:04d}", "db_id": db, "hardness": HARDNESS_CYCLE[i % 8],
                             "gold_sql": f"SELECT count(*) FROM t{i % 5} WHERE c > {i}"})
            i += 1
    examples[5]["gold_error"] = True  # one gold query that fails to execute
    return examples


def _sql_label(label: str, examples: list[dict], latent: np.ndarray, rng: np.random.Generator) -> list[SqlResult]:
    out = []
    for ex_info, u in zip(examples, latent):
        base = dict(db_id=ex_info["db_id"], hardness=ex_info["hardness"], gold_sql=ex_info["gold_sql"],
                    latency_s=float(rng.uniform(0.2, 1.5)))
        eid = ex_info["example_id"]
        if ex_info["db_id"] == MISSING_DB:
            out.append(sql_record(label, eid, None, error="missing_db", pred_sql=None, **base))
            continue
        if ex_info.get("gold_error"):
            out.append(sql_record(label, eid, None, error="gold_error", error_detail="no such column: c", **base))
            continue
        if label == GOLD:
            out.append(sql_record(label, eid, 1, pred_sql=ex_info["gold_sql"], **base))
            continue
        right = u < SQL_SKILL[label]
        if rng.random() < 0.1:  # label-specific noise: some regressions as well as gains
            right = not right
        if right:
            out.append(sql_record(label, eid, 1, **base))
            continue
        error = str(rng.choice(EXEC_ERRORS))
        detail = str(rng.choice(WRONG_KINDS)) if error == "wrong_result" else (
            None if error == "extraction_failed" else f"sqlite: {error.replace('_', ' ')}")
        pred = None if error == "extraction_failed" else f"SELECT x{rng.integers(100)} FROM t -- {label}"
        out.append(sql_record(label, eid, 0, error=error, error_detail=detail, pred_sql=pred, **base))
    return out


def _mmlu_label(label: str, shots: int, latent: np.ndarray, rng: np.random.Generator) -> list[MmluResult]:
    out, q = [], 0
    skill = MMLU_SKILL[label] + (0.05 if shots else 0.0)
    for category, subjects in CATEGORIES.items():
        for subject in subjects:
            for j in range(PER_SUBJECT):
                answer = "ABCD"[(q * 7) % 4]
                right = latent[q] < skill
                if rng.random() < 0.08:
                    right = not right
                pred = answer if right else ("ABCD"[("ABCD".index(answer) + 1 + q % 3) % 4]
                                             if rng.random() > 0.05 else None)
                logprobs = [float(x) for x in rng.normal(-2, 0.5, size=4)]
                out.append(mmlu_record(label, f"{subject}-test-{j:03d}", int(right), shots=shots, category=category,
                                       subject=subject, answer=answer, pred=pred, logprobs=logprobs,
                                       latency_s=float(rng.uniform(0.05, 0.2))))
                q += 1
    return out


def make_run_dir(path: str | Path, *, seed: int = 0) -> Path:
    """Write the synthetic run dir described in the module docstring under `path`; returns `path`."""
    rng = np.random.default_rng(seed)
    examples = _sql_examples()
    sql_latent = rng.random(len(examples))
    n_mmlu = sum(len(s) for s in CATEGORIES.values()) * PER_SUBJECT
    mmlu_latent = rng.random(n_mmlu)
    model_labels = [BASELINE, *VARIANTS] + [f"{v}@step{s}" for v, steps in CHECKPOINTS.items() for s in steps]
    sql = {label: _sql_label(label, examples, sql_latent, np.random.default_rng([seed, i]))
           for i, label in enumerate(model_labels + [GOLD])}
    mmlu = {label: {k: _mmlu_label(label, k, mmlu_latent, np.random.default_rng([seed, i, k])) for k in SHOTS}
            for i, label in enumerate(model_labels)}
    config = {
        "name": "fixture",
        "data": {"mmlu_per_category": 2 * PER_SUBJECT, "seed": seed},
        "training": {"variants": [
            {"name": "lora-r8", "r": 8, "alpha": 16, "max_steps": FINAL_STEP},
            {"name": "lora-r16", "r": 16, "alpha": 32, "max_steps": FINAL_STEP, "save_steps": 10},
        ]},
        "eval": {"mmlu_shots": list(SHOTS), "evaluate_checkpoints": True},
    }
    training = {v: {"variant": v, "global_step": FINAL_STEP, "final_eval_loss": 0.83 + 0.1 * i,
                    "train_loss": [{"step": s, "loss": 1.5 - 0.03 * s, "grad_norm": 1.0} for s in range(5, FINAL_STEP + 1, 5)],
                    "over_length": i, "adapter_path": f"train/{v}/adapter", "wall_s": 95.0 + 10 * i}
                for i, v in enumerate(VARIANTS)}
    stages = {"eval-baseline": {"stage": "eval-baseline", "key": "a1b2c3", "wall_s": 41.5, "cached": False}}
    stages.update({f"train-{v}": {"stage": f"train-{v}", "key": _hash(v), "wall_s": 95.0 + 10 * i}
                   for i, v in enumerate(VARIANTS)})
    stages.update({f"eval-{v}": {"stage": f"eval-{v}", "key": _hash(v + "e"), "wall_s": 44.0 + i}
                   for i, v in enumerate(VARIANTS)})
    return write_run_dir(Path(path), sql=sql, mmlu=mmlu, config=config, training=training, stages=stages)
