"""One engine for every label and task of a stage: rows, requests, streamed results, per-label files (no Ray)."""
from __future__ import annotations

import json

import pytest

from tradeoff_ray.infer.engine import Choice, ChoiceRequest, Failed, Generation, GenerateRequest
from tradeoff_ray.infer.serving import serve_rows, spread
from tests.unit.infer.helpers import task_rows, tiny_data
from tradeoff_ray.infer.shared import evaluate_labels
from tradeoff_ray.records import read_jsonl
from tradeoff_ray.score_options import SqlScoringOptions
from tradeoff_ray.tasks import get_task


def _base_rows(cfg, spider, mmlu, tokenizer):
    return (task_rows("spider", cfg, spider, tokenizer, label="base")
            + task_rows("mmlu", cfg, mmlu, tokenizer, label="base"))


class StreamingScripted:
    """A streaming engine with known answers per adapter: SQL by question, a favoured MMLU letter; results
    come back in reverse order; prompts containing 'POISON' fail."""

    def __init__(self, tokenizer, answers: dict, letter: dict):
        self.tokenizer, self.answers, self.letter = tokenizer, answers, letter
        self.calls = []

    def describe(self):
        return "streaming scripted"

    def stream(self, requests):
        self.calls.append(list(requests))
        out = []
        for i, r in enumerate(requests):
            if isinstance(r, GenerateRequest):
                if "POISON" in r.prompt:
                    out.append((i, Failed("ValueError: prompt too long")))
                    continue
                text = next((a for q, a in self.answers.get(r.adapter, {}).items() if q in r.prompt), "no idea")
                out.append((i, Generation(text=text, n_new_tokens=3, seconds=0.01)))
            else:
                assert isinstance(r, ChoiceRequest) and len(r.continuations) == 4
                fav = "ABCD".index(self.letter.get(r.adapter, "A"))
                out.append((i, Choice(logprobs=[-0.1 if k == fav else -3.0 for k in range(4)], seconds=0.01)))
        return iter(out[::-1])


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_every_label_and_task_in_one_engine_call(tiny_cfg, tiny_spider_data, tiny_mmlu_data, lora_adapter_dir,
                                                 tokenizer, tmp_path):
    dev = tiny_spider_data.dev
    answers = {None: {dev[0].question: dev[0].query},  # base: right on question 0 only
               "tuned": {dev[0].question: dev[0].query, dev[1].question: dev[1].query}}
    engine = StreamingScripted(tokenizer, answers, {None: "A", "tuned": "B"})
    summaries = evaluate_labels(tiny_cfg, labels={"base": None, "tuned": lora_adapter_dir}, out_dir=tmp_path,
                                data=tiny_data(tiny_spider_data, tiny_mmlu_data), engine=engine)
    assert len(engine.calls) == 1  # both labels, both tasks, one submission
    sent = engine.calls[0]
    assert {r.adapter for r in sent} == {None, "tuned"} and len(sent) == 2 * (6 + 8)
    for label, right_sql, letter in (("base", {"dev-0000"}, "A"), ("tuned", {"dev-0000", "dev-0001"}, "B")):
        target = tmp_path / "evals" / label
        sql = list(read_jsonl(target / "spider.jsonl"))
        assert len(sql) == 7 and sum(r["error"] == "missing_db" for r in sql) == 1
        assert {r["example_id"] for r in sql if r["ex"] == 1} == right_sql
        mm = list(read_jsonl(target / "mmlu.jsonl"))
        assert len(mm) == 8 and {r["pred"] for r in mm} == {letter} and {r["label"] for r in mm} == {label}
        saved = json.loads((target / "summary.json").read_text())
        assert saved["timing"]["shared"]["labels"] == ["base", "tuned"]
        assert summaries[label]["tasks"]["spider"]["measures"]["spider"]["correct"] == len(right_sql)
        assert not list(target.glob("*partial*"))
    assert summaries["tuned"]["adapter"] == str(lora_adapter_dir) and summaries["tuned"]["merged"] is False


def test_a_failed_request_is_an_error_row_not_a_lost_one(tiny_cfg, tiny_spider_data, tiny_mmlu_data, tokenizer):
    rows = _base_rows(tiny_cfg, tiny_spider_data, tiny_mmlu_data, tokenizer)
    rows[0] = {**rows[0], "prompt": rows[0]["prompt"] + " POISON"}
    engine = StreamingScripted(tokenizer, {}, {})
    done = [r for chunk in serve_rows(engine, rows, chunk_rows=3) for r in chunk]
    assert len(done) == len(rows)
    bad = [r for r in done if r.get("engine_error")]
    assert len(bad) == 1 and bad[0]["raw_generation"] is None and "too long" in bad[0]["engine_error"]
    from tradeoff_ray.infer.stages import score_rows
    from tradeoff_ray.score.sql_score import SqlScorer

    (scored,) = score_rows(get_task("spider"), SqlScorer(SqlScoringOptions(timeout_s=1.0)), bad)
    assert (scored["ex"], scored["error"]) == (0, "engine_error")


def test_an_engine_without_stream_serves_one_model(tiny_cfg, tiny_spider_data, tiny_mmlu_data, tokenizer):
    from tests.unit.infer.test_pipeline_local import ScriptedEngine

    rows = _base_rows(tiny_cfg, tiny_spider_data, tiny_mmlu_data, tokenizer)
    done = [r for c in serve_rows(ScriptedEngine({}), rows) for r in c]
    assert len(done) == len(rows)
    mmlu = [r for r in done if r["task"] == "mmlu"]
    assert {r["pred"] for r in get_task("mmlu").score_rows(None, mmlu)} == {"A"}
    tagged = [{**r, "adapter": "x"} for r in rows]
    with pytest.raises(ValueError, match="serves one model"):
        list(serve_rows(ScriptedEngine({}), tagged))
    with pytest.raises(ValueError, match=r"lack column\(s\) \['task', 'kind'\]"):
        list(serve_rows(ScriptedEngine({}), [{"label": "a", "adapter": None, "prompt": "p"}]))


def test_spread_keeps_prefix_groups_whole_and_balances():
    rows = [{"label": lab, "task": "sql", "db_id": f"db{i % 5}", "prompt": str(i)} for lab in "ab" for i in range(40)]
    shares = spread(rows, 3)
    assert sorted(id(r) for s in shares for r in s) == sorted(id(r) for r in rows)
    where = {}
    for n, share in enumerate(shares):
        for r in share:
            assert where.setdefault((r["label"], r["db_id"]), n) == n
    assert max(map(len, shares)) - min(map(len, shares)) <= 8
