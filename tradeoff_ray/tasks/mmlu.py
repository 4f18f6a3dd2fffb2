"""MMLU (Hendrycks et al. 2021), a general-knowledge probe: four-option questions over 57 subjects.

Items are the balanced subset (`data.mmlu_per_category` per category, stratified over subjects) or the
full split; each is scored at every shot count of `eval.mmlu_shots` (one measure per shot count, e.g.
'mmlu_0shot'). `eval.mmlu_mode` picks how a question is asked:
    loglikelihood  the harness's letter scoring: one prefill, the log-probs of ' A'..' D' after 'Answer:'
    cloze          the log-likelihood of each option's text, divided by its length (harness acc_norm)
    generative     a short greedy answer, the letter read from it (None = no answer, scored wrong)
"""
from __future__ import annotations

from typing import Any, Sequence

from tradeoff_ray.config import cache_root
from tradeoff_ray.records import MmluResult
from tradeoff_ray.tasks.base import CHOICE, GENERATE, GENERAL, Measure, Row, Task, TaskData

GENERATIVE_MAX_NEW_TOKENS = 16  # generative mode needs only a letter or a short phrase naming the option
GENERATIVE_STOP = ["\n\n"]
LETTERS = ("A", "B", "C", "D")


def letter_counts(letters: Sequence[str | None]) -> dict[str, int]:
    """{'A': n, 'B': n, 'C': n, 'D': n, 'none': n}: how often each answer letter occurs (none = no answer)."""
    return {k: sum(1 for x in letters if (x if x in LETTERS else "none") == k) for k in (*LETTERS, "none")}


class MmluTask(Task):
    name = "mmlu"
    title = "MMLU"
    record_type = MmluResult
    role = GENERAL
    checks = ("mmlu_vs_chance", "mmlu_letter_bias")
    report_sections = ("mmlu_letters",)

    def load(self, cfg: Any) -> TaskData:
        from tradeoff_ray.data.mmlu import load_mmlu, mmlu_files

        mmlu = load_mmlu(cfg.data, cache=cache_root(cfg.model))
        return TaskData(mmlu, mmlu.source, not cfg.data.mmlu_dir, tuple(mmlu_files(mmlu)))

    def select(self, cfg: Any, data: TaskData) -> list[Any]:
        from tradeoff_ray.data.mmlu import select_mmlu

        return select_mmlu(cfg.data, data.data)

    def validation_items(self, cfg: Any, data: TaskData) -> list[Any]:
        from tradeoff_ray.data.validation import mmlu_validation

        return mmlu_validation(data.data, cfg.data, limit=cfg.tune.validation_limit)

    def manifest(self, cfg: Any, data: TaskData, items: Sequence[Any]) -> dict[str, Any]:
        return {**super().manifest(cfg, data, items), "split": cfg.data.mmlu_split,
                "per_category": cfg.data.mmlu_per_category, "shots": list(cfg.eval.mmlu_shots),
                "mode": cfg.eval.mmlu_mode}

    def rows(self, cfg: Any, data: TaskData, items: Sequence[Any], tokenizer: Any) -> tuple[list[Row], list[Any]]:
        """One row per (question, shot count), harness-format prompt (chat-wrapped when configured)."""
        from tradeoff_ray.prompts import (MMLU_CONTINUATIONS, mmlu_chat_prompt, mmlu_cloze_continuations,
                                          mmlu_cloze_prompt, mmlu_prompt, prompt_hash)

        mode = cfg.eval.mmlu_mode
        rows: list[Row] = []
        for shots in cfg.eval.mmlu_shots:
            for q in items:
                exemplars = [e for e in data.data.dev_exemplars(q.subject, shots) if e.example_id != q.example_id]
                continuations = MMLU_CONTINUATIONS
                if mode == "cloze":
                    prompt, continuations = mmlu_cloze_prompt(q, exemplars), mmlu_cloze_continuations(q)
                elif cfg.eval.mmlu_chat_template and tokenizer is not None:
                    prompt = mmlu_chat_prompt(tokenizer, q, exemplars)
                else:
                    prompt = mmlu_prompt(q, exemplars)
                row = {"task": self.name, "example_id": q.example_id, "prompt": prompt,
                       "prompt_hash": prompt_hash(prompt), "subject": q.subject, "category": q.category,
                       "shots": int(shots), "exemplars": len(exemplars), "answer": q.answer,
                       "choices": list(q.choices)}
                if mode == "generative":
                    row.update(kind=GENERATE, max_new_tokens=GENERATIVE_MAX_NEW_TOKENS, stop=list(GENERATIVE_STOP))
                else:
                    row.update(kind=CHOICE, continuations=list(continuations), normalize=mode == "cloze")
                rows.append(row)
        return rows, []

    def score_rows(self, scorer: Any, rows: list[Row]) -> list[Row]:
        """Rows plus the predicted letter (None = no answer) and correct (0/1)."""
        from tradeoff_ray.score.mmlu_score import choose_option, extract_letter

        out = []
        for r in rows:
            if r.get("engine_error"):
                pred = None
            elif r["kind"] == CHOICE:
                pred = choose_option(r["logprobs"], r["continuations"], normalize=bool(r.get("normalize")))
            else:
                pred = extract_letter(r.get("raw_generation"), list(r["choices"]))
            out.append({**r, "pred": pred, "correct": int(pred == r["answer"])})
        return out

    def record(self, row: Row, label: str) -> MmluResult:
        extra: dict[str, Any] = {}
        if int(row.get("exemplars", row["shots"])) != int(row["shots"]):
            extra["exemplars"] = int(row["exemplars"])  # the dev split had fewer than k exemplars
        if row.get("engine_error"):
            extra["engine_error"] = str(row["engine_error"])
        lp = row.get("logprobs")
        return MmluResult(
            label=label, example_id=row["example_id"], subject=row["subject"], category=row["category"],
            shots=int(row["shots"]), answer=row["answer"], pred=row.get("pred"), correct=int(row["correct"]),
            prompt_hash=row["prompt_hash"], logprobs=None if lp is None else [float(x) for x in lp],
            raw_generation=row.get("raw_generation"), latency_s=float(row.get("gen_s") or 0.0), extra=extra)

    def measure_keys(self, cfg: Any) -> list[str]:
        return [f"mmlu_{k}shot" for k in cfg.eval.mmlu_shots]

    def measures(self, records: Sequence[Any]) -> list[Measure]:
        from tradeoff_ray.data.types import CATEGORIES

        return [Measure(f"mmlu_{k}shot", self.name, f"MMLU {k}-shot", self.role, group_by="category",
                        groups=tuple(CATEGORIES)) for k in sorted({int(r.shots) for r in records})]

    def members(self, records: Sequence[Any], measure: Measure) -> list[Any]:
        return [r for r in records if f"mmlu_{r.shots}shot" == measure.key]

    def outcome(self, record: Any, measure: Measure) -> int | None:
        return int(record.correct)

    def group(self, record: Any, measure: Measure) -> str | None:
        return record.category

    def extra(self, records: Sequence[Any], measure: Measure) -> dict[str, Any]:
        """Macro accuracy over categories, unread answers, and the predicted vs gold letter distribution
        (the letter-bias check reads them)."""
        by: dict[str, list[int]] = {}
        for r in records:
            by.setdefault(r.category, []).append(int(r.correct))
        accs = [100.0 * sum(v) / len(v) for v in by.values() if v]
        return {"macro_accuracy_pct": sum(accs) / len(accs) if accs else None,
                "no_answer": sum(r.pred is None for r in records), "n_subjects": len({r.subject for r in records}),
                "fewer_exemplars": sum(1 for r in records if "exemplars" in r.extra),
                "pred_letters": letter_counts([r.pred for r in records]),
                "gold_letters": letter_counts([r.answer for r in records])}

    def fingerprint(self, record: Any) -> Any:
        return record.logprobs if record.logprobs is not None else record.raw_generation

    def sort_key(self, record: Any) -> tuple:
        return (record.shots, record.example_id)
