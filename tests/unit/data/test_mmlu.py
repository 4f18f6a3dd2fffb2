"""MMLU loaders, the official category map, the balanced subset and its manifest."""
from __future__ import annotations

import csv
import json
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from tradeoff_ray.config import DataConfig
from tradeoff_ray.data.mmlu import (
    balanced_subset,
    load_mmlu,
    load_mmlu_dir,
    select_mmlu,
    write_manifest,
)
from tradeoff_ray.data.mmlu_categories import SUBJECT_CATEGORY, subjects_of
from tradeoff_ray.data.types import CATEGORIES, McQuestion, MmluData
from tradeoff_ray.errors import UserError


def test_category_map_is_the_official_one():
    assert len(SUBJECT_CATEGORY) == 57
    assert set(SUBJECT_CATEGORY.values()) == set(CATEGORIES)
    assert {c: len(subjects_of(c)) for c in CATEGORIES} == {"STEM": 18, "humanities": 13, "social_sciences": 12,
                                                             "other": 14}
    # spot checks against hendrycks/test categories.py
    assert SUBJECT_CATEGORY["anatomy"] == "other" and SUBJECT_CATEGORY["formal_logic"] == "humanities"
    assert SUBJECT_CATEGORY["human_sexuality"] == "social_sciences" and SUBJECT_CATEGORY["astronomy"] == "STEM"


def _write(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def make_mmlu_dir(root: Path, *, per_subject: dict[str, int] | None = None) -> Path:
    """Hendrycks layout: 5 dev rows per subject, `n` test rows, quoted commas and newlines in the first."""
    per_subject = per_subject or {"astronomy": 4, "anatomy": 3}
    for subject, n in per_subject.items():
        _write(root / "dev" / f"{subject}_dev.csv", [[f"{subject} dev {i}", "a", "b", "c", "d", "A"] for i in range(5)])
        rows = [[f'Which, of "these"\nis {subject} {i}?', "one, two", "x", "y", "z", "ABCD"[i % 4]] for i in range(n)]
        _write(root / "test" / f"{subject}_test.csv", rows)
    return root


def test_loads_hendrycks_csv_with_quotes_and_newlines(tmp_path):
    data = load_mmlu_dir(make_mmlu_dir(tmp_path / "mmlu"))
    q = data.splits["test"]["astronomy"][1]
    assert q.example_id == "astronomy/test/1" and q.index == 1 and q.category == "STEM"
    assert q.question == 'Which, of "these"\nis astronomy 1?' and q.choices == ("one, two", "x", "y", "z")
    assert q.answer == "B" and q.answer_index == 1
    assert data.subject_category == {"anatomy": "other", "astronomy": "STEM"}
    assert [e.index for e in data.dev_exemplars("anatomy", 3)] == [0, 1, 2]
    assert len(data.questions("test")) == 7 and "val" not in data.splits


def test_unknown_subjects_are_named(tmp_path):
    root = make_mmlu_dir(tmp_path / "mmlu")
    _write(root / "test" / "cooking_test.csv", [["q", "a", "b", "c", "d", "A"]])
    with pytest.raises(UserError, match=r"\['cooking'\]"):
        load_mmlu_dir(root)


def test_bad_rows_and_missing_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="dev/ val/ test/"):
        load_mmlu_dir(tmp_path)
    root = make_mmlu_dir(tmp_path / "mmlu")
    _write(root / "test" / "anatomy_test.csv", [["q", "a", "b", "c", "d", "E"]])
    with pytest.raises(UserError, match="anatomy_test.csv row 1"):
        load_mmlu_dir(root)


def test_hub_loader_maps_splits_and_answer_indices(monkeypatch, tmp_path):
    def rows(subject: str, n: int) -> list[dict]:
        return [{"question": f"{subject} {i}", "subject": subject, "choices": ["a", "b", "c", "d"], "answer": i % 4}
                for i in range(n)]

    # the shape datasets.load_dataset returns (split -> iterable of row dicts); a stand-in module keeps it offline
    hub = {"test": rows("virology", 6) + rows("sociology", 2), "validation": rows("virology", 2),
           "dev": rows("virology", 5), "auxiliary_train": rows("virology", 3)}
    calls = []
    monkeypatch.setitem(sys.modules, "datasets",
                        types.SimpleNamespace(load_dataset=lambda *a, **k: calls.append(a) or hub))
    data = load_mmlu(DataConfig(mmlu_dir="hub"), cache=tmp_path)
    assert calls == [("cais/mmlu", "all")]
    assert sorted(data.splits) == ["dev", "test", "val"]
    q = data.splits["test"]["virology"][5]
    assert (q.example_id, q.answer, q.category) == ("virology/test/5", "B", "other")
    assert data.splits["test"]["sociology"][1].index == 1


def _synthetic(sizes: dict[str, int]) -> MmluData:
    splits = {"test": {s: [McQuestion(f"{s}/test/{i}", s, SUBJECT_CATEGORY[s], "test", i, f"q{i}",
                                      ("a", "b", "c", "d"), "A") for i in range(n)] for s, n in sizes.items()}}
    return MmluData(splits=splits, subject_category={s: SUBJECT_CATEGORY[s] for s in sizes})


FULL = _synthetic({s: 20 + (7 * i) % 90 for i, s in enumerate(sorted(SUBJECT_CATEGORY))})


def test_balanced_subset_is_seeded_and_balanced_per_category():
    a = balanced_subset(FULL, split="test", per_category=50, seed=0)
    assert a == balanced_subset(FULL, split="test", per_category=50, seed=0)
    assert a != balanced_subset(FULL, split="test", per_category=50, seed=1)
    assert Counter(q.category for q in a) == {c: 50 for c in CATEGORIES}
    assert len({q.example_id for q in a}) == 200


def test_balanced_subset_represents_every_subject_roughly_by_size():
    subset = balanced_subset(FULL, split="test", per_category=50, seed=3)
    counts = Counter(q.subject for q in subset)
    assert set(counts) == set(SUBJECT_CATEGORY)  # N >= #subjects: every subject at least once
    for category in CATEGORIES:
        subjects = subjects_of(category)
        total = sum(len(FULL.splits["test"][s]) for s in subjects)
        for s in subjects:
            share = 50 * len(FULL.splits["test"][s]) / total
            assert abs(counts[s] - share) <= 1.5, (s, counts[s], share)


def test_balanced_subset_small_n_and_whole_split():
    few = balanced_subset(FULL, split="test", per_category=3, seed=0)
    assert Counter(q.category for q in few) == {c: 3 for c in CATEGORIES}
    assert len({q.subject for q in few}) == 12  # fewer questions than subjects: one each from seeded subjects
    assert len(balanced_subset(FULL, split="test", per_category=None, seed=0)) == len(FULL.questions("test"))
    tiny = _synthetic({"anatomy": 2, "virology": 1, "astronomy": 40})
    assert Counter(q.category for q in balanced_subset(tiny, split="test", per_category=10, seed=0)) == {
        "other": 3, "STEM": 10}  # a category with fewer questions gives all it has
    with pytest.raises(UserError, match="split 'val'"):
        balanced_subset(FULL, split="val", per_category=5, seed=0)


def test_select_mmlu_follows_the_config():
    cfg = DataConfig(mmlu_per_category=7, seed=5)
    assert select_mmlu(cfg, FULL) == balanced_subset(FULL, split="test", per_category=7, seed=5)


def test_manifest_names_every_question_of_the_subset_in_order(tmp_path):
    subset = balanced_subset(FULL, split="test", per_category=10, seed=2)
    path = write_manifest(tmp_path / "sub" / "manifest.json", subset, meta={"seed": 2})
    payload = json.loads(path.read_text())
    assert payload["count"] == 40 and payload["meta"] == {"seed": 2}
    assert payload["questions"] == [[q.subject, q.split, q.index] for q in subset]
