"""Labeled / unlabeled pools of sample ids within a split (no torch here).

A ``Pool`` is immutable: ``add`` returns a new pool. Its invariants hold at
construction: ids are unique, ``labeled`` is a subset of the split, and
``labeled`` and ``unlabeled`` are disjoint with the split as their union.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def _unique_sorted(ids: Iterable[str], what: str) -> tuple[str, ...]:
    ids = [str(i) for i in ids]
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{i}: duplicate id in {what}")
        seen.add(i)
    return tuple(sorted(ids))


class Pool:
    __slots__ = ("_split", "_labeled", "_split_set", "_labeled_set")

    def __init__(self, split_ids: Iterable[str], labeled: Iterable[str] = ()):
        split = _unique_sorted(split_ids, "the split")
        lab = _unique_sorted(labeled, "the labeled set")
        split_set = frozenset(split)
        for i in lab:
            if i not in split_set:
                raise ValueError(f"{i}: labeled id is not in the split")
        object.__setattr__(self, "_split", split)
        object.__setattr__(self, "_labeled", lab)
        object.__setattr__(self, "_split_set", split_set)
        object.__setattr__(self, "_labeled_set", frozenset(lab))

    def __setattr__(self, name, value):
        raise AttributeError("Pool is immutable; add() returns a new pool")

    @property
    def split_ids(self) -> list[str]:
        return list(self._split)

    @property
    def labeled(self) -> list[str]:
        return list(self._labeled)

    @property
    def unlabeled(self) -> list[str]:
        return [i for i in self._split if i not in self._labeled_set]

    @property
    def fraction_labeled(self) -> float:
        return len(self._labeled) / len(self._split) if self._split else 0.0

    def __len__(self) -> int:
        return len(self._labeled)

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self._labeled_set

    def __eq__(self, other) -> bool:
        return isinstance(other, Pool) and self._split == other._split and self._labeled == other._labeled

    def __hash__(self) -> int:
        return hash((self._split, self._labeled))

    def __repr__(self) -> str:
        return f"Pool(labeled={len(self._labeled)}, unlabeled={len(self._split) - len(self._labeled)})"

    def add(self, ids: Iterable[str]) -> "Pool":
        """A new pool with ``ids`` labeled too. Refuses (ValueError naming the
        id) an id that is not in the split, already labeled, or given twice."""
        ids = list(ids)
        seen: set[str] = set()
        for i in ids:
            if i not in self._split_set:
                raise ValueError(f"{i}: not in the split; cannot label it")
            if i in self._labeled_set:
                raise ValueError(f"{i}: already labeled")
            if i in seen:
                raise ValueError(f"{i}: given twice")
            seen.add(i)
        return Pool(self._split, self._labeled + tuple(ids))

    def to_dict(self) -> dict:
        return {"split": list(self._split), "labeled": list(self._labeled)}

    @classmethod
    def from_dict(cls, d: dict) -> "Pool":
        pool = cls(d["split"], d["labeled"])
        if "unlabeled" in d and sorted(d["unlabeled"]) != pool.unlabeled:
            raise ValueError("pool file: 'unlabeled' does not equal split minus labeled")
        return pool


def initial_pool(split_ids: Sequence[str], size: int, seed: int) -> Pool:
    """A seeded random labeled set of ``size`` ids; the same seed and split
    give the same pool whatever the order ``split_ids`` come in."""
    split = _unique_sorted(split_ids, "the split")
    if not 0 <= size <= len(split):
        raise ValueError(f"initial pool size {size} is larger than the split ({len(split)} ids)")
    order = np.random.default_rng(seed).permutation(len(split))
    return Pool(split, [split[i] for i in order[:size]])


def subsample_size(n: int, rho: float) -> int:
    """How many of `n` ids a sub-sample of fraction `rho` keeps: ``ceil(rho * n)`` (a float's
    rounding error never adds one), at most `n`."""
    return min(n, math.ceil(rho * n - 1e-9))


def subsample(ids: Sequence[str], rho: float, seed: int) -> list[str]:
    """Pool sub-sampling: a seeded random ``ceil(rho * len(ids))`` of ``ids``,
    sorted. ``rho = 1`` returns every id. Vary ``seed`` per round (e.g.
    ``seed + round``) to draw a different subset each round."""
    if not 0 < rho <= 1:
        raise ValueError(f"rho must be in (0, 1], got {rho}")
    ids = _unique_sorted(ids, "the ids to subsample")
    k = subsample_size(len(ids), rho)
    if k == len(ids):
        return list(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    return sorted(ids[i] for i in order[:k])
