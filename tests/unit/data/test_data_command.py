"""`tradeoff-ray data` on the built-in demo data (the real-data run is in tests/integration)."""
from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from tradeoff_ray.cli import app
from tradeoff_ray.config import DataConfig
from tradeoff_ray.data.mmlu import load_mmlu, select_mmlu


def test_data_command_prints_counts_subset_and_writes_a_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(tmp_path / "cache"))
    manifest = tmp_path / "subset.json"
    result = CliRunner().invoke(app, ["data", "--per-category", "10", "--seed", "4", "--manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "DEMO DATA" in out and "--spider-dir" in out
    assert "120" in out and "400" in out  # demo dev / train questions
    assert "test split, 10 per category, seed 4 -> 40 questions" in out
    mmlu = load_mmlu(DataConfig(), cache=tmp_path / "cache")
    chosen = select_mmlu(DataConfig(mmlu_per_category=10, seed=4), mmlu)
    assert json.loads(manifest.read_text())["questions"] == [[q.subject, q.split, q.index] for q in chosen]
    assert json.loads(manifest.read_text())["meta"]["seed"] == 4


def test_data_command_bad_flag_value_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["data", "--per-category", "0"])
    assert result.exit_code == 2 and "mmlu_per_category" in result.output


def test_data_command_does_not_import_torch_or_ray(tmp_path):
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom tradeoff_ray.cli import app\n"
            "r = CliRunner().invoke(app, ['data'])\nassert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in ('torch', 'ray', 'transformers', 'datasets') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"TRADEOFF_RAY_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
