"""Damaged or surprising data files: one clear error (or a warning) naming the file, never a traceback."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.data.conftest import SINGER_TABLES, make_spider_dir
from tests.unit.data.test_mmlu import _write, make_mmlu_dir
from tradeoff_ray.cli import app
from tradeoff_ray.data.mmlu import balanced_subset, load_mmlu_dir
from tradeoff_ray.data.schema import schema_from_tables_json
from tradeoff_ray.data.spider import load_spider_dir
from tradeoff_ray.errors import UserError


@pytest.mark.parametrize("fk", [[60, 1], [6, -3], [6, 99]])
def test_foreign_key_index_out_of_range(fk):
    entry = copy.deepcopy(SINGER_TABLES)
    entry["foreign_keys"] = [fk]
    with pytest.raises(UserError, match=r"database 'singer' is malformed .*index .* out of range"):
        schema_from_tables_json(entry)


def test_mmlu_field_over_the_csv_limit(tmp_path):
    root = make_mmlu_dir(tmp_path / "mmlu")
    _write(root / "test" / "anatomy_test.csv", [["q" * 140_000, "a", "b", "c", "d", "A"]])
    with pytest.raises(UserError, match=r"anatomy_test.csv row 1: unreadable CSV .*re-download"):
        load_mmlu_dir(root)


def test_non_utf8_data_files(tmp_path):
    root = make_mmlu_dir(tmp_path / "mmlu")
    (root / "test" / "anatomy_test.csv").write_bytes("caf\xe9,a,b,c,d,A\n".encode("latin-1"))
    with pytest.raises(UserError, match="anatomy_test.csv is not UTF-8"):
        load_mmlu_dir(root)
    spider = make_spider_dir(tmp_path / "spider")
    (spider / "dev.json").write_bytes('[{"db_id": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(UserError, match="dev.json is not UTF-8"):
        load_spider_dir(spider)


def test_all_empty_mmlu_csvs(tmp_path):
    root = make_mmlu_dir(tmp_path / "mmlu")
    for path in root.rglob("*.csv"):
        path.write_text("")
    with pytest.raises(UserError, match="hold no questions"):
        load_mmlu_dir(root)
    root = make_mmlu_dir(tmp_path / "mmlu2")
    for path in (root / "test").glob("*.csv"):
        path.write_text("")
    with pytest.raises(UserError, match="split 'test' .* has no questions"):
        balanced_subset(load_mmlu_dir(root), split="test", per_category=2, seed=0)


def test_per_category_beyond_what_exists_warns(tmp_path, capsys):
    data = load_mmlu_dir(make_mmlu_dir(tmp_path / "mmlu", per_subject={"astronomy": 4, "anatomy": 3}))
    chosen = balanced_subset(data, split="test", per_category=7, seed=0)
    assert len(chosen) == 7
    err = capsys.readouterr().err
    assert "7 questions per category asked, but STEM has only 4" in err and "other has only 3" in err


def test_non_sqlite_file_is_not_counted_executable(tmp_path, monkeypatch):
    spider = make_spider_dir(tmp_path / "spider")
    (spider / "database" / "singer" / "singer.sqlite").write_text("not a database")
    data = load_spider_dir(spider)
    assert data.executable("dev") == []
    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["data", "--spider-dir", str(spider)])
    assert result.exit_code == 0, result.output
    assert "database files found: 0" in result.output and "singer (3 questions)" in result.output


def test_read_only_cache_names_the_fix(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(blocker / "cache"))  # under a file: cannot be created
    result = CliRunner().invoke(app, ["data"])
    assert result.exit_code == 2 and "TRADEOFF_RAY_CACHE" in result.output
    assert "Traceback" not in result.output
