"""Losses of docs/method.md (#losses): cross-entropy, the error mask and the difficulty BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, void_index: int) -> torch.Tensor:
    """Pixel cross-entropy with void ignored (`L_seg`)."""
    return F.cross_entropy(logits.float(), target, ignore_index=void_index)


@torch.no_grad()
def error_mask(
    logits: torch.Tensor, target: torch.Tensor, void_index: int, void_as_correct: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The error mask `M^e` (1 where argmax != ground truth) and the pixels that count.

    Returns `(errors, valid)`, both B x H x W: `errors` float in {0, 1},
    `valid` bool. By default void pixels are excluded (`valid` False there);
    `void_as_correct=True` is the published code: void counts as correct
    (error 0) and every pixel is valid.
    """
    prediction = logits.argmax(dim=1)
    void = target == void_index
    errors = (prediction != target) & ~void
    valid = torch.ones_like(void) if void_as_correct else ~void
    return errors.float(), valid


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum()
    return (values * mask).sum() / count.clamp_min(1)


def weighted_bce(
    difficulty_logits: torch.Tensor, errors: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """`L_dif`: class-balanced BCE between `M^d = sigmoid(logits)` and `M^e`.

    With `n_r` right and `n_e` error pixels among the valid ones of the batch,
    `w_r, w_e` are proportional to `1/sqrt(n + 1)` and sum to 1;
    `L = w_r * mean_right(BCE) + w_e * mean_error(BCE)` (an empty mean is 0).
    """
    difficulty_logits = difficulty_logits.float().reshape(errors.shape)
    bce = F.binary_cross_entropy_with_logits(difficulty_logits, errors, reduction="none")
    wrong = (errors > 0.5) & valid
    right = (errors <= 0.5) & valid
    inv = torch.stack([right.sum(), wrong.sum()]).float().add(1).rsqrt()
    w_right, w_wrong = inv / inv.sum()
    return w_right * _masked_mean(bce, right) + w_wrong * _masked_mean(bce, wrong)


def plain_bce(difficulty_logits: torch.Tensor, errors: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Unweighted BCE over the valid pixels (the option to `weighted_bce`)."""
    difficulty_logits = difficulty_logits.float().reshape(errors.shape)
    bce = F.binary_cross_entropy_with_logits(difficulty_logits, errors, reduction="none")
    return _masked_mean(bce, valid)


DIFFICULTY_LOSSES = {"weighted_bce": weighted_bce, "bce": plain_bce}


def deal_loss(
    logits: torch.Tensor,
    difficulty_logits: torch.Tensor | None,
    target: torch.Tensor,
    void_index: int,
    lambda_dif: float = 1.0,
    difficulty_loss: str = "weighted_bce",
    void_as_correct: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`L = L_seg + lambda * L_dif`; returns the total and its detached parts."""
    seg = segmentation_loss(logits, target, void_index)
    parts = {"loss_seg": seg.detach()}
    if difficulty_logits is None:
        return seg, parts
    errors, valid = error_mask(logits, target, void_index, void_as_correct)
    dif = DIFFICULTY_LOSSES[difficulty_loss](difficulty_logits, errors, valid)
    parts["loss_dif"] = dif.detach()
    return seg + lambda_dif * dif, parts
