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
