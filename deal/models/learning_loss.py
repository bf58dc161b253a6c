"""Learning loss (Yoo and Kweon, CVPR 2019): predict each image's loss, label the highest.

The loss prediction module reads the segmentation network's multi-level
encoder features (`DeepLabV3Plus.forward_with_levels`: the ends of the
stride-4, -8, -16 stages and the encoder output, as ResNet's four stages in
the paper): per level global average pooling -> FC -> ReLU (128 units),
the levels concatenated -> FC -> one scalar, the predicted loss.

It is trained with the segmentation network (`train_learning_loss`):
`L = L_seg + lambda * L_loss`, where `L_loss` is the paper's margin ranking
loss on pairs of the batch (`loss_prediction_loss`; the target of an image is
its own mean pixel cross-entropy, detached; margin 1, lambda 1). After a
fraction `detach_after` of the epochs (paper: 120 of 200 = 0.6) the
module's input features are detached, so the ranking loss no longer reaches
the segmentation network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset


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


@dataclass
class LearningLossResult:
    state_dict: dict  # the segmentation network's best-validation weights (last without validation)
    loss_module_state: dict  # the loss prediction module of the same epoch
    best_epoch: int
    best_miou: float | None
    history: list[dict] = field(default_factory=list)


def detach_epoch(epochs: int, detach_after: float | None) -> int | None:
    """First (0-based) epoch whose features are detached, or None for never."""
    if detach_after is None:
        return None
    if not 0 <= detach_after <= 1:
        raise ValueError(f"detach_after must be in [0, 1] or None, got {detach_after}")
    return math.ceil(detach_after * epochs)


def train_learning_loss(
    model: nn.Module,
    loss_module: LossPredictionModule,
    train_set: Dataset,
    cfg,
    *,
    num_classes: int,
    void_index: int,
    lambda_loss: float = 1.0,
    margin: float = 1.0,
    detach_after: float | None = 0.6,
    val_set: Dataset | None = None,
    resume: dict | None = None,
    save_last: Callable[[dict], None] | None = None,
    log: Callable[[dict], None] | None = None,
) -> LearningLossResult:
    """Train `model` (a DEALNet; its difficulty branch, if any, is left alone)
    and `loss_module` together on `train_set` of (image, mask) pairs.

    The recipe of `deal.training.train` (`cfg` is its `TrainConfig`; `mode`
    is ignored: this is segmentation training): SGD with the encoder at `lr`,
    the heads and the loss module at `lr * head_lr_mult`, poly schedule,
    per-epoch seeding, validation every `val_every` epochs keeping the best
    checkpoint (of both networks), resumable through `resume` / `save_last`.
    `log` receives one dict per epoch (`loss`, `loss_seg`, `loss_pred`).
    """
    from tqdm.auto import tqdm

    from deal.losses import segmentation_loss
    from deal.training import (
        _cpu_state, _loader, _poly, autocast, build_optimizer, evaluate, memory_format, resolve_device,
        resolve_precision, seed_everything,
    )

    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    fmt = memory_format(dtype)
    seed_everything(cfg.seed)
    model.to(device, memory_format=fmt)
    loss_module.to(device)
    segmenter = model.segmenter
    for p in segmenter.parameters():
        p.requires_grad_(True)
    if getattr(model, "difficulty", None) is not None:
        for p in model.difficulty.parameters():
            p.requires_grad_(False)
    optimizer = build_optimizer(model, cfg)
    optimizer.add_param_group(
        {"params": list(loss_module.parameters()), "lr": cfg.lr * cfg.head_lr_mult, "name": "loss_module"}
    )
    generator = torch.Generator()
    loader = _loader(train_set, cfg, device, generator, shuffle=True)
    total_steps = cfg.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _poly(total_steps, cfg.poly_power))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    first_detached = detach_epoch(cfg.epochs, detach_after)

    start_epoch, best_miou, best_epoch, best_state, best_module, history = 0, None, -1, None, None, []
    if resume is not None:
        model.load_state_dict(resume["model"])
        loss_module.load_state_dict(resume["loss_module"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume["epoch"])
        best_miou = resume.get("best_miou")
        best_epoch = int(resume.get("best_epoch", -1))
        best_state = resume.get("best_state")
        best_module = resume.get("best_loss_module")
        history = list(resume.get("history", []))

    bar = tqdm(total=cfg.epochs * len(loader), initial=start_epoch * len(loader), desc="train (learning loss)",
               unit="step", disable=None if cfg.progress else True, leave=False)
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        generator.manual_seed(cfg.seed * 100_003 + epoch)
        model.train()
        loss_module.train()
        detached = first_detached is not None and epoch >= first_detached
        sums = torch.zeros(3, device=device)
        steps = 0
        for images, masks in loader:
            images = images.to(device, non_blocking=True).contiguous(memory_format=fmt)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, dtype):
                out, levels = segmenter.forward_with_levels(images)
                if detached:
                    levels = [x.detach() for x in levels]
                predicted = loss_module(levels)
            loss_seg = segmentation_loss(out.logits, masks, void_index)
            targets = per_image_loss(out.logits.detach(), masks, void_index)
            loss_pred = loss_prediction_loss(predicted, targets, margin)
            loss = loss_seg + lambda_loss * loss_pred
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            sums += torch.stack([loss.detach(), loss_seg.detach(), loss_pred.detach()])
            steps += 1
            bar.update(1)
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "detached": detached}
        record.update(dict(zip(("loss", "loss_seg", "loss_pred"), (sums / max(steps, 1)).tolist())))
        last_epoch = epoch + 1 == cfg.epochs
        if val_set is not None and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
            scores = evaluate(model, val_set, num_classes=num_classes, void_index=void_index, cfg=cfg)
            record["val_miou"] = scores["miou"]
            if best_miou is None or scores["miou"] > best_miou:
                best_miou, best_epoch = scores["miou"], epoch + 1
                best_state, best_module = _cpu_state(model), _cpu_state(loss_module)
        history.append(record)
        bar.set_postfix(epoch=epoch + 1, loss=f"{record['loss']:.3f}")
        if log is not None:
            log(record)
        if save_last is not None and not last_epoch:
            save_last(
                {
                    "model": _cpu_state(model),
                    "loss_module": _cpu_state(loss_module),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch + 1,
                    "best_miou": best_miou,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "best_loss_module": best_module,
                    "history": history,
                }
            )
    bar.close()
    if best_state is None:
        best_state, best_module, best_epoch = _cpu_state(model), _cpu_state(loss_module), cfg.epochs
    model.load_state_dict(best_state)
    loss_module.load_state_dict(best_module)
    model.eval()
    loss_module.eval()
    return LearningLossResult(best_state, best_module, best_epoch, best_miou, history)
