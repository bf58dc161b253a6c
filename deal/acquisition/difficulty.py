"""DEAL's acquisition functions on the semantic difficulty map `M^d`."""

from __future__ import annotations

import torch

from deal.acquisition.base import Heuristic

BIN_SPANS = ("image", "fixed")


def difficulty_score(difficulty: torch.Tensor) -> torch.Tensor:
    """DS: the mean of `M^d` over each image's pixels (B x [1 x] H x W -> B)."""
    return difficulty.float().flatten(1).mean(dim=1)


def difficulty_levels(difficulty: torch.Tensor, k: int, span: str = "image") -> torch.Tensor:
    """Quantise `M^d` into `k` levels (B x N integer bins in [0, k)).

    `span="image"` (published) spreads the bins over each image's own
    min..max, the top edge included in the last bin (numpy.histogram's rule);
    a constant image falls wholly in bin 0. `span="fixed"` uses [0, 1].
    """
    if span not in BIN_SPANS:
        raise ValueError(f"bin span must be one of {BIN_SPANS}, got {span!r}")
    flat = difficulty.float().flatten(1)
    if span == "image":
        low = flat.amin(dim=1, keepdim=True)
        width = flat.amax(dim=1, keepdim=True) - low
        scaled = (flat - low) / torch.where(width > 0, width, torch.ones_like(width))
    else:
        scaled = flat
    return (scaled * k).floor().clamp_(0, k - 1).long()


def difficulty_entropy(difficulty: torch.Tensor, k: int, span: str = "image") -> torch.Tensor:
    """DE: the entropy of the share of pixels at each of the `k` difficulty levels."""
    levels = difficulty_levels(difficulty, k, span)
    counts = torch.zeros(levels.shape[0], k, device=levels.device)
    counts.scatter_add_(1, levels, torch.ones_like(levels, dtype=counts.dtype))
    shares = counts / levels.shape[1]
    return -(shares * torch.log(shares.clamp_min(1e-12))).sum(dim=1)


class DifficultyScore(Heuristic):
    name = "deal_ds"
    needs_difficulty = True

    def __call__(self, output) -> torch.Tensor:
        return difficulty_score(torch.sigmoid(output.difficulty_logits.float()))


class DifficultyEntropy(Heuristic):
    name = "deal_de"
    needs_difficulty = True

    def __init__(self, k: int = 8, span: str = "image") -> None:
        if k < 2:
            raise ValueError(f"DE needs at least 2 difficulty levels, got k={k}")
        if span not in BIN_SPANS:
            raise ValueError(f"bin span must be one of {BIN_SPANS}, got {span!r}")
        self.k = k
        self.span = span

    def __call__(self, output) -> torch.Tensor:
        return difficulty_entropy(torch.sigmoid(output.difficulty_logits.float()), self.k, self.span)
