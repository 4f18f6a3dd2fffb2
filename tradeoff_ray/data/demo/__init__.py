"""Built-in demo data, so a fresh machine runs end to end offline with no Spider or MMLU copy.

* Text-to-SQL: eight small generated SQLite databases (five for training, three for dev, as Spider
  keeps dev databases out of training) and about 400 train / 120 dev question-SQL pairs from
  templates, written in Spider's layout (dev.json, train_spider.json, tables.json,
  database/<db>/<db>.sqlite).
* Multiple choice: a hand-written general-knowledge set in MMLU format (`mmlu_demo.json`, 8 real
  MMLU subject names over the 4 categories), written out in the Hendrycks CSV layout.

Both are materialized once under <cache>/demo/ (cache = `config.cache_root`: model.cache_dir, else
$TRADEOFF_RAY_CACHE, else ~/.cache/tradeoff_ray), in folders named by layout version and a hash of the
code and data that made them, so a change rebuilds them and a stale copy is never used. Builds are
atomic (a temp folder renamed into place), so concurrent processes never see half a benchmark.

This package only writes the folders; the ordinary loaders read them (`data.spider.load_spider` and
`data.mmlu.load_mmlu` when no data folder is configured), and mark the data `is_demo=True`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable

from tradeoff_ray.data.notices import notice
from tradeoff_ray.data.types import LETTERS, MmluData, SpiderData
from tradeoff_ray.errors import UserError

SPIDER_LAYOUT_VERSION = 1
MMLU_LAYOUT_VERSION = 1
TRAIN_PER_DB = 80   # 5 training databases -> 400 training questions
DEV_PER_DB = 40     # 3 dev databases -> 120 dev questions
QUESTION_SEED = 0

REAL_DATA_HINT = ("For real numbers point data.spider_dir / data.mmlu_dir at Spider and MMLU copies "
                  "(or run `tradeoff-ray data --spider-dir DIR --mmlu-dir DIR` to check them).")


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:10]


def _atomic_build(final: Path, build: Callable[[Path], None]) -> Path:
    """Build into a temp folder next to `final`, then rename it into place (another process may win)."""
    if final.is_dir():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    except OSError as err:
        raise UserError(f"cannot write the demo data cache at {final.parent} ({err.strerror or err}); set "
                        "model.cache_dir (or TRADEOFF_RAY_CACHE) to a writable folder") from None
    try:
        build(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; a cache others may read should not be
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------- Text-to-SQL


def _spider_fingerprint() -> str:
    here = Path(__file__).parent
    sources = [(here / name).read_bytes() for name in ("__init__.py", "databases.py", "themes.py", "questions.py")]
    settings = json.dumps([SPIDER_LAYOUT_VERSION, TRAIN_PER_DB, DEV_PER_DB, QUESTION_SEED]).encode()
    return _fingerprint(*sources, settings)


def build_demo_spider(dest: Path) -> Path:
    """Write the demo benchmark in Spider's layout into `dest` (an empty or new folder)."""
    from tradeoff_ray.data.demo.databases import create_database
    from tradeoff_ray.data.demo.questions import candidates, select
    from tradeoff_ray.data.demo.themes import DATABASES
    from tradeoff_ray.data.schema import schema_from_sqlite, tables_json_entry

    splits: dict[str, list[dict]] = {"train": [], "dev": []}
    tables = []
    for db in DATABASES:
        path = create_database(db, dest / "database" / db.db_id / f"{db.db_id}.sqlite")
        tables.append(tables_json_entry(schema_from_sqlite(path)))
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            target = TRAIN_PER_DB if db.split == "train" else DEV_PER_DB
            chosen = select(candidates(db, con, seed=QUESTION_SEED), target, seed=QUESTION_SEED, db_id=db.db_id)
        finally:
            con.close()
        splits[db.split] += [{"db_id": db.db_id, "question": c.question, "query": c.query, "family": c.family}
                             for c in chosen]
    (dest / "tables.json").write_text(json.dumps(tables, indent=1) + "\n")
    (dest / "train_spider.json").write_text(json.dumps(splits["train"], indent=1) + "\n")
    (dest / "dev.json").write_text(json.dumps(splits["dev"], indent=1) + "\n")
    (dest / "README.txt").write_text(
        "tradeoff_ray demo Text-to-SQL benchmark (generated; NOT Spider).\n"
        f"Train databases: {', '.join(d.db_id for d in DATABASES if d.split == 'train')}\n"
        f"Dev databases: {', '.join(d.db_id for d in DATABASES if d.split == 'dev')}\n"
        f"{len(splits['train'])} train and {len(splits['dev'])} dev questions. {REAL_DATA_HINT}\n")
    return dest


def demo_spider_dir(cache: Path) -> Path:
    """The demo benchmark's folder under `cache` (`config.cache_root`), built on first use."""
    final = Path(cache) / "demo" / f"spider-v{SPIDER_LAYOUT_VERSION}-{_spider_fingerprint()}"
    if not final.is_dir():
        notice(f"Building the demo Text-to-SQL benchmark in {final} (once) ...")
    return _atomic_build(final, build_demo_spider)


def mark_demo_spider(data: SpiderData, root: Path) -> SpiderData:
    """`data` (loaded from `root`) marked as the demo benchmark, with the notice saying so."""
    data.is_demo = True
    data.source = f"demo:{root.name} ({root})"
    notice(f"DEMO DATA: Text-to-SQL uses the built-in generated benchmark ({len(data.db_paths)} small databases, "
           f"{len(data.train)} train / {len(data.dev)} dev questions), not Spider. {REAL_DATA_HINT}")
    return data


# ---------------------------------------------------------------- multiple choice


def _demo_mmlu_source() -> bytes:
    return resources.files(__package__).joinpath("mmlu_demo.json").read_bytes()


def answer_position(subject: str, split: str, index: int) -> int:
    """Where the correct option goes (0-3): cycles through A-D so every letter is right equally often."""
    offset = int(hashlib.sha256(f"{subject}/{split}".encode()).hexdigest(), 16) % 4
    return (index + offset) % 4


def build_demo_mmlu(dest: Path) -> Path:
    """Write the demo multiple-choice set in the Hendrycks CSV layout into `dest`."""
    import csv

    subjects = json.loads(_demo_mmlu_source())["subjects"]
    for subject, splits in subjects.items():
        for split, items in splits.items():
            (dest / split).mkdir(parents=True, exist_ok=True)
            with (dest / split / f"{subject}_{split}.csv").open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                for i, (question, correct, *wrong) in enumerate(items):
                    pos = answer_position(subject, split, i)
                    options = list(wrong)
                    options.insert(pos, correct)
                    writer.writerow([question, *options, LETTERS[pos]])
    return dest


def demo_mmlu_dir(cache: Path) -> Path:
    """The demo multiple-choice set's folder under `cache` (`config.cache_root`), written on first use."""
    final = Path(cache) / "demo" / f"mmlu-v{MMLU_LAYOUT_VERSION}-{_fingerprint(_demo_mmlu_source())}"
    return _atomic_build(final, build_demo_mmlu)


def mark_demo_mmlu(data: MmluData, root: Path) -> MmluData:
    """`data` (loaded from `root`) marked as the demo multiple-choice set, with the notice saying so."""
    data.is_demo = True
    data.source = f"demo:{root.name} ({root})"
    notice(f"DEMO DATA: multiple choice uses the built-in general-knowledge set ({len(data.questions('test'))} test "
           f"questions, {len(data.subject_category)} subjects), not MMLU. {REAL_DATA_HINT}")
    return data
