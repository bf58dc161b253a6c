"""Losses of docs/method.md (#losses): cross-entropy, the error mask and the difficulty BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, void_index: int, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Pixel cross-entropy with void ignored (`L_seg`); `class_weights` weighs each class's pixels
    (the mean is then over the weights of the batch's pixels, as torch's weighted cross-entropy)."""
    return F.cross_entropy(logits.float(), target, weight=class_weights, ignore_index=void_index)


def median_frequency_weights(masks: torch.Tensor, num_classes: int, void_index: int) -> tuple[float, ...]:
    """Median frequency balancing (Eigen and Fergus, ICCV 2015; SegNet's weights on CamVid,
    Badrinarayanan et al., TPAMI 2017): `w_c = median(f) / f_c`, where `f_c` is the pixels of class c over
    the labelled (non-void) pixels of the images that hold c, the median over the classes present. A class
    no mask holds gets weight 0: it has no pixel to weigh. `masks`: N x H x W class ids."""
    flat = masks.reshape(masks.shape[0], -1).long()
    bins = max(num_classes, void_index + 1)
    counts = torch.stack([torch.bincount(m, minlength=bins)[:num_classes] for m in flat]).double()  # N x C
    labelled = counts.sum(1, keepdim=True)  # void left out
    present = counts > 0
    class_pixels = counts.sum(0)
    image_pixels = (labelled * present).sum(0)
    held = class_pixels > 0
    if not held.any():
        raise ValueError("median frequency weights: the masks hold no labelled pixel")
    freq = torch.where(held, class_pixels / image_pixels.clamp_min(1), torch.zeros_like(class_pixels))
    median = freq[held].median()  # torch: the lower of the two middle values for an even count
    weights = torch.where(held, median / freq.clamp_min(1e-12), torch.zeros_like(freq))
    return tuple(float(w) for w in weights)


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
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`L = L_seg + lambda * L_dif`; returns the total and its detached parts."""
    seg = segmentation_loss(logits, target, void_index, class_weights)
    parts = {"loss_seg": seg.detach()}
    if difficulty_logits is None:
        return seg, parts
    errors, valid = error_mask(logits, target, void_index, void_as_correct)
    dif = DIFFICULTY_LOSSES[difficulty_loss](difficulty_logits, errors, valid)
    parts["loss_dif"] = dif.detach()
    return seg + lambda_dif * dif, parts
