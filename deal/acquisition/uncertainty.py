"""Softmax-uncertainty baselines: entropy, margin and least confidence."""

from __future__ import annotations

import torch

from deal.acquisition.base import Heuristic


def pixel_entropy(probs: torch.Tensor) -> torch.Tensor:
    """-sum_c p log p per pixel (B x H x W), with 0 log 0 = 0."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)


class Entropy(Heuristic):
    """Mean pixel softmax entropy (the paper's Entropy baseline)."""

    name = "entropy"

    def __call__(self, output) -> torch.Tensor:
        probs = torch.softmax(output.logits.float(), dim=1)
        return pixel_entropy(probs).flatten(1).mean(dim=1)


class Margin(Heuristic):
    """Mean of 1 - (p_top1 - p_top2): a small margin between the two best classes is uncertain."""

    name = "margin"

    def __call__(self, output) -> torch.Tensor:
        top2 = torch.softmax(output.logits.float(), dim=1).topk(2, dim=1).values
        return (1 - (top2[:, 0] - top2[:, 1])).flatten(1).mean(dim=1)


class LeastConfidence(Heuristic):
    """Mean of 1 - p_top1."""

    name = "least_confidence"

    def __call__(self, output) -> torch.Tensor:
        top1 = torch.softmax(output.logits.float(), dim=1).amax(dim=1)
        return (1 - top1).flatten(1).mean(dim=1)
