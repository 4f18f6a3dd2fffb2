"""Tiny Spider-format and MMLU-format benchmarks made in code, and a config that evaluates them fast.

Shared by tests/unit/infer and tests/integration/test_eval_pipeline.py.
"""
from __future__ import annotations

from pathlib import Path

from tests.fixtures import make_singer_db
from tradeoff_ray.config import ExperimentConfig, config_from_dict
from tradeoff_ray.data.types import McQuestion, MmluData, SpiderData, SqlExample

SINGER_QUESTIONS = [
    ("How many singers are there?", "SELECT count(*) FROM singer"),
    ("List the names of singers older than 30.", "SELECT name FROM singer WHERE age > 30"),
    ("What is the average age of singers?", "SELECT avg(age) FROM singer"),
    ("Name the countries in alphabetical order.", "SELECT name FROM country ORDER BY name"),
    ("How many singers come from each country?",
     "SELECT country_id, count(*) FROM singer GROUP BY country_id"),
    ("Which singers are from Japan?",
     "SELECT T1.name FROM singer AS T1 JOIN country AS T2 ON T1.country_id = T2.country_id WHERE T2.name = 'Japan'"),
]


def tiny_spider(root: Path) -> SpiderData:
    """Six questions on a real SQLite file plus one whose database file is missing."""
    db = root / "database" / "singer" / "singer.sqlite"
    if not db.exists():
        make_singer_db(db)
    dev = [SqlExample(f"dev-{i:04d}", "dev", "singer", q, sql) for i, (q, sql) in enumerate(SINGER_QUESTIONS)]
    dev.append(SqlExample(f"dev-{len(dev):04d}", "dev", "lost_db", "How many rows?", "SELECT count(*) FROM t"))
    return SpiderData(train=[], dev=dev, db_paths={"singer": db}, source=str(root))


def _q(subject: str, split: str, i: int, answer: str) -> McQuestion:
    return McQuestion(example_id=f"{subject}/{split}/{i}", subject=subject,
                      category={"high_school_physics": "STEM", "philosophy": "humanities"}[subject],
                      split=split, index=i, question=f"{split} question {i} about {subject.replace('_', ' ')}?",
                      choices=(f"first {i}", f"second {i}", f"third {i}", f"fourth {i}"), answer=answer)


def tiny_mmlu() -> MmluData:
    """Two subjects (STEM, humanities), three test questions and two dev exemplars each."""
    splits: dict[str, dict[str, list[McQuestion]]] = {"test": {}, "dev": {}}
    for subject in ("high_school_physics", "philosophy"):
        splits["test"][subject] = [_q(subject, "test", i, "ABCD"[i % 4]) for i in range(3)]
        splits["dev"][subject] = [_q(subject, "dev", i, "DCBA"[i % 4]) for i in range(2)]
    return MmluData(splits=splits, subject_category={"high_school_physics": "STEM", "philosophy": "humanities"},
                    source="tiny-mmlu")


def tiny_config(model_dir: Path, cache_dir: Path, **eval_overrides) -> ExperimentConfig:
    """CPU-sized settings: 1 generation actor (1 CPU) + 1 scorer actor (0.5 CPU) fit a 2-CPU local Ray."""
    ev = {"engine": "hf", "batch_size": 4, "max_new_tokens": 12, "mmlu_shots": [0, 1], "sql_timeout_s": 1.0,
          "generation_actors": 1, "scorer_actors": 1, "cpus_per_generation_actor": 1, "cpus_per_scorer_actor": 0.5}
    ev.update(eval_overrides)
    return config_from_dict({"name": "tiny", "model": {"name": str(model_dir), "cache_dir": str(cache_dir)},
                             "data": {"mmlu_per_category": 2, "seed": 0}, "eval": ev})


def make_lora_adapter(model_dir: Path, dest: Path, *, r: int = 4, alpha: float = 32, seed: int = 1) -> Path:
    """A peft LoRA adapter on every projection with random non-zero A and B (`init_lora_weights=False`).

    A freshly initialised LoRA has B = 0 and changes nothing; random B makes the adapter visibly
    change the model, which is what the parity and adapter-vs-base tests need.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, init_lora_weights=False,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    get_peft_model(base, cfg).save_pretrained(dest)
    return dest


def tiny_data(spider: SpiderData | None = None, mmlu: MmluData | None = None, **more) -> dict:
    """Task name -> TaskData of the given benchmarks (what `evaluate(data=...)` takes)."""
    from tradeoff_ray.tasks import TaskData

    out = {name: TaskData(d, getattr(d, "source", "") or name) for name, d in (("spider", spider), ("mmlu", mmlu))
           if d is not None}
    out.update({name: TaskData(d, getattr(d, "source", "") or name) for name, d in more.items()})
    return out


def task_rows(name: str, cfg: ExperimentConfig, data, tokenizer=None, *, label: str = "t") -> list[dict]:
    """The rows a task serves for `data` (its loader's object), tagged with `label`, as evaluation builds them."""
    from tradeoff_ray.tasks import TaskData, get_task

    task = get_task(name)
    td = TaskData(data, "fixture")
    rows, _ = task.rows(cfg, td, task.select(cfg, td), tokenizer)
    return [{**r, "label": label, "adapter": None} for r in rows]
