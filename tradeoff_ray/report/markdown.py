"""Render report blocks as GitHub-flavoured Markdown (report.md); images are relative links."""
from __future__ import annotations

from tradeoff_ray.report.blocks import Alert, Block, Heading, Image, Para, Table

_ALERT = {"error": "> [!CAUTION]", "warning": "> [!WARNING]", "ok": "> [!NOTE]"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_md(t: Table) -> list[str]:
    numeric = t.numeric or [False] * len(t.headers)
    lines = ["| " + " | ".join(_cell(h) for h in t.headers) + " |",
             "|" + "|".join("---:" if r else "---" for r in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    if t.note:
        lines += ["", f"*{t.note}*"]
    return lines


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Alert):
            lines = [_ALERT[b.kind], "> " + b.text] + [f"> - {item}" for item in b.items]
            out.append("\n".join(lines))
        elif isinstance(b, Table):
            out.append("\n".join(table_md(b)))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({b.path})")
        else:  # pragma: no cover - a new block type must get a renderer
            raise TypeError(f"no Markdown renderer for {type(b).__name__}")
    return "\n\n".join(out) + "\n"
