"""Small Spider- and MMLU-format folders made in code for the data-layer tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures import make_singer_db

SINGER_TABLES = {
    "db_id": "singer",
    "table_names_original": ["country", "singer"],
    "table_names": ["country", "singer"],
    "column_names_original": [[-1, "*"], [0, "country_id"], [0, "name"], [1, "singer_id"], [1, "name"], [1, "age"],
                              [1, "country_id"]],
    "column_names": [[-1, "*"], [0, "country id"], [0, "name"], [1, "singer id"], [1, "name"], [1, "age"],
                     [1, "country id"]],
    "column_types": ["text", "number", "text", "number", "text", "number", "number"],
    "primary_keys": [1, 3],
    "foreign_keys": [[6, 1]],
}
# A database that tables.json describes but whose .sqlite file is absent (like Spider's wta_1).
GHOST_TABLES = {
    "db_id": "ghost",
    "table_names_original": ["Order Items"],
    "table_names": ["order items"],
    "column_names_original": [[-1, "*"], [0, "id"], [0, "group"]],
    "column_names": [[-1, "*"], [0, "id"], [0, "group"]],
    "column_types": ["text", "number", "text"],
    "primary_keys": [1],
    "foreign_keys": [],
}


def _ex(db_id: str, question: str, query: str) -> dict:
    return {"db_id": db_id, "question": question, "query": query}


def make_spider_dir(root: Path, *, minimal: bool = False) -> Path:
    """dev (3 singer + 2 ghost questions), train_spider (2) + train_others (1), tables.json, one database."""
    make_singer_db(root / "database" / "singer" / "singer.sqlite")
    (root / "tables.json").write_text(json.dumps([SINGER_TABLES, GHOST_TABLES]))
    dev = [_ex("singer", "How many singers are there?", "SELECT count(*) FROM singer"),
           _ex("ghost", "How many items?", "SELECT count(*) FROM \"Order Items\""),
           _ex("singer", "Name the oldest singer.", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
           _ex("ghost", "List item ids.", "SELECT id FROM \"Order Items\""),
           _ex("singer", "List countries.", "SELECT name FROM country")]
    (root / "dev.json").write_text(json.dumps(dev))
    suffix = "_min" if minimal else ""
    (root / f"train_spider{suffix}.json").write_text(json.dumps(
        [_ex("singer", "Ages of singers?", "SELECT age FROM singer"),
         _ex("ghost", "Count items.", "SELECT count(*) FROM \"Order Items\"")]))
    (root / f"train_others{suffix}.json").write_text(json.dumps(
        [_ex("singer", "Names of singers?", "SELECT name FROM singer")]))
    return root


@pytest.fixture
def tiny_spider(tmp_path) -> Path:
    return make_spider_dir(tmp_path / "spider")
