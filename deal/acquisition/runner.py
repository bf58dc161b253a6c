"""Run an acquisition strategy over a pool: device, precision, batches.

What the score stage needs beyond a single batch, for every kind of method
(see deal.methods: what each method scores from): the same device, autocast dtype and memory
format as `deal.training.predict`, under `inference_mode`. With several processes
(torchrun) each scores its whole batches of the pool and the scores are gathered
back in the pool's order on every rank (deal.distributed): the single-process
numbers, since every image is run in the same batch as in one process.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


def _setup(model: nn.Module, cfg):
    from deal.runtime import memory_format, resolve_device, resolve_precision

    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    fmt = memory_format(dtype)
    model.to(device, memory_format=fmt).eval()
    return device, dtype, fmt


def _images(dataset: Dataset, cfg, batch_size: int | None, device, fmt):
    from deal.training import batches

    for batch in batches(dataset, cfg, batch_size):
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        yield images.to(device, non_blocking=True).contiguous(memory_format=fmt)


def score_pool(strategy, model: nn.Module, dataset: Dataset, cfg, batch_size: int | None = None,
               split: bool = True) -> torch.Tensor:
    """One score per sample of `dataset` ((image, mask) pairs), float32 on the CPU.

    `strategy`: a `Heuristic` (called on the model's output) or a scorer with
    `score_batch(model, images)` (QBC, learning loss). `cfg` is a
    `TrainConfig` (device, precision, batch size, workers). `split`: with several
    processes, each scores its share (else each scores the whole pool).
    """
    from deal import distributed
    from deal.runtime import autocast
    from deal.training import shard

    device, dtype, fmt = _setup(model, cfg)
    part, indices = shard(dataset, cfg, batch_size) if split else (dataset, None)
    scores = []
    with torch.inference_mode():
        for images in _images(part, cfg, batch_size, device, fmt):
            with autocast(device, dtype):
                if hasattr(strategy, "score_batch"):
                    scores.append(strategy.score_batch(model, images))
                else:
                    scores.append(strategy(model(images)))
    local = torch.cat(scores).float().cpu() if scores else torch.zeros(0)
    return local if indices is None else distributed.gather(indices, local, len(dataset))


def pool_features(model: nn.Module, dataset: Dataset, cfg, batch_size: int | None = None) -> torch.Tensor:
    """Core-set's points: pooled decoder features of each sample (N x D float32, on the device).
    With several processes each computes its share; every rank gets all of them, in order."""
    from deal import distributed
    from deal.acquisition.coreset import pooled_features
    from deal.runtime import autocast
    from deal.training import shard

    device, dtype, fmt = _setup(model, cfg)
    part, indices = shard(dataset, cfg, batch_size)
    feats = []
    with torch.inference_mode():
        for images in _images(part, cfg, batch_size, device, fmt):
            with autocast(device, dtype):
                feats.append(pooled_features(model(images)))
    width = getattr(getattr(model, "segmenter", model), "classifier").in_channels
    local = torch.cat(feats) if feats else torch.zeros(0, width, device=device)
    if not distributed.active():
        return local
    return distributed.gather(indices, local, len(dataset)).to(device)
