"""Training records: database-held-out validation, seeded sampling, over-length examples dropped whole."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from transformers import AutoTokenizer

from tradeoff_ray.data.schema import schema_text
from tradeoff_ray.errors import UserError
from tradeoff_ray.prompts import normalize_sql, sql_messages
from tradeoff_ray.train.dataset import (
    build_sft_data,
    describe_drops,
    record_lengths,
    select_examples,
    write_split_manifest,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_validation_databases_are_unseen_in_training(tiny_spider, tiny_cfg):
    train, val = select_examples(tiny_spider, tiny_cfg)
    assert train and val
    assert not {e.db_id for e in train} & {e.db_id for e in val}
    assert len(train) + len(val) == len(tiny_spider.train)


def test_train_limit_samples_before_the_split(tiny_spider, tiny_cfg):
    cfg = tiny_cfg.model_copy(update={"data": tiny_cfg.data.model_copy(update={"train_limit": 20})})
    train, val = select_examples(tiny_spider, cfg)
    assert len(train) + len(val) == 20
    again = select_examples(tiny_spider, cfg)
    assert [e.example_id for e in train] == [e.example_id for e in again[0]]  # seeded: same sample every run


def test_validation_limit_caps_the_held_out_examples(tiny_spider, tiny_cfg):
    cfg = tiny_cfg.model_copy(update={"data": tiny_cfg.data.model_copy(update={"validation_limit": 3})})
    train, val = select_examples(tiny_spider, cfg)
    full_train, full_val = select_examples(tiny_spider, tiny_cfg)
    assert len(val) == 3 and set(e.example_id for e in val) <= set(e.example_id for e in full_val)
    assert train == full_train  # held-out databases stay out of training


def test_records_use_the_evaluation_prompt_messages(tiny_spider, tiny_cfg, tokenizer):
    data = build_sft_data(tiny_spider, tiny_cfg, tokenizer=tokenizer, max_length=2048)
    by_id = {e.example_id: e for e in tiny_spider.train}
    for rec, eid in zip(data.train.records, data.train.example_ids):
        ex = by_id[eid]
        assert rec["prompt"] == sql_messages(schema_text(tiny_spider, ex.db_id, tiny_cfg.prompt), ex.question,
                                             tiny_cfg.prompt)
        assert rec["completion"] == [{"role": "assistant", "content": normalize_sql(ex.query)}]


def test_over_length_examples_are_counted_and_dropped_whole(tiny_spider, tiny_cfg, tokenizer):
    # make three examples much longer than the rest
    long_ids = {e.example_id for e in tiny_spider.train[:3]}
    train = [replace(e, question=e.question + " and" * 400) if e.example_id in long_ids else e
             for e in tiny_spider.train]
    spider = replace(tiny_spider, train=train)
    full = build_sft_data(spider, tiny_cfg, tokenizer=tokenizer, max_length=100_000)
    lengths = dict(zip(full.train.example_ids + full.validation.example_ids,
                       full.train.lengths + full.validation.lengths))
    limit = max(n for eid, n in lengths.items() if eid not in long_ids)
    assert all(lengths[eid] > limit for eid in long_ids)

    data = build_sft_data(spider, tiny_cfg, tokenizer=tokenizer, max_length=limit)
    dropped = set(data.train.over_length_ids) | set(data.validation.over_length_ids)
    assert dropped == long_ids
    kept = data.train.example_ids + data.validation.example_ids
    assert not dropped & set(kept) and len(kept) == len(lengths) - 3
    # kept records are whole: their token count is unchanged and within the limit
    assert record_lengths(tokenizer, data.train.records) == data.train.lengths
    assert all(n <= limit for n in data.train.lengths + data.validation.lengths)
    summary = data.summary()
    assert summary["train"]["over_length"] + summary["validation"]["over_length"] == 3
    line = describe_drops(data)
    assert line and f"max_length={limit}" in line


def test_nothing_fits_is_a_user_error(tiny_spider, tiny_cfg, tokenizer):
    with pytest.raises(UserError, match="max_length"):
        build_sft_data(tiny_spider, tiny_cfg, tokenizer=tokenizer, max_length=10)


def test_manifest_names_every_example(tiny_spider, tiny_cfg, tokenizer, tmp_path):
    data = build_sft_data(tiny_spider, tiny_cfg, tokenizer=tokenizer, max_length=2048)
    path = write_split_manifest(tmp_path / "train_split.json", data, tiny_cfg, variant="v")
    payload = json.loads(path.read_text())
    assert payload["train"] == data.train.example_ids
    assert payload["validation"] == data.validation.example_ids
    assert set(payload["validation_dbs"]) == {e.db_id for e in tiny_spider.train
                                              if e.example_id in set(payload["validation"])}
