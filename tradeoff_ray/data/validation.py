"""Validation sets for Ray Tune: what trials are scored on, so that no setting is chosen on a test set.

The reported numbers come from the test sets (Spider dev, MMLU test, GSM8K test), scored once for the
chosen settings. Choosing among trials on those same sets would overfit the choice to them and bias
the report upwards, so every trial is scored on held-out data of the same kind instead:

- Spider: questions of the train databases that training holds out for its validation loss
  (`data.spider.train_validation_examples`, the one split training uses), so no trial is scored on a
  schema it was trained on. Questions whose database file is missing are left out (they cannot be
  executed); the `limit` sample is drawn from the rest.
- MMLU: the `val` split, balanced over the four categories as the test selection is (`balanced_subset`).
- GSM8K: train problems after the first `exemplars` (the few-shot exemplars every prompt shows).

Each is a seeded sample of at most `limit` items (None = all). Missing data is a `UserError` naming the
setting to change.
"""
from __future__ import annotations

import math

from tradeoff_ray.config import DataConfig
from tradeoff_ray.data.gsm8k import Gsm8kData, MathProblem
from tradeoff_ray.data.mmlu import balanced_subset
from tradeoff_ray.data.spider import sample_examples, train_validation_examples
from tradeoff_ray.data.types import CATEGORIES, McQuestion, MmluData, SpiderData, SqlExample
from tradeoff_ray.errors import UserError

MMLU_VALIDATION_SPLIT = "val"


def spider_validation(spider: SpiderData, cfg: DataConfig, *, limit: int | None) -> list[SqlExample]:
    """Questions of the held-out train databases (all of their questions, not only those in the
    `train_limit` sample: none of them is trained on), executable ones only, seeded sample of `limit`."""
    if cfg.validation_fraction <= 0:
        raise UserError("Tune scores trials on Spider train databases held out from training, which needs "
                        "data.validation_fraction > 0 (e.g. 0.1)")
    if not spider.train:
        raise UserError(f"the Spider data at {spider.source or '(unknown)'} has no training examples, so no "
                        "databases can be held out for Tune's validation; point data.spider_dir at a Spider root "
                        "with train_spider.json (or *_min.json)")
    _, held_out = train_validation_examples(spider, cfg)
    held = {e.db_id for e in held_out}
    questions = [e for e in spider.train if e.db_id in held and e.db_id in spider.db_paths]
    if not questions:
        raise UserError(f"the held-out Spider train databases {sorted(held)} have no database file in "
                        f"{spider.source}, so Tune has nothing to execute; raise data.validation_fraction or "
                        "change data.seed")
    return sample_examples(questions, limit, cfg.seed)


def mmlu_validation(mmlu: MmluData, cfg: DataConfig, *, limit: int | None) -> list[McQuestion]:
    """The MMLU `val` split, `limit` questions balanced over the categories (None = the whole split)."""
    if MMLU_VALIDATION_SPLIT not in mmlu.splits or not mmlu.questions(MMLU_VALIDATION_SPLIT):
        raise UserError(f"Tune scores trials on MMLU's {MMLU_VALIDATION_SPLIT!r} split, which {mmlu.source} does "
                        f"not hold (it has {sorted(mmlu.splits)}); point data.mmlu_dir at a Hendrycks layout with "
                        f"{MMLU_VALIDATION_SPLIT}/<subject>_{MMLU_VALIDATION_SPLIT}.csv, or drop mmlu from eval.tasks")
    per_category = None if limit is None else max(1, math.ceil(limit / len(CATEGORIES)))
    return balanced_subset(mmlu, split=MMLU_VALIDATION_SPLIT, per_category=per_category, seed=cfg.seed)


def gsm8k_validation(gsm8k: Gsm8kData, cfg: DataConfig, *, limit: int | None, exemplars: int) -> list[MathProblem]:
    """GSM8K train problems after the first `exemplars` (those appear in every few-shot prompt), seeded
    sample of `limit`."""
    train = gsm8k.splits.get("train", [])
    problems = train[exemplars:]
    if not problems:
        raise UserError(f"Tune scores trials on GSM8K train problems, but {gsm8k.source} has "
                        f"{len(train)} train problem(s) and the first {exemplars} are few-shot exemplars; "
                        "data.gsm8k_dir must hold GSM8K's train.jsonl (or drop gsm8k from eval.tasks)")
    return sample_examples(problems, limit, cfg.seed)
