"""The training loop, evaluation and inference: flat and explicit.

`train` follows the published recipe: SGD (momentum 0.9, weight decay 5e-4),
encoder at `lr` and heads plus `gamma` at 10x, poly schedule (power 0.9),
validation every k epochs keeping the best checkpoint. It is seeded per
epoch (data order, augmentation and dropout), so a run resumed from its last
epoch checkpoint continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from deal.losses import DIFFICULTY_LOSSES, deal_loss, error_mask
from deal.metrics import ConfusionMatrix
from deal.runtime import autocast, memory_format, resolve_device, resolve_precision, seed_everything

MODES = ("joint", "segmentation", "decoupled")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 4
    lr: float = 0.01
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    nesterov: bool = True  # the published runs' (their flag defaulted to the truthy string 'False')
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    val_every: int = 5
    seed: int = 0
    # joint: L_seg + lambda * L_dif through both branches (published);
    # segmentation: L_seg only; decoupled: the difficulty branch alone on the
    # frozen segmentation output, error masks as targets.
    mode: str = "joint"
    lambda_dif: float = 1.0
    difficulty_loss: str = "weighted_bce"
    void_as_correct: bool = False
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"training mode must be one of {MODES}, got {self.mode!r}")
        if self.difficulty_loss not in DIFFICULTY_LOSSES:
            raise ValueError(f"difficulty loss must be one of {sorted(DIFFICULTY_LOSSES)}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0; set nesterov=False")


@dataclass
class TrainResult:
    state_dict: dict  # the best-validation weights (the last ones without validation)
    best_epoch: int
    best_miou: float | None
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- training


def _poly(total_steps: int, power: float) -> Callable[[int], float]:
    return lambda step: max(0.0, 1.0 - step / max(1, total_steps)) ** power


def _prepare_trainable(model: nn.Module, mode: str) -> None:
    """Decoupled training freezes the segmentation branch (weights and BN statistics)."""
    frozen = mode == "decoupled"
    for p in model.segmenter.parameters():
        p.requires_grad_(not frozen)
    if model.difficulty is not None:
        for p in model.difficulty.parameters():
            p.requires_grad_(mode != "segmentation")


def _set_train_mode(model: nn.Module, mode: str) -> None:
    model.train()
    if mode == "decoupled":
        model.segmenter.eval()


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    groups = []
    for group in model.param_groups(cfg.lr, cfg.head_lr_mult):
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            groups.append({**group, "params": params})
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def _loader(dataset: Dataset, cfg: TrainConfig, device: torch.device, generator: torch.Generator | None, shuffle: bool) -> DataLoader:
    workers = cfg.num_workers
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=RandomSampler(dataset, generator=generator) if shuffle else None,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        # a last batch of one breaks BatchNorm in training
        drop_last=shuffle and len(dataset) > cfg.batch_size,
        generator=generator,
    )


def train(
    model: nn.Module,
    train_set: Dataset,
    cfg: TrainConfig,
    *,
    num_classes: int,
    void_index: int,
    val_set: Dataset | None = None,
    resume: dict | None = None,
    save_last: Callable[[dict], None] | None = None,
    log: Callable[[dict], None] | None = None,
    extra_loss=None,
) -> TrainResult:
    """Train `model` (a `DEALNet`) on `train_set` of (image, mask) pairs.

    `resume` is a state written earlier through `save_last` (a plain dict of
    tensors, loadable with `weights_only=True`); `log` receives one dict of
    scalars per epoch. `extra_loss` adds a term of a method's own (learning
    loss: `deal.acquisition.learning_loss.RankingLoss`), with this interface:
    `param_group(cfg)` (its parameters' optimizer group, or None),
    `begin_epoch(epoch, epochs) -> dict` (per-epoch state, recorded),
    `forward(model, images) -> (output, aux)` (under autocast) and
    `__call__(output, aux, masks, void_index) -> (weighted term, its value)`,
    recorded as `extra_loss.name`.
    """
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    fmt = memory_format(dtype)
    if cfg.mode != "segmentation" and model.difficulty is None:
        raise ValueError(f"training mode {cfg.mode!r} needs the difficulty branch")
    seed_everything(cfg.seed)
    model.to(device, memory_format=fmt)
    _prepare_trainable(model, cfg.mode)
    optimizer = build_optimizer(model, cfg)
    if extra_loss is not None and (group := extra_loss.param_group(cfg)) is not None:
        optimizer.add_param_group(group)
    generator = torch.Generator()
    loader = _loader(train_set, cfg, device, generator, shuffle=True)
    total_steps = cfg.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _poly(total_steps, cfg.poly_power))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)

    start_epoch, best_miou, best_epoch, best_state, history = 0, None, -1, None, []
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume["epoch"])
        best_miou = resume.get("best_miou")
        best_epoch = int(resume.get("best_epoch", -1))
        best_state = resume.get("best_state")
        history = list(resume.get("history", []))

    # One bar for the run; tqdm stays quiet when stderr is not a terminal.
    bar = tqdm(total=cfg.epochs * len(loader), initial=start_epoch * len(loader), desc="train",
               unit="step", disable=None if cfg.progress else True, leave=False)
    for epoch in range(start_epoch, cfg.epochs):
        # Seeded per epoch: order, augmentation and dropout do not depend on
        # whether the run was resumed.
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        generator.manual_seed(cfg.seed * 100_003 + epoch)
        _set_train_mode(model, cfg.mode)
        epoch_state = extra_loss.begin_epoch(epoch, cfg.epochs) if extra_loss is not None else {}
        sums = torch.zeros(3, device=device)  # loss, seg, dif (or the extra term); summed on device, no per-batch sync
        steps = 0
        for images, masks in loader:
            images = images.to(device, non_blocking=True).contiguous(memory_format=fmt)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, dtype):
                out, aux = extra_loss.forward(model, images) if extra_loss is not None else (model(images), None)
            loss, parts = _loss(out, masks, cfg, void_index)
            if extra_loss is not None:
                term, value = extra_loss(out, aux, masks, void_index)
                loss = loss + term
                parts["loss_dif"] = value.detach()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            sums += torch.stack([loss.detach(), parts.get("loss_seg", torch.zeros((), device=device)), parts.get("loss_dif", torch.zeros((), device=device))])
            steps += 1
            bar.update(1)
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], **epoch_state}
        names = ("loss", "loss_seg", extra_loss.name if extra_loss is not None else "loss_dif")
        record.update(dict(zip(names, (sums / max(steps, 1)).tolist())))
        last_epoch = epoch + 1 == cfg.epochs
        if val_set is not None and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
            scores = evaluate(model, val_set, num_classes=num_classes, void_index=void_index, cfg=cfg)
            record["val_miou"] = scores["miou"]
            if best_miou is None or scores["miou"] > best_miou:
                best_miou, best_epoch = scores["miou"], epoch + 1
                best_state = _cpu_state(model)
        history.append(record)
        bar.set_postfix(epoch=epoch + 1, loss=f"{record['loss']:.3f}")
        if log is not None:
            log(record)
        if save_last is not None and not last_epoch:
            save_last(
                {
                    "model": _cpu_state(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch + 1,
                    "best_miou": best_miou,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "history": history,
                }
            )
    bar.close()
    if best_state is None:
        best_state, best_epoch = _cpu_state(model), cfg.epochs
    model.load_state_dict(best_state)
    return TrainResult(best_state, best_epoch, best_miou, history)


def _loss(out, masks: torch.Tensor, cfg: TrainConfig, void_index: int):
    if cfg.mode == "segmentation":
        return deal_loss(out.logits, None, masks, void_index)
    if cfg.mode == "joint":
        return deal_loss(
            out.logits, out.difficulty_logits, masks, void_index,
            cfg.lambda_dif, cfg.difficulty_loss, cfg.void_as_correct,
        )
    # decoupled: the frozen network's own errors are the targets
    errors, valid = error_mask(out.logits, masks, void_index, cfg.void_as_correct)
    return difficulty_loss_from_errors(out.difficulty_logits, errors, valid, cfg)


def difficulty_loss_from_errors(difficulty_logits, errors, valid, cfg: TrainConfig):
    dif = DIFFICULTY_LOSSES[cfg.difficulty_loss](difficulty_logits, errors, valid)
    return cfg.lambda_dif * dif, {"loss_dif": dif.detach()}


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- inference


def batches(dataset: Dataset, cfg: TrainConfig, batch_size: int | None = None) -> DataLoader:
    device = resolve_device(cfg.device)
    return DataLoader(
        dataset,
        batch_size=batch_size or max(cfg.batch_size, 8),
        shuffle=False,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
    )


def predict(model: nn.Module, dataset: Dataset, cfg: TrainConfig, batch_size: int | None = None) -> Iterator[tuple]:
    """Yield `(output, masks)` per batch under `inference_mode`, model in eval mode."""
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    fmt = memory_format(dtype)
    model.to(device, memory_format=fmt).eval()
    with torch.inference_mode():
        for images, masks in batches(dataset, cfg, batch_size):
            images = images.to(device, non_blocking=True).contiguous(memory_format=fmt)
            with autocast(device, dtype):
                out = model(images)
            yield out, masks.to(device, non_blocking=True)


def evaluate(model: nn.Module, dataset: Dataset, *, num_classes: int, void_index: int, cfg: TrainConfig) -> dict:
    """mIoU, per-class IoU and pixel accuracy of `model` on `dataset`."""
    was_training = model.training
    confusion = ConfusionMatrix(num_classes, void_index, device=resolve_device(cfg.device))
    for out, masks in predict(model, dataset, cfg):
        confusion.update(masks, out.logits.argmax(dim=1))
    confusion.reduce_from_all_processes()
    if was_training:
        model.train()
    return confusion.compute()


def error_codes_of(model: nn.Module, dataset: Dataset, cfg: TrainConfig,
                   void_index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One pass of `model` over `dataset`: its error masks (uint8 N x H x W on the CPU: 0
    right, 1 wrong, 2 void; the targets the difficulty branch is measured against) and,
    when the model carries a difficulty branch (joint mode), the branch's logits of the
    same pass (float32 N x H x W on the CPU; else None), so it is measured without a
    second pass."""
    codes, logits = [], []
    for out, target in predict(model, dataset, cfg):
        errors, valid = error_mask(out.logits, target, void_index)
        codes.append(torch.where(valid, errors.to(torch.uint8), torch.full_like(target, 2, dtype=torch.uint8)).cpu())
        if out.difficulty_logits is not None:
            logits.append(out.difficulty_logits.float().cpu()[:, 0])
    return torch.cat(codes), (torch.cat(logits) if logits else None)


def difficulty_logits_of(model: nn.Module, dataset: Dataset, cfg: TrainConfig) -> torch.Tensor:
    """The difficulty branch's logits on `dataset` (float32 N x H x W on the CPU)."""
    return torch.cat([out.difficulty_logits.float().cpu() for out, _ in predict(model, dataset, cfg)])[:, 0]
