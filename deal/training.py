"""The training loop, evaluation and inference: flat and explicit.

`train` follows the published recipe: SGD (momentum 0.9, weight decay 5e-4),
encoder at `lr` and heads plus `gamma` at 10x, poly schedule (power 0.9),
validation every k epochs keeping the best checkpoint. It is seeded per
epoch (data order, augmentation and dropout), so a run resumed from its last
epoch checkpoint continues exactly as the uninterrupted run would.

Several processes (torchrun; deal.launch, deal.distributed): `train` wraps the
network in DistributedDataParallel when a process group is joined. The batch
is global: each of W processes takes `batch_size / W` images a step from a
DistributedSampler (seeded as the single-process order is, `set_epoch` each
epoch), gradients are averaged, so a step sees `batch_size` images as in one
process, with the same steps per epoch and learning-rate schedule. The
result is not bit-identical to one process (BatchNorm normalises each
process's share of the batch unless `sync_bn`; the sums run in another
order). Only rank 0 calls `save_last`; `evaluate` splits the images by whole
batches and sums the confusion matrix over the ranks, which gives exactly
the single-process numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset
from tqdm.auto import tqdm

from deal import distributed
from deal.analysis import VOID
from deal.losses import DIFFICULTY_LOSSES, deal_loss, error_mask
from deal.metrics import ConfusionMatrix
from deal.runtime import autocast, memory_format, resolve_device, resolve_precision, seed_everything

MODES = ("joint", "segmentation", "decoupled")
AVERAGES = ("none", "swa", "ema")


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
    sync_bn: bool = False  # several processes: BatchNorm statistics over the whole batch (CUDA only)
    # weight averaging: the network evaluated, validated and kept is the average of its weights (and
    # BatchNorm buffers) over the steps after `average_start` x the run's steps; swa: equal weights, ema:
    # exponential with `ema_decay` per step. It cuts the run-to-run noise of the kept network.
    average: str = "none"  # none | swa | ema
    average_start: float = 0.5
    ema_decay: float = 0.99
    # one weight per class for L_seg (deal.losses.median_frequency_weights of the labelled pool), or None:
    # every pixel weighs the same (published)
    class_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"training mode must be one of {MODES}, got {self.mode!r}")
        if self.difficulty_loss not in DIFFICULTY_LOSSES:
            raise ValueError(f"difficulty loss must be one of {sorted(DIFFICULTY_LOSSES)}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0; set nesterov=False")
        if self.average not in AVERAGES:
            raise ValueError(f"weight averaging must be one of {AVERAGES}, got {self.average!r}")
        if not 0 <= self.average_start < 1 or not 0 < self.ema_decay < 1:
            raise ValueError("average_start must be in [0, 1) and ema_decay in (0, 1)")


@dataclass
class TrainResult:
    state_dict: dict  # the best-validation weights (the last ones without validation)
    best_epoch: int
    best_miou: float | None
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- training


class WeightAverage:
    """The average of a network's weights and BatchNorm buffers over the steps after `start`
    (torch.optim.swa_utils.AveragedModel): equal weights (SWA, Izmailov et al. 2018) or
    exponential (EMA, `decay` per step). Buffers are averaged too, so no pass to recompute
    BatchNorm statistics is needed."""

    def __init__(self, model: nn.Module, kind: str, start: int, decay: float) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.start = start
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay) if kind == "ema" else None,
                                      use_buffers=True)

    def update(self, model: nn.Module, steps_done: int) -> None:
        """After a step: `steps_done` steps of the run are done; averaged from step start + 1 on."""
        if steps_done > self.start:
            self.averaged.update_parameters(model)

    @property
    def count(self) -> int:
        """The networks averaged so far."""
        return int(self.averaged.n_averaged)

    def network(self, model: nn.Module) -> nn.Module:
        """What to evaluate now: the average once it holds a network, else `model` itself."""
        return self.averaged.module if self.count else model


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


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """torch's seed for an epoch (augmentation, dropout): rank 0's is the single-process one,
    the other ranks draw their own."""
    return seed * 100_003 + epoch + rank * 1_000_000_007


def _distributed_loader(dataset: Dataset, cfg: TrainConfig, device: torch.device, generator: torch.Generator,
                        rank: int, world: int) -> tuple[DataLoader, DistributedSampler]:
    """Each rank's share of every step: batch_size / world images (the batch is global)."""
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} does not split over {world} processes")
    per_rank = cfg.batch_size // world
    # the single-process order's seed; set_epoch(e) adds e, as the per-epoch seeding does
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed * 100_003)
    loader = DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        pin_memory=device.type == "cuda",
        drop_last=len(sampler) > per_rank,  # the same on every rank: the sampler pads the shares even
        generator=generator,
    )
    return loader, sampler


class _Step(nn.Module):
    """What one training forward runs, as one module for DistributedDataParallel: the
    network, or a method's own forward (learning loss: its loss prediction module on the
    encoder's levels), with the extra term's parameters included."""

    def __init__(self, model: nn.Module, extra_loss=None) -> None:
        super().__init__()
        self.model = model
        self.extra_loss = extra_loss
        module = getattr(extra_loss, "loss_module", None)
        self.extra = module if isinstance(module, nn.Module) else None  # its parameters, synchronised too

    def forward(self, images: torch.Tensor):
        if self.extra_loss is not None:
            return self.extra_loss.forward(self.model, images)
        return self.model(images), None


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
    rank, world = distributed.rank_world()
    seed_everything(cfg.seed)
    model.to(device, memory_format=fmt)
    if world > 1 and cfg.sync_bn:
        if device.type == "cpu":
            raise ValueError("SyncBatchNorm runs on CUDA only; train without sync_bn on the CPU")
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place: the same parameters, the same state dict keys
    _prepare_trainable(model, cfg.mode)
    optimizer = build_optimizer(model, cfg)
    if extra_loss is not None and (group := extra_loss.param_group(cfg)) is not None:
        optimizer.add_param_group(group)
    generator = torch.Generator()
    sampler = None
    if world > 1:
        loader, sampler = _distributed_loader(train_set, cfg, device, generator, rank, world)
    else:
        loader = _loader(train_set, cfg, device, generator, shuffle=True)
    total_steps = cfg.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _poly(total_steps, cfg.poly_power))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    average = None
    if cfg.average != "none":
        average = WeightAverage(model, cfg.average, int(cfg.average_start * total_steps), cfg.ema_decay)

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
        if average is not None:
            average.averaged.load_state_dict(resume["average"])
    step = None
    if world > 1:  # after the resumed weights are in: DDP starts every rank from rank 0's
        from torch.nn.parallel import DistributedDataParallel

        step = DistributedDataParallel(_Step(model, extra_loss))

    # One bar for the run; tqdm stays quiet when stderr is not a terminal.
    bar = tqdm(total=cfg.epochs * len(loader), initial=start_epoch * len(loader), desc="train",
               unit="step", disable=None if cfg.progress and rank == 0 else True, leave=False)
    for epoch in range(start_epoch, cfg.epochs):
        # Seeded per epoch: order, augmentation and dropout do not depend on
        # whether the run was resumed.
        torch.manual_seed(_epoch_seed(cfg.seed, epoch, rank))
        generator.manual_seed(_epoch_seed(cfg.seed, epoch, rank))
        if sampler is not None:
            sampler.set_epoch(epoch)
        _set_train_mode(model, cfg.mode)
        epoch_state = extra_loss.begin_epoch(epoch, cfg.epochs) if extra_loss is not None else {}
        sums = torch.zeros(3, device=device)  # loss, seg, dif (or the extra term); summed on device, no per-batch sync
        steps = 0
        for images, masks in loader:
            images = images.to(device, non_blocking=True).contiguous(memory_format=fmt)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, dtype):
                if step is not None:
                    out, aux = step(images)
                else:
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
            if average is not None:
                average.update(model, epoch * len(loader) + steps + 1)
            sums += torch.stack([loss.detach(), parts.get("loss_seg", torch.zeros((), device=device)), parts.get("loss_dif", torch.zeros((), device=device))])
            steps += 1
            bar.update(1)
        if world > 1:  # the loss over every rank's share; rank 0's BatchNorm statistics everywhere
            torch.distributed.all_reduce(sums)
            sums /= world
            distributed.sync_buffers(model)
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], **epoch_state}
        names = ("loss", "loss_seg", extra_loss.name if extra_loss is not None else "loss_dif")
        record.update(dict(zip(names, (sums / max(steps, 1)).tolist())))
        if average is not None:
            record["averaged"] = average.count
        kept = average.network(model) if average is not None else model  # what is validated and kept
        last_epoch = epoch + 1 == cfg.epochs
        if val_set is not None and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
            scores = evaluate(kept, val_set, num_classes=num_classes, void_index=void_index, cfg=cfg)
            record["val_miou"] = scores["miou"]
            if best_miou is None or scores["miou"] > best_miou:
                best_miou, best_epoch = scores["miou"], epoch + 1
                best_state = _cpu_state(kept)
        history.append(record)
        bar.set_postfix(epoch=epoch + 1, loss=f"{record['loss']:.3f}")
        if log is not None:
            log(record)
        if save_last is not None and not last_epoch and rank == 0:  # written once, by rank 0
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
                    **({"average": average.averaged.state_dict()} if average is not None else {}),
                }
            )
        if save_last is not None and not last_epoch:
            distributed.barrier()  # the others wait until it is written
    bar.close()
    if best_state is None:
        best_state, best_epoch = _cpu_state(average.network(model) if average is not None else model), cfg.epochs
    model.load_state_dict(best_state)
    return TrainResult(best_state, best_epoch, best_miou, history)


def _loss(out, masks: torch.Tensor, cfg: TrainConfig, void_index: int):
    weights = None if cfg.class_weights is None else torch.tensor(cfg.class_weights, device=masks.device)
    if cfg.mode == "segmentation":
        return deal_loss(out.logits, None, masks, void_index, class_weights=weights)
    if cfg.mode == "joint":
        return deal_loss(
            out.logits, out.difficulty_logits, masks, void_index,
            cfg.lambda_dif, cfg.difficulty_loss, cfg.void_as_correct, weights,
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


def inference_batch(cfg: TrainConfig, batch_size: int | None = None) -> int:
    """The batch size of inference (`batches`)."""
    return batch_size or max(cfg.batch_size, 8)


def shard(dataset: Dataset, cfg: TrainConfig, batch_size: int | None = None) -> tuple[Dataset, list[int]]:
    """This rank's whole batches of `dataset` (deal.distributed.shard) and their indices;
    the dataset itself in one process."""
    rank, world = distributed.rank_world()
    if world == 1:
        return dataset, list(range(len(dataset)))
    indices = distributed.shard(len(dataset), inference_batch(cfg, batch_size), rank, world)
    return Subset(dataset, indices), indices


def batches(dataset: Dataset, cfg: TrainConfig, batch_size: int | None = None) -> DataLoader:
    device = resolve_device(cfg.device)
    return DataLoader(
        dataset,
        batch_size=inference_batch(cfg, batch_size),
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
    """mIoU, per-class IoU and pixel accuracy of `model` on `dataset`. With several
    processes each runs its whole batches and the confusion matrices are summed: the
    single-process numbers exactly (deal.distributed)."""
    was_training = model.training
    confusion = ConfusionMatrix(num_classes, void_index, device=resolve_device(cfg.device))
    for out, masks in predict(model, shard(dataset, cfg)[0], cfg):
        confusion.update(masks, out.logits.argmax(dim=1))
    confusion.reduce_from_all_processes()
    if was_training:
        model.train()
    return confusion.compute()


def error_codes_of(model: nn.Module, dataset: Dataset, cfg: TrainConfig,
                   void_index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One pass of `model` over `dataset`: its error masks (uint8 N x H x W on the CPU:
    deal.analysis's RIGHT, ERROR, VOID; the targets the difficulty branch is measured against) and,
    when the model carries a difficulty branch (joint mode), the branch's logits of the
    same pass (float32 N x H x W on the CPU; else None), so it is measured without a
    second pass."""
    codes, logits = [], []
    for out, target in predict(model, dataset, cfg):
        errors, valid = error_mask(out.logits, target, void_index)
        codes.append(torch.where(valid, errors.to(torch.uint8), torch.full_like(target, VOID, dtype=torch.uint8)).cpu())
        if out.difficulty_logits is not None:
            logits.append(out.difficulty_logits.float().cpu()[:, 0])
    return torch.cat(codes), (torch.cat(logits) if logits else None)


def difficulty_logits_of(model: nn.Module, dataset: Dataset, cfg: TrainConfig) -> torch.Tensor:
    """The difficulty branch's logits on `dataset` (float32 N x H x W on the CPU)."""
    return torch.cat([out.difficulty_logits.float().cpu() for out, _ in predict(model, dataset, cfg)])[:, 0]
