"""A fourth benchmark, registered from this one file, flows through evaluation, analysis and the report.

Nothing in the pipeline, the analysis or the report knows this task: it gets its own results file, a
summary per label, paired comparisons with Holm-adjusted tests, a column in the trade-off table, a
section in the report and the generic sanity checks, exactly like the built-in tasks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import pytest

from tradeoff_ray.records import write_json
from tradeoff_ray.tasks import CHOICE, GENERAL, Measure, Task, TaskData, configured_tasks, register, unregister

NUMBERS = list(range(12))


@dataclass
class ParityResult:
    label: str
    example_id: str
    prompt_hash: str
    number: int
    pred: str | None
    correct: int
    logprobs: list[float] | None = None


class ParityTask(Task):
    """'Is N even?' answered by the log-likelihood of ' yes' vs ' no'; broken down by N's size."""

    name = "parity"
    title = "Parity"
    record_type = ParityResult
    role = GENERAL

    def load(self, cfg: Any) -> TaskData:
        return TaskData(NUMBERS, "numbers made in code")

    def select(self, cfg: Any, data: TaskData) -> list[Any]:
        return list(data.data)

    def rows(self, cfg, data, items, tokenizer):
        from tradeoff_ray.prompts import prompt_hash

        rows = []
        for n in items:
            prompt = f"Question: is {n} an even number?\nAnswer:"
            rows.append({"task": self.name, "kind": CHOICE, "example_id": f"n{n:02d}", "prompt": prompt,
                         "prompt_hash": prompt_hash(prompt), "continuations": [" yes", " no"], "number": n})
        return rows, []

    def score_rows(self, scorer, rows):
        out = []
        for r in rows:
            pred = None if r.get("engine_error") else ("yes" if r["logprobs"][0] >= r["logprobs"][1] else "no")
            out.append({**r, "pred": pred, "correct": int(pred == ("yes" if r["number"] % 2 == 0 else "no"))})
        return out

    def record(self, row, label):
        return ParityResult(label, row["example_id"], row["prompt_hash"], int(row["number"]), row["pred"],
                            int(row["correct"]), row.get("logprobs"))

    def measures(self, records: Sequence[Any]) -> list[Measure]:
        return [Measure("parity", self.name, self.title, self.role, group_by="size", groups=("small", "large"))]

    def group(self, record, measure):
        return "small" if record.number < 6 else "large"

    def fingerprint(self, record):
        return record.logprobs


@pytest.fixture
def parity():
    task = register(ParityTask())
    yield task
    unregister(task.name)


def test_a_registered_task_flows_through_evaluation_analysis_and_report(parity, tiny_cfg, tiny_spider_data,
                                                                         lora_adapter_dir, tmp_path):
    from tests.unit.infer.helpers import tiny_data
    from tradeoff_ray.infer.pipeline import evaluate
    from tradeoff_ray.report.build import build_report_with_metrics

    cfg = tiny_cfg.model_copy(update={"eval": tiny_cfg.eval.model_copy(update={"tasks": ["spider", "parity"]})})
    assert [t.name for t in configured_tasks(cfg)] == ["spider", "parity"]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(cfg.to_yaml())
    data = tiny_data(tiny_spider_data)
    for label, adapter in (("baseline", None), ("lora", lora_adapter_dir)):
        summary = evaluate(cfg, label=label, out_dir=run, adapter_dir=adapter, data=data, use_ray=False)
        block = summary["tasks"]["parity"]["measures"]["parity"]
        assert block["n"] == 12 and set(block["by_group"]) == {"small", "large"}
        lines = (run / "evals" / label / "parity.jsonl").read_text().splitlines()
        assert len(lines) == 12 and json.loads(lines[0])["label"] == label
    write_json(run / "train" / "lora" / "result.json", {"status": "trained", "steps": 1})

    md, _, m = build_report_with_metrics(run, n_boot=100)
    assert [x["key"] for x in m["run"]["measures"]] == ["spider", "parity"]
    assert m["pareto"]["x"] == "parity" and m["pareto"]["y"] == "spider"
    comp = m["comparisons"]["lora"]["parity"]
    assert comp["n_paired"] == 12 and comp["p_holm"] is not None and set(comp["by_group"]) == {"small", "large"}
    assert m["labels"]["baseline"]["parity"]["correct"] == sum(
        json.loads(x)["correct"] for x in (run / "evals" / "baseline" / "parity.jsonl").read_text().splitlines())
    differs = next(c for c in m["checks"]["items"] if c["name"] == "adapter_differs" and c["label"] == "lora")
    assert differs["status"] == "passed"
    text = md.read_text()
    assert "| model | Spider EX % |" in text and "Parity %" in text and "## Parity by size" in text
    assert (run / "plots" / "by_group_parity.png").exists()
