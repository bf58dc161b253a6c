"""Nothing silent: stale state, unchecked params and unsafe ids never give a result.

Each test runs the real thing (DVC, the stage host, the stage scripts) on a
tiny config in a temporary copy of the repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from pipeline_utils import BIN, copy_repo, edit_params, env, repro, restore, run, stage_argv, tiny_params

pytestmark = pytest.mark.slow  # the real dvc repro end to end: `make test-fast` leaves them out

DVC = str(BIN / "dvc")
PY = str(BIN / "python")


def host(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`make repro`'s command line: DVC beside the stage host (which checks params first)."""
    return run([PY, "tools/host.py", DVC, *args], root, check=check)


def new_files(root: Path) -> list[str]:
    """What a run wrote: files git does not track (ignored ones too), .dvc/ aside."""
    listed = run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], root).stdout.splitlines()
    return sorted(line[3:] for line in listed if line[:2] in ("??", "!!") and not line[3:].startswith(".dvc/")
                  and "__pycache__/" not in line)  # byte-code, where PYTHONDONTWRITEBYTECODE is unset


def kill_when(args: list[str], cwd: Path, condition, timeout: float = 300) -> bool:
    """Run `dvc ARGS` in its own session and SIGKILL the whole session (DVC and its stage) as soon as
    `condition()` holds; True if it held before the command ended by itself."""
    proc = subprocess.Popen([DVC, *args], cwd=cwd, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if condition():
                return True
            assert time.monotonic() < deadline, f"dvc {' '.join(args)} still running after {timeout} s"
            time.sleep(0.001)
        return condition()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def dead_pid() -> int:
    """The pid of a process that has exited (what a SIGKILLed writer leaves in its temporaries' names)."""
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def temp_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp") if ".git" not in p.parts and ".dvc" not in p.parts)


# ---------------------------------------------------------------- bad params: one line, exit 1, nothing written

BAD_PARAMS = {
    "negative epochs": (lambda p: p["train"].update(epochs=-2), "params.yaml: train.epochs: -2; an int >= 1"),
    "zero batch": (lambda p: p["train"].update(batch_size=0), "params.yaml: train.batch_size: 0; an int >= 1"),
    "unknown device": (lambda p: p["train"].update(device="tpu"), "params.yaml: train.device: 'tpu'; auto"),
    "lr not a number": (lambda p: p["train"].update(lr="fast"), "params.yaml: train.lr: 'fast'; a number > 0"),
    "seed not an int": (lambda p: p.update(seeds=[0, "zero"]), "params.yaml: seeds: [0, 'zero']; a list of ints in [0, 2147483647]"),
    "shell in a seed": (lambda p: p.update(seeds=["0$(touch PWNED)"]), "params.yaml: seeds: ['0$(touch PWNED)']"),
    "seed listed twice": (lambda p: p.update(seeds=[0, 1, 0]), "params.yaml: seeds: [0, 1, 0] lists a seed twice"),
    "typo key": (lambda p: p["train"].update(epoch=3), "params.yaml: train.epoch: unknown key; did you mean 'epochs'?"),
    "null method_cfg": (lambda p: p.update(method_cfg=None), "params.yaml: method_cfg: null; a mapping"),
    "null dataset": (lambda p: p.update(dataset=None), "params.yaml: dataset: null; a mapping"),
    "over 100 percent": (lambda p: p["budget"].update(initial="150%"),
                         "params.yaml: budget.initial: '150%' is more than the whole train split"),
    "steps that do not chain": (lambda p: p["steps"][0].update(next="r2"), "params.yaml: steps[0]:"),
    "shell in a round id": (lambda p: _rename_round(p, "r1$(touch PWNED)"), "params.yaml: rounds[1].id: 'r1$(touch PWNED)'"),
    "path in a round id": (lambda p: _rename_round(p, "../../../../tmp/deal-x"), "params.yaml: rounds[1].id: '../../../../tmp/deal-x'"),
}


def _rename_round(params: dict, new_id: str) -> None:
    params["rounds"][1]["id"] = new_id
    params["steps"][0]["next"] = new_id
    if len(params["steps"]) > 1:
        params["steps"][1]["cur"] = new_id


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A copy of the repository that never ran: anything a check writes shows in git status."""
    return copy_repo(tmp_path_factory.mktemp("fresh"))


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_a_bad_param_stops_make_repro_with_its_line_before_anything_is_written(fresh, case):
    change, line = BAD_PARAMS[case]
    edit_params(fresh, change)
    try:
        done = host(fresh, "repro")
        assert done.returncode == 1, done.stdout + done.stderr
        errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
        assert errors and errors[0].startswith(f"error: {line}"), done.stderr
        assert "Traceback" not in done.stderr and "dvc remove" not in done.stderr + done.stdout
        assert "Running stage" not in done.stdout
        assert new_files(fresh) == []
        assert not (fresh / "PWNED").exists() and not Path("/tmp/deal-x").exists()
    finally:
        run(["git", "checkout", "--", "params.yaml"], fresh)


def test_exp_run_overrides_are_checked_before_dvc(fresh):
    done = host(fresh, "exp", "run", "-S", "train.lr=fast", "-S", "train.epoch=3")
    assert done.returncode == 1
    assert [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")] == [
        "error: params.yaml: train.epoch: unknown key; did you mean 'epochs'?",
        "error: params.yaml: train.lr: 'fast'; a number > 0",
    ]
    assert run(["git", "status", "--porcelain"], fresh).stdout == ""
    assert run(["git", "stash", "list"], fresh).stdout == "" and new_files(fresh) == []


def test_dvc_global_options_do_not_skip_the_check(fresh):
    edit_params(fresh, lambda p: p["train"].update(epochs=-2))
    try:
        for args in (["-v", "repro"], ["--cd", str(fresh), "repro"], ["-q", "exp", "run"]):
            done = host(fresh, *args)
            assert done.returncode == 1 and "error: params.yaml: train.epochs: -2" in done.stderr, args
        assert new_files(fresh) == []
    finally:
        run(["git", "checkout", "--", "params.yaml"], fresh)


def test_set_param_values_are_parsed_and_swept_as_dvc_does(fresh):
    check = [PY, "tools/check_params.py"]
    assert run([*check, "-S", "train.lr=1e-3", "-S", "reference.seed=range(0,3)"], fresh).stdout == "params.yaml: valid\n"
    done = run([*check, "-S", "train.lr=0.01,fast,0.02"], fresh, check=False)
    assert done.returncode == 1 and done.stderr == "error: params.yaml: train.lr: 'fast'; a number > 0\n"
    done = run([*check, "-S", "rounds.1.id=r1$(touch PWNED)"], fresh, check=False)
    assert done.returncode == 1 and done.stderr.startswith("error: -S rounds.1.id=r1$(touch PWNED): not a value DVC can parse")
    # in params.yaml too, 1e-3 is the number DVC reads, not text
    edit_params(fresh, lambda p: p["train"].update(lr="LR"))
    try:
        (fresh / "params.yaml").write_text((fresh / "params.yaml").read_text().replace("lr: LR", "lr: 1e-3"))
        assert run(check, fresh).returncode == 0
    finally:
        run(["git", "checkout", "--", "params.yaml"], fresh)
    assert not (fresh / "PWNED").exists()


def test_a_stage_run_by_plain_dvc_checks_its_params_first(fresh):
    edit_params(fresh, lambda p: p["train"].update(epochs=-2))
    try:
        done = run([DVC, "repro"], fresh, check=False)
        assert done.returncode != 0
        assert "error: params.yaml: train.epochs: -2; an int >= 1" in done.stderr + done.stdout
        assert not (fresh / "data" / "synthetic").exists() and not (fresh / "runs").exists()
    finally:
        run(["git", "checkout", "--", "params.yaml"], fresh)


# ---------------------------------------------------------------- a tiny finished run


@pytest.fixture
def tiny(changed_project):
    """The shared tiny finished run (conftest.py): seeds 0 and 1, random and DEAL DE, rounds r0 and r1;
    restored when the test ends."""
    return changed_project[0]


def test_a_shell_id_under_plain_dvc_runs_nothing(tiny):
    """DVC puts ids into the stage command: they are quoted there, and the stage refuses them."""
    edit_params(tiny, lambda p: _rename_round(p, "r1$(touch PWNED)"))
    done = run([DVC, "repro"], tiny, check=False)
    assert done.returncode != 0
    assert "error: params.yaml: rounds[1].id: 'r1$(touch PWNED)'" in done.stderr + done.stdout
    assert not (tiny / "PWNED").exists() and not list(tiny.rglob("PWNED"))
    assert not list((tiny / "data" / "pools").glob("*/r1$*"))


def test_an_edited_source_mask_shows_as_a_changed_dependency_of_prepare(tiny):
    mask = tiny / "data" / "synthetic" / "trainannot" / "synth_00000.png"
    pixels = np.array(Image.open(mask))
    pixels[0, 0] = (int(pixels[0, 0]) + 1) % 11
    Image.fromarray(pixels).save(mask)
    try:
        status = run([DVC, "status", "prepare"], tiny).stdout
        assert "prepare:" in status and "modified:           data/synthetic" in status
    finally:
        restore(tiny)
    assert "up to date" in run([DVC, "status"], tiny).stdout


def test_new_weights_show_as_a_changed_dependency_of_training(tiny):
    readme = tiny / "weights" / "README.md"
    readme.write_text(readme.read_text() + "\nA note.\n")  # for people: .dvcignore keeps it out of the dep
    assert "up to date" in run([DVC, "status"], tiny).stdout
    run(["git", "checkout", "--", "weights/README.md"], tiny)
    (tiny / "weights" / "mobilenet_v2.pth").write_bytes(b"weights")
    try:
        status = run([DVC, "status"], tiny).stdout
        assert "train_initial@0-segmentation:" in status and "modified:           weights" in status
        assert "rounds/train/dvc.yaml:train@1-random-r1:" in status
        assert "prepare:" not in status
    finally:
        (tiny / "weights" / "mobilenet_v2.pth").unlink()
    assert "up to date" in run([DVC, "status"], tiny).stdout


CORRUPT = {  # the input, the stage that reads it
    "model": ("runs/seed0/deal_de/r1/model.pt", "evaluate@0-deal_de-r1"),
    "pool": ("data/pools/seed1/r1/random.json", "train@1-random-r1"),
    "errors": ("runs/seed0/deal_de/r0/errors.json", "difficulty@0-deal_de-s0"),  # joint mode reads the record
    "evaluation": ("metrics/eval/seed0/deal_de/r0.json", "analyze@0-deal_de-s0"),
    "scores": ("runs/seed1/random/r0/scores.csv", "select@1-random-s0"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_truncated_input_stops_its_stage_with_one_line_naming_it(tiny, case):
    path, stage = CORRUPT[case]
    cmd = stage_argv(tiny, stage)
    target = tiny / path
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3] if case != "scores" else b"id,score\nx,not-a-number\n")
    try:
        before = {p: p.stat().st_mtime_ns for p in (tiny / "runs").rglob("*") if p.is_file()}
        done = run([PY, *cmd], tiny, check=False)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith(f"error: {path}: unreadable") and f"dvc checkout -f {path}" in lines[0]
        after = {p: p.stat().st_mtime_ns for p in (tiny / "runs").rglob("*") if p.is_file()}
        assert after == before, "a failed stage wrote something"
    finally:
        target.write_bytes(data)


def test_joint_difficulty_takes_the_branch_errors_measured_and_no_other(tiny):
    """deal.mode joint: the network runs over the labeled pool once (errors); the difficulty
    stage copies model.pt and the measures of that pass, and refuses a record of another network."""
    run_dir = tiny / "runs" / "seed0" / "deal_de" / "r0"
    assert (run_dir / "difficulty.pt").read_bytes() == (run_dir / "model.pt").read_bytes()
    measured = json.loads((run_dir / "errors.json").read_text())["difficulty_branch"]
    taken = json.loads((run_dir / "difficulty.json").read_text())
    assert taken["mode"] == "joint" and 0.0 <= taken["labeled_auroc"] <= 1.0
    assert {k: taken[k] for k in ("labeled_bce", "labeled_auroc", "gamma")} == \
        {k: measured[k] for k in ("labeled_bce", "labeled_auroc", "gamma")}
    record = run_dir / "errors.json"
    data = record.read_bytes()
    record.write_text(json.dumps({**json.loads(data), "difficulty_branch": {**measured, "model_sha256": "0" * 64}}))
    try:
        before = {p: p.stat().st_mtime_ns for p in (tiny / "runs").rglob("*") if p.is_file()}
        done = run([PY, *stage_argv(tiny, "difficulty@0-deal_de-s0")], tiny, check=False)
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "measured another network than" in lines[0] and "errors stage" in lines[0], done.stderr
        assert {p: p.stat().st_mtime_ns for p in (tiny / "runs").rglob("*") if p.is_file()} == before
    finally:
        record.write_bytes(data)


def test_leftover_temporaries_of_killed_writers_do_not_survive_the_rerun(tiny):
    # what SIGKILL in the middle of select's and report's atomic writes leaves
    gone = dead_pid()
    leftovers = [tiny / "figures" / "seed0" / "random" / "r0" / f".selection.png.{gone}-k1ll3d.tmp",
                 tiny / "data" / "pools" / "seed1" / "r1" / f".random.json.{gone}-k1ll3d.tmp",
                 tiny / "metrics" / f".curves.csv.{gone}-k1ll3d.tmp",
                 tiny / "metrics" / f".summary.json.{gone}-k1ll3d.tmp"]
    for path in leftovers:
        path.write_bytes(b"")
    (tiny / "data" / "pools" / "seed0" / f".r0.{gone}-k1ll3d.tmp").mkdir()  # init's atomic folder
    live = tiny / "metrics" / f".summary.json.{os.getpid()}-l1ve.tmp"  # a writer still running keeps its file
    live.write_bytes(b"")
    ran = run([PY, *stage_argv(tiny, "report")], tiny)  # a stage removes them before it writes
    assert temp_files(tiny) == ["metrics/" + live.name], ran.stderr
    live.unlink()
    assert "up to date" in run([DVC, "status"], tiny).stdout


def test_select_killed_mid_write_leaves_nothing_after_its_rerun(tiny):
    """SIGKILL while select writes its gallery (atomic_path's temporary exists), then the rerun."""
    figures = tiny / "figures" / "seed0" / "random" / "r0"
    caught = False
    for _ in range(5):  # the gallery's write is short: try again if the poll missed it
        caught = kill_when(["repro", "-f", "-s", "rounds/select/dvc.yaml:select@0-random-s0"], tiny,
                           lambda: bool(list(figures.glob(".selection.png.*.tmp"))), timeout=120)
        if caught:
            break
    assert caught, "select was never caught mid-write: nothing was tested"
    assert list(figures.glob(".selection.png.*.tmp")), "SIGKILL left no temporary"
    repro(tiny, "select@0-random-s0")
    assert temp_files(tiny) == []
    assert "up to date" in run([DVC, "status"], tiny).stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_on_a_machine_without_it_is_one_line(tiny):
    edit_params(tiny, lambda p: p["train"].update(device="cuda"))
    try:
        done = run([PY, *stage_argv(tiny, "evaluate@0-random-r1")], tiny, check=False)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "error: params.yaml: train.device: 'cuda', but this machine has 0 CUDA device(s); "
            "use auto (CUDA when present) or cpu"]
    finally:
        run(["git", "checkout", "--", "params.yaml"], tiny)  # the stage wrote nothing


# ---------------------------------------------------------------- resume: only the run it came from


def _interrupt(root: Path, checkpoint: Path) -> None:
    """kill -9 a forced rerun of the plain round-0 model's training (DVC and the training with it) once its
    checkpoint exists."""
    assert kill_when(["repro", "-f", "-s", INITIAL], root, checkpoint.exists), \
        "training ended before it wrote a checkpoint"


INITIAL = "train_initial@0-segmentation"


def test_an_interrupted_run_resumes_only_with_the_same_params(tmp_path):
    root = copy_repo(tmp_path / "resume")

    def long_training(params):
        tiny_params(params, methods=("random",), rounds=1)
        params["train"].update(iterations=None, epochs=6, val_every=3)

    edit_params(root, long_training)
    repro(root, INITIAL)
    model = root / "runs" / "seed0" / "initial" / "segmentation" / "model.pt"
    checkpoint = root / "runs" / ".resume" / "seed0-initial-segmentation.pt"
    lr_01 = model.read_bytes()
    assert not checkpoint.exists(), "a finished stage leaves its checkpoint"

    # the same run resumes, and ends bit-identical to the uninterrupted one
    _interrupt(root, checkpoint)
    done = host(root, "repro", "-f", "-s", INITIAL, check=True)
    assert "train: resuming from epoch" in done.stdout
    assert model.read_bytes() == lr_01 and not checkpoint.exists()

    _interrupt(root, checkpoint)
    # DVC serves the unchanged stage from its run-cache: the checkpoint stays behind
    repro(root, INITIAL)
    assert checkpoint.exists()
    edit_params(root, lambda p: p["train"].update(lr=0.02))
    done = host(root, "repro", INITIAL, check=True)
    assert "train: ignoring runs/.resume/seed0-initial-segmentation.pt: written by another run" in done.stdout
    assert "resuming" not in done.stdout
    lr_02 = model.read_bytes()
    assert lr_02 != lr_01
    record = json.loads((root / "runs" / "seed0" / "initial" / "segmentation" / "train.json").read_text())
    assert record["epochs"] == 6 and len(record["history"]) == 6
    assert not checkpoint.exists() and temp_files(root) == []
    # what a run from scratch with lr 0.02 writes, to the byte, past a corrupt checkpoint
    checkpoint.write_bytes(b"PK\x03\x04 not a checkpoint")
    done = host(root, "repro", "--force", "--single-item", INITIAL, check=True)
    assert "train: ignoring runs/.resume/seed0-initial-segmentation.pt: unreadable" in done.stdout
    assert model.read_bytes() == lr_02 and not checkpoint.exists()
    assert yaml.safe_load((root / "dvc.lock").read_text())["stages"][INITIAL]["params"]["params.yaml"]["train"]["lr"] == 0.02


# ---------------------------------------------------------------- your own data is a dependency


def _folder_dataset(root: Path, n: int = 30, splits: bool = True) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = rng.integers(0, 3, size=(32, 32), dtype=np.uint8)
        Image.fromarray(np.stack([mask * 80, 255 - mask * 80, mask], axis=-1)).save(root / "images" / f"{i:03d}.png")
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i:03d}.png")
    (root / "test.txt").write_text("".join(f"{i:03d}\n" for i in range(20, 30)))
    config = {"class_names": ["a", "b", "c"], "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]], "void_index": 255}
    if splits:
        config["splits"] = {"test": "test.txt", "val": 0.2, "train": "*"}
    (root / "dataset.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.mark.slow
def test_a_folder_of_images_without_splits_runs_the_whole_pipeline(tmp_path):
    """docs/datasets.md: a flat folder with no `splits` is split 70/10/20 by split_seed."""
    data = _folder_dataset(tmp_path / "mine", n=40, splits=False)
    root = copy_repo(tmp_path / "repo")

    def folder(params):
        tiny_params(params, methods=("random", "deal_de"), rounds=2)
        params["dataset"].update(kind="folder", path=str(data))
        params["budget"] = {"initial": 6, "batch": 3}

    edit_params(root, folder)
    ran = repro(root)
    assert "prepare" in ran and "report" in ran
    ids = json.loads((root / "data" / "prepared" / "ids.json").read_text())
    assert {split: len(ids[split]) for split in ("train", "val", "test")} == {"train": 28, "val": 4, "test": 8}
    rows = (root / "metrics" / "curves.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2  # header, two methods x two rounds
    assert "up to date" in run([DVC, "status"], root).stdout


def test_editing_your_own_data_reruns_prepare(tmp_path):
    data = _folder_dataset(tmp_path / "mine")
    root = copy_repo(tmp_path / "repo")

    def folder(params):
        tiny_params(params, methods=("random",), rounds=1)
        params["dataset"].update(kind="folder", path=str(data))
        params["budget"] = {"initial": 4, "batch": 2}

    edit_params(root, folder)
    assert "prepare" in repro(root, "prepare")
    assert "up to date" in run([DVC, "status", "prepare"], root).stdout
    for edit in (lambda: Image.fromarray(np.full((32, 32), 2, np.uint8), mode="L").save(data / "masks" / "003.png"),
                 lambda: Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "images" / "004.png"),
                 lambda: (data / "test.txt").write_text("".join(f"{i:03d}\n" for i in range(21, 30)))):
        edit()
        status = run([DVC, "status", "prepare"], root).stdout
        assert "prepare:" in status and f"modified:           {data}" in status, status
        run([DVC, "commit", "-f", "prepare"], root)  # take this edit as seen, to test the next one alone
        assert "up to date" in run([DVC, "status", "prepare"], root).stdout
    assert repro(root, "-f", "prepare") == ["prepare"]
    ids = json.loads((root / "data" / "prepared" / "ids.json").read_text())
    assert "images/020.png" not in ids["test"] and len(ids["test"]) == 9


def test_a_split_list_outside_the_dataset_is_refused(tmp_path):
    data = _folder_dataset(tmp_path / "mine")
    secret = tmp_path / "secret.txt"
    secret.write_text("password123\n")
    config = yaml.safe_load((data / "dataset.yaml").read_text())
    config["splits"]["test"] = "../secret.txt"
    (data / "dataset.yaml").write_text(yaml.safe_dump(config))
    root = copy_repo(tmp_path / "repo")
    edit_params(root, lambda p: (tiny_params(p, methods=("random",), rounds=1),
                                 p["dataset"].update(kind="folder", path=str(data))))
    done = run([PY, "stages/prepare.py", "--out", "data/prepared"], root, check=False)
    assert done.returncode == 1
    assert "is outside the dataset folder" in done.stderr and "password123" not in done.stderr + done.stdout
    assert not (root / "data" / "prepared").exists()
