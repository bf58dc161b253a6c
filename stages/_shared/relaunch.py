"""A stage on several processes: torchrun relaunches it (deal.launch), each worker joins the process group."""

from __future__ import annotations

import sys

from stages._shared.configs import check_device
from stages._shared.errors import fail


def distribute(params: dict, script: str, split: bool = True) -> tuple[int, int]:
    """Several processes (train.nproc x train.nnodes > 1, deal.launch): replace this stage
    process with torchrun running `script` again (never returns), or, in a torchrun worker,
    join the process group. Returns (rank, world size): (0, 1) in one process, also when
    `split` is False (a stage whose work does not split runs in one process whatever the
    params). Ranks but 0 keep their stdout quiet: rank 0 reports and writes the outputs."""
    from deal import launch

    if not split or launch.world_size(params) == 1:
        return 0, 1
    if not launch.is_worker():
        import torch
        from deal.runtime import resolve_device

        check_device(params["train"]["device"])
        device = resolve_device(params["train"]["device"])
        nproc = params["train"]["nproc"]
        if device.type == "cuda" and torch.cuda.device_count() < nproc:
            fail(f"params.yaml: train.nproc: {nproc} processes, one GPU each, but this machine has "
                 f"{torch.cuda.device_count()}; lower train.nproc")
        if device.type == "cpu" and params["train"]["sync_bn"]:
            fail("params.yaml: train.sync_bn: true, but the stages run on the CPU, where SyncBatchNorm is not "
                 "available; set train.sync_bn: false (or run on CUDA)")
        launch.relaunch(params, script)
    from deal import distributed

    rank, world = distributed.init(params["train"]["device"])
    if rank != 0:
        import os

        sys.stdout = open(os.devnull, "w")
    return rank, world
