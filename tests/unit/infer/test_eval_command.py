"""`tradeoff-ray eval`: labels read from adapter paths, and the summary tables print what a user needs."""
from __future__ import annotations

from tradeoff_ray.commands.eval import label_for, print_summary


def test_label_from_adapter_path(tmp_path):
    assert label_for(None) == "baseline"
    assert label_for(tmp_path / "run" / "train" / "lora-r16" / "adapter") == "lora-r16"
    assert label_for(tmp_path / "run" / "train" / "lora-r16" / "checkpoints" / "step-30") == "lora-r16@step30"
    assert label_for(tmp_path / "my adapter") == "my_adapter"


def test_summary_prints_a_section_per_task_with_breakdowns_and_unscorable(capsys):
    from tradeoff_ray.records import Gsm8kResult, MmluResult, SqlResult
    from tradeoff_ray.tasks import get_task
    from tradeoff_ray.tasks.base import task_summary

    sql = [SqlResult("l", f"e{i}", "db", "q", "SELECT 1", "easy", "h", "", None, int(i == 0), "ok" if i == 0 else
                     "wrong_result") for i in range(4)]
    sql.append(SqlResult("l", "e9", "wta_1", "q", "SELECT 1", "easy", "h", "", None, None, "missing_db"))
    mmlu = [MmluResult("l", f"q{i}", "astronomy", "STEM", 0, "A", "A" if i < 2 else "B", int(i < 2), "h")
            for i in range(4)]
    gsm = [Gsm8kResult("l", f"g{i}", "q", "3", "h", "#### 3", "3", 1, "3", 1) for i in range(2)]
    summary = {
        "label": "lora[1]", "engine": "hf", "engine_reason": "auto: no GPU", "served": "hf on CPU: m [/x]",
        "tasks": {name: {"source": f"/data/{name}", "measures": task_summary(get_task(name), recs)}
                  for name, recs in (("spider", sql), ("mmlu", mmlu), ("gsm8k", gsm))},
        "timing": {"rows": 10, "seconds": 2.0, "rows_per_s": 5.0},
    }
    print_summary(summary)
    out = capsys.readouterr().out
    for needle in ("lora[1]", "spider", "easy", "25.0%", "missing_db 1", "mmlu_0shot", "STEM", "50.0%",
                   "gsm8k_strict", "gsm8k_flexible", "100.0%", "/data/gsm8k", "auto: no GPU", "10 rows in 2.0s"):
        assert needle in out, needle
