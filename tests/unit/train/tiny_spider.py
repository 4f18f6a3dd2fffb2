"""A tiny Spider-format benchmark made in code: a few singer databases and templated questions."""
from __future__ import annotations

from pathlib import Path

from tests.fixtures import make_singer_db
from tradeoff_ray.data.types import SpiderData, SqlExample

_PAIRS = [
    ("How many singers are there?", "SELECT count(*) FROM singer"),
    ("List the names of all singers.", "SELECT name FROM singer"),
    ("What is the average age of singers?", "SELECT avg(age) FROM singer"),
    ("Which singers are older than 30?", "SELECT name FROM singer WHERE age > 30"),
    ("How many countries are there?", "SELECT count(*) FROM country"),
    ("List the country names in alphabetical order.", "SELECT name FROM country ORDER BY name"),
    ("What is the name of the oldest singer?", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
    ("How many singers are from France?",
     "SELECT count(*) FROM singer AS s JOIN country AS c ON s.country_id = c.country_id WHERE c.name = 'France'"),
]


def make_tiny_spider(root: Path, *, n_dbs: int = 4, repeats: int = 2) -> SpiderData:
    """`n_dbs` copies of the singer database, each with every templated question `repeats` times."""
    db_paths, train = {}, []
    for d in range(n_dbs):
        db_id = f"singer_{d}"
        path = root / db_id / f"{db_id}.sqlite"
        db_paths[db_id] = path if path.is_file() else make_singer_db(path)
        for r in range(repeats):
            for q, sql in _PAIRS:
                train.append(SqlExample(example_id=f"train-{len(train):05d}", split="train", db_id=db_id,
                                        question=q if r == 0 else q.replace("?", " please?"), query=sql))
    dev = [SqlExample(example_id=f"dev-{i:04d}", split="dev", db_id="singer_0", question=q, query=sql)
           for i, (q, sql) in enumerate(_PAIRS)]
    return SpiderData(train=train, dev=dev, db_paths=db_paths, source=str(root))
