"""Several processes (docs/ddp.md) on the CPU: torchrun, gloo, 2 processes, tiny sets, the real network.

tests/ddp_worker.py runs the library under torchrun and writes what each rank found;
these tests compare it with one process. The end-to-end test runs stages through DVC
with train.nproc: 2.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from deal import launch
from deal.config import ParamsError, check_params
from deal.distributed import shard

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "ddp_worker.py"


def torchrun(task: str, out: Path) -> list[dict]:
    """Run ddp_worker.py TASK on 2 processes; what each rank found, by rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(WORKER), task, str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return json.loads((out / f"{task}.json").read_text())


@pytest.fixture
def one_thread():
    """One torch thread, as each worker has: the single-process reference runs the same kernels."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def same(a, b) -> bool:
    """Equal, NaN equal to NaN (a class absent from a set has no IoU)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


# ---------------------------------------------------------------- params and launch (no torch work)


def params(**train):
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["train"].update(train)
    return p


def problems(p) -> list[str]:
    try:
        check_params(p, root=str(REPO))
    except ParamsError as exc:
        return exc.lines
    return []


def test_launch_params_are_checked_with_one_line_each():
    assert problems(params(nproc=2)) == []
    assert problems(params(nproc=0)) == ["params.yaml: train.nproc: 0; an int in [1, 1024] (processes per machine; more than 1 "
                                         "runs the stage under torchrun)"]
    assert problems(params(sync_bn="yes")) == ["params.yaml: train.sync_bn: 'yes'; true or false"]
    [line] = problems(params(nproc=3))
    assert line.startswith("params.yaml: train.batch_size: 8 does not split over the 3 processes") and "multiple of 3" in line
    [line] = problems(params(nproc=2, device="cuda:1"))
    assert line.startswith("params.yaml: train.device: 'cuda:1' names one GPU") and "use cuda or auto" in line
    [line] = problems(params(nnodes=2))
    assert line.startswith("params.yaml: launch.rdzv_endpoint: null, but train.nnodes is 2")
    p = params(nnodes=2)
    p["launch"]["rdzv_endpoint"] = "node0:29400; rm -rf"
    [line] = problems(p)
    assert line.startswith("params.yaml: launch.rdzv_endpoint: 'node0:29400; rm -rf'; null, or host:port")
    p = params()
    p["train"]["nprocs"] = 2
    assert "params.yaml: train.nprocs: unknown key; did you mean 'nproc'?" in problems(p)


def test_the_torchrun_command_a_stage_runs_itself_under():
    script = str(REPO / "stages" / "train.py")
    assert launch.command(params(), script, ["--seed", "0"]) is None
    assert launch.command(params(nproc=2), script, ["--seed", "0"], python="py") == [
        "py", "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", script, "--seed", "0"]
    p = params(nproc=4, nnodes=2)
    p["launch"]["rdzv_endpoint"] = "node0:29400"
    assert launch.command(p, script, [], python="py") == [
        "py", "-m", "torch.distributed.run", "--nproc-per-node", "4", "--nnodes", "2", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", "node0:29400", "--rdzv-id", "deal", script]
    assert launch.is_worker({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}) and not launch.is_worker({"WORLD_SIZE": "2"})


@pytest.mark.parametrize("n,batch,world", [(20, 8, 2), (7, 8, 2), (0, 8, 2), (33, 4, 3), (5, 1, 4)])
def test_shards_are_whole_batches_that_cover_the_pool_once(n, batch, world):
    shards = [shard(n, batch, rank, world) for rank in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))  # no image twice, none padded
    for rank, s in enumerate(shards):  # rank r holds batches r, r + world, ... of one process's batches
        assert sorted({i // batch for i in s}) == list(range(rank, -(-n // batch), world))


# ---------------------------------------------------------------- training, resume, evaluation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_train")
    return out, torchrun("train", out)


def test_ddp_training_lowers_the_loss_and_rank_0_alone_writes_the_checkpoint(trained):
    out, (rank0, rank1) = trained
    losses = [r["loss"] for r in rank0["history"]]
    assert losses[-1] < losses[0]
    assert rank0["history"] == rank1["history"]  # losses summed over the ranks, validation reduced: one record
    assert rank0["weights_agree"]  # gradients averaged: the same network on both ranks
    assert rank0["saved"] == [1, 2, 3] and rank1["saved"] == []
    assert sorted(p.name for p in out.glob("last-*.pt")) == [f"last-rank0-epoch{e}.pt" for e in (1, 2, 3)]


def test_ddp_evaluation_equals_the_single_process_evaluation_of_its_checkpoint(trained, one_thread):
    import ddp_worker
    from deal.training import TrainConfig, evaluate

    out, (rank0, rank1) = trained
    model = ddp_worker.model()
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    single = evaluate(model, ddp_worker.tiny_set(20, 2), num_classes=3, void_index=ddp_worker.VOID,
                      cfg=TrainConfig(**ddp_worker.CFG))
    assert same(rank0["test"], single) and same(rank1["test"], single)
    # and the validation in the loop: the kept epoch's mIoU is the best of the reduced ones
    vals = [r["val_miou"] for r in rank0["history"] if "val_miou" in r]
    assert len(vals) == 2 and rank0["best_epoch"] == 2 * (vals.index(max(vals)) + 1)


def test_ddp_training_resumes_from_rank_0s_checkpoint_to_the_same_weights(trained):
    out, (rank0, _) = trained
    full = torch.load(out / "model.pt", weights_only=True)
    resumed = torch.load(out / "resumed.pt", weights_only=True)
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert rank0["resumed_history"] == rank0["history"]


def test_learning_loss_and_decoupled_training_run_under_ddp(trained):
    _, (rank0, _) = trained
    ll = rank0["learning_loss"]
    assert ll["weights_agree"] and all(math.isfinite(r["loss_pred"]) for r in ll["history"])
    dec = rank0["decoupled"]
    assert dec["weights_agree"] and dec["changed"] and all(k.startswith("difficulty.") for k in dec["changed"])


# ---------------------------------------------------------------- scoring


def test_sharded_scoring_gives_the_scores_and_selection_of_one_process(tmp_path, one_thread):
    import ddp_worker
    from deal.acquisition.scoring import score
    from deal.acquisition.select import top_b
    from deal.training import TrainConfig

    rank0, rank1 = torchrun("score", tmp_path)
    candidates, labeled, unlabeled = ddp_worker.uint8_set(20, 3), ddp_worker.uint8_set(6, 4), ddp_worker.uint8_set(24, 5)[0]
    ids = [f"c{i:02d}" for i in range(20)]
    options = {"deal_de": {"k": 8, "span": "image"}, "coreset": {"metric": "euclidean"}, "qbc": {"passes": 2},
               "vaal": {"iterations": 2, "channels": [8, 16], "latent_dim": 8, "image_size": 32, "batch_size": 4}}
    kinds = {"deal_ds": "dif", "deal_de": "dif", "learning_loss": "ll"}
    assert set(rank0) == {"entropy", "deal_ds", "deal_de", "learning_loss", "coreset", "qbc", "vaal"}
    for name in rank0:
        kind = kinds.get(name, "plain")
        model = ddp_worker.model(difficulty=kind == "dif", loss_module=16 if kind == "ll" else None)
        single = score(name, {"rho": 0.5, **options.get(name, {})}, ids, seed=7, candidates=candidates, model=model,
                       labeled=labeled, unlabeled_images=unlabeled, batch=5, cfg=TrainConfig(epochs=1, **ddp_worker.CFG))
        assert rank0[name]["scores"] == rank1[name]["scores"], name  # every rank holds them all
        torch.testing.assert_close(torch.tensor(rank0[name]["scores"]), torch.tensor(single), msg=name)
        assert top_b(ids, rank0[name]["scores"], 5) == top_b(ids, single, 5), name
    # who did the work (images through each rank's network; batches of 8: rank 0 the 1st and 3rd, rank 1 the 2nd)
    runs = {name: [rank0[name]["images_run"], rank1[name]["images_run"]] for name in rank0}
    for name in ("entropy", "deal_ds", "deal_de", "learning_loss"):
        assert runs[name] == [12, 8], name
    assert runs["coreset"] == [12 + 6, 8]  # and the 6 labeled images' features (one batch) on rank 0
    assert runs["qbc"] == [20, 0]  # whole on rank 0: its dropout masks are drawn batch after batch
    assert runs["vaal"] == [0, 0]  # its own networks, trained and run on rank 0 (from_main)


# ---------------------------------------------------------------- the stage host


STAGE = """
import os, sys, time
sys.path.insert(0, {repo!r})
from stages._shared.host import delegate
delegate(__file__)
from deal import launch
if not launch.is_worker():
    print("stage", os.environ.get("DEAL_STAGE_HOST_CHILD", "direct"), flush=True)
    launch.relaunch({{"train": {{"nproc": 2, "nnodes": 1}}}}, __file__)
    sys.exit("relaunch returned")
if os.environ.get(launch.LAUNCHED_ENV):
    launch.die_with_parent()
out = sys.argv[1]
with open(f"{{out}}.{{os.environ['RANK']}}.tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(f"{{out}}.{{os.environ['RANK']}}.tmp", f"{{out}}.{{os.environ['RANK']}}")
print("worker", os.environ["RANK"], os.environ.get("DEAL_STAGE_HOST_CHILD"), sys.argv[1:], flush=True)
if "wait" in sys.argv:
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def _wait(check, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.1)
    return check()


def test_under_the_stage_host_the_forked_stage_becomes_torchrun_and_its_workers_die_with_it(tmp_path):
    """The host forks the stage, which execs torchrun (its workers: fresh interpreters, not forks of
    the host); the exit status passes through, and a stage the host kills takes its workers along."""
    stage = tmp_path / "stage.py"
    stage.write_text(STAGE.format(repo=str(REPO)))
    host = [sys.executable, str(REPO / "tools" / "host.py")]
    env = {**os.environ, "DEAL_STAGE_HOST_PRELOAD": "", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    done = subprocess.run([*host, sys.executable, str(stage), str(out)], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith(("stage", "worker")))
    assert lines == ["stage 1", f"worker 0 1 ['{out}']", f"worker 1 1 ['{out}']"]

    # the client (what DVC started) killed: the host SIGKILLs the forked stage, now torchrun; the workers follow
    waiting = tmp_path / "waiting"
    started = subprocess.Popen([*host, "bash", "-c", f"{sys.executable} {stage} {waiting} wait & echo $! > {tmp_path}/client; wait $!"],
                               cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: all(Path(f"{waiting}.{r}").exists() for r in (0, 1))), "no workers"
        workers = [int(Path(f"{waiting}.{r}").read_text()) for r in (0, 1)]
        assert all(_alive(pid) for pid in workers)
        os.kill(int((tmp_path / "client").read_text()), signal.SIGKILL)
        assert _wait(lambda: not any(_alive(pid) for pid in workers), 60), "a worker outlived its stage"
        assert started.wait(60) != 0
    finally:
        try:
            os.killpg(started.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        started.wait()


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_stages_run_on_two_processes_through_dvc(tmp_path):
    from pipeline_utils import copy_repo, edit_params, repro, run, stage_argv, tiny_params

    root = copy_repo(tmp_path / "repo")

    def two(p):
        tiny_params(p, methods=("random", "deal_de"), rounds=2)
        p["train"]["nproc"] = 2

    edit_params(root, two)
    ran = repro(root, "evaluate@0-deal_de-r1")
    assert {"train_initial@0-joint", "score_deal@0-deal_de-s0", "train@0-deal_de-r1", "evaluate@0-deal_de-r1"} <= set(ran)
    run_dir = root / "runs" / "seed0" / "deal_de" / "r1"
    record = json.loads((run_dir / "train.json").read_text())
    assert record["processes"] == 2 and (run_dir / "model.pt").is_file()
    assert [r["epoch"] for r in record["history"]] == list(range(1, record["epochs"] + 1))
    assert not list((root / "runs").rglob("*.tmp")) and not list((root / "runs" / ".resume").glob("*"))
    evaluation = json.loads((root / "metrics/eval/seed0/deal_de/r1.json").read_text())

    # the same stages' scripts in one process (one thread, as each worker): the same numbers
    edit_params(root, lambda p: p["train"].update(nproc=1))
    env_one = {"OMP_NUM_THREADS": "1"}

    def alone(stage: str, out: Path) -> None:
        argv = stage_argv(root, stage)
        argv[argv.index("--out") + 1] = str(out)
        done = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, text=True,
                              env={**os.environ, **env_one}, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    alone("evaluate@0-deal_de-r1", tmp_path / "eval.json")
    single = json.loads((tmp_path / "eval.json").read_text())
    assert same({k: single[k] for k in ("miou", "pixel_accuracy", "per_class_iou")},
                {k: evaluation[k] for k in ("miou", "pixel_accuracy", "per_class_iou")})
    alone("score_deal@0-deal_de-s0", tmp_path / "scores.csv")
    sharded = (root / "runs/seed0/deal_de/r0/scores.csv").read_text().splitlines()
    one = (tmp_path / "scores.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in sharded] == [line.split(",")[0] for line in one]  # the same ranking
    torch.testing.assert_close(torch.tensor([float(line.split(",")[1]) for line in sharded[1:]]),
                               torch.tensor([float(line.split(",")[1]) for line in one[1:]]))
    # nproc is a tracked param: DVC sees the change in the stages that read it
    status = run([str(Path(sys.executable).parent / "dvc"), "status"], root).stdout
    for stage in ("train@0-deal_de-r1", "evaluate@0-deal_de-r1", "score_deal@0-deal_de-s0"):
        assert stage in status, status
