"""`tradeoff-ray eval CONFIG [--adapter PATH] [--out DIR] [--set k=v]`: score one model on every configured task.

    tradeoff-ray eval                                   # quickstart: bundled model, demo data, CPU
    tradeoff-ray eval configs/quickstart.yaml --set data.spider_dir=$SPIDER_DIR --set data.mmlu_dir=$MMLU_DIR
    tradeoff-ray eval CONFIG --adapter runs/<run>/train/lora-r16/adapter --out runs/<run>

Every input (config, both benchmarks, the model, the adapter) is checked before Ray starts or a
directory is touched. Writes `evals/<label>/<task>.jsonl` per task (`eval.tasks`: spider, mmlu, gsm8k, ...)
and `summary.json` into the run directory (a new one under `output_dir`, or `--out`: an existing run made
with the same config whose `evals/<label>` does not exist yet) and prints a section per task: each
measure overall and by its breakdown (EX by hardness, MMLU by category per shot count), what could not
be scored and why, and which engine ran. The label is 'baseline' without an
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
    from tradeoff_ray.ray_session import describe_target, decides_gpus, ray_session
    from tradeoff_ray.rundir import check_inputs, new_run_dir

    cfg = load_config(config, overrides)
    if adapter is not None and not is_full_model_dir(adapter):  # a fully fine-tuned model dir serves as it is
        check_adapter_dir(adapter)  # fail before starting Ray
    label = label_for(adapter)
    data = check_inputs(cfg)  # every input, before Ray, the run dir or the first expensive stage
    with ray_session(cfg.ray, wants_gpus=decides_gpus(cfg, training=False)):
        run_dir = new_run_dir(cfg, out=out, outputs=(f"evals/{label}",))
        print(f"[eval] run dir {run_dir}; label {label!r}; {describe_target(cfg.ray)}", flush=True)
        summary = evaluate(cfg, label=label, out_dir=run_dir, adapter_dir=adapter, data=data)
    print_summary(summary)
    print(f"[eval] per-example results: {run_dir / 'evals' / label}", flush=True)
    return 0


def _pct(cell: dict[str, Any] | None) -> tuple[str, str]:
    if not cell or not cell.get("n"):
        return "—", "—"
    return f"{cell['accuracy_pct']:.1f}%", f"{cell['ci_low_pct']:.1f}–{cell['ci_high_pct']:.1f}%"


def print_summary(summary: dict[str, Any]) -> None:
    """Rich tables of one label's summary (as `evaluate` returns it and summary.json holds it): a section
    per task, a table per measure with its breakdown, then what could not be scored and why."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{escape(summary['label'])}[/bold] — engine [bold]{summary['engine']}[/bold] "
                  f"({escape(summary['engine_reason'])}); served: {escape(summary['served'])}")
    for task, block in (summary.get("tasks") or {}).items():
        console.rule(f"[bold]{escape(task)}[/bold] — {escape(str(block.get('source')))}")
        for key, m in block["measures"].items():
            t = Table(title=f"{key}: {m['correct']}/{m['n']} scored of {m['n_total']}")
            head = "group" if not m.get("by_group") else "breakdown"
            for col in (head, "n", "correct", "accuracy", "95% CI"):
                t.add_column(col, justify="left" if col == head else "right")
            for group, cell in (m.get("by_group") or {}).items():
                t.add_row(group, str(cell["n"]), str(cell["correct"]), *_pct(cell))
            t.add_row("[bold]all[/bold]", str(m["n"]), str(m["correct"]), *_pct(m))
            console.print(t)
            notes = []
            if m.get("macro_accuracy_pct") is not None:
                notes.append(f"macro over categories {m['macro_accuracy_pct']:.1f}%")
            if m.get("errors"):
                notes.append("prediction classes: " + ", ".join(f"{k} {v}" for k, v in m["errors"].items()))
            if m.get("no_answer"):
                notes.append(f"[yellow]no answer read: {m['no_answer']}[/yellow]")
            if m.get("fewer_exemplars"):
                notes.append(f"[yellow]{m['fewer_exemplars']} questions had fewer dev exemplars than asked[/yellow]")
            if m.get("n_unscorable"):
                why = ", ".join(f"{k} {v}" for k, v in (m.get("unscorable") or {}).items())
                notes.append(f"[yellow]not scorable: {m['n_unscorable']}{f' ({why})' if why else ''}[/yellow]")
            for note in notes:
                console.print(note)
    tm = summary.get("timing") or {}
    if tm.get("seconds") is not None:
        console.print(f"{tm['rows']} rows in {tm['seconds']:.1f}s ({tm['rows_per_s'] or 0:.2f}/s)")
    elif tm.get("shared"):
        sh = tm["shared"]
        console.print(f"served with {sh['labels']} on {sh['engines']} engine(s): {sh['rows']} rows in "
                      f"{sh['seconds']:.1f}s")
