"""Render report blocks as one self-contained HTML file: inline CSS, PNGs embedded as data URIs.

No external resource of any kind (no CDN, fonts or scripts), so the file can be mailed, attached
to a CI run or opened offline and still show everything.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from tradeoff_ray.report.blocks import Alert, Block, Heading, Image, Para, Table

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em}h2{border-bottom:1px solid #ccc;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}th,td{border:1px solid #ccc;padding:.3em .55em;
vertical-align:top}th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}td.num{text-align:right;
white-space:nowrap}code{background:#f3f3f3;padding:0 .2em;border-radius:3px;font-size:.92em}
.alert{padding:.6em 1em;border-radius:4px;margin:.8em 0}.error{background:#fde2e1;border-left:6px solid #c0392b}
.warning{background:#fff4d6;border-left:6px solid #e0a800}.ok{background:#e3f4e5;border-left:6px solid #2e8b57}
.note{color:#555;font-size:.85em;font-style:italic}img{max-width:100%;height:auto;border:1px solid #ddd;margin:.5em 0}
"""


def inline(text: str) -> str:
    """Escape text, then turn `code` and **bold** marks into tags."""
    out = html.escape(str(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(t: Table) -> str:
    numeric = t.numeric or [False] * len(t.headers)
    head = "".join(f"<th>{inline(h)}</th>" for h in t.headers)
    tds = ['<td class="num">' if n else "<td>" for n in numeric]
    body = "".join("<tr>" + "".join(f"{tds[i]}{inline(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in t.rows)
    note = f'<p class="note">{inline(t.note)}</p>' if t.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def render_html(blocks: list[Block], *, base_dir: Path, title: str) -> str:
    """HTML of the blocks; Image paths are read relative to base_dir and embedded."""
    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{inline(b.text)}</p>")
        elif isinstance(b, Alert):
            items = "".join(f"<li>{inline(i)}</li>" for i in b.items)
            parts.append(f'<div class="alert {b.kind}">{inline(b.text)}{f"<ul>{items}</ul>" if items else ""}</div>')
        elif isinstance(b, Table):
            parts.append(_table(b))
        elif isinstance(b, Image):
            parts.append(f'<figure><img src="{data_uri(base_dir / b.path)}" alt="{html.escape(b.alt)}">'
                         f"<figcaption class=\"note\">{inline(b.alt)}</figcaption></figure>")
        else:  # pragma: no cover - a new block type must get a renderer
            raise TypeError(f"no HTML renderer for {type(b).__name__}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
