"""The Ray Data evaluation pipeline end to end on a 2-CPU local Ray with the tiny model and tiny benchmarks.

One generation actor (1 CPU) and one scorer actor (0.5 CPU) fit the 2 CPUs, as on a laptop.
"""
from __future__ import annotations

import time

import pytest

from tests.unit.infer.helpers import make_lora_adapter, task_rows, tiny_config, tiny_data, tiny_mmlu, tiny_spider
from tradeoff_ray.infer.pipeline import evaluate, run_dataset
from tradeoff_ray.infer.plan import PRESET, ServePlan
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.records import GOLD, read_jsonl
from tradeoff_ray.tasks import get_task

pytestmark = pytest.mark.integration

ENDLESS = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


def _flat(records) -> list[float]:
    return [x for r in records for x in r["logprobs"]]


def _shots(path, k):
    return [r for r in read_jsonl(path) if r["shots"] == k]


def _spider(summary):
    return summary["tasks"]["spider"]["measures"]["spider"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("eval_pipeline")
    return {"spider": tiny_spider(root / "spider"), "mmlu": tiny_mmlu(), "root": root,
            "cfg": tiny_config(tiny_model_dir, root / "cache"),
            "adapter": make_lora_adapter(tiny_model_dir, root / "adapter")}


@pytest.fixture(scope="module")
def baseline(local_ray, bench):
    summary = evaluate(bench["cfg"], label="baseline", out_dir=bench["root"] / "run",
                       data=tiny_data(bench["spider"], bench["mmlu"]))
    return summary, bench["root"] / "run" / "evals" / "baseline"


def test_ray_pipeline_equals_the_plain_stages(baseline, bench, tmp_path):
    summary, target = baseline
    sql = list(read_jsonl(target / "spider.jsonl"))
    assert len(sql) == len(bench["spider"].dev) and _spider(summary)["n"] == 6
    assert not list(target.glob("*partial*"))  # streamed partial results are removed once complete
    local = evaluate(bench["cfg"], label="baseline", out_dir=tmp_path, data=tiny_data(bench["spider"], bench["mmlu"]),
                     use_ray=False)
    local_sql = list(read_jsonl(tmp_path / "evals" / "baseline" / "spider.jsonl"))
    keys = ("example_id", "prompt_hash", "raw_generation", "pred_sql", "ex", "error", "hardness")
    assert [{k: r[k] for k in keys} for r in sql] == [{k: r[k] for k in keys} for r in local_sql]
    for shots in (0, 1):
        ray_mm = _shots(target / "mmlu.jsonl", shots)
        local_mm = _shots(tmp_path / "evals" / "baseline" / "mmlu.jsonl", shots)
        assert [r["pred"] for r in ray_mm] == [r["pred"] for r in local_mm]
        assert _flat(ray_mm) == pytest.approx(_flat(local_mm), abs=1e-4)
    one = [s["tasks"]["mmlu"]["measures"]["mmlu_1shot"]["n"] for s in (summary, local)]
    assert one == [4, 4]


def test_pipeline_serves_the_adapter_not_the_base(baseline, bench):
    """The guard against a serving stack that silently runs the base model instead of the adapter."""
    _, base_dir = baseline
    summary = evaluate(bench["cfg"], label="lora", out_dir=bench["root"] / "run", adapter_dir=bench["adapter"],
                       data=tiny_data(bench["spider"], bench["mmlu"]))
    assert summary["merged"] and summary["adapter_hash"]
    base = {r["example_id"]: r["raw_generation"] for r in read_jsonl(base_dir / "spider.jsonl")}
    lora = {r["example_id"]: r["raw_generation"] for r in read_jsonl(base_dir.parent / "lora" / "spider.jsonl")}
    scored = [k for k in base if base[k]]
    assert scored and any(base[k] != lora[k] for k in scored)
    base_lp = _flat(_shots(base_dir / "mmlu.jsonl", 0))
    lora_lp = _flat(_shots(base_dir.parent / "lora" / "mmlu.jsonl", 0))
    assert max(abs(a - b) for a, b in zip(base_lp, lora_lp)) > 1e-2


def test_a_hanging_query_does_not_stall_the_dataset(local_ray, bench):
    cfg = bench["cfg"]
    rows = task_rows("spider", cfg, bench["spider"])
    presets = {r["prompt"]: r["gold_sql"] for r in rows}
    presets[rows[1]["prompt"]] = ENDLESS
    plan = ServePlan(engine=PRESET, reason="test", model="none",
                     spec=EngineSpec(kind=PRESET, model_path="", presets=presets))
    t0 = time.perf_counter()
    done = run_dataset(rows, cfg=cfg, plan=plan, tasks=[get_task("spider")])
    elapsed = time.perf_counter() - t0
    errors = {r["example_id"]: r["error"] for r in done}
    assert len(errors) == len(rows)
    assert errors.pop(rows[1]["example_id"]) == "timeout"
    assert set(errors.values()) == {"ok"}
    assert elapsed < 60  # actor start-up plus one 1 s timeout, not an endless query


def test_gold_mode_on_ray(local_ray, bench):
    summary = evaluate(bench["cfg"], label=GOLD, out_dir=bench["root"] / "run",
                       data=tiny_data(bench["spider"], bench["mmlu"]))
    assert _spider(summary)["accuracy_pct"] == 100.0 and _spider(summary)["unscorable"] == {"missing_db": 1}
    assert list(summary["tasks"]) == ["spider"]  # MMLU has no reference output to serve


def _write_benchmark_dirs(root, spider, mmlu):
    """The tiny benchmarks in the on-disk layouts the loaders read (Spider root, Hendrycks CSV)."""
    import csv
    import json
    import shutil

    sp = root / "spider_layout"
    (sp / "database" / "singer").mkdir(parents=True)
    shutil.copy(spider.db_paths["singer"], sp / "database" / "singer" / "singer.sqlite")
    (sp / "dev.json").write_text(json.dumps([{"db_id": e.db_id, "question": e.question, "query": e.query}
                                             for e in spider.dev]))
    mm = root / "mmlu_layout"
    for split, subjects in mmlu.splits.items():
        (mm / split).mkdir(parents=True)
        for subject, questions in subjects.items():
            with open(mm / split / f"{subject}_{split}.csv", "w", newline="") as f:
                csv.writer(f).writerows([q.question, *q.choices, q.answer] for q in questions)
    return sp, mm


def test_eval_command_end_to_end(local_ray, bench, tmp_path, capsys):
    from tradeoff_ray.commands.eval import main

    sp, mm = _write_benchmark_dirs(tmp_path, bench["spider"], bench["mmlu"])
    config = tmp_path / "tiny.yaml"
    config.write_text(bench["cfg"].to_yaml())
    code = main(config=config, out=tmp_path / "run", overrides=[f"data.spider_dir={sp}", f"data.mmlu_dir={mm}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "spider: " in out and "scored of 7" in out and "mmlu_1shot" in out and "missing_db 1" in out
    target = tmp_path / "run" / "evals" / "baseline"
    assert len(list(read_jsonl(target / "spider.jsonl"))) == 7
    assert (tmp_path / "run" / "config.yaml").exists()
