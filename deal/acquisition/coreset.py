"""Core-set (Sener and Savarese, ICLR 2018): greedy k-center on pooled features.

An image is a point: its decoder features (`DEALOutput.features`, B x 256 x
H/4 x W/4) averaged over space (`pooled_features`). The labeled set is the
initial set of centres; each pick is the unlabeled point farthest from its
nearest centre, which then becomes a centre (the greedy 2-approximation of
the k-center problem, the paper's Algorithm 1; its robust MIP refinement is
not part of DEAL's comparison).

Each point's distance to its nearest centre is kept and lowered after each
pick with one N-vector of distances to the new centre: O(N (L + b) D)
work in all, the N x L distances to the labeled set computed in chunks.
Distances: `euclidean` or `cosine` (1 - cosine similarity).

Core-set selects a batch jointly; it does not score images one by one.
`CoreSet.scores` turns the picks into scores for the pipeline's
"highest first" contract: `b - position` for the picks (b, b-1, ..., 1) and
0 for every other image, so `top_b` of the scores returns the picks in pick
order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

METRICS = ("euclidean", "cosine")


def pooled_features(output) -> torch.Tensor:
    """Global average pool of the decoder features: B x D float32."""
    return output.features.float().mean(dim=(2, 3))


def _prepare(points: torch.Tensor, metric: str) -> torch.Tensor:
    points = points if points.dtype == torch.float64 else points.float()
    return F.normalize(points, dim=1) if metric == "cosine" else points


def _distances(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    """|a| x |b| distances between prepared points."""
    if metric == "cosine":
        return (1 - a @ b.T).clamp_min(0)
    return torch.cdist(a, b)


def kcenter_greedy(
    unlabeled: torch.Tensor,
    labeled: torch.Tensor | None,
    b: int,
    metric: str = "euclidean",
    chunk: int = 4096,
) -> list[int]:
    """Indices of `b` rows of `unlabeled` (N x D) in pick order.

    `labeled` (L x D, or None / 0 rows) are the initial centres. With no
    labeled point the first pick is the point farthest from the pool's mean
    (deterministic; the reference implementation draws it at random).
    Runs on the device of `unlabeled`.
    """
    if metric not in METRICS:
        raise ValueError(f"core-set metric must be one of {METRICS}, got {metric!r}")
    n = unlabeled.shape[0]
    if not 0 <= b <= n:
        raise ValueError(f"cannot select {b} of {n} candidates")
    if b == 0:
        return []
    points = _prepare(unlabeled, metric)
    if labeled is None or labeled.shape[0] == 0:
        centres = points.mean(dim=0, keepdim=True)
        if metric == "cosine":
            centres = F.normalize(centres, dim=1)
    else:
        centres = _prepare(labeled.to(points.device), metric).to(points.dtype)
    nearest = torch.full((n,), float("inf"), dtype=points.dtype, device=points.device)
    for i in range(0, n, chunk):
        for j in range(0, centres.shape[0], chunk):
            block = _distances(points[i : i + chunk], centres[j : j + chunk], metric).amin(dim=1)
            nearest[i : i + chunk] = torch.minimum(nearest[i : i + chunk], block)
    picks: list[int] = []
    taken = torch.zeros(n, dtype=torch.bool, device=points.device)
    for _ in range(b):
        pick = int(nearest.masked_fill(taken, -1.0).argmax())
        picks.append(pick)
        taken[pick] = True
        nearest = torch.minimum(nearest, _distances(points, points[pick : pick + 1], metric)[:, 0])
    return picks


def pick_scores(n: int, picks: list[int]) -> torch.Tensor:
    """Scores that rank `picks` first, in order: b - position for picks, 0 elsewhere."""
    scores = torch.zeros(n, dtype=torch.float64)
    b = len(picks)
    for position, index in enumerate(picks):
        scores[index] = float(b - position)
    return scores


class CoreSet:
    """Batch selection by greedy k-center; see the module docstring."""

    name = "coreset"
    needs_difficulty = False

    def __init__(self, metric: str = "euclidean", chunk: int = 4096) -> None:
        if metric not in METRICS:
            raise ValueError(f"core-set metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.chunk = chunk

    def features(self, output) -> torch.Tensor:
        """The point of each image of a model output batch (B x D)."""
        return pooled_features(output)

    def select(self, unlabeled: torch.Tensor, labeled: torch.Tensor | None, b: int) -> list[int]:
        return kcenter_greedy(unlabeled, labeled, b, self.metric, self.chunk)

    def scores(self, unlabeled: torch.Tensor, labeled: torch.Tensor | None, b: int) -> torch.Tensor:
        """N scores (float64, CPU) whose top `b` are the picks, in pick order."""
        return pick_scores(unlabeled.shape[0], self.select(unlabeled, labeled, b))
