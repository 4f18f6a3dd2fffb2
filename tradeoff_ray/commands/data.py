"""`tradeoff-ray data`: what data a run would use — counts per split and category, missing databases,
and the balanced MMLU subset (optionally written as a manifest so a run can be repeated exactly).

    tradeoff-ray data                                        # the built-in demo data
    tradeoff-ray data --spider-dir ../shared/data/spider --mmlu-dir ../shared/data/mmlu
    tradeoff-ray data --per-category 50 --seed 1 --manifest mmlu_subset.json

Reads files only (no torch, no Ray), so it answers in a second or two.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tradeoff_ray.config import ExperimentConfig, cache_root, config_from_dict, load_config
from tradeoff_ray.data.mmlu import balanced_subset, load_mmlu, write_manifest
from tradeoff_ray.data.spider import load_spider, missing_databases
from tradeoff_ray.data.types import CATEGORIES, MmluData, SpiderData


def _n(value: int) -> str:
    return f"{value:,}"


def _title(category: str) -> str:
    return category.replace("_", " ")


def _with_flags(cfg: ExperimentConfig, **flags) -> ExperimentConfig:
    """`cfg` with the command-line flags that were given applied to its data section (validated)."""
    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return cfg
    raw = cfg.model_dump(mode="json")
    raw["data"].update(given)
    return config_from_dict(raw, source="(command-line flags)")


def spider_table(data: SpiderData) -> Table:
    table = Table(title=f"Text-to-SQL{' [DEMO DATA]' if data.is_demo else ''}", title_justify="left")
    for col in ("split", "questions", "databases", "with a file", "executable questions", "missing databases"):
        table.add_column(col, justify="left" if col in ("split", "missing databases") else "right")
    for split in ("dev", "train"):
        examples = getattr(data, split)
        db_ids = {e.db_id for e in examples}
        missing = missing_databases(data, split)
        table.add_row(split, _n(len(examples)), _n(len(db_ids)), _n(len(db_ids) - len(missing)),
                      _n(len(data.executable(split))),
                      ", ".join(f"{d} ({len(ids)} questions)" for d, ids in missing.items()) or "none")
    return table


def mmlu_tables(data: MmluData) -> tuple[Table, Table]:
    splits = [s for s in ("dev", "val", "test") if s in data.splits]
    per_split = Table(title=f"Multiple choice{' [DEMO DATA]' if data.is_demo else ''}", title_justify="left")
    for col in ("split", "questions", "subjects"):
        per_split.add_column(col, justify="left" if col == "split" else "right")
    for split in splits:
        per_split.add_row(split, _n(len(data.questions(split))), _n(len(data.splits[split])))
    per_cat = Table(title="Per category (official MMLU subject map)", title_justify="left")
    per_cat.add_column("category")
    per_cat.add_column("subjects", justify="right")
    for split in splits:
        per_cat.add_column(split, justify="right")
    for category in CATEGORIES:
        subjects = [s for s, c in data.subject_category.items() if c == category]
        counts = [sum(len(data.splits[split].get(s, [])) for s in subjects) for split in splits]
        per_cat.add_row(_title(category), _n(len(subjects)), *(_n(c) for c in counts))
    return per_split, per_cat


def subset_table(data: MmluData, *, split: str, per_category: int | None, seed: int) -> tuple[Table, list]:
    questions = balanced_subset(data, split=split, per_category=per_category, seed=seed)
    size = "the whole split" if per_category is None else f"{per_category} per category"
    table = Table(title=f"Balanced subset: {split} split, {size}, seed {seed} -> {_n(len(questions))} questions",
                  title_justify="left")
    for col, justify in (("category", "left"), ("questions", "right"), ("subjects", "right"),
                         ("per subject", "left")):
        table.add_column(col, justify=justify)
    for category in CATEGORIES:
        counts = Counter(q.subject for q in questions if q.category == category)
        of = sum(1 for c in data.subject_category.values() if c == category)
        table.add_row(_title(category), _n(sum(counts.values())), f"{len(counts)}/{of}",
                      ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    return table, questions


def main(config: Path | None = None, spider_dir: str | None = None, mmlu_dir: str | None = None,
         seed: int | None = None, per_category: int | None = None, manifest: Path | None = None,
         overrides: list[str] | None = None) -> int:
    cfg = _with_flags(load_config(config, overrides), spider_dir=spider_dir, mmlu_dir=mmlu_dir, seed=seed,
                      mmlu_per_category=per_category)
    console = Console(width=max(Console().width, 120))
    spider = load_spider(cfg.data, cache=cache_root(cfg.model))
    console.print(f"Text-to-SQL source: {spider.source}")
    console.print(spider_table(spider))
    console.print(f"schemas in tables.json: {_n(len(spider.schemas))}; database files found: "
                  f"{_n(len(spider.db_paths))}\n")
    mmlu = load_mmlu(cfg.data, cache=cache_root(cfg.model))
    console.print(f"multiple-choice source: {mmlu.source}")
    for table in mmlu_tables(mmlu):
        console.print(table)
    table, questions = subset_table(mmlu, split=cfg.data.mmlu_split, per_category=cfg.data.mmlu_per_category,
                                    seed=cfg.data.seed)
    console.print(table)
    if manifest is not None:
        meta = {"source": mmlu.source, "split": cfg.data.mmlu_split, "per_category": cfg.data.mmlu_per_category,
                "seed": cfg.data.seed, "is_demo": mmlu.is_demo}
        path = write_manifest(manifest, questions, meta=meta)
        console.print(f"wrote the subset's manifest ({_n(len(questions))} questions) to {path}")
    if cfg.data.gsm8k_dir:
        from tradeoff_ray.tasks import get_task

        task = get_task("gsm8k")  # its loader and its selection: what evaluation scores
        gsm8k = task.load(cfg)
        chosen = task.select(cfg, gsm8k)
        console.print(f"\nmath word problems (GSM8K) source: {gsm8k.source}: "
                      + ", ".join(f"{split} {_n(len(p))}" for split, p in gsm8k.data.splits.items())
                      + f"; scored: {_n(len(chosen))} test problems"
                      + (f" (seeded sample, data.gsm8k_limit={cfg.data.gsm8k_limit})" if cfg.data.gsm8k_limit else ""))
    if spider.is_demo or mmlu.is_demo:
        console.print("[bold yellow]Demo data in use.[/] Point data.spider_dir / data.mmlu_dir (or --spider-dir / "
                      "--mmlu-dir) at real Spider and MMLU copies for real numbers.")
    return 0
