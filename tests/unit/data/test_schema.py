"""Schema reading (tables.json and SQLite) and the prompt text both training and evaluation use."""
from __future__ import annotations

import sqlite3

import pytest

from tests.fixtures import make_singer_db
from tests.unit.data.conftest import GHOST_TABLES, SINGER_TABLES
from tradeoff_ray.config import PromptConfig
from tradeoff_ray.data.schema import (
    quote_ident,
    schema_from_sqlite,
    schema_from_tables_json,
    schema_text,
    serialize_schema,
    tables_json_entry,
)
from tradeoff_ray.data.spider import load_spider_dir
from tradeoff_ray.errors import UserError


def test_tables_json_schema_has_original_names_types_pks_and_fks():
    schema = schema_from_tables_json(SINGER_TABLES)
    singer = schema.tables[1]
    assert [c.name for c in singer.columns] == ["singer_id", "name", "age", "country_id"]
    assert [c.type for c in singer.columns] == ["NUMBER", "TEXT", "NUMBER", "NUMBER"]
    assert [c.name for c in singer.columns if c.primary_key] == ["singer_id"]
    assert [(f.column, f.ref_table, f.ref_column) for f in singer.foreign_keys] == [
        ("country_id", "country", "country_id")]


def test_tables_json_entry_missing_keys_is_a_user_error():
    with pytest.raises(UserError, match="lacks"):
        schema_from_tables_json({"db_id": "x", "table_names_original": []})


def test_sqlite_schema_reads_declared_types_pks_fks_and_sample_rows(tmp_path):
    db = make_singer_db(tmp_path / "singer.sqlite")
    schema = schema_from_sqlite(db, sample_rows=2)
    singer = {t.name: t for t in schema.tables}["singer"]
    assert [(c.name, c.type, c.primary_key) for c in singer.columns] == [
        ("singer_id", "INTEGER", True), ("name", "TEXT", False), ("age", "INTEGER", False),
        ("country_id", "INTEGER", False)]
    assert [(f.column, f.ref_table, f.ref_column) for f in singer.foreign_keys] == [
        ("country_id", "country", "country_id")]
    assert singer.sample_rows == ((1, "Ana", 31, 1), (2, "Bo", 25, 2))


def test_sqlite_schema_opens_read_only_and_never_creates_files(tmp_path):
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(UserError, match="does not exist"):
        schema_from_sqlite(missing)
    assert not missing.exists()


def test_composite_and_multiple_foreign_keys_keep_declaration_order(tmp_path):
    path = tmp_path / "g.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE game (home INTEGER, away INTEGER, day TEXT, PRIMARY KEY (home, day),
            FOREIGN KEY (home) REFERENCES team(id), FOREIGN KEY (away) REFERENCES team);""")
    con.close()
    text = serialize_schema(schema_from_sqlite(path))
    assert "PRIMARY KEY (home, day)" in text
    assert text.index("FOREIGN KEY (home) REFERENCES team(id)") < text.index("FOREIGN KEY (away) REFERENCES team(id)")


def test_serialize_schema_writes_create_table_with_types_pk_fk_and_rows(tmp_path):
    schema = schema_from_sqlite(make_singer_db(tmp_path / "singer.sqlite"), sample_rows=3)
    text = serialize_schema(schema, foreign_keys=True, sample_rows=1)
    assert "CREATE TABLE singer (\n  singer_id INTEGER,\n  name TEXT," in text
    assert "  PRIMARY KEY (singer_id)" in text
    assert "  FOREIGN KEY (country_id) REFERENCES country(country_id)" in text
    assert "-- 1 example row (singer_id, name, age, country_id):\n-- (1, 'Ana', 31, 1)" in text
    assert "(2, 'Bo'" not in text  # only the rows asked for
    bare = serialize_schema(schema, foreign_keys=False, sample_rows=0)
    assert "FOREIGN KEY" not in bare and "--" not in bare and "PRIMARY KEY" in bare
    # the text is valid SQL: it recreates the same tables
    con = sqlite3.connect(":memory:")
    con.executescript(bare)
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master")} >= {"singer", "country"}


def test_identifiers_that_need_it_are_quoted():
    assert quote_ident("name") == "name"
    assert quote_ident("Home Town") == '"Home Town"'
    assert quote_ident("order") == '"order"'
    assert quote_ident('a"b') == '"a""b"'
    text = serialize_schema(schema_from_tables_json(GHOST_TABLES))
    assert 'CREATE TABLE "Order Items" (\n  id NUMBER,\n  "group" TEXT,' in text
    sqlite3.connect(":memory:").executescript(text)  # still valid SQL


def test_long_and_binary_sample_values_are_cut(tmp_path):
    path = tmp_path / "t.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a TEXT, b BLOB)")
    con.execute("INSERT INTO t VALUES (?, ?)", ("x" * 500 + "\nline", b"\x00" * 40))
    con.commit()
    con.close()
    (row,) = schema_from_sqlite(path, sample_rows=1).tables[0].sample_rows
    assert len(row[0]) <= 60 and row[0].endswith("…") and row[1] == "<40 bytes>"


def test_tables_json_entry_round_trips_through_the_tables_json_reader(tmp_path):
    schema = schema_from_sqlite(make_singer_db(tmp_path / "singer.sqlite"))
    again = schema_from_tables_json(tables_json_entry(schema))
    assert serialize_schema(again) == serialize_schema(schema).replace("INTEGER", "NUMBER")


def test_schema_text_uses_the_configured_source_and_options(tiny_spider):
    data = load_spider_dir(tiny_spider)
    from_file = schema_text(data, "singer", PromptConfig(schema_source="sqlite"))
    from_json = schema_text(data, "singer", PromptConfig(schema_source="tables_json"))
    assert "singer_id INTEGER" in from_file and "singer_id NUMBER" in from_json
    for text in (from_file, from_json):  # FK lines from both sources (seed 1 lost them between train and eval)
        assert "FOREIGN KEY (country_id) REFERENCES country(country_id)" in text
    assert "FOREIGN KEY" not in schema_text(data, "singer", PromptConfig(foreign_keys=False))
    rows = schema_text(data, "singer", PromptConfig(schema_source="tables_json", sample_rows=2))
    assert "-- (2, 'Bo', 25, 2)" in rows  # tables.json structure, rows read from the file
    assert schema_text(data, "singer", PromptConfig()) is schema_text(data, "singer", PromptConfig())  # cached


def test_schema_text_falls_back_to_tables_json_when_the_file_is_missing(tiny_spider):
    data = load_spider_dir(tiny_spider)
    text = schema_text(data, "ghost", PromptConfig(schema_source="sqlite", sample_rows=3))
    assert text.startswith('CREATE TABLE "Order Items"')
    with pytest.raises(UserError, match="no schema for database 'nowhere'"):
        schema_text(data, "nowhere", PromptConfig())
