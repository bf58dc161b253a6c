"""Learning loss (Yoo and Kweon, CVPR 2019): predict each image's loss, label the highest.

The loss prediction module reads the segmentation network's multi-level
encoder features (`DeepLabV3Plus.forward_with_levels`: the ends of the
stride-4, -8, -16 stages and the encoder output, as ResNet's four stages in
the paper): per level global average pooling -> FC -> ReLU (128 units),
the levels concatenated -> FC -> one scalar, the predicted loss.

It is trained with the segmentation network by deal.training.train, with the
ranking loss of deal.acquisition.learning_loss (`RankingLoss`) as its extra
term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LossPredictionModule(nn.Module):
    """GAP -> FC -> ReLU per feature level, concatenated, FC -> predicted loss (B)."""

    def __init__(self, in_channels: Sequence[int], hidden: int = 128) -> None:
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        self.levels = nn.ModuleList(nn.Linear(c, hidden) for c in self.in_channels)
        self.out = nn.Linear(hidden * len(self.in_channels), 1)

    def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(levels) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} feature levels, got {len(levels)}")
        pooled = [F.relu(fc(x.mean(dim=(2, 3)))) for fc, x in zip(self.levels, levels)]
        return self.out(torch.cat(pooled, dim=1)).squeeze(1)


def build_loss_module(model: nn.Module, hidden: int = 128, seed: int | None = None) -> LossPredictionModule:
    """A loss prediction module sized for `model` (a DEALNet or DeepLabV3Plus)."""
    segmenter = getattr(model, "segmenter", model)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return LossPredictionModule(segmenter.level_channels(), hidden)
