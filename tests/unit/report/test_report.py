"""Report files: built from saved results, self-contained HTML, CLI, baseline-only runs, failed checks."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tradeoff_ray.cli import app
from tradeoff_ray.report.blocks import Table, delta_cell
from tradeoff_ray.report.build import build_report
from tests.run_fixture import make_run_dir, mmlu_record, sql_record, write_run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = make_run_dir(tmp_path_factory.mktemp("report") / "run")
    md, html = build_report(run, n_boot=200)
    return run, md, html


def test_report_files_and_plots_exist(built):
    run, md, html = built
    assert md.exists() and html.exists() and (run / "metrics.json").exists()
    pngs = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert pngs == ["by_group_mmlu_0shot.png", "by_group_mmlu_5shot.png", "by_group_spider.png", "curves.png",
                    "errors.png", "tradeoff.png", "training.png"]
    assert all((run / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_markdown_shows_the_numbers_of_metrics_json(built):
    run, md, _ = built
    m = json.loads((run / "metrics.json").read_text())
    text = md.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| lora-r16 |") and "[95%" not in line)
    assert delta_cell(m["comparisons"]["lora-r16"]["spider"]) in row
    assert delta_cell(m["comparisons"]["lora-r16"]["mmlu_0shot"]) in row
    assert delta_cell(m["comparisons"]["lora-r16"]["mmlu_5shot"]) in row
    assert "39 of 48 dev questions scored; 9 excluded (8 no database: wta_1" in text
    for heading in ("## Trade-off vs baseline", "## Sanity checks", "## Spider EX by hardness",
                    "## MMLU 0-shot by category", "## MMLU 5-shot by category",
                    "## SQL error taxonomy", "### Example failures", "## Learning and forgetting",
                    "## Wall time per stage"):
        assert heading in text
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (run / image).exists()


def test_html_is_self_contained(built):
    run, _, html = built
    text = html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I)
    assert "<link" not in text and "<script" not in text and "@import" not in text
    assert text.count('src="data:image/png;base64,') == len(list((run / "plots").glob("*.png")))


def test_cli_report_prints_paths_and_headline(built):
    run, _, _ = built
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "Trade-off vs baseline" in result.output and "lora-r16" in result.output
    assert str(run / "report.html") in result.output.replace("\n", "")


def test_cli_report_on_a_non_run_dir_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_report_of_a_baseline_only_run(built, tmp_path):
    run, _, _ = built
    only = tmp_path / "only"
    (only / "evals").mkdir(parents=True)
    shutil.copy(run / "config.yaml", only / "config.yaml")
    shutil.copytree(run / "evals" / "baseline", only / "evals" / "baseline")
    md, html = build_report(only, n_boot=50)
    text = md.read_text()
    assert "Only the baseline was evaluated" in text and "gold_vs_gold" in text and "not run" in text
    assert not (only / "plots" / "tradeoff.png").exists() and (only / "plots" / "by_group_spider.png").exists()
    m = json.loads((only / "metrics.json").read_text())
    assert m["comparisons"] == {} and m["run"]["variants"] == []


def test_failed_check_is_marked_at_the_top(tmp_path):
    mmlu = {"baseline": {0: [mmlu_record("baseline", f"q{i}", int(i < 5)) for i in range(80)]}}
    md, html = build_report(write_run_dir(tmp_path / "r", mmlu=mmlu), n_boot=50)
    head = md.read_text().split("## ")[0]
    assert "SANITY CHECKS FAILED" in head and "mmlu_vs_chance (baseline, 0-shot)" in head
    assert "SANITY CHECKS FAILED" in html.read_text()


def test_a_diverged_variant_is_listed_with_its_curve_and_never_compared(tmp_path):
    nan = float("nan")
    sql = {lb: [sql_record(lb, f"d{i}", int(i % 2 == 0)) for i in range(10)] for lb in ("baseline", "good")}
    mmlu = {lb: {0: [mmlu_record(lb, f"q{i}", int(i % 3 == 0)) for i in range(40)]} for lb in ("baseline", "good")}
    good = {"variant": "good", "status": "trained", "steps": 6, "max_steps": 6, "first_train_loss": 2.0,
            "last_train_loss": 1.2, "last_grad_norm": 0.4,
            "train_loss": [{"step": s, "loss": 2.0 - 0.16 * s, "grad_norm": 0.5} for s in range(1, 7)]}
    message = ("training of variant 'bad' diverged at step 4: loss nan and grad_norm nan; last finite loss 1.5000 "
               "at step 3. Stopped there and not evaluated")
    bad = {"variant": "bad", "status": "diverged", "steps": 4, "max_steps": 6, "adapter_dir": None,
           "first_train_loss": 2.0, "last_train_loss": nan, "last_grad_norm": nan, "message": message,
           "divergence": {"variant": "bad", "step": 4, "loss": nan, "grad_norm": nan, "last_finite_step": 3,
                          "last_finite_loss": 1.5, "learning_rate": 0.9, "checkpoint": None},
           "train_loss": [{"step": 1, "loss": 2.0, "grad_norm": 3.0}, {"step": 2, "loss": 1.8, "grad_norm": 40.0},
                          {"step": 3, "loss": 1.5, "grad_norm": 900.0}, {"step": 4, "loss": nan, "grad_norm": nan}]}
    config = {"name": "div",
              "training": {"variants": [{"name": "good", "max_steps": 6}, {"name": "bad", "max_steps": 6}]}}
    run = write_run_dir(tmp_path / "r", sql=sql, mmlu=mmlu, config=config, training={"good": good, "bad": bad})
    md, html = build_report(run, n_boot=50)
    m = json.loads((run / "metrics.json").read_text())
    assert m["run"]["diverged"] == ["bad"] and m["run"]["variants"] == ["good"]
    assert "bad" not in m["labels"] and "bad" not in m["comparisons"]
    assert [p["grad_norm"] for p in m["training"]["bad"]["curve"]][:3] == [3.0, 40.0, 900.0]
    text = md.read_text()
    head, rest = text.split("## Trade-off vs baseline", 1)
    assert "Training of bad DIVERGED" in head  # said before any number
    training = rest.split("## Training", 1)[1]
    assert "DIVERGED at step 4" in training and message in training
    assert "| 4 | nan | nan |" in training and "0.0000" not in training  # NaN shown as NaN, never as zero
    assert (run / "plots" / "training.png").exists()


def test_table_shape_is_checked():
    with pytest.raises(ValueError, match="differ in length"):
        Table(["a", "b"], [["1"]])


def test_report_command_imports_neither_torch_nor_ray(built):
    run, _, _ = built
    code = ("import sys, pathlib; from tradeoff_ray.commands.report import main; main(pathlib.Path(sys.argv[1])); "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'transformers', 'vllm'}); "
            "print('HEAVY', bad)")
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
