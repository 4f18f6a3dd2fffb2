"""`tradeoff-ray report RUN_DIR`: rebuild metrics.json, plots and report.md/.html from saved results.

No recomputation and no torch/Ray import: it reads the per-example records of the run dir only.
Prints where the files are, the check status and the headline trade-off table.
"""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable

from tradeoff_ray.report.blocks import Table
from tradeoff_ray.report.build import build_report_with_metrics
from tradeoff_ray.report.sections import headline_table


def _rich(t: Table, title: str) -> RichTable:
    out = RichTable(title=title, title_justify="left")
    for i, h in enumerate(t.headers):
        out.add_column(h, justify="right" if t.numeric and t.numeric[i] else "left", no_wrap=True)
    for row in t.rows:
        out.add_row(*[c.replace("**", "") for c in row])
    return out


def main(run_dir: Path) -> int:
    md_path, html_path, metrics = build_report_with_metrics(run_dir)
    console = Console(width=max(200, Console().width))  # the headline table is wide; never wrap its cells
    checks = metrics["checks"]
    if checks["status"] == "failed":
        console.print("[bold red]SANITY CHECKS FAILED[/] — the numbers may be wrong:")
        for name in checks["failed"]:
            console.print(f"  - {name}")
    else:
        console.print(f"[green]all sanity checks passed[/] ({len(checks['not_run'])} not run)")
    console.print(_rich(headline_table(metrics), f"Trade-off vs baseline ({metrics['run']['name']})"))
    console.print(f"report:  {md_path}\nhtml:    {html_path}\nmetrics: {Path(run_dir) / 'metrics.json'}")
    return 0
