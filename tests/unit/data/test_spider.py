"""Spider loaders (directory, hub, demo switch), missing databases, samples and the by-database split."""
from __future__ import annotations

import json
import sys
import types

import pytest

from tests.unit.data.conftest import make_spider_dir
from tradeoff_ray.config import DataConfig
from tradeoff_ray.data import notices
from tradeoff_ray.data.spider import (
    load_spider,
    load_spider_dir,
    load_spider_hub,
    missing_databases,
    sample_examples,
    split_train_validation,
)
from tradeoff_ray.data.types import SqlExample
from tradeoff_ray.errors import UserError


@pytest.fixture(autouse=True)
def _fresh_notices(monkeypatch):
    monkeypatch.setattr(notices, "_seen", set())


def test_loads_standard_layout_with_stable_ids(tiny_spider):
    data = load_spider_dir(tiny_spider)
    assert [e.example_id for e in data.dev] == ["dev-0000", "dev-0001", "dev-0002", "dev-0003", "dev-0004"]
    assert [e.example_id for e in data.train] == ["train-00000", "train-00001", "train-00002"]
    assert data.train[2].question == "Names of singers?"  # train_others comes after train_spider
    assert data.db_paths == {"singer": tiny_spider / "database" / "singer" / "singer.sqlite"}
    assert set(data.schemas) == {"singer", "ghost"} and not data.is_demo


def test_min_files_are_used_when_full_train_files_are_absent(tmp_path):
    data = load_spider_dir(make_spider_dir(tmp_path / "s", minimal=True))
    assert len(data.train) == 3 and data.train[0].query == "SELECT age FROM singer"


def test_missing_databases_are_reported_once_and_excluded_from_scoring(tiny_spider, capsys):
    data = load_spider_dir(tiny_spider)
    load_spider_dir(tiny_spider)  # a second load in the same process says nothing new
    err = capsys.readouterr().err
    assert err.count("no database file") == 2 and err.count("\n") == 1  # one line, both splits
    assert "dev: 2 of 5 questions have no database file (ghost); they are excluded from scoring" in err
    assert data.missing_dbs == {"ghost": ["dev-0001", "dev-0003", "train-00001"]}
    assert missing_databases(data, "dev") == {"ghost": ["dev-0001", "dev-0003"]}
    assert [e.example_id for e in data.executable("dev")] == ["dev-0000", "dev-0002", "dev-0004"]


def test_missing_dev_json_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(UserError, match=r"no Spider dev set at .*dev\.json.*tables\.json"):
        load_spider_dir(tmp_path)


def test_bad_example_is_a_user_error(tiny_spider):
    (tiny_spider / "dev.json").write_text(json.dumps([{"db_id": "singer", "question": "q"}]))
    with pytest.raises(UserError, match="example 0 lacks db_id/question/query"):
        load_spider_dir(tiny_spider)


def test_separate_database_folder(tiny_spider, tmp_path):
    moved = tmp_path / "dbs"
    (tiny_spider / "database").rename(moved)
    data = load_spider(DataConfig(spider_dir=str(tiny_spider), spider_db_dir=str(moved)), cache=tmp_path)
    assert data.db_paths["singer"] == moved / "singer" / "singer.sqlite"
    with pytest.raises(UserError, match="spider_db_dir"):
        load_spider_dir(tiny_spider)  # default <root>/database is gone now


def test_hub_loader_reads_the_hub_splits_and_local_databases(tiny_spider, monkeypatch, tmp_path):
    rows = json.loads((tiny_spider / "dev.json").read_text())
    calls = []

    def fake_load_dataset(name, *args, **kwargs):  # the shape of datasets' DatasetDict: split -> row dicts
        calls.append(name)
        return {"train": rows[:2], "validation": rows}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    data = load_spider(DataConfig(spider_dir="hub", spider_db_dir=str(tiny_spider / "database")), cache=tmp_path)
    assert calls == ["xlangai/spider"]
    assert len(data.dev) == 5 and data.dev[3].example_id == "dev-0003" and len(data.train) == 2
    assert "singer" in data.db_paths and "ghost" in data.schemas  # tables.json found next to database/
    assert data.missing_dbs == {"ghost": ["dev-0001", "dev-0003", "train-00001"]}
    assert data.source.startswith("hub:xlangai/spider")


def test_hub_loader_needs_a_database_folder():
    with pytest.raises(UserError, match="spider_db_dir"):
        load_spider_hub(db_dir=None)


def _examples(n_dbs: int, per_db: int) -> list[SqlExample]:
    return [SqlExample(f"train-{i * per_db + j:05d}", "train", f"db{i}", f"q{j}", "SELECT 1")
            for i in range(n_dbs) for j in range(per_db)]


def test_sample_examples_is_seeded_and_keeps_file_order():
    exs = _examples(10, 10)
    a, b, c = sample_examples(exs, 20, 0), sample_examples(exs, 20, 0), sample_examples(exs, 20, 1)
    assert a == b and a != c and len(a) == 20
    assert a == sorted(a, key=exs.index)
    assert sample_examples(exs, None, 0) == exs and sample_examples(exs, 500, 0) == exs


def test_validation_split_holds_out_whole_databases():
    exs = _examples(20, 5)
    train, val = split_train_validation(exs, fraction=0.1, seed=0)
    assert {e.db_id for e in train}.isdisjoint({e.db_id for e in val})
    assert len({e.db_id for e in val}) == 2 and len(train) + len(val) == len(exs)
    assert (train, val) == split_train_validation(exs, fraction=0.1, seed=0)
    others = [split_train_validation(exs, fraction=0.1, seed=s)[1] for s in range(1, 6)]
    assert any({e.db_id for e in o} != {e.db_id for e in val} for o in others)
    assert split_train_validation(exs, fraction=0.0, seed=0) == (exs, [])
    with pytest.raises(UserError, match="validation_fraction"):
        split_train_validation(_examples(1, 5), fraction=0.1, seed=0)


def test_hub_failure_is_a_user_error_with_the_way_out(tiny_spider, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(UserError, match="could not load xlangai/spider.*local Spider root"):
        load_spider_hub(db_dir=tiny_spider / "database")
