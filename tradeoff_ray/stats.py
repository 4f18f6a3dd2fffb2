"""Statistics for accuracies measured on the same examples: CIs, paired bootstrap, McNemar.

Sources: Wilson score interval (Wilson 1927; Agresti & Coull 1998 for its coverage); paired
bootstrap of per-example differences (Efron & Tibshirani 1993, ch. 13 percentile interval);
exact McNemar test = two-sided binomial test on the discordant pairs (McNemar 1947); minimum
detectable effect of a paired comparison from the sample size of McNemar's test (Connor 1987,
Biometrics 43:207); Holm's step-down adjustment for many comparisons (Holm 1979).
Pure Python + numpy, no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Z95 = 1.959963984540054
Z80 = 0.8416212335729143  # one-sided normal quantile for 80% power


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


def wilson_interval(successes: int, n: int, z: float = Z95) -> Interval:
    """95% Wilson score interval for a proportion (well behaved near 0, 1 and for small n)."""
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_mean_interval(values: Sequence[float], *, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of a mean of per-example values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    levels, counts = np.unique(x, return_counts=True)
    if levels.size <= 16:
        # Few distinct values (0/1 outcomes, -1/0/1 paired differences): a resample's mean depends only
        # on how often each value is drawn, which is multinomial — the same distribution as drawing
        # indices, at O(n_boot) cost instead of O(n_boot x n).
        draws = rng.multinomial(x.size, counts / x.size, size=n_boot)
        lo, hi = np.percentile(draws @ levels / x.size, [2.5, 97.5])
        return Interval(float(x.mean()), float(lo), float(hi))
    # Resample in chunks of rows so memory stays ~O(chunk x n) for the full MMLU test set (14k
    # questions); the draws are the same stream as one (n_boot, n) call, so results do not change.
    chunk = max(1, min(n_boot, 4_000_000 // x.size))
    means = np.concatenate([x[rng.integers(0, x.size, size=(min(chunk, n_boot - start), x.size))].mean(axis=1)
                            for start in range(0, n_boot, chunk)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Interval(float(x.mean()), float(lo), float(hi))


def paired_bootstrap_delta(
    base: Sequence[float], other: Sequence[float], *, n_boot: int = 2000, seed: int = 0
) -> Interval:
    """Interval of mean(other) - mean(base), resampling examples jointly (the pairing is kept)."""
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs the same examples on both sides ({a.size} vs {b.size})")
    return bootstrap_mean_interval(b - a, n_boot=n_boot, seed=seed)


def mcnemar_exact(base: Sequence[int], other: Sequence[int]) -> dict[str, float]:
    """Exact McNemar test on paired 0/1 outcomes: b = base right/other wrong, c = the reverse."""
    a, o = np.asarray(base, dtype=int), np.asarray(other, dtype=int)
    if a.shape != o.shape:
        raise ValueError(f"McNemar needs the same examples on both sides ({a.size} vs {o.size})")
    b = int(((a == 1) & (o == 0)).sum())
    c = int(((a == 0) & (o == 1)).sum())
    n = b + c
    if n == 0:
        return {"b": b, "c": c, "p_value": 1.0}
    k = min(b, c)
    if n <= 1000:
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    else:  # big-integer sums get slow; the log-space sum agrees to ~1e-12 relative
        i = np.arange(k + 1)
        logp = (math.lgamma(n + 1) - np.array([math.lgamma(j + 1) + math.lgamma(n - j + 1) for j in i])
                - n * math.log(2))
        top = logp.max()
        tail = float(math.exp(top) * np.exp(logp - top).sum())
    return {"b": b, "c": c, "p_value": min(1.0, 2 * tail)}


def min_detectable_effect(n: int, discordance: float, *, z_alpha: float = Z95, z_power: float = Z80) -> float | None:
    """Smallest |Δ| (as a proportion) a paired test on `n` examples detects with 80% power at α = 0.05.

    `discordance` is the share of examples on which the two models disagree (b + c) / n. Connor's
    sample size for McNemar's test, n = (z_α·√p_d + z_β·√(p_d − δ²))² / δ², is solved for δ. A
    difference can never exceed the discordance, so the discordance used is at least δ itself: with
    almost no disagreement the answer falls to the one-sided extreme (every discordant pair one way).
    """
    if n <= 0:
        return None
    p_d = max(0.0, min(1.0, float(discordance)))
    delta = (z_alpha + z_power) * math.sqrt(max(p_d, 1.0 / n) / n)
    for _ in range(100):  # fixed point; converges in a few steps
        p = max(p_d, delta)
        new = (z_alpha * math.sqrt(p) + z_power * math.sqrt(max(0.0, p - delta * delta))) / math.sqrt(n)
        new = min(new, 1.0)
        if abs(new - delta) < 1e-12:
            break
        delta = new
    return delta


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (same order as given; None stays None and is not counted).

    Controls the family-wise error rate over all the comparisons of one report without assuming
    they are independent: the k-th smallest p is multiplied by (m - k + 1), then made monotone.
    """
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
