"""MMLU (or an MMLU-format set): load it, pick a balanced subset, and pin it in a manifest.

Sources, picked by `data.mmlu_dir`: unset = the built-in demo set (`data/demo/`), a path = the
Hendrycks CSV layout (`dev/ val/ test/ <subject>_<split>.csv`, no header, columns question, A, B, C,
D, answer letter), 'hub' = cais/mmlu ('all' config). Question ids are '<subject>/<split>/<index>'
with the row index inside the subject's file, so they match across copies of the data.

The subset evaluation scores is `select_mmlu(cfg, data)`: `balanced_subset` with N questions per
category (seed 1 used 50), spread over every subject of the category in proportion to its size
(at least one each when N >= #subjects), seeded; `per_category=None` is the whole split
(14,042 questions for the real test split). k-shot exemplars are `MmluData.dev_exemplars`.
"""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any, Iterable, Sequence

from tradeoff_ray.config import DataConfig
from tradeoff_ray.data.mmlu_categories import SUBJECT_CATEGORY
from tradeoff_ray.data.demo import demo_mmlu_dir, mark_demo_mmlu
from tradeoff_ray.data.notices import notice
from tradeoff_ray.data.types import CATEGORIES, LETTERS, McQuestion, MmluData
from tradeoff_ray.errors import UserError

SPLITS = ("dev", "val", "test")
HUB_MMLU = "cais/mmlu"
_HUB_SPLITS = {"dev": "dev", "validation": "val", "test": "test"}


def load_mmlu(cfg: DataConfig, *, cache: Path) -> MmluData:
    """The set `cfg.mmlu_dir` names: unset = the demo (written under `cache`, `config.cache_root`),
    'hub' = cais/mmlu, else a Hendrycks CSV root."""
    if cfg.mmlu_dir is None:
        root = demo_mmlu_dir(cache)
        return mark_demo_mmlu(load_mmlu_dir(root), root)
    if cfg.mmlu_dir.strip().lower() == "hub":
        return load_mmlu_hub()
    return load_mmlu_dir(cfg.mmlu_dir)


def _question(subject: str, split: str, index: int, question: str, choices: Sequence[Any], answer: str) -> McQuestion:
    return McQuestion(example_id=f"{subject}/{split}/{index}", subject=subject, category=SUBJECT_CATEGORY[subject],
                      split=split, index=index, question=str(question),
                      choices=tuple(str(c) for c in choices), answer=answer)


def _check_subjects(subjects: Iterable[str], where: str) -> None:
    unknown = sorted(set(subjects) - set(SUBJECT_CATEGORY))
    if unknown:
        raise UserError(f"{where} holds subjects that are not among MMLU's 57: {unknown}; rename or remove their "
                        "files (the category map in tradeoff_ray/data/mmlu_categories.py names the known ones)")


def _read_csv(path: Path, subject: str, split: str) -> list[McQuestion]:
    out = []
    i = 0
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if len(row) != 6 or row[5].strip() not in LETTERS:
                    raise UserError(f"{path} row {i + 1}: expected 6 fields (question, A, B, C, D, answer letter "
                                    f"A-D), got {len(row)} fields; is this the Hendrycks CSV layout?")
                out.append(_question(subject, split, i, row[0], row[1:5], row[5].strip()))
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); re-download it or save it "
                        "as UTF-8") from None
    except csv.Error as err:  # e.g. a field over csv's 131,072-character limit: not an MMLU question
        raise UserError(f"{path} row {i + 2 if out else 1}: unreadable CSV ({err}); MMLU questions are short, so "
                        "the file is damaged or not in the Hendrycks layout; re-download it") from None
    return out


def load_mmlu_dir(root: str | Path) -> MmluData:
    """A Hendrycks-layout MMLU root (`dev/ val/ test/ <subject>_<split>.csv`)."""
    root = Path(root).expanduser()
    present = [s for s in SPLITS if (root / s).is_dir()]
    if "test" not in present and "dev" not in present:
        raise UserError(f"no MMLU split folders in {root}: data.mmlu_dir must hold dev/ val/ test/ with "
                        "<subject>_<split>.csv files (the Hendrycks layout, e.g. the data/ folder of data.tar)")
    files = {s: sorted((root / s).glob(f"*_{s}.csv")) for s in present}
    subjects = {p.name.removesuffix(f"_{s}.csv") for s, paths in files.items() for p in paths}
    _check_subjects(subjects, str(root))
    splits = {s: {p.name.removesuffix(f"_{s}.csv"): _read_csv(p, p.name.removesuffix(f"_{s}.csv"), s)
                  for p in paths} for s, paths in files.items()}
    if not any(qs for per_subject in splits.values() for qs in per_subject.values()):
        raise UserError(f"the MMLU folders in {root} hold no questions ({sum(map(len, files.values()))} CSV files, "
                        "all empty or none); data.mmlu_dir must point at the Hendrycks CSVs with their rows")
    return MmluData(splits=splits, subject_category={s: SUBJECT_CATEGORY[s] for s in sorted(subjects)},
                    source=str(root.resolve()))


def load_mmlu_hub() -> MmluData:
    """cais/mmlu ('all' config) from the Hugging Face hub: dev, validation (= val) and test splits."""
    import datasets  # imported here: only hub users pay for it

    try:
        hub = datasets.load_dataset(HUB_MMLU, "all")
    except Exception as err:  # network, auth, cache: the user can fix all of them
        raise UserError(f"could not load {HUB_MMLU} from the hub ({type(err).__name__}: {err}); "
                        "check the network or use a local Hendrycks CSV copy in data.mmlu_dir") from None
    splits: dict[str, dict[str, list[McQuestion]]] = {}
    for hub_split, split in _HUB_SPLITS.items():
        if hub_split not in hub:
            continue
        rows = list(hub[hub_split])
        _check_subjects((r["subject"] for r in rows), f"{HUB_MMLU} {hub_split}")
        per_subject = splits.setdefault(split, {})
        for row in rows:
            answer = row["answer"]
            letter = LETTERS[int(answer)] if not isinstance(answer, str) else answer.strip()
            subject_rows = per_subject.setdefault(row["subject"], [])
            subject_rows.append(_question(row["subject"], split, len(subject_rows), row["question"],
                                          row["choices"], letter))
    subjects = {s for per in splits.values() for s in per}
    return MmluData(splits=splits, subject_category={s: SUBJECT_CATEGORY[s] for s in sorted(subjects)},
                    source=f"hub:{HUB_MMLU}")


def mmlu_files(data: MmluData) -> list[Path]:
    """The CSV files a Hendrycks-layout set was read from ([] for the hub and the demo's JSON source)."""
    root = Path(data.source)
    if data.source.startswith("hub:") or not root.is_dir():
        return []
    return sorted(p for s in SPLITS if (root / s).is_dir() for p in (root / s).glob(f"*_{s}.csv"))


# ---------------------------------------------------------------- subsets


def _allocate(sizes: dict[str, int], n: int, rng: random.Random) -> dict[str, int]:
    """Split n questions over subjects in proportion to their sizes, at least one each when n allows.

    Largest-remainder rounding; ties go to the subject listed first (sorted names), so the counts
    depend only on the sizes and n, never on the seed. With n < #subjects, n seeded subjects get one.
    """
    subjects = sorted(s for s, size in sizes.items() if size > 0)
    total = sum(sizes[s] for s in subjects)
    if n >= total:
        return {s: sizes[s] for s in subjects}
    if n < len(subjects):
        return {s: 1 for s in sorted(rng.sample(subjects, n))}
    share = {s: n * sizes[s] / total for s in subjects}
    quota = {s: min(sizes[s], max(1, int(share[s]))) for s in subjects}
    while sum(quota.values()) > n:  # the minimum of one pushed us over: take from the most over-served
        s = max((s for s in subjects if quota[s] > 1), key=lambda s: (quota[s] - share[s], -subjects.index(s)))
        quota[s] -= 1
    while sum(quota.values()) < n:
        s = max((s for s in subjects if quota[s] < sizes[s]), key=lambda s: (share[s] - quota[s], -subjects.index(s)))
        quota[s] += 1
    return quota


def balanced_subset(data: MmluData, *, split: str, per_category: int | None, seed: int) -> list[McQuestion]:
    """`per_category` questions of each category, stratified over its subjects, seeded (None = whole split).

    Which questions a subject contributes depends only on (seed, split, subject, its quota), so the
    same seed gives the same subset on every machine. Ordered by category, subject, index.
    """
    if split not in data.splits:
        raise UserError(f"MMLU split {split!r} is not in {data.source}; it has {sorted(data.splits)}")
    if per_category is None:
        return sorted(data.questions(split), key=_order)
    if per_category < 1:
        raise UserError(f"per_category must be >= 1 or None (the whole split), got {per_category}")
    if not data.questions(split):
        raise UserError(f"MMLU split {split!r} of {data.source} has no questions (its files are empty); choose "
                        f"another data.mmlu_split from {sorted(s for s in data.splits if data.questions(s))}")
    by_subject = data.splits[split]
    chosen: list[McQuestion] = []
    for category in CATEGORIES:
        sizes = {s: len(qs) for s, qs in by_subject.items() if data.subject_category.get(s) == category}
        quota = _allocate(sizes, per_category, random.Random(f"mmlu-subjects:{seed}:{split}:{category}"))
        for subject, k in quota.items():
            rng = random.Random(f"mmlu:{seed}:{split}:{subject}")
            picks = sorted(rng.sample(range(sizes[subject]), k))
            chosen += [by_subject[subject][i] for i in picks]
        available = sum(sizes.values())
        if available < per_category:
            notice(f"MMLU {split}: {per_category} questions per category asked, but {category} has only "
                   f"{available} in {data.source}; the subset takes all {available} (categories are unequal)")
    return sorted(chosen, key=_order)


def _order(q: McQuestion) -> tuple:
    return (CATEGORIES.index(q.category), q.subject, q.index)


def select_mmlu(cfg: DataConfig, data: MmluData) -> list[McQuestion]:
    """The questions evaluation scores: the balanced subset the config describes."""
    return balanced_subset(data, split=cfg.mmlu_split, per_category=cfg.mmlu_per_category, seed=cfg.seed)


def write_manifest(path: str | Path, questions: Sequence[McQuestion], *, meta: dict | None = None) -> Path:
    """Write (subject, split, index) of each question as JSON, so a run can score exactly these again."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {"kind": "mmlu_questions", "meta": meta or {}, "count": len(questions)}
    rows = ",\n  ".join(json.dumps([q.subject, q.split, q.index]) for q in questions)
    path.write_text(json.dumps(head, indent=1)[:-2] + f',\n "questions": [\n  {rows}\n ]\n}}\n')
    return path
