"""Stage cache keys follow file contents: data edited in place is never served from a stale cache entry."""
from __future__ import annotations

import json
import os
import sqlite3

from tests.unit.data.conftest import make_spider_dir
from tests.unit.data.test_mmlu import make_mmlu_dir
from tradeoff_ray.config import load_config
from tradeoff_ray.tasks import configured_tasks


def _key(cfg):
    from tradeoff_ray.experiment import data_cache_key

    data = {t.name: t.load(cfg) for t in configured_tasks(cfg)}
    return data_cache_key(cfg, data, {t.name: t.select(cfg, data[t.name]) for t in configured_tasks(cfg)})


def _keep_times(path, edit):
    st = os.stat(path)
    edit()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and time: only the content says


def test_data_key_changes_when_any_file_is_edited_in_place(tmp_path):
    spider, mmlu = make_spider_dir(tmp_path / "spider"), make_mmlu_dir(tmp_path / "mmlu")
    cfg = load_config(None, [f"data.spider_dir={spider}", f"data.mmlu_dir={mmlu}", "data.mmlu_per_category=2"])
    keys = [_key(cfg)]
    assert _key(cfg) == keys[0]  # stable when nothing changed

    dev = spider / "dev.json"
    rows = json.loads(dev.read_text())
    rows[0]["query"] = rows[0]["query"].replace("count(*)", "COUNT(*)")  # same length, same ids
    _keep_times(dev, lambda: dev.write_text(json.dumps(rows)))
    keys.append(_key(cfg))

    db = spider / "database" / "singer" / "singer.sqlite"
    def edit_db():
        con = sqlite3.connect(db)
        con.execute("UPDATE singer SET age = 26 WHERE name = 'Bo'")
        con.commit()
        con.close()
    _keep_times(db, edit_db)
    keys.append(_key(cfg))

    csv = mmlu / "test" / "anatomy_test.csv"
    _keep_times(csv, lambda: csv.write_text(csv.read_text().replace("one, two", "one, t0o")))
    keys.append(_key(cfg))
    assert len(set(keys)) == 4


def test_runtime_only_settings_keep_every_key_and_result_settings_change_them():
    """Moving a run to more actors, another output dir or cluster reuses its cached stages; a setting that
    changes the numbers does not."""
    from tradeoff_ray.experiment import eval_settings

    base = load_config(None, [])
    moved = load_config(None, ["eval.scorer_actors=4", "eval.batch_size=8", "output_dir=/elsewhere",
                               "ray.address=ray://head:10001", "training.torch_threads=3"])
    assert eval_settings(moved) == eval_settings(base)
    changed = load_config(None, ["eval.max_new_tokens=64"])
    assert eval_settings(changed) != eval_settings(base)
    assert "scorer_actors" not in eval_settings(base)["eval"] and "max_rows" in eval_settings(base)["eval"]


def test_config_summary_and_trials_table_leave_out_runtime_only_settings():
    from tradeoff_ray.analyze.metrics import config_summary
    from tradeoff_ray.config import RUNTIME_ONLY
    from tradeoff_ray.sweep import setting_columns

    cfg = load_config(None, [])
    summary = config_summary(cfg.model_dump(mode="json"))
    for path in RUNTIME_ONLY:
        section, _, key = path.partition(".")
        assert key not in (summary.get(section) or {}) if key else section not in summary, path
    assert summary["eval"]["sql_timeout_s"] == cfg.eval.sql_timeout_s and summary["model"]["dtype"] == "auto"
    assert setting_columns({"alpha_over_r", "per_device_batch_size", "r", "trial_id"}) == \
        ["r", "per_device_batch_size", "alpha_over_r"]
