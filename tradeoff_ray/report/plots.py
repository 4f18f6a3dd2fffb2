"""Report figures (matplotlib, Agg backend, PNG), drawn only from the metrics dict.

Each function writes one PNG and returns its path, or None when the run has nothing to show
(e.g. no variant for the trade-off scatter, no checkpoints for curves). Error bars are 95%:
Wilson intervals on accuracies, paired-bootstrap intervals on differences from the baseline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tradeoff_ray.analyze.failures import FAILURES  # noqa: E402

BASE_COLOR = "#6b6b6b"
DPI = 120


def _colors(labels: list[str], baseline: str | None) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    others = [lb for lb in dict.fromkeys(labels) if lb != baseline]
    out = {lb: cmap(i % 10) for i, lb in enumerate(others)}
    if baseline:
        out[baseline] = BASE_COLOR
    return out


def _model_labels(metrics: dict) -> list[str]:
    run = metrics["run"]
    return ([run["baseline"]] if run["baseline"] else []) + list(run["variants"])


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _err(value: float, lo: float | None, hi: float | None) -> list[float]:
    """Asymmetric error-bar lengths; an interval that does not contain the value gives a 0 whisker."""
    if lo is None or hi is None:
        return [0.0, 0.0]
    return [max(0.0, value - lo), max(0.0, hi - value)]


def _title(metrics: dict, key: str | None) -> str:
    return next((x["title"] for x in metrics["run"]["measures"] if x["key"] == key), key or "")


def plot_tradeoff(metrics: dict, path: Path) -> Path | None:
    """x = Δ of the first general measure (pp), y = Δ of the target (pp) per variant, 95% CIs, Pareto front
    and the baseline."""
    pareto = metrics["pareto"]
    pts = [p for p in pareto["points"] if p["dx_pp"] is not None and p["dy_pp"] is not None]
    if not pts:
        return None
    colors = _colors(_model_labels(metrics), metrics["run"]["baseline"])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.axhline(0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.axvline(0, color="#bbbbbb", lw=0.8, zorder=0)
    for p in pts:
        x, y = p["dx_pp"], p["dy_pp"]
        xe = _err(x, *(p["x_ci_pp"] or [None, None]))
        ye = _err(y, *(p["y_ci_pp"] or [None, None]))
        ax.errorbar([x], [y], xerr=[[xe[0]], [xe[1]]], yerr=[[ye[0]], [ye[1]]], fmt="o", ms=8, capsize=4,
                    color=colors.get(p["label"], "C0"), mfc=colors.get(p["label"], "C0") if p["on_front"] else "white",
                    mew=2, label=p["label"] + (" (Pareto)" if p["on_front"] else ""))
        ax.annotate(p["label"], (x, y), textcoords="offset points", xytext=(8, 8), fontsize=9)
    ax.plot([0], [0], marker="*", ms=14, color=BASE_COLOR, ls="none", label="baseline (0, 0)")
    coords = {p["label"]: (p["dx_pp"], p["dy_pp"]) for p in pts}
    coords[metrics["run"]["baseline"] or "baseline"] = (0.0, 0.0)
    front = [coords[lb] for lb in pareto["front"] if lb in coords]
    if len(front) > 1:
        fx, fy = zip(*sorted(front))
        ax.plot(fx, fy, ls="--", color="black", lw=1.2, label="Pareto front")
    ax.set_xlabel(f"Δ {_title(metrics, pareto['x'])} vs baseline (percentage points)")
    ax.set_ylabel(f"Δ {_title(metrics, pareto['y'])} vs baseline (percentage points)")
    ax.set_title("Trade-off: target task gained vs general capability kept\n"
                 "(error bars: 95% paired bootstrap CI; filled = on the Pareto front)", fontsize=11)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _grouped_bars(ax, groups: list[str], series: dict[str, list[dict | None]], colors: dict) -> None:
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (label, blocks) in enumerate(series.items()):
        vals = [b["accuracy_pct"] if b and b["accuracy_pct"] is not None else np.nan for b in blocks]
        errs = np.array([_err(v, b["ci_low_pct"], b["ci_high_pct"]) if b and not np.isnan(v) else [0, 0]
                         for v, b in zip(vals, blocks)]).T
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, yerr=errs, capsize=3,
               color=colors.get(label, "C0"), label=label, edgecolor="white")
    ax.set_xticks(x, groups)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)


CHANCE_PCT = {"mmlu": 25.0}  # tasks with a chance level worth drawing


def plot_by_group(metrics: dict, key: str, path: Path) -> Path | None:
    """One measure per group (hardness, category) and overall for the baseline and each variant."""
    labels = [lb for lb in _model_labels(metrics) if (metrics["labels"][lb].get(key) or {}).get("by_group")]
    if not labels:
        return None
    measure = next(x for x in metrics["run"]["measures"] if x["key"] == key)
    colors = _colors(_model_labels(metrics), metrics["run"]["baseline"])
    ref = metrics["labels"][labels[0]][key]
    groups = list(ref["by_group"])
    series = {lb: [metrics["labels"][lb][key]["by_group"].get(g) for g in groups] + [metrics["labels"][lb][key]]
              for lb in labels}
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ticks = [f"{g.replace('_', ' ')}\n(n={ref['by_group'][g]['n']})" for g in groups] + [f"overall\n(n={ref['n']})"]
    _grouped_bars(ax, ticks, series, colors)
    chance = CHANCE_PCT.get(measure["task"])
    if chance is not None:
        ax.axhline(chance, color="red", ls=":", lw=1, label=f"chance ({chance:.0f}%)")
    ax.set_ylabel(f"{measure['title']} (%)")
    ax.set_title(f"{measure['title']} by {measure['group_by']} (whiskers: 95% Wilson CI)", fontsize=11)
    ax.legend(fontsize=8, ncol=min(4, len(labels) + 1), loc="upper right")
    return _save(fig, path)


def plot_curves(metrics: dict, path: Path) -> Path | None:
    """Every measure against training step for each variant with checkpoints (95% CI bands): learning on
    the target, forgetting on the general probes."""
    curves = metrics["curves"]
    if not curves:
        return None
    measures = metrics["run"]["measures"]
    colors = _colors(_model_labels(metrics) + list(curves), metrics["run"]["baseline"])
    fig, axes = plt.subplots(1, len(measures), figsize=(5.2 * len(measures), 4.5), sharex=True, squeeze=False)
    for ax, x in zip(axes[0], measures):
        for variant, curve in curves.items():
            pts = [p for p in curve["points"] if p["step"] is not None and p["measures"].get(x["key"])]
            if not pts:
                continue
            steps = [p["step"] for p in pts]
            vals = np.array([[np.nan if v is None else v for v in (p["measures"][x["key"]]["pct"],
                              p["measures"][x["key"]]["ci_low_pct"], p["measures"][x["key"]]["ci_high_pct"])]
                             for p in pts], dtype=float)
            c = colors.get(variant, "C0")
            ax.plot(steps, vals[:, 0], marker="o", color=c, label=variant)
            ax.fill_between(steps, vals[:, 1], vals[:, 2], color=c, alpha=0.15)
        kind = "Learning" if x["role"] == "target" else "Forgetting"
        ax.set_title(f"{kind}: {x['title']} over training", fontsize=11)
        ax.set_ylabel(f"{x['title']} (%)")
        chance = CHANCE_PCT.get(x["task"])
        if chance is not None:
            ax.axhline(chance, color="red", ls=":", lw=1, label=f"chance ({chance:.0f}%)")
        ax.set_xlabel("training step (optimizer steps; 0 = base model)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_ylim(0, 100)
    fig.suptitle("Checkpoints (bands: 95% Wilson CI)", fontsize=10)
    return _save(fig, path)


def plot_errors(metrics: dict, path: Path) -> Path | None:
    """Stacked bars: share of scorable Spider examples per failure class, for every model label."""
    tax = (metrics.get("errors") or {}).get("taxonomy") or {}
    labels = [lb for lb in _model_labels(metrics) if lb in tax and (metrics["labels"][lb].get("spider") or {}).get("n")]
    if not labels:
        return None
    classes = [c for c in FAILURES if any(tax[lb]["classes"].get(c) for lb in labels)]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.6))
    left = np.zeros(len(labels))
    cmap = plt.get_cmap("tab10")
    for i, c in enumerate(classes):
        share = np.array([100.0 * tax[lb]["classes"].get(c, 0) / max(1, metrics["labels"][lb]["spider"]["n"])
                          for lb in labels])
        ax.barh(labels, share, left=left, color=cmap(i % 10), label=c.replace("_", " "))
        left += share
    ax.invert_yaxis()
    ax.set_xlabel("share of scorable Spider examples (%)")
    ax.set_title("Why predictions fail: error taxonomy (the rest is correct)", fontsize=11)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="failure class", title_fontsize=8)
    ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_training(metrics: dict, path: Path) -> Path | None:
    """Training loss and gradient norm per step for each variant; a diverged one ends at a red x."""
    curves = {v: t["curve"] for v, t in metrics["training"].items() if t.get("curve")}
    if not curves:
        return None
    colors = _colors(list(curves), None)
    fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for variant, curve in curves.items():
        steps = [p["step"] for p in curve]
        c = colors[variant]
        for ax, key in ((ax_loss, "loss"), (ax_norm, "grad_norm")):
            vals = np.array([np.nan if p[key] is None else p[key] for p in curve], dtype=float)
            vals[~np.isfinite(vals)] = np.nan  # a non-finite value breaks the line; the x marks where
            ax.plot(steps, vals, color=c, lw=1.2, label=variant)
        divergence = metrics["training"][variant].get("divergence")
        if divergence:
            for ax in (ax_loss, ax_norm):
                ax.axvline(divergence["step"], color="red", ls=":", lw=1)
            finite = [p["loss"] for p in curve if p["loss"] is not None and np.isfinite(p["loss"])]
            ax_loss.plot([divergence["step"]], [finite[-1] if finite else 0.0], marker="x", ms=10, color="red",
                         ls="none", label=f"{variant} diverged (step {divergence['step']})")
    ax_loss.set_title("Training loss", fontsize=11)
    ax_norm.set_title("Gradient norm (before clipping)", fontsize=11)
    ax_norm.set_yscale("log")
    if not any(p.get("grad_norm") is not None for curve in curves.values() for p in curve):
        ax_norm.text(0.5, 0.5, "no gradient norms recorded\n(runs trained before they were logged)",
                     ha="center", va="center", transform=ax_norm.transAxes, fontsize=9, color="0.4")
    for ax in (ax_loss, ax_norm):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


PLOTS = {"tradeoff": plot_tradeoff, "curves": plot_curves, "errors": plot_errors, "training": plot_training}


def render_plots(metrics: dict, plot_dir: Path) -> dict[str, Path]:
    """Write every plot that has data to plot_dir/<name>.png (one `by_group_<measure>` per measure with a
    breakdown); returns {name: path}. Figures of an earlier report that this one does not draw are removed."""
    out = {}
    jobs = dict(PLOTS)
    for x in metrics["run"]["measures"]:
        if x.get("group_by"):
            jobs[f"by_group_{x['key']}"] = lambda m, p, key=x["key"]: plot_by_group(m, key, p)
    for name, fn in jobs.items():
        made = fn(metrics, plot_dir / f"{name}.png")
        if made is not None:
            out[name] = made
    for stale in plot_dir.glob("*.png") if plot_dir.is_dir() else []:
        if stale.stem not in out:
            stale.unlink()
    return out
