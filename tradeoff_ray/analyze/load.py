"""Read a run directory back into memory: the only input of analysis and reports.

Everything here comes from files a run wrote (layout in `tradeoff_ray.records`), so a report can be
rebuilt at any time without recomputation, and without torch or Ray. Required: the run dir, its
config.yaml and at least one evaluated label under evals/. Optional (used when present): the `gold`
label, checkpoints, train/<variant>/result.json, stages/*.json, manifests/*.json.
Per-example files are `evals/<label>/<task>.jsonl` for every registered task (tradeoff_ray/tasks/); run
dirs written before tasks were plug-ins (`sql.jsonl`, `mmlu_<k>shot.jsonl`) are read as spider / mmlu.
A malformed file raises `RunDirError` naming the file (and line) and what to do.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tradeoff_ray.errors import UserError
from tradeoff_ray.records import BASELINE, GOLD, SqlResult
from tradeoff_ray.tasks import Measure, Task, TARGET, get_task, registered

_CHECKPOINT = re.compile(r"^(?P<variant>.+)@step(?P<step>\d+)$")
_MMLU_FILE = re.compile(r"^mmlu_(?P<shots>\d+)shot\.jsonl$")


class RunDirError(UserError):
    """A run directory is missing, incomplete or holds a file that cannot be read."""


def parse_label(label: str) -> tuple[str, int | None]:
    """'lora-r16@step30' -> ('lora-r16', 30); 'lora-r16' -> ('lora-r16', None)."""
    m = _CHECKPOINT.match(label)
    return (m["variant"], int(m["step"])) if m else (label, None)


def label_kind(label: str) -> str:
    """One of 'baseline', 'gold', 'checkpoint', 'variant' (a final adapter or a Tune trial)."""
    if label == BASELINE:
        return "baseline"
    if label == GOLD:
        return "gold"
    return "checkpoint" if parse_label(label)[1] is not None else "variant"


@dataclass
class RunData:
    """A run's saved results: per task, per label, the per-example records."""

    run_dir: Path
    config: dict[str, Any]
    results: dict[str, dict[str, list]] = field(default_factory=dict)  # task -> label -> records
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifests: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> list[Task]:
        """The tasks with results, the target task first, then in registry order."""
        names = [n for n in registered() if n in self.results]
        return sorted((get_task(n) for n in names), key=lambda t: t.role != TARGET)

    @property
    def labels(self) -> list[str]:
        """Every evaluated label: baseline, variants (config order, then Tune trials by name), checkpoints
        (by variant, then step), gold last."""
        order = {"baseline": 0, "variant": 1, "checkpoint": 2, "gold": 3}
        found = {lb for per_label in self.results.values() for lb in per_label}
        configured = [v.get("name") for v in (self.config.get("training") or {}).get("variants") or []
                      if isinstance(v, dict)]

        def key(label: str) -> tuple:
            variant, step = parse_label(label)
            rank = configured.index(variant) if variant in configured else len(configured)
            return order[label_kind(label)], rank, variant, step or 0

        return sorted(found, key=key)

    def labels_of(self, kind: str) -> list[str]:
        return [label for label in self.labels if label_kind(label) == kind]

    def measures(self) -> list[tuple[Task, Measure]]:
        """Every measure of the run (task order; a measure any label's records yield)."""
        out = []
        for task in self.tasks:
            records = [r for lb, recs in self.results[task.name].items() if lb != GOLD for r in recs]
            records = records or [r for recs in self.results[task.name].values() for r in recs]
            out += [(task, m) for m in task.measures(records)]
        return out

    def records(self, task: str, label: str) -> list | None:
        return self.results.get(task, {}).get(label)

    @property
    def sql(self) -> dict[str, list[SqlResult]]:
        """Spider records by label (the SQL-specific analyses: error taxonomy, gold check)."""
        return self.results.get("spider", {})


def _read_records(path: Path, cls: type) -> list:
    """JSONL -> dataclass records; unknown keys are ignored (additive record changes stay readable)."""
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if _is_required(f)}
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise RunDirError(f"{path}:{lineno} is not valid JSON ({err.msg}); re-run the evaluation "
                                  "of this label or delete the file") from None
            if not isinstance(raw, dict):
                raise RunDirError(f"{path}:{lineno} holds a {type(raw).__name__}, expected a JSON object "
                                  f"with the fields of {cls.__name__}")
            missing = sorted(required - raw.keys())
            if missing:
                raise RunDirError(f"{path}:{lineno} lacks {cls.__name__} field(s) {missing}; this file was "
                                  "written by another version; re-run the evaluation of this label")
            out.append(cls(**{k: v for k, v in raw.items() if k in names}))
    return out


def _is_required(f) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{path} is not valid JSON ({err}); delete it or re-run the stage that wrote it") from None


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise RunDirError(f"{run_dir} is not a run directory (no config.yaml); pass a directory written by "
                          "`tradeoff-ray run` or `tradeoff-ray eval`")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise RunDirError(f"{path} is not valid YAML ({err}); restore the run's resolved config") from None
    if not isinstance(raw, dict):
        raise RunDirError(f"{path} must be a mapping of config sections, got {type(raw).__name__}")
    return raw


_LEGACY = {"sql.jsonl": "spider"}  # file names of run dirs written before tasks were plug-ins


def _load_label(run: RunData, label_dir: Path) -> None:
    label = label_dir.name
    found = False
    for path in sorted(label_dir.glob("*.jsonl")):
        name = path.stem
        if name == "partial":
            run.warnings.append(f"{path} holds rows of an unfinished evaluation; resume the run to finish it")
            continue
        if path.name in _LEGACY or _MMLU_FILE.match(path.name):
            name = _LEGACY.get(path.name, "mmlu")
        if name not in registered():
            run.warnings.append(f"{path}: no task named {name!r} is registered here, so it is not analysed; "
                                "import the module that registers it (tradeoff_ray.tasks.register) and rebuild")
            continue
        task = get_task(name)
        run.results.setdefault(name, {}).setdefault(label, []).extend(_read_records(path, task.record_type))
        found = True
    if not found:
        # An evaluation killed before its first file was renamed into place leaves an empty dir.
        run.warnings.append(f"{label_dir} holds no <task>.jsonl (unfinished evaluation?); label skipped")


def load_run(run_dir: str | Path) -> RunData:
    """Read config, per-label results, training results, stage markers and manifests of a run dir."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; pass a directory under runs/")
    run = RunData(run_dir=run_dir, config=_read_config(run_dir))
    evals = run_dir / "evals"
    label_dirs = sorted(p for p in evals.iterdir() if p.is_dir()) if evals.is_dir() else []
    for label_dir in label_dirs:
        _load_label(run, label_dir)
    if not run.labels:
        raise RunDirError(f"{evals} holds no evaluated label (expected evals/<label>/<task>.jsonl, e.g. "
                          "spider.jsonl); run `tradeoff-ray eval` or resume the run first")
    if BASELINE not in run.labels:
        run.warnings.append(f"{evals / BASELINE} is missing: no comparison with the base model is possible; "
                            "evaluate the base model into this run dir or resume the run")
    for path in sorted((run_dir / "train").glob("*/result.json")):
        run.training[path.parent.name] = _read_json(path)
    for path in sorted((run_dir / "stages").glob("*.json")):
        run.stages[path.stem] = _read_json(path)
    for path in sorted((run_dir / "manifests").glob("*.json")):
        run.manifests[path.stem] = _read_json(path)
    return run
