"""Commands check every input before touching a directory, and never overwrite a run's record."""
from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from tests.unit.data.conftest import make_spider_dir
from tradeoff_ray.cli import app
from tradeoff_ray.config import RayConfig, load_config
from tradeoff_ray.errors import UserError
from tradeoff_ray.rundir import new_run_dir


def _eval(tmp_path, *args, env=None):
    env = {"TRADEOFF_RAY_CACHE": str(tmp_path / "cache"), **(env or {})}
    return CliRunner().invoke(app, ["eval", "--set", f"output_dir={tmp_path / 'runs'}", *map(str, args)], env=env)


def _existing_run(tmp_path):
    run = new_run_dir(load_config(None, [f"output_dir={tmp_path / 'runs'}", "name=h100"]), out=tmp_path / "run")
    (run / "evals" / "baseline").mkdir(parents=True)
    (run / "evals" / "baseline" / "summary.json").write_text('{"label": "baseline"}')
    return run


def test_eval_into_an_existing_run_with_bad_data_changes_nothing(tmp_path):
    run = _existing_run(tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = _eval(tmp_path, "--out", run, "--set", "data.spider_dir=/nope")
    assert result.exit_code == 2 and "/nope" in result.output
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "runs").exists()


def test_an_existing_runs_config_and_results_are_never_replaced(tmp_path):
    run = _existing_run(tmp_path)
    config = (run / "config.yaml").read_text()
    other = load_config(None, [f"output_dir={tmp_path / 'runs'}", "name=quickstart"])
    with pytest.raises(UserError, match=r"another config \(differs in name\)"):
        new_run_dir(other, out=run)
    same = load_config(None, [f"output_dir={tmp_path / 'runs'}", "name=h100"])
    with pytest.raises(UserError, match="already holds evals/baseline"):
        new_run_dir(same, out=run, outputs=("evals/baseline",))
    assert new_run_dir(same, out=run, outputs=("evals/lora-r16",)) == run.resolve()
    assert (run / "config.yaml").read_text() == config


def test_unwritable_output_dir_names_the_fix(tmp_path):
    (tmp_path / "file").write_text("")
    cfg = load_config(None, [f"output_dir={tmp_path / 'file' / 'runs'}"])
    with pytest.raises(UserError, match="output_dir"):
        new_run_dir(cfg)


def test_bad_mmlu_dir_fails_before_any_evaluation(tmp_path):
    spider = make_spider_dir(tmp_path / "spider")
    start = time.monotonic()
    result = _eval(tmp_path, "--set", f"data.spider_dir={spider}", "--set", "data.mmlu_dir=/nope/mmlu")
    assert result.exit_code == 2 and "/nope/mmlu" in result.output, result.output
    assert time.monotonic() - start < 20 and "[eval] run dir" not in result.output
    assert not (tmp_path / "runs").exists()


def test_unreachable_ray_address_fails_fast_naming_it(tmp_path, monkeypatch):
    start = time.monotonic()
    result = _eval(tmp_path, env={"RAY_ADDRESS": "127.0.0.1:1"})
    assert result.exit_code == 2, result.output
    assert "127.0.0.1:1" in result.output and "unset RAY_ADDRESS" in result.output
    assert time.monotonic() - start < 15 and not (tmp_path / "runs").exists()
    from tradeoff_ray.ray_session import check_target

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UserError, match="ray.address"):
        check_target(RayConfig(address="127.0.0.1:1"))
