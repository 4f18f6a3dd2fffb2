"""The built-in demo data: a generated Spider-format benchmark and a hand-written MMLU-format set."""
from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tradeoff_ray.config import DataConfig
from tradeoff_ray.data import demo, notices
from tradeoff_ray.data.mmlu import load_mmlu, select_mmlu
from tradeoff_ray.data.mmlu_categories import SUBJECT_CATEGORY
from tradeoff_ray.data.spider import load_spider
from tradeoff_ray.data.types import CATEGORIES, LETTERS


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    demo.demo_spider_dir(root)
    demo.demo_mmlu_dir(root)
    return root


@pytest.fixture
def spider(cache, monkeypatch):
    monkeypatch.setattr(notices, "_seen", set())
    return load_spider(DataConfig(), cache=cache)


@pytest.fixture
def mmlu(cache, monkeypatch):
    monkeypatch.setattr(notices, "_seen", set())
    return load_mmlu(DataConfig(), cache=cache)


def test_demo_spider_is_a_spider_layout_with_disjoint_dev_databases(spider, cache):
    root = next((cache / "demo").glob("spider-v1-*"))
    assert {p.name for p in root.iterdir()} >= {"dev.json", "train_spider.json", "tables.json", "database"}
    assert spider.is_demo and spider.source.startswith("demo:spider-v1")
    assert 350 <= len(spider.train) <= 450 and 100 <= len(spider.dev) <= 140
    train_dbs, dev_dbs = {e.db_id for e in spider.train}, {e.db_id for e in spider.dev}
    assert len(train_dbs) >= 5 and len(dev_dbs) >= 3 and train_dbs.isdisjoint(dev_dbs)
    assert not spider.missing_dbs and set(spider.schemas) == train_dbs | dev_dbs
    assert len({(e.db_id, e.question) for e in spider.train + spider.dev}) == len(spider.train) + len(spider.dev)


def test_demo_loader_says_it_is_demo_data_and_how_to_use_real_data(cache, monkeypatch, capsys):
    monkeypatch.setattr(notices, "_seen", set())
    load_spider(DataConfig(), cache=cache)
    load_mmlu(DataConfig(), cache=cache)
    err = capsys.readouterr().err
    assert err.count("DEMO DATA") == 2 and "data.spider_dir" in err and "--mmlu-dir" in err


def test_every_gold_query_executes_and_returns_an_answer(spider):
    for e in spider.train + spider.dev:
        con = sqlite3.connect(f"{spider.db_paths[e.db_id].resolve().as_uri()}?mode=ro", uri=True)
        rows = con.execute(e.query).fetchall()
        con.close()
        assert rows and rows != [(0,)] and any(v is not None for v in rows[0]), (e.example_id, e.query)


def test_ordered_questions_say_so(spider):
    desc_words = ("highest", "largest", "most", "descending")
    asc_words = ("lowest", "smallest", "ascending", "least", "fewest")
    for e in spider.train + spider.dev:
        q, sql = e.question.lower(), e.query
        if "ORDER BY" not in sql:
            continue
        limit = re.search(r"LIMIT (\d+)$", sql)
        if limit is None:
            assert "order" in q or "sorted" in q, e
        elif int(limit.group(1)) > 1:
            assert limit.group(1) in q, e
        assert any(w in q for w in (desc_words if "DESC" in sql else asc_words)), e


def test_questions_spread_over_spider_hardness(spider):
    for split in ("train", "dev"):
        sqls = [e.query for e in getattr(spider, split)]
        kinds = {
            "count": any(s.startswith("SELECT count(*) FROM") and " JOIN " not in s for s in sqls),
            "order_limit": any("ORDER BY" in s and "LIMIT" in s for s in sqls),
            "group_having": any("HAVING" in s for s in sqls),
            "join": any(" JOIN " in s for s in sqls),
            "three_tables": any(s.count(" JOIN ") >= 2 for s in sqls),
            "nested": any("(SELECT" in s for s in sqls),
            "set_op": any(op in s for s in sqls for op in (" INTERSECT ", " EXCEPT ", " UNION ")),
        }
        assert all(kinds.values()), (split, kinds)


def test_demo_build_is_deterministic(tmp_path):
    a, b = demo.build_demo_spider(tmp_path / "a"), demo.build_demo_spider(tmp_path / "b")
    for name in ("dev.json", "train_spider.json", "tables.json"):
        assert (a / name).read_text() == (b / name).read_text()


def test_demo_is_built_once_and_reused(cache, monkeypatch):
    root = demo.demo_spider_dir(cache)
    stamp = (root / "dev.json").stat().st_mtime_ns
    monkeypatch.setattr(demo, "build_demo_spider", lambda dest: pytest.fail("rebuilt an existing demo"))
    assert demo.demo_spider_dir(cache) == root and (root / "dev.json").stat().st_mtime_ns == stamp
    assert not [p for p in (cache / "demo").iterdir() if p.name.startswith(".")]  # no temp folders left


def test_demo_mmlu_answer_keys_point_at_the_written_correct_answers(mmlu):
    source = json.loads((Path(demo.__file__).parent / "mmlu_demo.json").read_text())["subjects"]
    for subject, splits in source.items():
        for split, items in splits.items():
            loaded = mmlu.splits[split][subject]
            assert len(loaded) == len(items)
            for q, (question, correct, *wrong) in zip(loaded, items):
                assert q.question == question and q.choices[q.answer_index] == correct
                assert sorted(q.choices) == sorted([correct, *wrong]) and len(set(q.choices)) == 4


def test_demo_mmlu_covers_every_category(mmlu):
    assert mmlu.is_demo and set(mmlu.subject_category) <= set(SUBJECT_CATEGORY)
    test = mmlu.questions("test")
    per_cat = Counter(q.category for q in test)
    assert set(per_cat) == set(CATEGORIES) and min(per_cat.values()) >= 30
    assert all(len(mmlu.dev_exemplars(s, 5)) == 5 for s in mmlu.subject_category)
    letters = Counter(q.answer for q in test)
    assert set(letters) == set(LETTERS) and max(letters.values()) - min(letters.values()) <= 0.1 * len(test)
    subset = select_mmlu(DataConfig(mmlu_per_category=25), mmlu)  # the quickstart subset fits
    assert Counter(q.category for q in subset) == {c: 25 for c in CATEGORIES}


def test_demo_data_goes_under_model_cache_dir(tmp_path, monkeypatch):
    """model.cache_dir moves the demo data along with the models (the env var is only the fallback)."""
    from tradeoff_ray.config import load_config
    from tradeoff_ray.tasks import get_task

    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(tmp_path / "env"))
    cfg = load_config(None, [f"model.cache_dir={tmp_path / 'mine'}"])
    mmlu = get_task("mmlu").load(cfg)
    assert mmlu.is_demo and (tmp_path / "mine" / "demo").is_dir() and not (tmp_path / "env").exists()


def test_demo_package_does_not_import_the_loaders():
    """The loaders read the demo folders; the demo package only writes them (no import cycle)."""
    import ast

    package = Path(demo.__file__).parent
    for path in package.glob("*.py"):
        imported = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        assert not imported & {"tradeoff_ray.data.spider", "tradeoff_ray.data.mmlu"}, path
