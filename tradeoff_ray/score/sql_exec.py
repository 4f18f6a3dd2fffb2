"""Safe execution of untrusted SQL against a Spider SQLite database.

Model output is hostile input: it may try to write, attach other files, loop forever or return
millions of rows. A query run here can neither change a database file nor hang the process:

- the file is opened read-only and immutable (URI `mode=ro&immutable=1`: no lock, journal, `-wal` or
  `-shm` file is ever created next to it, so the database folder stays byte-identical), in
  autocommit mode with `PRAGMA query_only`;
- an authorizer allows reading only: every write, CREATE/DROP/ALTER, ATTACH/DETACH (which also
  blocks `VACUUM INTO`, SQLite's way to write a copy of a read-only database), transactions,
  state-changing PRAGMAs (`PRAGMA table_info(t)` and a few other schema readers are allowed; their
  table-valued forms such as pragma_table_info() are not) and `load_extension` are denied;
  extension loading is also switched off on the connection;
- a progress handler checks a deadline every few thousand VM steps, so a runaway query (recursive
  CTE, cartesian join, huge sort) is interrupted at `timeout_s` — unlike an asyncio/thread timeout,
  which cannot stop a blocking `execute`; a watchdog timer also calls `interrupt()` at the deadline
  (SQLite checks that flag inside long single steps too), and a statement that still overran its
  deadline is reported as `timeout`, so no result depends on a query that ran past its limit;
- `printf`/`format` are replaced by a guarded version that refuses a width or precision larger
  than the value cap: `printf('%.*c', 2000000000, 'x')` would otherwise loop inside one SQLite step,
  where neither the progress handler nor an interrupt can reach it;- at most `max_rows` rows are fetched (the result says `truncated`), strings/blobs are capped at
  8 MB each and a result at 256 MB of text/blobs in all, so no query exhausts memory before its deadline;
- text that is not valid UTF-8 is decoded with replacement characters instead of raising;
- Ctrl-C during a statement raises KeyboardInterrupt (it is never recorded as the query's timeout).

Only the first complete statement of the text is executed; anything after it is ignored.
"""
from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from tradeoff_ray.score.sql_text import TextTooLong, first_statement, leading_keyword
from tradeoff_ray.score_options import SqlScoringOptions

# Error classes of one execution (a subset of the scoring taxonomy in records.SqlResult).
SYNTAX_ERROR = "syntax_error"
UNKNOWN_TABLE = "unknown_table"
UNKNOWN_COLUMN = "unknown_column"
TIMEOUT = "timeout"
OTHER_EXEC_ERROR = "other_exec_error"

WATCHDOG_GRACE_S = 0.05  # the progress handler normally stops a query first; the watchdog backs it up
PROGRESS_STEPS = 4_000  # VM instructions between deadline checks: ~0.1 ms apart, <2% overhead
MAX_VALUE_BYTES = 8_000_000  # longest string/blob a query may build (SQLite default is 1e9)
MAX_RESULT_BYTES = 256_000_000  # text/blob bytes one result may hold: 1000 rows of 7 MB blobs would not fit RAM
FETCH_BATCH = 1_000  # rows per fetchmany: the size check runs between batches
# Statements that are not queries: refused before SQLite sees them (the authorizer would deny them
# too; VACUUM INTO, for one, writes a file even from a read-only connection). Unknown first words
# go to SQLite, which reports them as syntax errors.
STATEMENT_KEYWORDS = frozenset({"insert", "replace", "update", "delete", "create", "drop", "alter", "attach",
                                 "detach", "vacuum", "begin", "commit", "end", "rollback", "savepoint", "release",
                                 "reindex", "analyze", "explain"})
# PRAGMAs that only read the schema (`PRAGMA table_info(t)`).
READ_ONLY_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                               "foreign_key_list"})
_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})
# A width or precision written in a printf format: '%-08.3f' -> '08', '3'.
_PRINTF_CALL = re.compile(r"\b(?:printf|format)\s*\(", re.IGNORECASE)
_FORMAT_NUMBERS = re.compile(r"%[-+ #0,!]*(\d*)(?:\.(\d*))?")


class ResultTooLarge(Exception):
    """The rows fetched so far hold more text/blob bytes than MAX_RESULT_BYTES."""


def _fetch(cursor: sqlite3.Cursor, limit: int) -> list[tuple]:
    """Up to `limit` rows, stopping with ResultTooLarge past MAX_RESULT_BYTES.

    Batches start small and are sized from the bytes per row seen so far, so a result of huge
    values is stopped after a few rows rather than after a whole batch.
    """
    rows: list[tuple] = []
    size, batch = 0, 16
    while len(rows) < limit:
        fetched = cursor.fetchmany(min(batch, limit - len(rows)))
        if not fetched:
            break
        rows.extend(fetched)
        size += sum(len(v) for row in fetched for v in row if isinstance(v, (str, bytes)))
        if size > MAX_RESULT_BYTES:
            raise ResultTooLarge(f"result larger than {MAX_RESULT_BYTES // 1_000_000} MB of text/blobs")
        per_row = size / len(rows)
        batch = int(max(1, min(FETCH_BATCH, 4 * batch, (MAX_RESULT_BYTES - size) / max(per_row, 1.0))))
    return rows


class _GuardedPrintf:
    """SQLite's printf/format, refusing widths and precisions larger than MAX_VALUE_BYTES.

    The real function runs on a private in-memory connection with the same length limit; only its
    arguments are checked here (a `*` width comes from an argument, a literal one from the format).
    """

    def __init__(self) -> None:
        self._con = sqlite3.connect(":memory:", check_same_thread=False)
        self._con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)

    def __call__(self, fmt, *args):
        if fmt is None:
            return None
        numbers = [int(n) for pair in _FORMAT_NUMBERS.findall(str(fmt)) for n in pair if n]
        numbers += [abs(a) for a in args if isinstance(a, int)]
        if any(n > MAX_VALUE_BYTES for n in numbers):
            raise ValueError(f"too large: printf width or precision over {MAX_VALUE_BYTES} characters")
        placeholders = ", ".join("?" * (len(args) + 1))
        return self._con.execute(f"SELECT printf({placeholders})", (fmt, *args)).fetchone()[0]


class MissingDatabase(FileNotFoundError):
    """The SQLite file of a database does not exist."""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one query. `rows` is None when it failed; `error` is then its class."""

    rows: list[tuple] | None
    error: str | None
    message: str | None
    truncated: bool
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.error is None


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_ONLY_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _decode_text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def classify_error(message: str) -> str:
    """Taxonomy class of a SQLite error message."""
    m = message.lower()
    if "syntax error" in m or "incomplete input" in m or "unrecognized token" in m:
        return SYNTAX_ERROR
    if "no such table" in m:
        return UNKNOWN_TABLE
    # An ambiguous column is a failed column reference too (schema linking), not a runtime error.
    if "no such column" in m or "ambiguous column name" in m:
        return UNKNOWN_COLUMN
    if m == "interrupted":
        return TIMEOUT
    return OTHER_EXEC_ERROR


def guard_connection(con: sqlite3.Connection) -> sqlite3.Connection:
    """Make `con` refuse every write and extension, cap value sizes and decode any text.

    Independent of how the file was opened: even on a writable connection nothing can change.
    """
    con.execute("PRAGMA query_only = ON")
    if hasattr(con, "enable_load_extension"):  # absent when Python is built without extension support
        con.enable_load_extension(False)
    con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    con.text_factory = _decode_text
    con.set_authorizer(_authorize)
    printf = _GuardedPrintf()
    for name in ("printf", "format"):
        con.create_function(name, -1, printf, deterministic=True)
    return con


class ReadOnlyDatabase:
    """A read-only, guarded connection to one SQLite file; `execute` never raises for bad SQL."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingDatabase(f"database file not found: {self.path}")
        uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
        self._con = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        guard_connection(self._con)
        self._lock = threading.Lock()
        self._deadline = 0.0
        self._timed_out = False
        self._run_id = 0
        self._con.set_progress_handler(self._on_progress, PROGRESS_STEPS)

    def _on_progress(self) -> int:
        if time.monotonic() > self._deadline:
            self._timed_out = True
            return 1  # non-zero aborts the running statement with "interrupted"
        return 0

    def execute(self, sql: str, *, timeout_s: float = SqlScoringOptions.timeout_s,
                max_rows: int = SqlScoringOptions.max_rows) -> ExecResult:
        """Run the first statement of `sql`; at most `max_rows` rows, at most `timeout_s` seconds."""
        start = time.monotonic()
        try:
            statement = first_statement(sql)
        except TextTooLong as err:
            return ExecResult(None, OTHER_EXEC_ERROR, str(err), False, 0.0)
        if not statement:
            return ExecResult(None, SYNTAX_ERROR, "empty statement", False, 0.0)
        keyword = leading_keyword(statement)
        if keyword in STATEMENT_KEYWORDS:
            return ExecResult(None, OTHER_EXEC_ERROR, f"not authorized: only queries run here ({keyword!r})",
                              False, time.monotonic() - start)
        with self._lock:
            self._deadline = start + timeout_s
            self._timed_out = False
            cursor = self._con.cursor()
            self._run_id += 1
            watchdog = threading.Timer(timeout_s + WATCHDOG_GRACE_S, self._interrupt, (self._run_id,))
            watchdog.daemon = True
            watchdog.start()
            try:
                cursor.execute(statement)
                rows = _fetch(cursor, max_rows + 1) if cursor.description is not None else []
            except ResultTooLarge as err:
                return ExecResult(None, OTHER_EXEC_ERROR, str(err), False, time.monotonic() - start)
            except (sqlite3.Error, sqlite3.Warning, MemoryError, OverflowError, ValueError) as err:
                message = str(err) or type(err).__name__
                if message == "interrupted" and not self._timed_out:
                    # Ctrl-C raised inside the progress handler, which sqlite3 turns into this error.
                    raise KeyboardInterrupt from None
                if "user-defined function raised exception" in message and _PRINTF_CALL.search(statement):
                    message = f"too large: printf width or precision over {MAX_VALUE_BYTES} characters"
                error = TIMEOUT if self._timed_out else classify_error(message)
                return ExecResult(None, error, message, False, time.monotonic() - start)
            finally:
                watchdog.cancel()
                cursor.close()
        elapsed = time.monotonic() - start
        if elapsed > timeout_s:
            return ExecResult(None, TIMEOUT, f"ran {elapsed:.1f} s, over the {timeout_s:g} s limit", False, elapsed)
        truncated = len(rows) > max_rows
        return ExecResult(rows[:max_rows] if truncated else rows, None, None, truncated, elapsed)

    def _interrupt(self, run_id: int) -> None:
        if run_id == self._run_id and self._lock.locked():  # the statement it was started for still runs
            self._timed_out = True
            self._con.interrupt()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> "ReadOnlyDatabase":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class ConnectionCache:
    """Open ReadOnlyDatabase per file, least recently used closed beyond `max_open` (scorer actors)."""

    def __init__(self, max_open: int = 32) -> None:
        if max_open < 1:
            raise ValueError("max_open must be >= 1")
        self.max_open = max_open
        self._open: OrderedDict[str, ReadOnlyDatabase] = OrderedDict()

    def get(self, path: str | Path) -> ReadOnlyDatabase:
        """The open database of `path` (raises MissingDatabase when the file does not exist)."""
        key = str(Path(path).resolve())
        db = self._open.get(key)
        if db is not None:
            self._open.move_to_end(key)
            return db
        db = ReadOnlyDatabase(key)
        self._open[key] = db
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return db

    def __len__(self) -> int:
        return len(self._open)

    def close(self) -> None:
        while self._open:
            _, db = self._open.popitem()
            db.close()
