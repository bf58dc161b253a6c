"""Learning loss's acquisition: the highest predicted loss first.

The loss prediction module is trained with the segmentation network
(`deal.models.learning_loss.train_learning_loss`); scoring runs the network
once per batch (`forward_with_levels`) and the module on its encoder
features. Like QBC it needs the model, not one output:
`score_batch(model, images) -> Tensor[B]`, after `load` or with the module
given at construction.
"""

from __future__ import annotations

import torch
from torch import nn

from deal.models.learning_loss import LossPredictionModule, build_loss_module, train_learning_loss

__all__ = ["LearningLoss", "train_learning_loss", "build_loss_module", "LossPredictionModule"]


class LearningLoss:
    name = "learning_loss"
    needs_difficulty = False

    def __init__(self, loss_module: LossPredictionModule | None = None, hidden: int = 128, **training_options) -> None:
        # training options (lambda_loss, margin, detach_after) belong to the train
        # stage; accepted here so one params section can configure the method.
        self.loss_module = loss_module
        self.hidden = hidden
        self.training_options = training_options

    def build(self, model: nn.Module, seed: int | None = None) -> LossPredictionModule:
        """A fresh loss prediction module for `model` (kept as this scorer's module)."""
        self.loss_module = build_loss_module(model, self.hidden, seed=seed)
        return self.loss_module

    def load(self, model: nn.Module, state: dict) -> LossPredictionModule:
        """The module of a saved state dict, sized for `model`."""
        module = build_loss_module(model, self.hidden)
        module.load_state_dict(state)
        self.loss_module = module
        return module

    @torch.inference_mode()
    def score_batch(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """The predicted loss of each image (B, float32); both networks in eval mode."""
        if self.loss_module is None:
            raise ValueError("learning loss has no loss prediction module: build() or load() one first")
        segmenter = getattr(model, "segmenter", model)
        model.eval()
        self.loss_module.to(images.device).eval()
        _, levels = segmenter.forward_with_levels(images)
        return self.loss_module(levels).float()
