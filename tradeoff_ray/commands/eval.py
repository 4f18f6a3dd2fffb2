"""`tradeoff-ray eval CONFIG [--adapter PATH] [--out DIR] [--set k=v]`: score one model on Spider dev and MMLU.

    tradeoff-ray eval                                   # quickstart: bundled model, demo data, CPU
    tradeoff-ray eval configs/quickstart.yaml --set data.spider_dir=$SPIDER_DIR --set data.mmlu_dir=$MMLU_DIR
    tradeoff-ray eval CONFIG --adapter runs/<run>/train/lora-r16/adapter --out runs/<run>

Every input (config, both benchmarks, the model, the adapter) is checked before Ray starts or a
directory is touched. Writes `evals/<label>/{sql.jsonl, mmlu_<k>shot.jsonl, summary.json}` into the
run directory (a new one under `output_dir`, or `--out`: an existing run made with the same config
whose `evals/<label>` does not exist yet) and prints EX overall and by hardness, MMLU by category and shot
count, what could not be scored and why, and which engine ran. The label is 'baseline' without an
adapter, else the variant name read from the adapter path ('<variant>' or '<variant>@step<N>').
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tradeoff_ray.config import load_config
from tradeoff_ray.records import BASELINE, checkpoint_label


def label_for(adapter: Path | None) -> str:
    """'baseline', '<variant>' for .../train/<variant>/adapter, '<variant>@step<N>' for .../checkpoints/step-<N>."""
    if adapter is None:
        return BASELINE
    parts = Path(adapter).resolve().parts
    step = re.fullmatch(r"step-?(\d+)", parts[-1])
    if step and len(parts) >= 3 and parts[-2] == "checkpoints":
        return checkpoint_label(parts[-3], int(step.group(1)))
    if parts[-1] == "adapter" and len(parts) >= 2:
        return parts[-2]
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", parts[-1])


def main(config: Path | None = None, adapter: Path | None = None, out: Path | None = None,
         overrides: list[str] | None = None) -> int:
    from tradeoff_ray.infer.adapters import check_adapter_dir, is_full_model_dir
    from tradeoff_ray.infer.pipeline import evaluate
    from tradeoff_ray.ray_session import describe_target, ray_session
    from tradeoff_ray.rundir import check_inputs, new_run_dir

    cfg = load_config(config, overrides)
    if adapter is not None and not is_full_model_dir(adapter):  # a fully fine-tuned model dir serves as it is
        check_adapter_dir(adapter)  # fail before starting Ray
    label = label_for(adapter)
    spider, mmlu = check_inputs(cfg)  # every input, before Ray, the run dir or the first expensive stage
    with ray_session(cfg.ray):
        run_dir = new_run_dir(cfg, out=out, outputs=(f"evals/{label}",))
        print(f"[eval] run dir {run_dir}; label {label!r}; {describe_target(cfg.ray)}", flush=True)
        summary = evaluate(cfg, label=label, out_dir=run_dir, adapter_dir=adapter, spider=spider, mmlu=mmlu)
    print_summary(summary)
    print(f"[eval] per-example results: {run_dir / 'evals' / label}", flush=True)
    return 0


def _pct(cell: dict[str, Any] | None, low: str = "low", high: str = "high") -> tuple[str, str]:
    if not cell or not cell.get("n"):
        return "—", "—"
    lo, hi = (cell["ci95"] if "ci95" in cell else (cell[low], cell[high]))
    return f"{cell['accuracy']:.1%}", f"{lo:.1%}–{hi:.1%}"


def print_summary(summary: dict[str, Any]) -> None:
    """Rich tables of one label's summary (as `evaluate` returns it and summary.json holds it)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{escape(summary['label'])}[/bold] — engine [bold]{summary['engine']}[/bold] "
                  f"({escape(summary['engine_reason'])}); served: {escape(summary['served'])}")
    sql = summary.get("sql")
    if sql:
        t = Table(title=f"Spider EX ({sql['scored']} of {sql['questions']} questions scored)")
        for col in ("hardness", "n", "correct", "EX", "95% CI"):
            t.add_column(col, justify="left" if col == "hardness" else "right")
        for level, cell in sql["by_hardness"].items():
            t.add_row(level, str(cell["n"]), str(cell["correct"]), *_pct(cell))
        t.add_row("[bold]all[/bold]", str(sql["ex"]["n"]), str(sql["ex"]["correct"]), *_pct(sql["ex"]))
        console.print(t)
        errors = ", ".join(f"{k} {v}" for k, v in sql["errors"].items())
        console.print(f"prediction classes: {errors or 'none'}")
        if sql["wrong_result_kinds"]:
            console.print("wrong results: " + ", ".join(f"{k} {v}" for k, v in sql["wrong_result_kinds"].items()))
        if sql["unscorable"]:
            why = ", ".join(f"{k} {v}" for k, v in sql["unscorable"].items())
            console.print(f"[yellow]not scorable: {sum(sql['unscorable'].values())} ({why})[/yellow]")
    for shots, acc in (summary.get("mmlu") or {}).items():
        t = Table(title=f"MMLU {shots}-shot ({acc['n']} questions)")
        for col in ("category", "n", "correct", "accuracy", "95% CI"):
            t.add_column(col, justify="left" if col == "category" else "right")
        for cat, cell in acc["per_category"].items():
            t.add_row(cat, str(cell["n"]), str(cell["correct"]), *_pct(cell))
        t.add_row("[bold]micro[/bold]", str(acc["micro"]["n"]), str(acc["micro"]["correct"]), *_pct(acc["micro"]))
        t.add_row("[bold]macro[/bold]", "", "", f"{acc['macro']:.1%}", "")
        console.print(t)
        if acc.get("no_answer"):
            console.print(f"[yellow]no answer read: {acc['no_answer']}[/yellow]")
        if acc.get("fewer_exemplars"):
            console.print(f"[yellow]{acc['fewer_exemplars']} questions had fewer than {shots} dev exemplars[/yellow]")
        for w in acc.get("warnings", []):
            console.print(f"[red]warning: {escape(w)}[/red]")
    for task, tm in (summary.get("timing") or {}).items():
        console.print(f"{task}: {tm['rows']} rows in {tm['seconds']:.1f}s ({tm['rows_per_s'] or 0:.2f}/s)")
