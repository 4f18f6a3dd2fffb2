"""How a SQL prediction is executed and compared: the one home of the scoring options and their defaults.

`ExperimentConfig.eval` builds a `SqlScoringOptions` (`cfg.eval.sql_scoring`) from its fields, the
`score-sql` command from its flags, and every scoring function (`score.sql_score`, `score.sql_batch`)
takes one. A frozen dataclass with no dependencies, so the scoring layer and the command line import it
without pydantic or torch, and Ray and process pools pickle it as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class SqlScoringOptions:
    """Execution limits and comparison rules of Spider execution accuracy."""

    timeout_s: float = field(default=10.0, metadata={
        "help": "Per-query execution timeout in seconds (a SQLite progress handler interrupts the query; "
                "the gold query and the prediction each get this much)."})
    max_rows: int = field(default=100_000, metadata={
        "help": "Rows fetched per query at most; a gold result with more is not scored (gold_error), a "
                "prediction with more is wrong. Larger costs memory per scorer."})
    keep_distinct: bool = field(default=False, metadata={
        "help": "Keep DISTINCT when comparing results (the official Spider evaluator drops it on both sides)."})

    def __post_init__(self) -> None:
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) \
                or not math.isfinite(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be a finite number of seconds > 0, got {self.timeout_s!r}")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise ValueError(f"max_rows must be a whole number >= 1, got {self.max_rows!r}")

    @classmethod
    def help(cls, name: str) -> str:
        """The description of option `name` (config descriptions and CLI help text both read it)."""
        return next(f.metadata["help"] for f in fields(cls) if f.name == name)
