"""The statistics the evaluations report: Wilson intervals, McNemar's exact test, AUROC.

Plain Python and numpy, written here because each is a few lines and the environment has no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """McNemar's exact test on paired outcomes (the same seeds under two conditions).

    Only the discordant pairs count: `a_only` episodes that a solved and b did not, `b_only` the other
    way. Under "no difference" each discordant pair goes either way with probability 1/2, so the
    two-sided p-value is the binomial tail of the smaller count, doubled (capped at 1).
    """
    if len(a) != len(b):
        raise ValueError(f"mcnemar_exact: paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    a_only = sum(bool(x) and not bool(y) for x, y in zip(a, b))
    b_only = sum(bool(y) and not bool(x) for x, y in zip(a, b))
    n = a_only + b_only
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2**n if n else 1.0
    return {"pairs": len(a), "both": sum(bool(x) and bool(y) for x, y in zip(a, b)), "a_only": a_only,
            "b_only": b_only, "neither": len(a) - n - sum(bool(x) and bool(y) for x, y in zip(a, b)),
            "p_value": min(1.0, 2.0 * tail)}


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative
    (ties count half); nan when either class is empty."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties (Mann-Whitney U)
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
