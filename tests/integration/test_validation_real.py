"""Tune's validation sets on the real copies (SPIDER_DIR / MMLU_DIR / GSM8K_DIR; skipped when unset): held out
from training, executable, balanced, and disjoint from every test item a report scores."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradeoff_ray.config import DataConfig, ExperimentConfig
from tradeoff_ray.data.types import CATEGORIES

pytestmark = [pytest.mark.integration, pytest.mark.realdata]


def test_spider_validation_is_held_out_databases_with_files(spider_dir):
    from tradeoff_ray.data.spider import load_spider_dir
    from tradeoff_ray.data.validation import spider_validation
    from tradeoff_ray.train.dataset import select_examples

    spider = load_spider_dir(spider_dir)
    cfg = ExperimentConfig(data={"spider_dir": str(spider_dir), "validation_fraction": 0.1})
    train, _ = select_examples(spider, cfg)
    chosen = spider_validation(spider, cfg.data, limit=200)
    assert len(chosen) == 200
    assert not {e.db_id for e in chosen} & {e.db_id for e in train}
    assert not {e.db_id for e in chosen} & {e.db_id for e in spider.dev}  # Spider's dev databases are disjoint
    assert all(e.db_id in spider.db_paths for e in chosen)


def test_mmlu_validation_is_the_balanced_val_split(mmlu_dir):
    from tradeoff_ray.data.mmlu import load_mmlu_dir
    from tradeoff_ray.data.validation import mmlu_validation

    chosen = mmlu_validation(load_mmlu_dir(mmlu_dir), DataConfig(), limit=200)
    assert len(chosen) == 200 and all(q.split == "val" for q in chosen)
    assert {c: sum(q.category == c for q in chosen) for c in CATEGORIES} == {c: 50 for c in CATEGORIES}


def test_gsm8k_validation_is_train_after_the_exemplars():
    from tradeoff_ray.data.gsm8k import load_gsm8k_dir
    from tradeoff_ray.data.validation import gsm8k_validation

    value = os.environ.get("GSM8K_DIR")
    if not value:
        pytest.skip("GSM8K_DIR not set (real GSM8K copy)")
    data = load_gsm8k_dir(Path(value))
    chosen = gsm8k_validation(data, DataConfig(), limit=100, exemplars=8)
    exemplars = {p.example_id for p in data.exemplars(8)}
    assert len(chosen) == 100 and all(p.split == "train" for p in chosen)
    assert not exemplars & {p.example_id for p in chosen}
