"""Variants trained with several seeds: expanded by the config, summarised with both uncertainties."""
from __future__ import annotations

import pytest
import yaml

from tradeoff_ray.analyze.load import load_run
from tradeoff_ray.analyze.metrics import compute_metrics
from tradeoff_ray.config import ConfigError, config_from_dict
from tradeoff_ray.report.blocks import Table
from tradeoff_ray.report.sections import seeds_section, tradeoff_section
from tests.run_fixture import mmlu_record, sql_record, write_run_dir

CONFIG = {"name": "seeds", "training": {"variants": [
    {"name": "lora", "max_steps": 4, "seeds": [0, 1, 2]}, {"name": "other", "max_steps": 4}]}}


def test_seeds_expand_into_one_variant_per_seed_and_reload_unchanged():
    cfg = config_from_dict(CONFIG)
    assert [(v.name, v.seed, v.seed_group) for v in cfg.training.variants] == [
        ("lora-seed0", 0, "lora"), ("lora-seed1", 1, "lora"), ("lora-seed2", 2, "lora"), ("other", 0, None)]
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()))  # the run dir's config.yaml
    assert [v.name for v in again.training.variants] == [v.name for v in cfg.training.variants]
    with pytest.raises(ConfigError, match="distinct"):
        config_from_dict({"training": {"variants": [{"name": "x", "max_steps": 1, "seeds": [1, 1]}]}})


def test_seed_group_mean_spread_and_paired_ci(tmp_path):
    n = 20
    right = {"baseline": range(5), "lora-seed0": range(8), "lora-seed1": range(10), "lora-seed2": range(12),
             "other": range(6)}  # EX 25% -> 40, 50, 60% (Δ +15, +25, +35)
    sql = {lb: [sql_record(lb, f"e{i}", int(i in r)) for i in range(n)] for lb, r in right.items()}
    mmlu = {lb: {0: [mmlu_record(lb, f"q{i}", int(i < 30)) for i in range(60)]} for lb in right}
    m = compute_metrics(load_run(write_run_dir(tmp_path / "r", sql=sql, mmlu=mmlu, config=CONFIG)), n_boot=200)
    g = m["seeds"]["lora"]
    assert g["seeds"] == [0, 1, 2] and g["labels"] == ["lora-seed0", "lora-seed1", "lora-seed2"]
    s = g["measures"]["spider"]
    assert s["accuracy_mean_pct"] == pytest.approx(50.0) and s["accuracy_sd_pp"] == pytest.approx(10.0)
    assert s["delta_mean_pp"] == pytest.approx(25.0) and s["delta_sd_pp"] == pytest.approx(10.0)
    assert (s["delta_min_pp"], s["delta_max_pp"]) == (pytest.approx(15.0), pytest.approx(35.0))
    assert s["paired_delta_pp"] == pytest.approx(25.0) and s["ci_low_pp"] < 25.0 < s["ci_high_pp"]
    assert g["measures"]["mmlu_0shot"]["delta_mean_pp"] == 0.0 and g["measures"]["mmlu_0shot"]["delta_sd_pp"] == 0.0
    assert "other" not in m["seeds"]
    table = next(b for b in tradeoff_section(m, {}) if isinstance(b, Table))
    row = next(r for r in table.rows if r[0] == "lora (mean of 3 seeds)")
    assert row[1] == "50.0 ± 10.0" and row[2].startswith("+25.0 [") and row[2].endswith("± 10.0")
    assert any("+15.0 … +35.0" in cell for b in seeds_section(m) if isinstance(b, Table) for r in b.rows for cell in r)
