"""GSM8K loading: final answers, calculator marks, exemplars, seeded subsets, clear errors."""
from __future__ import annotations

import json

import pytest

from tradeoff_ray.data.gsm8k import load_gsm8k_dir, select_problems
from tradeoff_ray.errors import UserError
from tradeoff_ray.prompts import gsm8k_messages, gsm8k_prompt, gsm8k_solution_text
from tradeoff_ray.score.gsm8k_score import score_generation


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def gsm_dir(tmp_path):
    _write(tmp_path / "test.jsonl", [
        {"question": f"Tom has {i} apples and buys 1,000 more. How many?",
         "answer": f"He has {i} + 1000 = <<{i}+1000={i + 1000}>>{i + 1000} apples.\n#### {i + 1000:,}"}
        for i in range(10)])
    _write(tmp_path / "train.jsonl", [
        {"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"},
        {"question": "What is 10 - 4?", "answer": "10 - 4 = <<10-4=6>>6\n#### 6"}])
    return tmp_path


def test_problems_keep_the_final_number_and_lose_calculator_marks(gsm_dir):
    data = load_gsm8k_dir(gsm_dir)
    p = data.splits["test"][3]
    assert (p.example_id, p.target) == ("test-0003", "1003")   # '1,003' -> '1003'
    assert "<<" not in p.solution and p.solution.endswith("1003 apples.")
    assert [e.target for e in data.exemplars(1)] == ["5"]
    # the gold solution, rendered as an answer turn, scores right under both readings
    assert score_generation(gsm8k_solution_text(p.solution, p.target), p.target) == {
        "pred_strict": "1003", "correct_strict": 1, "pred_flexible": "1003", "correct_flexible": 1}


def test_subset_is_seeded_and_in_order(gsm_dir):
    data = load_gsm8k_dir(gsm_dir)
    a = select_problems(data, limit=4, seed=1)
    assert a == select_problems(data, limit=4, seed=1) and len(a) == 4
    assert [p.example_id for p in a] == sorted(p.example_id for p in a)
    assert len(select_problems(data, limit=None, seed=0)) == 10


def test_prompts_put_exemplars_before_the_problem():
    shots = [("What is 2 + 3?", gsm8k_solution_text("2 + 3 = 5", "5"))]
    msgs = gsm8k_messages("What is 7 * 6?", shots)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"].endswith("#### 5") and msgs[-1]["content"] == "Question: What is 7 * 6?"
    plain = gsm8k_prompt(None, "What is 7 * 6?", shots, use_chat_template=False)
    assert plain.index("What is 2 + 3?") < plain.index("What is 7 * 6?") and plain.endswith("Answer:")


def test_bad_files_are_named(tmp_path):
    with pytest.raises(UserError, match="test.jsonl"):
        load_gsm8k_dir(tmp_path)
    (tmp_path / "test.jsonl").write_text('{"question": "q", "answer": "no final line"}\n')
    with pytest.raises(UserError, match=r"line 1.*####"):
        load_gsm8k_dir(tmp_path)


def test_data_command_lists_gsm8k_when_its_dir_is_set(gsm_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tradeoff_ray.cli import app

    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["data", "--set", f"data.gsm8k_dir={gsm_dir}", "--set", "data.gsm8k_limit=4"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "test 10, train 2; scored: 4 test problems (seeded sample, data.gsm8k_limit=4)" in out
