"""Learning loss's acquisition: the highest predicted loss first.

The loss prediction module (deal.models.learning_loss) is trained with the
segmentation network: deal.training.train with `RankingLoss` as its extra
term, `L = L_seg + lambda * L_loss`, where `L_loss` is the paper's margin
ranking loss on pairs of the batch (`loss_prediction_loss`; the target of an
image is its own mean pixel cross-entropy, detached; margin 1, lambda 1).
After a fraction `detach_after` of the epochs (paper: 120 of 200 = 0.6) the
module's input features are detached, so the ranking loss no longer reaches
the segmentation network. Scoring runs the network
once per batch (`forward_with_levels`) and the module on its encoder
features. Like QBC it needs the model, not one output:
`score_batch(model, images) -> Tensor[B]`, after `load` or with the module
given at construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deal.models.learning_loss import LossPredictionModule, build_loss_module

__all__ = ["LearningLoss", "RankingLoss", "build_loss_module", "LossPredictionModule", "loss_prediction_loss",
           "per_image_loss", "detach_epoch"]


def loss_prediction_loss(predicted: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The paper's margin ranking loss over the pairs (i, B-1-i), i < B // 2.

    For a pair, with `one = +1` if target_i > target_j else -1 (ties count as
    -1, as in the reference code): `max(0, margin - one * (pred_i - pred_j))`,
    averaged over the pairs. The target is detached. An odd batch leaves its
    middle image out; fewer than 2 images give 0.
    """
    predicted = predicted.float().flatten()
    target = target.detach().float().flatten()
    half = predicted.shape[0] // 2
    if half == 0:
        return predicted.sum() * 0
    pred_diff = predicted[:half] - predicted.flip(0)[:half]
    target_diff = target[:half] - target.flip(0)[:half]
    one = 2 * torch.sign(target_diff.clamp_min(0)) - 1
    return (margin - one * pred_diff).clamp_min(0).mean()


def per_image_loss(logits: torch.Tensor, target: torch.Tensor, void_index: int) -> torch.Tensor:
    """Each image's mean pixel cross-entropy over its non-void pixels (B; 0 if all void)."""
    ce = F.cross_entropy(logits.float(), target, ignore_index=void_index, reduction="none").flatten(1)
    valid = (target != void_index).flatten(1)
    return ce.sum(dim=1) / valid.sum(dim=1).clamp_min(1)


def detach_epoch(epochs: int, detach_after: float | None) -> int | None:
    """First (0-based) epoch whose features are detached, or None for never."""
    if detach_after is None:
        return None
    if not 0 <= detach_after <= 1:
        raise ValueError(f"detach_after must be in [0, 1] or None, got {detach_after}")
    return math.ceil(detach_after * epochs)


class RankingLoss:
    """Learning loss's term of the training objective (deal.training.train's `extra_loss`):
    `lambda * loss_prediction_loss(module(levels), per-image loss)`, its input features
    detached from epoch `detach_epoch(epochs, detach_after)` on."""

    name = "loss_pred"

    def __init__(self, loss_module: LossPredictionModule, lambda_loss: float = 1.0, margin: float = 1.0,
                 detach_after: float | None = 0.6) -> None:
        self.loss_module, self.lambda_loss, self.margin, self.detach_after = loss_module, lambda_loss, margin, detach_after
        self.detached = False

    def param_group(self, cfg) -> dict:
        """The module learns at the heads' rate."""
        return {"params": list(self.loss_module.parameters()), "lr": cfg.lr * cfg.head_lr_mult, "name": "loss_module"}

    def begin_epoch(self, epoch: int, epochs: int) -> dict:
        first = detach_epoch(epochs, self.detach_after)
        self.detached = first is not None and epoch >= first
        return {"detached": self.detached}

    def forward(self, model: nn.Module, images: torch.Tensor):
        out, levels = getattr(model, "segmenter", model).forward_with_levels(images)
        if self.detached:
            levels = [x.detach() for x in levels]
        return out, self.loss_module(levels)

    def __call__(self, out, predicted: torch.Tensor, masks: torch.Tensor, void_index: int):
        targets = per_image_loss(out.logits.detach(), masks, void_index)
        loss_pred = loss_prediction_loss(predicted, targets, self.margin)
        return self.lambda_loss * loss_pred, loss_pred


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
