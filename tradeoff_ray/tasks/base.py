"""What a benchmark is to this project: one `Task` object behind one interface.

A task says how its data loads (from the config), which items a run scores, how each item becomes an
engine request (a "row": a prompt plus either a generation budget or the continuations to score),
how a served row is scored, what per-example record it leaves, and which *measures* its records
yield (a measure is one accuracy the report compares: Spider EX, MMLU at 0 shots, GSM8K strict...).
Evaluation, analysis, the report and Tune loop over the configured tasks and their measures, so a new
benchmark is one module here plus its data loader — nothing in the pipeline changes.

Engines see only two kinds of rows (lm-evaluation-harness's two request types):
    kind 'generate': prompt, max_new_tokens, stop           -> raw_generation, n_new_tokens
    kind 'choice':   prompt, continuations, normalize       -> logprobs (one per continuation)
A row the engine could not run comes back with `engine_error` set; its task scores it as wrong.

The sanity checks and report extras a task wants are named in `checks` / `report_sections` and
implemented in analyze/ and report/ (later layers of the data flow); a task with none of them still
gets every generic table, comparison, test and plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

from tradeoff_ray.stats import wilson_interval

Row = dict[str, Any]
GENERATE, CHOICE = "generate", "choice"
TARGET, GENERAL = "target", "general"  # what fine-tuning aims at; what it should keep


@dataclass(frozen=True)
class Measure:
    """One accuracy a report compares across models: a column of the trade-off table."""

    key: str  # metrics key, e.g. 'spider', 'mmlu_0shot', 'gsm8k_strict'
    task: str
    title: str  # e.g. 'Spider EX', 'MMLU 0-shot'
    role: str = GENERAL
    group_by: str | None = None  # breakdown name ('hardness', 'category'); None = no breakdown
    groups: tuple[str, ...] = ()  # preferred order of the breakdown's groups


@dataclass
class TaskData:
    """A task's loaded benchmark: the loader's object plus what every report says about where it came from."""

    data: Any
    source: str
    is_demo: bool = False
    files: tuple[Path, ...] = ()  # every file the items came from (cache keys hash their contents)


class Task:
    """A benchmark. Subclasses set the class attributes and implement the methods marked 'required'."""

    name: ClassVar[str]  # registry key; results go to evals/<label>/<name>.jsonl
    title: ClassVar[str]
    record_type: ClassVar[type]  # dataclass of one scored example (fields: label, example_id, prompt_hash, ...)
    role: ClassVar[str] = GENERAL
    data_key: ClassVar[str | None] = None  # config key that enables the task (e.g. 'data.gsm8k_dir')
    heavy_scoring: ClassVar[bool] = False  # scoring needs its own CPU actors (SQL execution), not the driver
    checks: ClassVar[tuple[str, ...]] = ()  # sanity checks that apply (analyze/checks.py registry)
    report_sections: ClassVar[tuple[str, ...]] = ()  # extra report sections (report/sections.py registry)

    # -- data ----------------------------------------------------------------------------------
    def enabled_by_default(self, cfg: Any) -> bool:
        """Whether `eval.tasks: null` includes this task (e.g. only when its data is configured)."""
        return True

    def load(self, cfg: Any) -> TaskData:  # required
        raise NotImplementedError

    def select(self, cfg: Any, data: TaskData) -> list[Any]:  # required
        """The items a run scores (all, or the configured seeded sample)."""
        raise NotImplementedError

    def validation_items(self, cfg: Any, data: TaskData) -> list[Any]:
        """Held-out items Tune scores trials on (`tune.validation_limit` of them), disjoint from the test items
        `select` gives and from anything trained on, so choosing settings never looks at the reported sets."""
        from tradeoff_ray.errors import UserError

        raise UserError(f"task {self.name!r} has no validation split, so Tune cannot score trials on it without "
                        "looking at its test set; implement validation_items for it or leave it out of eval.tasks")

    def manifest(self, cfg: Any, data: TaskData, items: Sequence[Any]) -> dict[str, Any]:
        """What manifests/<task>.json records about the items (ids always; tasks add details)."""
        return {"task": self.name, "source": data.source, "is_demo": data.is_demo, "n_total": len(items),
                "example_ids": [item_id(x) for x in items]}

    # -- requests ------------------------------------------------------------------------------
    def rows(self, cfg: Any, data: TaskData, items: Sequence[Any], tokenizer: Any) -> tuple[list[Row], list[Any]]:
        """(rows to serve, records of items that cannot be served, e.g. a missing database). Required.
        `tokenizer` renders chat templates; None renders the plain fallback (preset predictions)."""
        raise NotImplementedError

    def gold_output(self, row: Row) -> str | None:
        """The reference output a preset-predictions engine answers with (the gold check), or None when
        the task has none (then it is not part of the gold check)."""
        return None

    # -- scoring (CPU, no torch) -----------------------------------------------------------------
    def open_scorer(self, cfg: Any) -> Any:
        """State a scorer keeps across batches (open database connections); None when not needed."""
        return None

    def close_scorer(self, scorer: Any) -> None:
        if scorer is not None and hasattr(scorer, "close"):
            scorer.close()

    def score_rows(self, scorer: Any, rows: list[Row]) -> list[Row]:  # required
        """Served rows plus the task's verdict columns."""
        raise NotImplementedError

    def record(self, row: Row, label: str) -> Any:  # required
        """The per-example record of a scored row."""
        raise NotImplementedError

    # -- measures ------------------------------------------------------------------------------
    def measure_keys(self, cfg: Any) -> list[str]:
        """The measure keys a run of `cfg` will produce (known before any record exists: Tune objectives)."""
        return [self.name]

    def measures(self, records: Sequence[Any]) -> list[Measure]:
        """The measures these records yield (MMLU: one per shot count present)."""
        return [Measure(self.name, self.name, self.title, self.role)]

    def members(self, records: Sequence[Any], measure: Measure) -> list[Any]:
        """The records a measure is computed over."""
        return list(records)

    def outcome(self, record: Any, measure: Measure) -> int | None:
        """1 right, 0 wrong, None not scorable (excluded from n, counted and explained)."""
        return _binary(getattr(record, "correct", None))

    def group(self, record: Any, measure: Measure) -> str | None:
        return None

    def extra(self, records: Sequence[Any], measure: Measure) -> dict[str, Any]:
        """Task-specific numbers added to a measure's summary (counts of unscorable items, letters...)."""
        return {}

    def fingerprint(self, record: Any) -> Any:
        """What the model produced for the example (compared across models by the adapter_differs check)."""
        return getattr(record, "raw_generation", None)

    def sort_key(self, record: Any) -> tuple:
        return (record.example_id,)


def item_id(item: Any) -> str:
    return str(getattr(item, "example_id"))


def _binary(value: Any) -> int | None:
    return None if value is None else int(value)


# ------------------------------------------------------------------------------ the one summary


def rate_block(correct: int, n: int) -> dict[str, Any]:
    """The one rate type: {n, correct, accuracy_pct, ci_low_pct, ci_high_pct} (95% Wilson; None when n = 0)."""
    iv = wilson_interval(correct, n)
    pct = (lambda x: 100.0 * x) if n else (lambda x: None)
    return {"n": n, "correct": correct, "accuracy_pct": pct(iv.estimate), "ci_low_pct": pct(iv.low),
            "ci_high_pct": pct(iv.high)}


def measure_summary(task: Task, records: Sequence[Any], measure: Measure) -> dict[str, Any]:
    """A measure's rate over its scorable records, its breakdown by group, unscorable counts and the task's
    extras. Every summary of a label (CLI, summary.json, metrics.json, the report) is built from this."""
    members = task.members(records, measure)
    scored = [(r, task.outcome(r, measure)) for r in members]
    ok = [(r, v) for r, v in scored if v is not None]
    out = rate_block(sum(v for _, v in ok), len(ok))
    out["n_total"] = len(members)
    out["n_unscorable"] = len(members) - len(ok)
    if measure.group_by:
        by: dict[str, list[int]] = {}
        for r, v in ok:
            by.setdefault(task.group(r, measure) or "unknown", []).append(v)
        order = [g for g in measure.groups if g in by] + sorted(set(by) - set(measure.groups))
        out["by_group"] = {g: rate_block(sum(by[g]), len(by[g])) for g in order}
    out.update(task.extra(members, measure))
    return out


def task_summary(task: Task, records: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """{measure key: measure_summary} for one label's records of one task."""
    return {m.key: measure_summary(task, records, m) for m in task.measures(records)}


def outcomes(task: Task, records: Iterable[Any], measure: Measure, *, where: str) -> dict[str, int]:
    """example_id -> 0/1 over the measure's scorable records; a repeated id is an error (pairing needs ids)."""
    from tradeoff_ray.errors import UserError

    out: dict[str, int] = {}
    for r in task.members(list(records), measure):
        value = task.outcome(r, measure)
        if value is None:
            continue
        if r.example_id in out:
            raise UserError(f"{where} holds example_id {r.example_id!r} twice for {measure.title}; pairing needs "
                            "unique ids — re-run the evaluation of this label")
        out[r.example_id] = value
    return out
