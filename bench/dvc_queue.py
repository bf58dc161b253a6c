"""Queued experiments side by side (`dvc queue start -j N`) against the same experiments one after
the other, on one machine.

    python bench/dvc_queue.py [--jobs 2] [--threads T] [--param method_cfg.deal_de.k --values 3 5] [--json bench/results/dvc_queue.json]

Builds a tiny project (tests/pipeline_utils.tiny_params: random and DEAL DE, 2 rounds, seed 0;
--rounds and --seeds for a larger one) with train.threads = T (default: this machine's cores // N,
so N workers x T threads = the cores), runs and commits its baseline beside the stage host, then
runs one experiment per value of --param in fresh copies of that run (git clone, the cache's
objects hard-linked, no run-cache, so every changed stage is computed):

  queued      `dvc exp run --queue -S PARAM=V` for each value, `dvc queue start -j N`, until the
              queue is done (each worker runs plain `dvc repro` in a temporary copy: every stage
              process imports torch itself)
  one by one  `dvc exp run -S PARAM=V` for each value, plain dvc as the queue runs it
  host        the same beside the stage host (`python tools/host.py dvc exp run ...`), what one
              would run without the queue

and prints each wall time, the threads per worker, and whether every way gave the same metrics.
A train.* param (train.threads itself) reruns every training; a DEAL param, only that method's
stages from its first scoring on.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from bench._common import table, write_json  # noqa: E402
from bench._common import cpu_name  # noqa: E402

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1



def experiments(root: Path) -> dict[str, dict]:
    """Each named experiment's metrics, as `dvc exp show --json` records them."""
    from pipeline_utils import run

    found = {}
    for baseline in json.loads(run([DVC, "exp", "show", "--json"], root).stdout):
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                found[rev["name"]] = {path: m["data"] for path, m in rev["data"]["metrics"].items()}
    return found


def queue_states(root: Path) -> dict[str, str]:
    from pipeline_utils import run

    out = run([DVC, "queue", "status"], root).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^[0-9a-f]{7,}\s+(\S+)\s.*\s(\w+)\s*$", out, re.M)}


def run_queued(root: Path, exps: dict[str, list[str]], jobs: int, log: Path) -> float:
    from pipeline_utils import env, run

    for name, sets in exps.items():
        run([DVC, "exp", "run", "--queue", "-n", name, *sets], root)
    start = time.perf_counter()
    try:
        with log.open("w") as out:  # a file, not a pipe: the workers inherit it and outlive `queue start`
            subprocess.run([DVC, "queue", "start", "-j", str(jobs)], cwd=root, env=env(), stdout=out, stderr=out, check=True)
        while {"Queued", "Running"} & set(queue_states(root).values()):
            time.sleep(2)
        elapsed = time.perf_counter() - start
    finally:
        run([DVC, "queue", "stop", "--kill"], root, check=False)
    states = queue_states(root)
    if set(states.values()) != {"Success"}:
        sys.exit(f"error: queued experiments: {states}; see `dvc queue logs NAME` in {root}")
    return elapsed


def run_one_by_one(root: Path, exps: dict[str, list[str]], host: bool) -> float:
    from pipeline_utils import run

    prefix = [str(BIN / "python"), "tools/host.py", DVC] if host else [DVC]
    start = time.perf_counter()
    for name, sets in exps.items():
        run([*prefix, "exp", "run", "-n", name, *sets], root)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="queue workers, dvc queue start -j (default 2)")
    parser.add_argument("--threads", type=int, help="train.threads of every run (default: cores // jobs)")
    parser.add_argument("--param", default="method_cfg.deal_de.k", help="the param the experiments set")
    parser.add_argument("--values", nargs="+", default=["3", "5"], help="one experiment per value")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workdir", type=Path, help="where the copies go (default: a temporary folder, removed)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    threads = args.threads or max(1, cores() // args.jobs)

    from pipeline_utils import clone_run, copy_repo, edit_params, repro, run, tiny_params

    work = Path(tempfile.mkdtemp(prefix="deal-queue-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        base = work / "baseline"
        copy_repo(base)

        def params(p):
            tiny_params(p, methods=("random", "deal_de"), rounds=args.rounds, seeds=tuple(args.seeds))
            p["train"]["threads"] = threads

        edit_params(base, params)
        start = time.perf_counter()
        repro(base)
        baseline_s = time.perf_counter() - start
        run(["git", "add", "-A"], base)
        run(["git", "commit", "-qm", "baseline"], base)
        exps = {f"{args.param.rsplit('.', 1)[-1]}-{v}": ["-S", f"{args.param}={v}"] for v in args.values}

        timings, metrics = {}, {}
        for way in ("queued", "one by one", "host"):
            copy = clone_run(base, work / way.replace(" ", "-"))
            if way == "queued":
                timings[way] = run_queued(copy, exps, args.jobs, work / "queue-start.log")
            else:
                timings[way] = run_one_by_one(copy, exps, host=way == "host")
            metrics[way] = experiments(copy)
            print(f"{way}: {timings[way]:.1f} s", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    same = metrics["queued"] == metrics["one by one"] == metrics["host"]
    rows = [{"way": f"queued, -j {args.jobs}", "s": f"{timings['queued']:.1f}"},
            {"way": "one by one (plain dvc)", "s": f"{timings['one by one']:.1f}"},
            {"way": "one by one (stage host)", "s": f"{timings['host']:.1f}"}]
    print(f"{cpu_name()}, {cores()} cores: {len(exps)} experiments ({args.param} = {', '.join(args.values)}) "
          f"on a baseline of {args.rounds} rounds, seeds {args.seeds} ({baseline_s:.1f} s beside the stage host)")
    print(f"threads per worker (train.threads): {threads}; {args.jobs} workers x {threads} threads = "
          f"{args.jobs * threads} for {cores()} cores")
    print(table(rows, [("way", "experiments run"), ("s", "wall s")]))
    print("metrics: the same every way" if same else "metrics DIFFER between the ways: " + json.dumps(metrics))
    write_json(args.json, {"cpu": cpu_name(), "cores": cores(), "jobs": args.jobs, "threads": threads,
                           "param": args.param, "values": args.values, "rounds": args.rounds, "seeds": args.seeds,
                           "baseline_s": round(baseline_s, 1), "queued_s": round(timings["queued"], 1),
                           "one_by_one_s": round(timings["one by one"], 1), "host_s": round(timings["host"], 1),
                           "same_metrics": same, "metrics": metrics})
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
