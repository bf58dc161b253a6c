"""The interface every model-based acquisition function implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Heuristic(ABC):
    """Scores a batch of images from the network's outputs; higher = more informative.

    `__call__` receives the model output (a `DEALOutput`: `logits`
    B x C x H x W and, for DEAL methods, `difficulty_logits` B x 1 x H x W)
    and returns a float tensor of B scores on the same device: no host
    sync, no per-image Python loop.
    """

    name: str = ""
    needs_difficulty: bool = False

    @abstractmethod
    def __call__(self, output) -> torch.Tensor: ...
