"""Tune's validation sets: held out from training and disjoint from the test items a report scores."""
from __future__ import annotations

import pytest

from tests.unit.train.tiny_spider import make_tiny_spider
from tradeoff_ray.config import DataConfig, ExperimentConfig
from tradeoff_ray.data.gsm8k import Gsm8kData, MathProblem
from tradeoff_ray.data.mmlu import load_mmlu, select_mmlu
from tradeoff_ray.data.types import CATEGORIES
from tradeoff_ray.data.validation import gsm8k_validation, mmlu_validation, spider_validation
from tradeoff_ray.errors import UserError


def test_spider_validation_is_the_held_out_databases_training_never_sees(tmp_path):
    from tradeoff_ray.train.dataset import select_examples

    spider = make_tiny_spider(tmp_path, n_dbs=8, repeats=2)
    cfg = ExperimentConfig(data={"validation_fraction": 0.25, "train_limit": 100, "seed": 3})
    train, held = select_examples(spider, cfg)
    chosen = spider_validation(spider, cfg.data, limit=None)
    assert {e.db_id for e in chosen} == {e.db_id for e in held}
    assert not {e.db_id for e in chosen} & {e.db_id for e in train}
    assert all(e.split == "train" for e in chosen)  # never Spider dev, the test set
    # all questions of the held-out databases, also those outside the train_limit sample
    assert len(chosen) == sum(e.db_id in {h.db_id for h in held} for e in spider.train)

    few = spider_validation(spider, cfg.data, limit=5)
    assert len(few) == 5 and set(e.example_id for e in few) <= {e.example_id for e in chosen}
    assert few == spider_validation(spider, cfg.data, limit=5)  # seeded


def test_spider_validation_skips_questions_it_cannot_execute_and_needs_a_held_out_split(tmp_path):
    spider = make_tiny_spider(tmp_path, n_dbs=5)
    data = DataConfig(validation_fraction=0.4)  # 2 of 5 databases held out
    held = {e.db_id for e in spider_validation(spider, data, limit=None)}
    gone = sorted(held)[0]
    del spider.db_paths[gone]
    assert gone not in {e.db_id for e in spider_validation(spider, data, limit=None)}
    with pytest.raises(UserError, match="data.validation_fraction > 0"):
        spider_validation(spider, DataConfig(validation_fraction=0), limit=None)


def test_mmlu_validation_is_the_val_split_balanced_over_categories(tmp_path):
    data = DataConfig()
    mmlu = load_mmlu(data, cache=tmp_path)
    chosen = mmlu_validation(mmlu, data, limit=8)
    assert chosen and all(q.split == "val" for q in chosen)
    assert {q.category for q in chosen} == set(CATEGORIES)
    assert len(chosen) == 8 and chosen == mmlu_validation(mmlu, data, limit=8)
    assert not {q.example_id for q in chosen} & {q.example_id for q in select_mmlu(data, mmlu)}
    mmlu.splits.pop("val")
    with pytest.raises(UserError, match="'val' split.*data.mmlu_dir"):
        mmlu_validation(mmlu, data, limit=8)


def test_gsm8k_validation_is_train_problems_after_the_few_shot_exemplars():
    def problems(split, n):
        return [MathProblem(f"{split}-{i:04d}", split, f"q{i}", "s", str(i)) for i in range(n)]

    gsm = Gsm8kData(splits={"test": problems("test", 5), "train": problems("train", 12)}, source="fixture")
    chosen = gsm8k_validation(gsm, DataConfig(), limit=None, exemplars=4)
    assert [p.example_id for p in chosen] == [f"train-{i:04d}" for i in range(4, 12)]
    assert len(gsm8k_validation(gsm, DataConfig(), limit=3, exemplars=4)) == 3
    with pytest.raises(UserError, match="train.jsonl"):
        gsm8k_validation(Gsm8kData(splits={"test": problems("test", 5)}, source="x"), DataConfig(), limit=3,
                         exemplars=0)


def test_a_task_without_a_validation_split_cannot_be_tuned_on():
    from tradeoff_ray.tasks import Task

    class Plain(Task):
        name = "plain"

    with pytest.raises(UserError, match="no validation split"):
        Plain().validation_items(ExperimentConfig(), None)
