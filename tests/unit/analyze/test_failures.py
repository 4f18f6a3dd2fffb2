"""Error taxonomy counts and the rule-chosen table of example failures."""
from __future__ import annotations

import json
from collections import Counter

from tradeoff_ray.analyze.failures import error_counts, failure_examples
from tradeoff_ray.analyze.load import load_run
from tests.run_fixture import make_run_dir, sql_record, write_run_dir


def test_taxonomy_counts_match_the_records(tmp_path):
    run_dir = make_run_dir(tmp_path / "run")
    run = load_run(run_dir)
    for label, records in run.sql.items():
        raw = [json.loads(x) for x in (run_dir / "evals" / label / "spider.jsonl").read_text().splitlines()]
        counts = error_counts(records)
        assert {k: v for k, v in counts["classes"].items() if v} == dict(Counter(r["error"] for r in raw))
        assert sum(counts["wrong_result_kinds"].values()) == counts["classes"]["wrong_result"]


def test_examples_prefer_regressions_and_show_fixes(tmp_path):
    base = [sql_record("baseline", "e1", 1), sql_record("baseline", "e2", 0, error="syntax_error"),
            sql_record("baseline", "e3", 0, error="timeout"), sql_record("baseline", "e4", 0, error="syntax_error")]
    var = [sql_record("v", "e1", 0, error="syntax_error"), sql_record("v", "e2", 0, error="syntax_error"),
           sql_record("v", "e3", 1), sql_record("v", "e4", 0, error="syntax_error")]
    run = load_run(write_run_dir(tmp_path / "r", sql={"baseline": base, "v": var}))
    rows = failure_examples(run, per_class=1)
    syntax = [r for r in rows if r["class"] == "syntax_error" and r["kind"] != "fixed"]
    assert [(r["example_id"], r["kind"]) for r in syntax] == [("e1", "regression")]
    fixed = [r for r in rows if r["kind"] == "fixed"]
    assert [(r["example_id"], r["shown"], r["class"]) for r in fixed] == [("e3", "baseline", "timeout")]
    assert failure_examples(run, per_class=1) == rows  # deterministic


def test_baseline_only_run_lists_baseline_failures(tmp_path):
    base = [sql_record("baseline", f"e{i}", 0, error="unknown_table") for i in range(5)]
    run = load_run(write_run_dir(tmp_path / "r", sql={"baseline": base}))
    rows = failure_examples(run, per_class=2)
    assert len(rows) == 2 and {r["kind"] for r in rows} == {"failure"} and rows[0]["label"] == "baseline"
