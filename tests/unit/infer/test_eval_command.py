"""`tradeoff-ray eval`: labels read from adapter paths, and the summary tables print what a user needs."""
from __future__ import annotations

from tradeoff_ray.commands.eval import label_for, print_summary


def test_label_from_adapter_path(tmp_path):
    assert label_for(None) == "baseline"
    assert label_for(tmp_path / "run" / "train" / "lora-r16" / "adapter") == "lora-r16"
    assert label_for(tmp_path / "run" / "train" / "lora-r16" / "checkpoints" / "step-30") == "lora-r16@step30"
    assert label_for(tmp_path / "my adapter") == "my_adapter"


def test_summary_tables_show_ex_by_hardness_mmlu_and_unscorable(capsys):
    cell = {"n": 4, "correct": 1, "accuracy": 0.25, "ci95": [0.05, 0.7]}
    mm = {"n": 4, "correct": 2, "accuracy": 0.5, "low": 0.15, "high": 0.85}
    summary = {
        "label": "lora[1]", "engine": "hf", "engine_reason": "auto: no GPU", "served": "hf on CPU: m [/x]",
        "sql": {"questions": 5, "scored": 4, "ex": cell, "by_hardness": {"easy": cell},
                "errors": {"ok": 1, "wrong_result": 3}, "unscorable": {"missing_db": 1},
                "wrong_result_kinds": {"different_rows": 3}},
        "mmlu": {"0": {"n": 4, "micro": mm, "macro": 0.5, "per_category": {"STEM": mm}, "no_answer": 0,
                       "warnings": ["category 'STEM' below chance"], "fewer_exemplars": 0}},
        "timing": {"sql": {"rows": 4, "seconds": 2.0, "rows_per_s": 2.0}},
    }
    print_summary(summary)
    out = capsys.readouterr().out
    for needle in ("lora[1]", "easy", "25.0%", "missing_db 1", "STEM", "50.0%", "below chance", "auto: no GPU"):
        assert needle in out, needle
