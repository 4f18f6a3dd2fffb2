"""The report as a list of blocks (headings, text, tables, images), rendered to Markdown and to HTML.

Sections build blocks from the metrics dict once; `markdown.py` and `html.py` only render them, so
both files always show the same numbers. Text may use two inline marks: **bold** and `code`.
Numbers are rounded here, at display, never in metrics.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Alert:
    """A highlighted line: kind 'error' (failed checks), 'warning' or 'ok'."""

    text: str
    kind: str = "warning"
    items: list[str] = field(default_factory=list)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: list[bool] | None = None  # right-align these columns

    def __post_init__(self) -> None:
        widths = {len(self.headers), *(len(r) for r in self.rows)} | ({len(self.numeric)} if self.numeric else set())
        if len(widths) != 1:
            raise ValueError(f"table {self.headers!r}: headers, rows and numeric differ in length ({sorted(widths)})")


@dataclass
class Image:
    path: str  # relative to the run dir, e.g. plots/tradeoff.png
    alt: str


Block = Union[Heading, Para, Alert, Table, Image]

NA = "n/a"


def num(x: float | None, digits: int = 1) -> str:
    return NA if x is None else f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 1) -> str:
    return NA if x is None else f"{x:+.{digits}f}"


def ci(lo: float | None, hi: float | None, digits: int = 1, *, sign: bool = False) -> str:
    if lo is None or hi is None:
        return ""
    f = signed if sign else num
    return f"[{f(lo, digits)}, {f(hi, digits)}]"


def acc_cell(block: dict | None, *, with_n: bool = False) -> str:
    """'41.0 [31.3, 50.6]' (+ ' n=96') from a rate block."""
    if not block or block.get("accuracy_pct") is None:
        return NA
    text = f"{num(block['accuracy_pct'])} {ci(block['ci_low_pct'], block['ci_high_pct'])}"
    return text + (f" n={block['n']}" if with_n else "")


def delta_cell(block: dict | None) -> str:
    """'+35.9 [+20.5, +51.3]' from a comparison block."""
    if not block or block.get("delta_pp") is None:
        return NA
    return f"{signed(block['delta_pp'])} {ci(block['ci_low_pp'], block['ci_high_pp'], sign=True)}".strip()


def p_cell(p: float | None) -> str:
    if p is None:
        return NA
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def clip(text: str | None, limit: int = 140) -> str:
    """One line, at most `limit` characters (tables hold SQL and questions)."""
    if text is None:
        return ""
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
