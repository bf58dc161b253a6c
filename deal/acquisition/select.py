"""Ranking and selection: plain NumPy, so the select stage never imports torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_b(ids: Sequence[str], scores: Sequence[float], b: int) -> list[str]:
    """The `b` ids with the highest scores; ties keep the ids' sorted order."""
    if len(ids) != len(scores):
        raise ValueError(f"{len(ids)} ids but {len(scores)} scores")
    if b > len(ids):
        raise ValueError(f"cannot select {b} of {len(ids)} candidates")
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    values = np.asarray(scores, dtype=np.float64)[order]
    if np.isnan(values).any():
        raise ValueError("scores contain NaN")
    ranked = np.argsort(-values, kind="stable")
    return [ids[order[i]] for i in ranked[:b]]


def random_scores(ids: Sequence[str], seed: int) -> list[float]:
    """Uniform scores under `seed`, independent of the order `ids` come in."""
    rng = np.random.default_rng(seed)
    values = rng.random(len(ids))
    rank = {sample_id: float(values[i]) for i, sample_id in enumerate(sorted(ids))}
    return [rank[sample_id] for sample_id in ids]
