"""The one-engine-per-device stage path through Ray (engine actor streaming rows, SQL scorer tasks), run
with the HF engine on the tiny model: the same results as the plain in-process stages."""
from __future__ import annotations

import pytest

from tests.unit.infer.helpers import tiny_config, tiny_data, tiny_mmlu, tiny_spider
from tradeoff_ray.infer.pipeline import evaluate
from tradeoff_ray.infer.shared import EnginePool, evaluate_labels
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.records import read_jsonl

pytestmark = pytest.mark.integration


def test_engine_actor_stream_equals_the_plain_stages(local_ray, tiny_model_dir, tmp_path):
    import ray

    spider, mmlu = tiny_spider(tmp_path / "spider"), tiny_mmlu()
    cfg = tiny_config(tiny_model_dir, tmp_path / "cache")
    spec = EngineSpec(kind="hf", model_path=str(tiny_model_dir), batch_size=4, threads=1)
    with EnginePool(cfg, spec, stage="test-shared") as pool:
        assert pool.names[0].startswith("test-shared-engine-0-") and ray.get_actor(pool.names[0]) is not None
        summary = evaluate_labels(cfg, labels={"base": None}, out_dir=tmp_path / "ray", data=tiny_data(spider, mmlu),
                                  pool=pool)["base"]
    local = evaluate(cfg, label="base", out_dir=tmp_path / "local", data=tiny_data(spider, mmlu), use_ray=False)
    keys = ("example_id", "raw_generation", "pred_sql", "ex", "error")
    got = [{k: r[k] for k in keys} for r in read_jsonl(tmp_path / "ray" / "evals" / "base" / "spider.jsonl")]
    want = [{k: r[k] for k in keys} for r in read_jsonl(tmp_path / "local" / "evals" / "base" / "spider.jsonl")]
    n = [s["tasks"]["spider"]["measures"]["spider"]["n"] for s in (summary, local)]
    assert got == want and n == [6, 6]
    for shots in (0, 1):
        a = [r for r in read_jsonl(tmp_path / "ray" / "evals" / "base" / "mmlu.jsonl") if r["shots"] == shots]
        b = [r for r in read_jsonl(tmp_path / "local" / "evals" / "base" / "mmlu.jsonl") if r["shots"] == shots]
        assert [r["pred"] for r in a] == [r["pred"] for r in b]
        assert [x for r in a for x in r["logprobs"]] == pytest.approx([x for r in b for x in r["logprobs"]], abs=1e-4)
    assert summary["timing"]["shared"]["engines"] == 1
