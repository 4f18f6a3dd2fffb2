"""The data layer on the real Spider and MMLU copies (SPIDER_DIR / MMLU_DIR; skipped when unset)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from tradeoff_ray.config import DataConfig, PromptConfig
from tradeoff_ray.data.mmlu import balanced_subset, load_mmlu, load_mmlu_dir, write_manifest
from tradeoff_ray.data.schema import schema_text
from tradeoff_ray.data.spider import load_spider, load_spider_dir, missing_databases, split_train_validation
from tradeoff_ray.data.types import CATEGORIES

pytestmark = [pytest.mark.integration, pytest.mark.realdata]

OFFICIAL_TEST_SIZES = {"STEM": 3018, "humanities": 4705, "social_sciences": 3077, "other": 3242}


@pytest.fixture(scope="module")
def spider(spider_dir):
    return load_spider_dir(spider_dir)


@pytest.fixture(scope="module")
def mmlu(mmlu_dir):
    return load_mmlu_dir(mmlu_dir)


def test_spider_counts_and_missing_databases(spider):
    assert len(spider.dev) == 1034 and len(spider.executable("dev")) == 972
    assert {db: len(ids) for db, ids in spider.missing_dbs.items()} == {"wta_1": 62, "baseball_1": 82,
                                                                         "soccer_1": 14}
    assert list(missing_databases(spider, "dev")) == ["wta_1"]
    assert len(spider.train) == 7000 + 1659 and spider.train[7000].example_id == "train-07000"
    spider_dbs = {e.db_id for e in spider.train[:7000]}
    others_dbs = {e.db_id for e in spider.train[7000:]}
    assert (len(spider_dbs), len(spider_dbs & set(spider.db_paths))) == (140, 138)
    assert (len(others_dbs), len(others_dbs & set(spider.db_paths))) == (6, 6)
    assert len(spider.schemas) == 166


def test_spider_schema_text_has_foreign_keys_from_both_sources(spider):
    for source in ("sqlite", "tables_json"):
        text = schema_text(spider, "concert_singer", PromptConfig(schema_source=source, sample_rows=2))
        assert "FOREIGN KEY (Stadium_ID) REFERENCES stadium(Stadium_ID)" in text
        assert "PRIMARY KEY (Singer_ID)" in text and "-- 2 example rows" in text
    # training databases without a file still get a schema (from tables.json)
    assert "CREATE TABLE" in schema_text(spider, "baseball_1", PromptConfig(schema_source="sqlite"))


def test_every_spider_schema_serializes(spider):
    for db_id in sorted({e.db_id for e in spider.train + spider.dev}):
        for source in ("sqlite", "tables_json"):
            assert schema_text(spider, db_id, PromptConfig(schema_source=source)).startswith("CREATE TABLE")


def test_validation_split_of_real_training_databases(spider):
    train, val = split_train_validation(spider.train, fraction=0.1, seed=0)
    assert {e.db_id for e in train}.isdisjoint({e.db_id for e in val})
    assert len({e.db_id for e in val}) == round(0.1 * 146)


def test_mmlu_counts_match_the_official_release(mmlu):
    assert {s: len(mmlu.questions(s)) for s in ("dev", "val", "test")} == {"dev": 285, "val": 1531, "test": 14042}
    assert Counter(q.category for q in mmlu.questions("test")) == OFFICIAL_TEST_SIZES
    assert len(mmlu.subject_category) == 57
    assert all(len(mmlu.dev_exemplars(s, 5)) == 5 for s in mmlu.subject_category)


def test_balanced_subset_of_real_mmlu(mmlu, tmp_path):
    a = balanced_subset(mmlu, split="test", per_category=50, seed=0)
    assert a == balanced_subset(mmlu, split="test", per_category=50, seed=0)
    assert a != balanced_subset(mmlu, split="test", per_category=50, seed=1)
    assert Counter(q.category for q in a) == {c: 50 for c in CATEGORIES}
    assert len({q.subject for q in a}) == 57
    written = json.loads(write_manifest(tmp_path / "m.json", a).read_text())["questions"]
    assert written == [[q.subject, q.split, q.index] for q in a]
    assert len(balanced_subset(mmlu, split="test", per_category=None, seed=0)) == 14042


def test_config_paths_route_to_the_real_loaders(spider_dir, mmlu_dir, tmp_path):
    cfg = DataConfig(spider_dir=str(spider_dir), mmlu_dir=str(mmlu_dir))
    assert not load_spider(cfg, cache=tmp_path).is_demo and not load_mmlu(cfg, cache=tmp_path).is_demo


def test_data_command_on_real_data(spider_dir, mmlu_dir, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tradeoff_ray.cli", "data", "--spider-dir", str(spider_dir), "--mmlu-dir",
         str(mmlu_dir), "--per-category", "50", "--manifest", str(tmp_path / "m.json")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    dev_row = next(line for line in out.splitlines() if re.match(r"│ dev\s", line))
    assert "1,034" in dev_row and "972" in dev_row and "wta_1 (62 questions)" in dev_row
    assert "14,042" in out
    for title, size in (("STEM", "3,018"), ("humanities", "4,705"), ("social sciences", "3,077"), ("other", "3,242")):
        row = next(line for line in out.splitlines() if re.match(rf"│ {title}\s+│\s+\d+ │", line))
        assert row.rstrip(" │").endswith(size), row
    assert "seed 0 -> 200 questions" in out and "DEMO" not in out
    assert "wta_1" in done.stderr  # the one-line missing-database notice
    assert (tmp_path / "m.json").exists()


def test_balanced_subset_is_identical_across_processes(spider_dir, mmlu_dir, tmp_path):
    """Two separate runs (different hash seeds) pick the same 50-per-category subset; another seed differs."""
    import os

    def manifest(hash_seed: str, seed: int) -> str:
        out = tmp_path / f"m-{hash_seed}-{seed}.json"
        subprocess.run([sys.executable, "-m", "tradeoff_ray.cli", "data", "--spider-dir", str(spider_dir), "--mmlu-dir",
                        str(mmlu_dir), "--per-category", "50", "--seed", str(seed), "--manifest", str(out)], check=True, capture_output=True,
                       timeout=300, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        return out.read_text()

    assert manifest("1", 0) == manifest("2", 0) != manifest("3", 1)
