"""Many experiments (docs/scaling.md): queued experiments run side by side on one machine and give what
the same experiments give one after the other; machines that each run a seed share it through a git
remote and a DVC remote, and a third one aggregates them into one report without rerunning them."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from pipeline_utils import BIN, clone_run, copy_repo, edit_params, env, repro, run, tiny_params

pytestmark = pytest.mark.slow  # the real dvc exp run / queue / push end to end: `make test-fast` leaves them out

DVC = str(BIN / "dvc")
HOST = [str(BIN / "python"), "tools/host.py", DVC]  # the stage host, as `python tools/host.py dvc ...`


def _experiments(root: Path) -> dict[str, dict]:
    """`dvc exp show --json`'s experiments by name: their params.yaml and metrics, as DVC recorded them."""
    shown = json.loads(run([DVC, "exp", "show", "--json"], root).stdout)
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                found[rev["name"]] = {"params": data["params"]["params.yaml"]["data"],
                                      "metrics": {path: m["data"] for path, m in data["metrics"].items()}}
    return found


def _queue(root: Path) -> dict[str, str]:
    """`dvc queue status`: each task's status by experiment name."""
    out = run([DVC, "queue", "status"], root).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^[0-9a-f]{7,}\s+(\S+)\s.*\s(\w+)\s*$", out, re.M)}


EXPERIMENTS = {"de-k3": 3, "de-k5": 5}  # two values of DE's k, on seed 0 alone: 6 stages each rerun


def _set(k: int) -> list[str]:
    return ["-S", "seeds=[0]", "-S", f"method_cfg.deal_de.k={k}"]


def test_queued_experiments_run_side_by_side_and_match_the_same_run_one_after_the_other(project, tmp_path):
    root, _ = project
    # copies of the shared run with their own caches (no run-cache: a queued stage is computed, never
    # restored from another test's earlier run of the same params), so the shared run stays as it is
    queued = clone_run(root, tmp_path / "queued")
    for name, k in EXPERIMENTS.items():
        run([DVC, "exp", "run", "--queue", "-n", name, *_set(k)], queued)
    assert _queue(queued) == {name: "Queued" for name in EXPERIMENTS}
    # two workers, each running one experiment in its own temporary copy of the repository with plain
    # `dvc repro` (no stage host there: every stage imports torch itself); train.threads is the project's
    # (the workers inherit `queue start`'s stdout and stderr: captured through pipes, as `run` does,
    # the call would return only when they exit, after the queue is done; a file lets it return at once)
    with (tmp_path / "queue-start.log").open("w") as log:
        started = subprocess.run([DVC, "queue", "start", "-j", "2"], cwd=queued, env=env(), stdout=log, stderr=log)
    assert started.returncode == 0, (tmp_path / "queue-start.log").read_text()
    side_by_side, deadline = False, time.monotonic() + 1800  # generous: the machine may be shared
    try:
        while True:
            states = _queue(queued)
            side_by_side |= list(states.values()).count("Running") == 2
            if not {"Queued", "Running"} & set(states.values()) or time.monotonic() > deadline:
                break
            time.sleep(5)
    finally:
        run([DVC, "queue", "stop", "--kill"], queued, check=False)  # no worker outlives the test
    if states != {name: "Success" for name in EXPERIMENTS}:
        logs = {name: run([DVC, "queue", "logs", name], queued, check=False).stdout[-3000:] for name in states}
        pytest.fail(f"queue: {states}\n{logs}")
    assert side_by_side, "the two queued experiments never ran at the same time"
    from_queue = _experiments(queued)

    # the same two experiments one after the other, in a second copy, beside the stage host
    sequential = clone_run(root, tmp_path / "sequential")
    for name, k in EXPERIMENTS.items():
        done = run([*HOST, "exp", "run", "-n", name, *_set(k)], sequential)
        assert "Running stage 'report'" in done.stdout
    one_after_the_other = _experiments(sequential)

    assert set(from_queue) == set(EXPERIMENTS)
    for name, k in EXPERIMENTS.items():
        params = from_queue[name]["params"]
        assert params["method_cfg"]["deal_de"]["k"] == k and params["seeds"] == [0]
        summary = from_queue[name]["metrics"]["metrics/summary.json"]
        assert summary["seeds"] == 1 and set(summary) == {"seeds", "random", "deal_de"}
        # a queued run in a temporary copy is the same computation: the same numbers to the last bit
        assert from_queue[name] == one_after_the_other[name], name
    # and each experiment has its own numbers: k changes DE's selection, so its round-1 mIoU
    assert from_queue["de-k3"]["metrics"] != from_queue["de-k5"]["metrics"]
    # the workspace stays at the baseline: queued runs never touch it
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], queued).stdout == ""


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def test_machines_share_their_seeds_and_a_third_aggregates_them(tmp_path):
    """Machines A and B each run one seed of the same recipe as an experiment and push it (`dvc exp
    push origin <exp> --run-cache`: the git ref to the shared git repository, the outputs and the
    run-cache to the shared DVC remote). Machine C pulls both, sets seeds: [0, 1] and runs `dvc repro`:
    every seed's stage is restored from the run-cache (nothing recomputed), the report aggregates them,
    and C commits and pushes the result for everyone."""
    start = copy_repo(tmp_path / "start")
    edit_params(start, lambda p: tiny_params(p, methods=("random", "deal_de"), rounds=2, seeds=(0,)))
    storage = tmp_path / "storage"  # the team's DVC remote (a mounted folder here; s3:// in test_remote)
    run([DVC, "remote", "add", "-d", "storage", str(storage)], start)
    run(["git", "commit", "-qam", "the recipe and the team's DVC remote"], start)
    origin = tmp_path / "origin.git"  # the team's git repository
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    run(["git", "push", "-q", str(origin), "HEAD:refs/heads/main"], start)
    run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], origin)

    curves = {}
    for machine, seed in (("a", 0), ("b", 1)):
        clone = tmp_path / machine
        run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
        run([*HOST, "exp", "run", "-n", f"seed{seed}", "-S", f"seeds=[{seed}]"], clone)
        run([DVC, "exp", "push", "origin", f"seed{seed}", "--run-cache"], clone)
        curves[seed] = _rows(clone / "metrics" / "curves.csv")
        assert {r["seed"] for r in curves[seed]} == {str(seed)}

    c = tmp_path / "c"
    run(["git", "clone", "-q", str(origin), str(c)], tmp_path)
    assert set(run([DVC, "exp", "list", "--name-only", "origin"], c).stdout.split()) == {"seed0", "seed1"}
    run([DVC, "exp", "pull", "origin", "seed0", "seed1", "--run-cache"], c)
    shown = _experiments(c)
    assert {name: e["params"]["seeds"] for name, e in shown.items()} == {"seed0": [0], "seed1": [1]}
    assert all(e["metrics"]["metrics/summary.json"]["seeds"] == 1 for e in shown.values())

    edit_params(c, lambda p: p.update(seeds=[0, 1]))
    assert repro(c) == ["report"]  # every other stage restored from the machines' run-cache
    assert _rows(c / "metrics" / "curves.csv") == curves[0] + curves[1]
    paired = _rows(c / "metrics" / "paired.csv")
    assert paired and {(p["method"], p["baseline"], p["n"]) for p in paired} == {("deal_de", "random", "2")}
    assert json.loads((c / "metrics" / "summary.json").read_text())["seeds"] == 2
    assert "Paired by seed against random" in (c / "metrics" / "report.md").read_text()

    # C shares the aggregate: the next `git pull && dvc pull` anywhere has it
    run(["git", "add", "-A"], c)
    run(["git", "commit", "-qm", "seeds 0 and 1 of machines a and b"], c)
    run([DVC, "push"], c)
    run(["git", "push", "-q", "origin", "HEAD:main"], c)
    assert "in sync" in run([DVC, "status", "--cloud"], c).stdout
    assert run(["git", "log", "-1", "--format=%s", "main"], origin).stdout.strip() == "seeds 0 and 1 of machines a and b"
