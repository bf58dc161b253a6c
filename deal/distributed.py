"""The process group of a torchrun worker, and how work is split over it.

`init` joins the group torchrun's environment describes (gloo on the CPU,
nccl on CUDA, one GPU per process: the one of LOCAL_RANK). Without a group
every helper here answers as for one process (rank 0 of 1), so the library
runs unchanged in a plain process.

Inference is split by whole batches, not by images: rank r takes batches
r, r + W, r + 2W, ... of the single-process batch sequence (`shard`). Every
image then sits in the same batch, next to the same images, as in one
process, so its outputs are the same numbers (kernels may compute an image
differently next to other images), and nothing is padded: the confusion
matrix summed over ranks (deal.metrics) is the single-process one exactly,
and the scores gathered back in order (`gather`) are the single-process
scores. DistributedSampler pads the last images to even the shards out:
right for training, wrong for a metric.
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist

from deal.launch import LAUNCHED_ENV, REPORT_GRACE_S, die_with_parent, is_worker, report_failure


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_world() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) without a process group."""
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def init(device_name: str = "auto") -> tuple[int, int]:
    """Join torchrun's process group (a no-op outside a torchrun worker or when joined);
    return (rank, world size). CUDA: nccl, and this process's GPU (LOCAL_RANK) becomes
    the current device, so `cuda` means it everywhere; CPU: gloo."""
    if active() or not is_worker():
        return rank_world()
    from deal.runtime import resolve_device

    if os.environ.get(LAUNCHED_ENV):
        die_with_parent()
    sys.excepthook = _report_once
    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank_world()


def _report_once(kind, exc, tb) -> None:
    """A worker's uncaught error, reported once for the stage (deal.launch.report_failure). Rank 0
    waits REPORT_GRACE_S first: when it fails because a rank that failed first is gone (a
    collective's closed connection), torchrun stops it meanwhile and that rank's report stands."""
    import traceback

    if os.environ.get("RANK", "0") == "0" and not issubclass(kind, KeyboardInterrupt):
        time.sleep(REPORT_GRACE_S)
    report_failure("".join(traceback.format_exception(kind, exc, tb)))


def finish() -> None:
    """Wait for every rank (rank 0's writes are done), then leave the group."""
    if active():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def shard(n: int, batch: int, rank: int | None = None, world: int | None = None) -> list[int]:
    """The indices of `n` items rank `rank` of `world` takes: batches rank, rank + world, ...
    of the batches of `batch` items one process would run, in order; none padded."""
    if rank is None or world is None:
        rank, world = rank_world()
    return [i for start in range(rank * batch, n, world * batch) for i in range(start, min(start + batch, n))]


def gather(indices: list[int], values: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's `values` (one row per index of its `indices`) put back in the order of
    the `n` items, on every rank (on the CPU)."""
    if not active():
        return values.cpu()
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (list(indices), values.detach().cpu()))
    shape = next((v.shape[1:] for _, v in parts if v.shape[0]), values.shape[1:])
    dtype = next((v.dtype for _, v in parts if v.shape[0]), values.dtype)
    out = torch.zeros((n, *shape), dtype=dtype)
    seen = 0
    for idx, v in parts:
        if len(idx):
            out[torch.tensor(idx, dtype=torch.long)] = v
            seen += len(idx)
    if seen != n:
        raise RuntimeError(f"the ranks returned {seen} rows for {n} items")
    return out


def from_main(compute):
    """`compute()` run on rank 0 alone, its result passed to every rank (any picklable value)."""
    if not active():
        return compute()
    box = [compute() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank. DDP sends them before
    each training forward, so after the last one each rank holds those of its own batch;
    evaluation and the saved weights must be the same model everywhere."""
    if active():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
