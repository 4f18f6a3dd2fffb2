"""Spider (or any Spider-format benchmark): load the examples and find each database file.

Three sources, picked by `data.spider_dir`: unset = the built-in demo benchmark (generated SQLite
databases, see `data/demo/`), a path = a Spider root in the standard layout, 'hub' = xlangai/spider
from the Hugging Face hub plus a local database folder (the hub holds no databases).

Standard layout::

    <root>/dev.json  tables.json  train_spider.json  train_others.json
    <root>/database/<db_id>/<db_id>.sqlite

`train_*_min.json` (db_id/question/query only) are used when the full train files are absent.
Example ids are stable: 'dev-0000'... and 'train-00000'... in file order (train_spider, then
train_others). Questions whose database file is missing are reported once and excluded from
scoring (`SpiderData.executable`), never crashed on; `SpiderData.missing_dbs` maps each missing
db_id to the ids of its questions (`missing_databases(data, split)` gives one split's share).
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable, Sequence

from tradeoff_ray.config import DataConfig
from tradeoff_ray.data.demo import demo_spider_dir, mark_demo_spider
from tradeoff_ray.data.notices import notice
from tradeoff_ray.data.schema import schema_from_tables_json
from tradeoff_ray.data.types import DatabaseSchema, SpiderData, SqlExample, database_file
from tradeoff_ray.errors import UserError

HUB_SPIDER = "xlangai/spider"
TRAIN_FILES = (("train_spider.json", "train_spider_min.json"), ("train_others.json", "train_others_min.json"))


def load_spider(cfg: DataConfig, *, cache: Path) -> SpiderData:
    """The benchmark `cfg.spider_dir` names: unset = the demo (built under `cache`, `config.cache_root`),
    'hub' = xlangai/spider, else a Spider root."""
    if cfg.spider_dir is None:
        root = demo_spider_dir(cache)
        return mark_demo_spider(load_spider_dir(root), root)
    if cfg.spider_dir.strip().lower() == "hub":
        return load_spider_hub(db_dir=cfg.spider_db_dir)
    return load_spider_dir(cfg.spider_dir, db_dir=cfg.spider_db_dir)


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); re-download it") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); re-download it or save it "
                        "as UTF-8") from None
    if not isinstance(rows, list):
        raise UserError(f"{path} must hold a JSON list of examples, got {type(rows).__name__}")
    return rows


def _examples(rows: Iterable[dict[str, Any]], *, split: str, start: int, width: int, where: str) -> list[SqlExample]:
    out = []
    for i, row in enumerate(rows):
        try:
            db_id, question, query = row["db_id"], row["question"], row["query"]
        except (KeyError, TypeError):
            raise UserError(f"{where}: example {i} lacks db_id/question/query; is this a Spider file?") from None
        out.append(SqlExample(example_id=f"{split}-{start + i:0{width}d}", split=split, db_id=str(db_id),
                              question=str(question), query=str(query)))
    return out


_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _find_db_paths(db_dir: Path, db_ids: Iterable[str]) -> dict[str, Path]:
    """db_id -> its SQLite file, for the ids whose file exists and is a SQLite database."""
    found = {}
    for db_id in sorted(set(db_ids)):
        path = database_file(db_dir, db_id)
        if path is None or not path.is_file():
            continue
        with path.open("rb") as fh:
            if fh.read(16) != _SQLITE_MAGIC:
                notice(f"{path} is not a SQLite database (no SQLite header); its questions count as missing "
                       "a database. Replace it with the real file.")
                continue
        found[db_id] = path
    return found


def _report_missing(data: SpiderData) -> None:
    """Fill `data.missing_dbs` (db_id -> ids of its questions, all splits) and say so in one line."""
    parts = []
    for split in ("dev", "train"):
        examples = getattr(data, split)
        missing = missing_databases(data, split, examples=examples)
        for db_id, ids in missing.items():
            data.missing_dbs.setdefault(db_id, []).extend(ids)
        if missing:
            effect = ("excluded from scoring" if split == "dev"
                      else "trained with their tables.json schema if it has one")
            parts.append(f"{split}: {sum(map(len, missing.values()))} of {len(examples)} questions have no database "
                         f"file ({', '.join(missing)}); they are {effect}")
    if parts:
        notice(f"Spider at {data.source}: " + "; ".join(parts) + ".")


def spider_files(data: SpiderData) -> list[Path]:
    """Every file the loaded set was read from: question and schema JSON, and each database file.

    Stage cache keys hash their contents, so a file edited in place never reuses stale results.
    """
    root = Path(data.source)
    names = ["dev.json", "tables.json", *(name for pair in TRAIN_FILES for name in pair)]
    found = [root / n for n in names if not data.source.startswith("hub:") and (root / n).is_file()]
    return found + [data.db_paths[d] for d in sorted(data.db_paths)]


def missing_databases(data: SpiderData, split: str, *, examples: Sequence[SqlExample] | None = None
                      ) -> dict[str, list[str]]:
    """db_id -> example ids of `split` (or of `examples`) whose database file is missing, db ids sorted."""
    out: dict[str, list[str]] = {}
    for e in getattr(data, split) if examples is None else examples:
        if e.db_id not in data.db_paths:
            out.setdefault(e.db_id, []).append(e.example_id)
    return dict(sorted(out.items()))


def _read_tables(path: Path) -> dict[str, DatabaseSchema]:
    if not path.is_file():
        return {}
    return {entry["db_id"]: schema_from_tables_json(entry) for entry in _read_json_list(path)}


def load_spider_dir(root: str | Path, *, db_dir: str | Path | None = None) -> SpiderData:
    """A Spider root in the standard layout (`db_dir` defaults to <root>/database)."""
    root = Path(root).expanduser()
    dev_path = root / "dev.json"
    if not dev_path.is_file():
        raise UserError(
            f"no Spider dev set at {dev_path}: data.spider_dir must be a Spider root holding dev.json, "
            "tables.json, train_spider.json (or train_spider_min.json) and database/<db_id>/<db_id>.sqlite"
        )
    db_root = Path(db_dir).expanduser() if db_dir else root / "database"
    if not db_root.is_dir():
        raise UserError(f"database folder {db_root} does not exist; set data.spider_db_dir to the folder "
                        "holding <db_id>/<db_id>.sqlite")
    dev = _examples(_read_json_list(dev_path), split="dev", start=0, width=4, where=str(dev_path))
    train: list[SqlExample] = []
    for full, minimal in TRAIN_FILES:
        path = root / full if (root / full).is_file() else root / minimal
        if path.is_file():
            train += _examples(_read_json_list(path), split="train", start=len(train), width=5, where=str(path))
    if not train:
        notice(f"Spider at {root}: no train_spider.json / train_others.json (or *_min.json); training has no data")
    schemas = _read_tables(root / "tables.json")
    db_ids = set(schemas) | {e.db_id for e in dev + train}
    data = SpiderData(train=train, dev=dev, db_paths=_find_db_paths(db_root, db_ids), schemas=schemas,
                      source=str(root.resolve()))
    _report_missing(data)
    return data


def load_spider_hub(*, db_dir: str | Path | None) -> SpiderData:
    """xlangai/spider from the Hugging Face hub (train 7000, validation 1034 = dev), databases from `db_dir`.

    The hub holds questions only, so `db_dir` (the folder of <db_id>/<db_id>.sqlite) is required;
    a tables.json in `db_dir` or its parent is used for schemas when present.
    """
    if not db_dir:
        raise UserError(
            "data.spider_dir='hub' needs data.spider_db_dir: the hub copy of Spider has no databases; "
            "point data.spider_db_dir at a folder of <db_id>/<db_id>.sqlite (Spider's database/)"
        )
    db_root = Path(db_dir).expanduser()
    if not db_root.is_dir():
        raise UserError(f"data.spider_db_dir={db_root} is not a folder; it must hold <db_id>/<db_id>.sqlite")
    import datasets  # imported here: only hub users pay for it

    try:
        hub = datasets.load_dataset(HUB_SPIDER)
    except Exception as err:  # network, auth, cache: the user can fix all of them
        raise UserError(f"could not load {HUB_SPIDER} from the hub ({type(err).__name__}: {err}); "
                        "check the network or use a local Spider root in data.spider_dir") from None
    train = _examples(hub["train"], split="train", start=0, width=5, where=f"{HUB_SPIDER} train")
    dev = _examples(hub["validation"], split="dev", start=0, width=4, where=f"{HUB_SPIDER} validation")
    tables = next((p for p in (db_root / "tables.json", db_root.parent / "tables.json") if p.is_file()), None)
    schemas = _read_tables(tables) if tables else {}
    db_ids = set(schemas) | {e.db_id for e in dev + train}
    data = SpiderData(train=train, dev=dev, db_paths=_find_db_paths(db_root, db_ids), schemas=schemas,
                      source=f"hub:{HUB_SPIDER} (databases: {db_root.resolve()})")
    _report_missing(data)
    return data


# ---------------------------------------------------------------- subsets


def sample_examples(examples: Sequence[SqlExample], limit: int | None, seed: int) -> list[SqlExample]:
    """At most `limit` examples, chosen with `seed`, kept in their original order (None = all)."""
    if limit is None or limit >= len(examples):
        return list(examples)
    keep = set(random.Random(f"sample:{seed}").sample(range(len(examples)), limit))
    return [e for i, e in enumerate(examples) if i in keep]


def split_train_validation(
    examples: Sequence[SqlExample], *, fraction: float, seed: int
) -> tuple[list[SqlExample], list[SqlExample]]:
    """Hold out round(fraction x #databases) whole databases (at least one) for validation.

    Splitting by database keeps validation schemas unseen in training, as Spider's dev set is.
    `fraction=0` returns (all examples, []).
    """
    if fraction <= 0 or not examples:
        return list(examples), []
    db_ids = sorted({e.db_id for e in examples})
    if len(db_ids) < 2:
        raise UserError(f"data.validation_fraction={fraction} needs at least 2 training databases to hold one "
                        f"out, found {len(db_ids)}; set data.validation_fraction=0")
    random.Random(f"validation:{seed}").shuffle(db_ids)
    n_val = min(len(db_ids) - 1, max(1, round(fraction * len(db_ids))))
    held = set(db_ids[:n_val])
    return [e for e in examples if e.db_id not in held], [e for e in examples if e.db_id in held]


def train_validation_examples(spider: SpiderData, cfg: DataConfig) -> tuple[list[SqlExample], list[SqlExample]]:
    """(train, validation) examples of Spider train: the seeded `train_limit` sample, then whole databases held
    out (`split_train_validation`). Training trains on the first; its validation loss and Tune's trial
    selection (`data.validation`) use the databases of the second, so no trial is scored on a schema it saw."""
    sampled = sample_examples(spider.train, cfg.train_limit, cfg.seed)
    return split_train_validation(sampled, fraction=cfg.validation_fraction, seed=cfg.seed)

