"""GSM8K (Cobbe et al. 2021), a general-reasoning probe: grade-school math word problems, generated.

Items are test problems (all 1,319, or the seeded `data.gsm8k_limit` sample); `eval.gsm8k_shots` worked
exemplars (the first k train problems, as lm-evaluation-harness draws them) come before each problem,
in the chat template for instruct models. Greedy decoding up to `eval.gsm8k_max_new_tokens`, stopping
at the next 'Question:'. Two measures, as the harness reports them (score/gsm8k_score.py):
strict (the number after '####' / 'The answer is') and flexible (the last number in the text).
"""
from __future__ import annotations

from typing import Any, Sequence

from tradeoff_ray.records import Gsm8kResult
from tradeoff_ray.tasks.base import GENERATE, GENERAL, Measure, Row, Task, TaskData

READINGS = ("flexible", "strict")  # flexible first: the headline (robust to a format the fine-tune changed)


class Gsm8kTask(Task):
    name = "gsm8k"
    title = "GSM8K"
    record_type = Gsm8kResult
    role = GENERAL
    data_key = "data.gsm8k_dir"

    def enabled_by_default(self, cfg: Any) -> bool:
        return bool(cfg.data.gsm8k_dir)

    def load(self, cfg: Any) -> TaskData:
        from tradeoff_ray.data.gsm8k import load_gsm8k
        from tradeoff_ray.errors import UserError

        if not cfg.data.gsm8k_dir:
            raise UserError("eval.tasks includes gsm8k but data.gsm8k_dir is not set; point it at the folder "
                            "holding GSM8K's test.jsonl (or 'hub'), or drop gsm8k from eval.tasks")
        data = load_gsm8k(cfg.data.gsm8k_dir)
        files = tuple(p for p in (data.root / "test.jsonl", data.root / "train.jsonl") if p.exists()) \
            if data.root is not None else ()
        return TaskData(data, data.source, False, files)

    def select(self, cfg: Any, data: TaskData) -> list[Any]:
        from tradeoff_ray.data.gsm8k import select_problems

        return select_problems(data.data, limit=cfg.data.gsm8k_limit, seed=cfg.data.seed)

    def validation_items(self, cfg: Any, data: TaskData) -> list[Any]:
        from tradeoff_ray.data.validation import gsm8k_validation

        return gsm8k_validation(data.data, cfg.data, limit=cfg.tune.validation_limit,
                                exemplars=cfg.eval.gsm8k_shots)

    def manifest(self, cfg: Any, data: TaskData, items: Sequence[Any]) -> dict[str, Any]:
        return {**super().manifest(cfg, data, items), "limit": cfg.data.gsm8k_limit, "shots": cfg.eval.gsm8k_shots}

    def rows(self, cfg: Any, data: TaskData, items: Sequence[Any], tokenizer: Any) -> tuple[list[Row], list[Any]]:
        from tradeoff_ray.prompts import GSM8K_STOP, gsm8k_prompt, gsm8k_solution_text, prompt_hash

        shots = [(p.question, gsm8k_solution_text(p.solution, p.target))
                 for p in data.data.exemplars(cfg.eval.gsm8k_shots)]
        rows = []
        for p in items:
            prompt = gsm8k_prompt(tokenizer, p.question, shots, use_chat_template=cfg.prompt.use_chat_template)
            rows.append({"task": self.name, "kind": GENERATE, "example_id": p.example_id, "prompt": prompt,
                         "prompt_hash": prompt_hash(prompt), "max_new_tokens": cfg.eval.gsm8k_max_new_tokens,
                         "stop": list(GSM8K_STOP), "question": p.question, "target": p.target,
                         "solution": p.solution})
        return rows, []

    def gold_output(self, row: Row) -> str | None:
        from tradeoff_ray.prompts import gsm8k_solution_text

        return gsm8k_solution_text(row["solution"], row["target"])

    def score_rows(self, scorer: Any, rows: list[Row]) -> list[Row]:
        from tradeoff_ray.score.gsm8k_score import score_generation

        return [{**r, **score_generation(None if r.get("engine_error") else r.get("raw_generation"), r["target"])}
                for r in rows]

    def record(self, row: Row, label: str) -> Gsm8kResult:
        return Gsm8kResult(
            label=label, example_id=row["example_id"], question=row["question"], target=row["target"],
            prompt_hash=row["prompt_hash"], raw_generation=row.get("raw_generation") or "",
            pred_strict=row.get("pred_strict"), correct_strict=int(row["correct_strict"]),
            pred_flexible=row.get("pred_flexible"), correct_flexible=int(row["correct_flexible"]),
            n_new_tokens=int(row.get("n_new_tokens") or 0), latency_s=float(row.get("gen_s") or 0.0),
            error="engine_error" if row.get("engine_error") else None)

    def measure_keys(self, cfg: Any) -> list[str]:
        return [f"gsm8k_{k}" for k in READINGS]

    def measures(self, records: Sequence[Any]) -> list[Measure]:
        return [Measure(f"gsm8k_{k}", self.name, f"GSM8K {k}", self.role) for k in READINGS]

    def outcome(self, record: Any, measure: Measure) -> int | None:
        return int(getattr(record, f"correct_{measure.key.removeprefix('gsm8k_')}"))

    def extra(self, records: Sequence[Any], measure: Measure) -> dict[str, Any]:
        reading = measure.key.removeprefix("gsm8k_")
        return {"no_answer": sum(getattr(r, f"pred_{reading}") is None for r in records)}
