"""Several processes for one stage: the stage script starts itself again under torchrun.

A stage whose params ask for more than one process (`train.nproc` processes
on each of `train.nnodes` machines) keeps its command in dvc.yaml,
`python stages/train.py ...`: once its params are checked, the script
replaces itself (exec) with

    python -m torch.distributed.run --standalone --nproc-per-node N stages/train.py <same args>

on one machine, or with `--nnodes M --rdzv-backend c10d --rdzv-endpoint
HOST:PORT --rdzv-id ID` (launch.rdzv_endpoint, launch.rdzv_id) on several,
and torchrun's exit status is the stage's (`relaunch` runs it through
`quiet_torchrun`: a failed stage is reported once, as the rank that failed
first said it, not once per rank and again by torchrun). torchrun starts N fresh
interpreters that run the same script; each finds LOCAL_RANK and WORLD_SIZE
in its environment, so it does not relaunch, and joins the process group
(deal.distributed). Under the stage host (tools/host.py) it is the forked
stage process that becomes torchrun: the host still SIGKILLs it when DVC
dies, and each worker dies with torchrun (`die_with_parent`).

Plain Python, no torch: deal.config checks these params with it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping

# torchrun sets these in each worker's environment
WORKER_ENV = ("LOCAL_RANK", "WORLD_SIZE")
# set by `relaunch` for the workers it starts: they die with their torchrun (deal.distributed)
LAUNCHED_ENV = "DEAL_DDP_LAUNCHED"
# where the workers of `quiet_torchrun` keep their reports of a failure (`report_failure`)
REPORTS_ENV = "DEAL_DDP_REPORTS"
# how long rank 0 waits before it reports an uncaught error: when another rank failed first (and
# rank 0 fails because its peer is gone), torchrun stops it meanwhile (it acts within 0.1 s)
REPORT_GRACE_S = 3.0
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
    quiet = [cmd[0], "-m", "deal.launch", *cmd[3:]]  # torchrun's arguments, to quiet_torchrun
    os.execv(quiet[0], quiet)


def report_failure(text: str, environ: Mapping = os.environ) -> None:
    """This process's report of its failure (error lines, a traceback), said once for a stage on
    several processes. Outside `quiet_torchrun`, and on rank 0, it is printed (and, under the
    launcher, marked as said: `rank<R>.said`); the other ranks keep it for the launcher
    (`rank<R>.txt`), which prints the report of the rank that failed first when rank 0 said
    nothing (torchrun stopped it first). So a check that fails on every rank alike is one line,
    not one per rank. A report that cannot be kept is printed after REPORT_GRACE_S."""
    folder = environ.get(REPORTS_ENV) if is_worker(environ) else None
    rank = environ.get("RANK", "0")
    text = text if text.endswith("\n") else text + "\n"
    if folder is not None and rank != "0":
        kept = os.path.join(folder, f"rank{rank}.txt")
        try:
            with open(kept, "a") as f:
                f.write(text)
            return
        except OSError:  # printed instead, after the grace in which torchrun stops it if rank 0 failed first
            _remove(kept)
            time.sleep(REPORT_GRACE_S)
    sys.stderr.write(text)
    sys.stderr.flush()
    if folder is not None:
        try:
            open(os.path.join(folder, f"rank{rank}.said"), "a").close()  # no data: even a full disk takes it
        except OSError:
            pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# torchrun's loggers of its workers' exits (a worker failed, the others are stopped): the failed
# worker has said why
WORKER_EXIT_LOGGERS = "torch.distributed.elastic.multiprocessing"


REPORTS_PREFIX = "deal-ddp-reports-"  # + the launcher's pid


def _sweep_reports(folder: str) -> None:
    """Remove the report folders of launchers that were killed (SIGKILL: no cleanup of their own)."""
    import shutil

    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        pid = name[len(REPORTS_PREFIX):].split("-", 1)[0]
        if not (name.startswith(REPORTS_PREFIX) and pid.isdigit()):
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        except OSError:
            pass


def quiet_torchrun(argv: list[str]) -> None:
    """torchrun (`python -m torch.distributed.run ARGV`), reporting a failed stage once: when rank 0
    reported (`report_failure`) that is all; otherwise the report of the rank that failed first,
    or one line for a worker killed by a signal or gone without a word. torchrun's traceback and
    its log of the workers' exits are left out. Exits with the first failed worker's status (1 for
    a signal)."""
    import logging
    import shutil
    import signal
    import tempfile

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(WORKER_EXIT_LOGGERS):
            logging.getLogger(name).disabled = True
    # in memory where there is /dev/shm: the reports of a stage that filled the disk fit there
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    _sweep_reports(shm)
    try:
        reports = tempfile.mkdtemp(prefix=f"{REPORTS_PREFIX}{os.getpid()}-", dir=shm)
        os.environ[REPORTS_ENV] = reports  # the workers' environment
    except OSError:  # no room for it: each rank prints its own report
        reports = None
    try:
        torchrun.run(torchrun.parse_args(argv))
    except ChildFailedError as exc:
        if reports is None or os.path.isfile(os.path.join(reports, "rank0.said")):  # rank 0 said why
            sys.exit(max(1, exc.failures[0].exitcode) if 0 in exc.failures else 1)
        # the first to fail, of those that failed by themselves (torchrun stops the others with SIGTERM)
        own_failures = {r: f for r, f in exc.failures.items() if f.exitcode != -signal.SIGTERM} or exc.failures
        rank = min(own_failures, key=lambda r: own_failures[r].timestamp)
        failure = own_failures[rank]
        kept = os.path.join(reports, f"rank{rank}.txt")
        if os.path.isfile(os.path.join(reports, f"rank{rank}.said")):
            pass
        elif os.path.isfile(kept):
            with open(kept) as f:
                sys.stderr.write(f.read())
        elif failure.exitcode < 0:
            print(f"error: {exc.name}: the process of rank {rank} was killed by {failure.signal_name()}; if it ran out "
                  "of memory (dmesg says so), lower train.batch_size or train.nproc", file=sys.stderr)
        else:
            print(f"error: {exc.name}: the process of rank {rank} exited with status {failure.exitcode} without a word; "
                  "run it on one process (train.nproc: 1) to see why", file=sys.stderr)
        sys.exit(failure.exitcode if failure.exitcode > 0 else 1)
    finally:
        if reports is not None:
            shutil.rmtree(reports, ignore_errors=True)


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


if __name__ == "__main__":
    quiet_torchrun(sys.argv[1:])
