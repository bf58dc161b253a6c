"""Several processes for one stage: the stage script starts itself again under torchrun.

A stage whose params ask for more than one process (`train.nproc` processes
on each of `train.nnodes` machines) keeps its command in dvc.yaml,
`python stages/train.py ...`: once its params are checked, the script
replaces itself (exec) with

    python -m torch.distributed.run --standalone --nproc-per-node N stages/train.py <same args>

on one machine, or with `--nnodes M --rdzv-backend c10d --rdzv-endpoint
HOST:PORT --rdzv-id ID` (launch.rdzv_endpoint, launch.rdzv_id) on several,
and torchrun's exit status is the stage's. torchrun starts N fresh
interpreters that run the same script; each finds LOCAL_RANK and WORLD_SIZE
in its environment, so it does not relaunch, and joins the process group
(deal.distributed). Under the stage host (stages/host.py) it is the forked
stage process that becomes torchrun: the host still SIGKILLs it when DVC
dies, and each worker dies with torchrun (`die_with_parent`).

Plain Python, no torch: deal.config checks these params with it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

# torchrun sets these in each worker's environment
WORKER_ENV = ("LOCAL_RANK", "WORLD_SIZE")
# set by `relaunch` for the workers it starts: they die with their torchrun (deal.distributed)
LAUNCHED_ENV = "DEAL_DDP_LAUNCHED"
ENDPOINT = re.compile(r"[A-Za-z0-9_.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
RDZV_ID = re.compile(r"[A-Za-z0-9_-]+")


def world_size(params: Mapping) -> int:
    """The processes a distributed stage runs on: train.nproc on each of train.nnodes machines."""
    return params["train"]["nproc"] * params["train"]["nnodes"]


def is_worker(environ: Mapping = os.environ) -> bool:
    """True inside a process torchrun started (it sets LOCAL_RANK and WORLD_SIZE)."""
    return all(name in environ for name in WORKER_ENV)


def command(params: Mapping, script: str, argv: list[str], python: str = sys.executable) -> list[str] | None:
    """The torchrun command line that runs `script argv` on the processes params ask for;
    None when they ask for one. (torchrun's parser refuses a script argument that abbreviates
    several of its own options, such as --n; the stages' arguments abbreviate none.)"""
    t = params["train"]
    if world_size(params) == 1:
        return None
    cmd = [python, "-m", "torch.distributed.run", "--nproc-per-node", str(t["nproc"])]
    if t["nnodes"] == 1:
        cmd.append("--standalone")  # a rendezvous on this machine, on a free port
    else:
        r = params["launch"]
        cmd += ["--nnodes", str(t["nnodes"]), "--rdzv-backend", "c10d", "--rdzv-endpoint", r["rdzv_endpoint"],
                "--rdzv-id", r["rdzv_id"]]
    return cmd + [os.path.abspath(script), *argv]


def relaunch(params: Mapping, script: str, argv: list[str] | None = None) -> None:
    """Replace this process with torchrun running `script` on the processes params ask for.
    Returns (nothing to do) in a torchrun worker or when params ask for one process."""
    if is_worker():
        return
    cmd = command(params, script, sys.argv[1:] if argv is None else argv)
    if cmd is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[LAUNCHED_ENV] = "1"
    os.execv(cmd[0], cmd)


def die_with_parent() -> None:
    """SIGKILL this process when its parent (torchrun) dies: torchrun starts its workers in
    sessions of their own, so a SIGKILLed torchrun (the stage host stopping a stage, DVC
    killed) would leave them running. Linux only; elsewhere a no-op."""
    import ctypes
    import signal

    parent = os.getppid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def check(params: Mapping, problems: list[str]) -> None:
    """The launch params against each other (deal.config checks each one's type first):
    the global batch splits evenly over the processes, one GPU per process, a rendezvous
    for several machines. Appends one line per problem."""
    t, launch = params["train"], params.get("launch")
    nproc, nnodes, batch = t.get("nproc"), t.get("nnodes"), t.get("batch_size")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (nproc, nnodes, batch)):
        return  # their own lines say why
    world = nproc * nnodes
    if world == 1:
        return
    if batch % world:
        problems.append(f"params.yaml: train.batch_size: {batch} does not split over the {world} processes of "
                        f"train.nproc {nproc} x train.nnodes {nnodes} (the batch is global: each process takes "
                        f"batch_size / {world}); make it a multiple of {world}")
    device = t.get("device")
    if isinstance(device, str) and device.startswith("cuda:"):
        problems.append(f"params.yaml: train.device: {device!r} names one GPU, but train.nproc is {nproc}; "
                        "use cuda or auto (each process takes the GPU of its LOCAL_RANK)")
    if nnodes > 1 and isinstance(launch, Mapping) and launch.get("rdzv_endpoint") is None:
        problems.append(f"params.yaml: launch.rdzv_endpoint: null, but train.nnodes is {nnodes}; set it to the "
                        "host:port of one of the machines, which every machine reaches (the same on each)")
