"""Training data for one LoRA variant: Spider train examples as TRL prompt/completion records.

Pure (no Ray, no torch): the driver builds the records once, checks their tokenized length, and
ships them to the Ray Train workers. What the model is trained on is decided here:

- `data.train_limit` first takes a seeded sample of Spider train (`data.spider.sample_examples`),
  then whole *databases* are held out for validation (`data.spider.split_train_validation`), so the
  validation loss is measured on schemas never seen in training, as Spider dev's are;
  `data.validation_limit` caps how many of those the validation loss runs over.
- Each example becomes `prompts.sql_training_record(schema_text(...), question, gold, cfg.prompt)`:
  the same system/user messages evaluation renders with `prompts.render_chat`, plus the SQL as the
  assistant turn. TRL tokenizes prompt and prompt+completion with the chat template and trains on
  the completion only (the SQL and the template's end-of-turn token, once).
- Examples longer than `variant.max_length` tokens are dropped whole and counted (never truncated:
  a cut-off SQL would teach the model to stop mid-query).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tradeoff_ray.config import ExperimentConfig, PromptConfig
from tradeoff_ray.data.schema import schema_text
from tradeoff_ray.data.spider import sample_examples, train_validation_examples
from tradeoff_ray.data.types import SpiderData, SqlExample
from tradeoff_ray.errors import UserError
from tradeoff_ray.prompts import sql_training_record

SHOWN_IDS = 5  # over-length example ids quoted in messages and result.json (all are in the manifest)


@dataclass
class SplitRecords:
    """One split's TRL records with the example ids in the same order, after the length filter."""

    records: list[dict[str, Any]]
    example_ids: list[str]
    over_length_ids: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # tokens of each kept record (prompt + completion)

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class SftData:
    """Train and validation records for one `max_length`, and what was left out and why."""

    train: SplitRecords
    validation: SplitRecords
    max_length: int
    validation_dbs: list[str]
    no_schema_ids: list[str] = field(default_factory=list)  # database has neither a file nor tables.json

    def summary(self) -> dict[str, Any]:
        """Counts for result.json and progress lines (a few ids, not all of them)."""
        def part(s: SplitRecords) -> dict[str, Any]:
            return {"examples": len(s), "tokens": sum(s.lengths), "max_tokens": max(s.lengths, default=0),
                    "over_length": len(s.over_length_ids), "over_length_ids": s.over_length_ids[:SHOWN_IDS]}

        return {"max_length": self.max_length, "train": part(self.train), "validation": part(self.validation),
                "validation_dbs": len(self.validation_dbs), "no_schema": len(self.no_schema_ids),
                "no_schema_ids": self.no_schema_ids[:SHOWN_IDS]}


def select_examples(spider: SpiderData, cfg: ExperimentConfig) -> tuple[list[SqlExample], list[SqlExample]]:
    """(train, validation) examples: seeded `train_limit` sample, then held-out databases, then a
    seeded `validation_limit` sample of the held-out examples (the rest of them are not trained on either)."""
    if not spider.train:
        raise UserError(f"the Spider data at {spider.source or '(unknown)'} has no training examples; "
                        "point data.spider_dir at a Spider root with train_spider.json (or *_min.json)")
    train, validation = train_validation_examples(spider, cfg.data)
    return train, sample_examples(validation, cfg.data.validation_limit, cfg.data.seed)


def training_records(examples: Sequence[SqlExample], spider: SpiderData, prompt: PromptConfig) -> list[dict[str, Any]]:
    """TRL conversational prompt/completion records, built with the schema and prompt evaluation uses."""
    return [sql_training_record(schema_text(spider, e.db_id, prompt), e.question, e.query, prompt) for e in examples]


def record_lengths(tokenizer: Any, records: Sequence[dict[str, Any]]) -> list[int]:
    """Tokens of prompt + completion as TRL tokenizes them (chat template, no extra special tokens)."""
    if not records:
        return []
    texts = [tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in records]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def filter_by_length(
    records: list[dict[str, Any]], ids: list[str], lengths: list[int], max_length: int
) -> SplitRecords:
    """Keep records of at most `max_length` tokens; the rest are dropped whole and their ids kept."""
    keep = [i for i, n in enumerate(lengths) if n <= max_length]
    kept = set(keep)
    return SplitRecords(records=[records[i] for i in keep], example_ids=[ids[i] for i in keep],
                        over_length_ids=[ids[i] for i in range(len(ids)) if i not in kept],
                        lengths=[lengths[i] for i in keep])


def build_sft_data(spider: SpiderData, cfg: ExperimentConfig, *, tokenizer: Any, max_length: int) -> SftData:
    """Train/validation records for a variant with `max_length`; raises when nothing is left to train on."""
    train_ex, val_ex = select_examples(spider, cfg)
    has_schema = set(spider.db_paths) | set(spider.schemas)
    no_schema = [e.example_id for e in train_ex + val_ex if e.db_id not in has_schema]
    train_ex = [e for e in train_ex if e.db_id in has_schema]
    val_ex = [e for e in val_ex if e.db_id in has_schema]
    splits = []
    for examples in (train_ex, val_ex):
        records = training_records(examples, spider, cfg.prompt)
        splits.append(filter_by_length(records, [e.example_id for e in examples],
                                       record_lengths(tokenizer, records), max_length))
    data = SftData(train=splits[0], validation=splits[1], max_length=max_length,
                   validation_dbs=sorted({e.db_id for e in val_ex}), no_schema_ids=no_schema)
    if not data.train.records:
        dropped = len(data.train.over_length_ids)
        raise UserError(
            f"no training example fits max_length={max_length} tokens ({dropped} of {dropped} are longer; "
            f"e.g. {data.train.over_length_ids[:SHOWN_IDS]}); raise the variant's max_length"
            if dropped else "no training examples left after the validation split; lower data.validation_fraction"
        )
    return data


def describe_drops(data: SftData) -> str | None:
    """One line about over-length and schema-less examples, or None when nothing was dropped."""
    parts = []
    for name, split in (("train", data.train), ("validation", data.validation)):
        n = len(split.over_length_ids)
        if n:
            total = n + len(split)
            parts.append(f"{n} of {total} {name} examples are longer than max_length={data.max_length} tokens "
                         f"and were dropped (e.g. {', '.join(split.over_length_ids[:SHOWN_IDS])})")
    if data.no_schema_ids:
        parts.append(f"{len(data.no_schema_ids)} examples have no schema (no database file, no tables.json entry) "
                     f"and were dropped (e.g. {', '.join(data.no_schema_ids[:SHOWN_IDS])})")
    return "; ".join(parts) or None


def write_split_manifest(path: Path, data: SftData, cfg: ExperimentConfig, *, variant: str) -> Path:
    """Example ids per split (kept and dropped), so a run's training data can be named exactly."""
    payload = {
        "kind": "train_split", "variant": variant, "max_length": data.max_length,
        "train_limit": cfg.data.train_limit, "validation_fraction": cfg.data.validation_fraction,
        "seed": cfg.data.seed, "validation_dbs": data.validation_dbs,
        "train": data.train.example_ids, "validation": data.validation.example_ids,
        "over_length": {"train": data.train.over_length_ids, "validation": data.validation.over_length_ids},
        "no_schema": data.no_schema_ids,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
    return path
