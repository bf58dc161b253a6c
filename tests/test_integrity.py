"""Pipeline integrity, security, faults and limits (#26), on the real DVC, the real stage host and crafted
files: DVC's run-cache tells every data param apart; no value of params.yaml reaches a shell on any path;
-S applies to params.yaml only after the check; what a killed host, DVC or `dvc exp run` leaves is
stopped or repaired; runs too large for the machine, bad YAML and overlapping data folders are one line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pipeline_utils import BIN, REPO, copy_repo, edit_params, env, host, kill_when, run

pytestmark = pytest.mark.slow

DVC, PY = str(BIN / "dvc"), str(BIN / "python")


def new_files(root: Path) -> list[str]:
    listed = run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], root).stdout.splitlines()
    return sorted(line[3:] for line in listed if line[:2] in ("??", "!!") and not line[3:].startswith(".dvc/")
                  and "__pycache__/" not in line)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A copy of the repository that never ran: anything a check writes shows in git status."""
    return copy_repo(tmp_path_factory.mktemp("fresh"))


@pytest.fixture
def tiny(changed_project):
    return changed_project[0]


# ---------------------------------------------------------------- crafted params: one line, before anything runs


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


BOMB = "".join([f"a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"]
               + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 20)])  # 10**20 values

LR_LINE = next(i for i, line in enumerate((REPO / "params.yaml").read_text().splitlines(), 1) if line.startswith("  lr: "))
RAW = {  # params.yaml as a careless or hostile user writes it -> the line the host answers with
    "duplicate key": (_replace("  lr: 0.01 ", "  lr: 0.02\n  lr: 0.01 "),
                      f'params.yaml: line {LR_LINE + 1}: found duplicate key "lr" with value "0.01" (original value: '
                      '"0.02"); keep one of them (DVC refuses a file with a duplicate key)'),
    "alias bomb": (lambda t: t + BOMB, "values once its YAML aliases (*name) are expanded, more than 100,000; write "
                                       "the values out instead of aliasing them"),
    "1000 seeds": (_replace("seeds: [0]", f"seeds: [{', '.join(map(str, range(1000)))}]"),
                   "params.yaml: seeds, methods, rounds: 1000 seeds x 3 methods x 5 rounds make 93,005 stages, more "
                   "than limits.stages (1,000); DVC's own time per stage grows with the pipeline's size; run one seed "
                   "per `dvc repro` (python tools/study.py run STUDY --seeds ...), or raise limits.stages"),
    "grid past the images": (_replace("grid: [16, 16]", "grid: [4096, 4096]"),
                             "params.yaml: deal.grid: [4096, 4096] is finer than the images"),
    "seed 1e20": (_replace("seeds: [0]", "seeds: [100000000000000000000]"),
                  "params.yaml: seeds: [100000000000000000000]; a list of ints in [0, 2147483647]"),
    "DE with 1e9 levels": (_replace("k: 8,", "k: 1000000000,"),
                           "params.yaml: method_cfg.deal_de.k: 1000000000; the number of difficulty levels is an int "
                           "in [2, 65536]"),
    "1e5 threads": (_replace("threads: 0 ", "threads: 100000 "), "params.yaml: train.threads: 100000; an int in [0, 1024]"),
    "1e8 scenes": (_replace("train: 400,", "train: 100000000,"),
                   "params.yaml: dataset.resize: the prepared train split (100,000,000 images of 64x64, uint8 image and "
                   "mask) would take 1,638.4 GB of memory"),
    "past limits.memory_gb": (lambda t: _replace("resize: [64, 64]", "resize: [1024, 1024]")(t).replace(
        "memory_gb: auto", "memory_gb: 1"), "params.yaml: dataset.resize: the prepared train split (400 images of "
                                            "1024x1024, uint8 image and mask) would take 1.7 GB of memory, more than "
                                            "limits.memory_gb (1.0 GB)"),
    "past limits.disk_gb": (_replace("disk_gb: auto", "disk_gb: 0.001"),
                            "params.yaml: dataset, seeds, methods, rounds: the run would write about "),
    "flip: on (YAML 1.2 text, as DVC reads it)": (_replace("flip: true", "flip: on"),
                                                  "params.yaml: train.flip: 'on'; true or false"),
    "batch: 010 is 10, as DVC reads it": (_replace("batch: 20 ", "batch: 0100 "),
                                          "params.yaml: budget: 5 rounds need 440 labeled images but the train split "
                                          "has 400"),
}


@pytest.mark.parametrize("case", sorted(RAW))
def test_crafted_params_stop_the_host_with_one_line_before_dvc(fresh, case):
    edit, line = RAW[case]
    path = fresh / "params.yaml"
    original = path.read_text()
    path.write_text(edit(original))
    try:
        # quickly: without the check, DVC resolves 93,005 stages for minutes, or hashes a bomb
        proc = subprocess.Popen([PY, "tools/host.py", DVC, "repro"], cwd=fresh, env=env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("still running after 120 s: nothing refused it before DVC")
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert done.returncode == 1, done.stdout + done.stderr
        (only,) = done.stderr.splitlines() or [""]
        assert only.startswith("error: params.yaml: ") and line in only, done.stderr
        assert "Running stage" not in done.stdout and new_files(fresh) == []
    finally:
        path.write_text(original)


def test_a_duplicate_key_is_what_dvc_itself_refuses(fresh):
    """The one line stands for DVC's own error on the same file, which plain `dvc` prints as a dozen."""
    path = fresh / "params.yaml"
    original = path.read_text()
    path.write_text(RAW["duplicate key"][0](original))
    try:
        done = run([DVC, "status"], fresh, check=False)
        assert done.returncode != 0 and "duplicate" in (done.stdout + done.stderr).lower()
    finally:
        path.write_text(original)


def test_a_data_folder_overlapping_the_outputs_is_one_line_whatever_its_spelling(fresh, tmp_path):
    (fresh / "data" / "mine").mkdir(parents=True, exist_ok=True)
    link = tmp_path / "elsewhere"
    link.symlink_to(fresh / "data")  # outside the repository by its name, inside by what it is
    for path in (str(fresh / "data" / "mine"), str(link), str(fresh), "/"):
        edit_params(fresh, lambda p: p["dataset"].update(kind="folder", path=path))
        try:
            done = host(fresh, "repro")
            assert done.returncode == 1 and done.stderr == (
                f"error: params.yaml: dataset.path: {path!r} overlaps the pipeline's own outputs (data, runs, "
                "metrics, figures, or the repository holding them); point it at the folder root outside them\n"), done.stderr
        finally:
            run(["git", "checkout", "--", "params.yaml"], fresh)


@pytest.mark.parametrize("spelling", ["rounds/../params.yaml", "absolute", "./params.yaml"])
def test_set_param_on_params_yaml_by_any_name_is_checked(fresh, spelling):
    name = str(fresh / "params.yaml") if spelling == "absolute" else spelling
    done = host(fresh, "exp", "run", "-S", f"{name}:seeds=[\"0';touch PWNED;'\"]")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: params.yaml: seeds: [\"0';touch PWNED;'\"]; a list of ints"), done.stderr
    assert not (fresh / "PWNED").exists() and run(["git", "status", "--porcelain"], fresh).stdout == ""


def test_set_param_on_another_file_is_refused(fresh):
    done = host(fresh, "exp", "run", "-S", "dvc.yaml:stages.generate.cmd=touch PWNED")
    assert done.returncode == 1 and done.stderr == (
        "error: -S dvc.yaml:stages.generate.cmd=touch PWNED: sets dvc.yaml, not params.yaml; every param of this "
        "pipeline is in params.yaml: -S KEY=VALUE (e.g. -S train.lr=0.02)\n")
    assert not (fresh / "PWNED").exists() and run(["git", "status", "--porcelain"], fresh).stdout == ""


# ---------------------------------------------------------------- no value of params.yaml reaches a shell


def test_stage_commands_carry_no_value_of_params(fresh):
    """Every stage command DVC resolves is the same text whatever params.yaml holds."""
    from dvc.repo import Repo

    def commands():
        with Repo(str(fresh)) as repo:
            return {stage.addressing: stage.cmd for stage in repo.index.stages}

    before = commands()
    edit_params(fresh, lambda p: (p.update(seeds=[7]), p["rounds"][1].update(id="q1"), p["steps"][0].update(next="q1"),
                                  p["steps"][1].update(cur="q1")))
    try:
        after = commands()
    finally:
        run(["git", "checkout", "--", "params.yaml"], fresh)
    assert sorted(set(before.values())) == sorted(set(after.values()))
    assert not any(re.search(r"\b(7|q1)\b", cmd) for cmd in after.values())


def test_a_quote_in_a_value_runs_nothing_under_plain_dvc(tiny):
    """Plain `dvc repro`, no host, no check before DVC: the stage runs and refuses the value itself."""
    edit_params(tiny, lambda p: p.update(seeds=[0, "1';touch PWNED;'"]))
    done = run([DVC, "repro"], tiny, check=False)
    assert done.returncode != 0
    assert "error: params.yaml: seeds: [0, \"1';touch PWNED;'\"]; a list of ints" in done.stdout + done.stderr
    assert not list(tiny.rglob("PWNED"))


def test_a_quote_in_a_value_runs_nothing_in_the_queue(changed_project, tmp_path):
    """`dvc exp run --queue` and `dvc queue start` (docs/scaling.md): the workers run plain dvc, without the host."""
    from pipeline_utils import clone_run

    root = clone_run(changed_project[0], tmp_path / "queued")
    pwned = tmp_path / "PWNED"
    run([DVC, "exp", "run", "--queue", "-n", "hostile", "-S", f"seeds=[0,\"1';touch {pwned};'\"]"], root)
    with (tmp_path / "queue.log").open("w") as log:
        subprocess.run([DVC, "queue", "start", "-j", "1"], cwd=root, env=env(), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = run([DVC, "queue", "status"], root).stdout
            if "hostile" in status and not re.search(r"\b(Queued|Running)\b", status):
                break
            time.sleep(3)
    finally:
        run([DVC, "queue", "stop", "--kill"], root, check=False)
    assert re.search(r"hostile.*Failed", status), status
    logs = run([DVC, "queue", "logs", "hostile"], root, check=False).stdout
    assert "a list of ints" in logs and not pwned.exists()


def test_an_id_that_climbs_out_of_the_repository_writes_and_deletes_nothing_there(tiny, tmp_path):
    """DVC resolves output paths from params before any code of ours runs; one outside the repository is
    refused by DVC itself (nothing there deleted, nothing written)."""
    outside = tmp_path / "outside"
    (outside / "old").mkdir(parents=True)
    victim = outside / "old" / "random.json"
    victim.write_text("precious\n")
    for name in ("old", "new"):
        escape = os.path.relpath(outside / name, tiny / "data" / "pools" / "seed0")
        edit_params(tiny, lambda p: (p["rounds"][1].update(id=escape), p["steps"][0].update(next=escape)))
        done = run([DVC, "repro"], tiny, check=False)
        assert done.returncode != 0
        run(["git", "checkout", "--", "params.yaml"], tiny)
    assert victim.read_text() == "precious\n"
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*")) == ["old", "old/random.json"]


# ---------------------------------------------------------------- DVC's run-cache sees every data param


DATA_CHANGES = {  # every key of `dataset`: how it changes, and whether the embedded scenes' arrays change with it
    "resize": ({"resize": [48, 40]}, True),
    "seed": ({"seed": 1}, True),
    "synthetic.height": ({"synthetic": {"height": 40}}, True),
    "synthetic.width": ({"synthetic": {"width": 48}}, True),
    "synthetic.train": ({"synthetic": {"train": 44}}, True),
    "synthetic.val": ({"synthetic": {"val": 10}}, True),
    "synthetic.test": ({"synthetic": {"test": 18}}, True),
    "synthetic.conditions": ({"synthetic": {"conditions": "long_tail"}}, True),
    "test_split": ({"test_split": "val"}, False),  # CamVid's: the embedded scenes always have a test split
    "val_holdout": ({"val_holdout": 5}, False),  # Cityscapes'
    "kind, path": ({"kind": "folder", "path": None}, True),
}


LOOP = """
import json, subprocess, sys, numpy
from pathlib import Path
cases, out = json.loads(Path(sys.argv[1]).read_text()), {}
for name, text in cases.items():
    Path("params.yaml").write_text(text)
    done = subprocess.run([sys.argv[2], "repro", "prepare"], capture_output=True, text=True)
    prepared = Path("data/prepared")
    out[name] = {"status": done.returncode, "log": done.stdout[-3000:] + done.stderr[-2000:],
                 "arrays": {p.name: p.read_bytes().hex() for p in sorted(prepared.glob("*.npy"))},
                 "shape": list(numpy.load(prepared / "train_images.npy", mmap_mode="r").shape)}
Path(sys.argv[3]).write_text(json.dumps(out))
"""


def test_every_data_param_reruns_prepare_rather_than_restoring_another_run(tiny, tmp_path):
    """After a first run, each param of `dataset` changed alone: `prepare` runs (DVC's run-cache key left out
    `dataset.size` until it was renamed) and writes other arrays wherever the param shapes the data. The
    `dvc repro prepare` of each runs beside one stage host."""
    from test_guarantees import _folder_dataset

    folder = _folder_dataset(tmp_path / "mine", n=40, splits=False)
    base = yaml.safe_load((tiny / "params.yaml").read_text())
    assert set(DATA_CHANGES) - {"kind, path"} == {k for k in base["dataset"] if k not in ("synthetic", "kind", "path")} \
        | {f"synthetic.{k}" for k in base["dataset"]["synthetic"]}
    cases = {}
    for name, (change, _) in DATA_CHANGES.items():
        params = json.loads(json.dumps(base))
        for key, value in change.items():
            if key == "synthetic":
                params["dataset"]["synthetic"].update(value)
            else:
                params["dataset"][key] = str(folder) if key == "path" else value
        cases[name] = yaml.safe_dump(params, sort_keys=False)
    cases["unchanged"] = yaml.safe_dump(base, sort_keys=False)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "loop.py").write_text(LOOP)
    run([PY, "tools/host.py", PY, str(tmp_path / "loop.py"), str(tmp_path / "cases.json"), DVC,
         str(tmp_path / "results.json")], tiny)
    results = json.loads((tmp_path / "results.json").read_text())
    base_arrays = results.pop("unchanged")["arrays"]
    wrong = {}
    for name, (_, shapes) in DATA_CHANGES.items():
        r = results[name]
        ran = r["status"] == 0 and "Running stage 'prepare'" in r["log"] and "Stage 'prepare' is cached" not in r["log"]
        if not ran or (shapes and r["arrays"] == base_arrays):
            wrong[name] = r["log"][-600:]
    assert not wrong, wrong
    assert results["resize"]["shape"][2:] == [48, 40]


# ---------------------------------------------------------------- faults: a killed host, DVC, exp run


def _processes_in(root: Path) -> list[str]:
    """The live processes whose working folder is `root` (DVC, its stage commands), as `pid cmdline`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "cwd") != str(root):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in ("Z", "X"):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name} {cmdline[:120]}")
        except OSError:
            continue
    return found


def test_kill_9_of_the_host_stops_dvc_and_every_stage(tiny):
    """`make repro` killed (kill -9 of the host) between two stages: when it has returned, DVC and its stages
    are gone too, and DVC starts no further stage on its own."""
    stages = ("train_initial@0-segmentation", "train_initial@1-segmentation")
    models = [tiny / "runs" / f"seed{s}" / "initial" / "segmentation" / "model.pt" for s in (0, 1)]
    before = [m.stat().st_ino for m in models]  # a stage writes its folder anew: a new inode
    proc = subprocess.Popen([PY, "tools/host.py", DVC, "repro", "-f", "-s", *stages], cwd=tiny, env=env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def written():
        return [m.exists() and m.stat().st_ino != b for m, b in zip(models, before)]

    def stage_running():
        return any("stages/train.py" in line for line in _processes_in(tiny))

    try:
        deadline = time.monotonic() + 300
        # one stage done and its command gone: DVC records it (hashes, lock), then starts the other
        while not (any(written()) and not stage_running()):
            assert proc.poll() is None and time.monotonic() < deadline, "the first stage never finished"
            time.sleep(0.002)
        first = written()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _processes_in(tiny) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_in(tiny) == [], "still running after the host was killed"
        time.sleep(3)
        assert written() == first, "the other stage ran after the host was killed"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_lock_cut_short_by_a_kill_is_restored_before_dvc_runs(tiny):
    lock = tiny / "rounds" / "train" / "dvc.lock"
    text = lock.read_text()
    lock.write_text(text[: text.index("    cmd") + len("    cmd")])  # killed mid-write: DVC writes in place
    plain = run([DVC, "status"], tiny, check=False)  # DVC's own answer: a dozen lines
    assert plain.returncode != 0 and "rounds/train/dvc.lock' " in plain.stderr and len(plain.stderr.splitlines()) > 3
    done = host(tiny, "repro", check=True)
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("tools/host.py:")]
    assert line.startswith("tools/host.py: rounds/train/dvc.lock: not ") and line.endswith(
        "(DVC was killed while it wrote it); restored from git (HEAD): the stages it records since then rerun, or "
        "come from the run-cache")
    assert lock.read_text() == text and "Data and pipelines are up to date." in done.stdout


def test_a_killed_exp_run_leaves_git_as_it_was(tiny):
    """kill -9 of `dvc exp run` mid-way leaves HEAD detached and .dvc/tmp/repro.dat staged (DVC's
    own state while it runs an experiment); the host's next `dvc exp` puts them back."""
    branch = run(["git", "symbolic-ref", "--short", "HEAD"], tiny).stdout.strip()
    head = tiny / ".git" / "HEAD"
    staged = tiny / ".dvc" / "tmp" / "repro.dat"
    try:
        caught = False
        for _ in range(3):
            caught = kill_when([DVC, "exp", "run", "-S", "train.lr=0.02"], tiny,
                               lambda: staged.exists() and not head.read_text().startswith("ref:"), timeout=300)
            if caught:
                break
            run(["git", "checkout", "-q", branch], tiny, check=False)
        assert caught, "dvc exp run was never caught with its experiment applied"
        assert run(["git", "symbolic-ref", "-q", "HEAD"], tiny, check=False).returncode != 0  # detached
        done = host(tiny, "exp", "show", "--no-pager")
        assert done.returncode == 0, done.stderr
        lines = [ln for ln in done.stderr.splitlines() if ln.startswith("tools/host.py:")]
        assert len(lines) == 1 and lines[0].startswith(
            f"tools/host.py: a killed `dvc exp run` left git as it was mid-run: HEAD back on {branch} (left "
            "detached); .dvc/tmp/repro.dat ") and "removed" in lines[0], done.stderr
        assert run(["git", "symbolic-ref", "--short", "HEAD"], tiny).stdout.strip() == branch
        assert ".dvc/tmp/repro.dat" not in run(["git", "status", "--porcelain"], tiny).stdout
        assert not staged.exists() and run(["git", "for-each-ref", "refs/exps/exec"], tiny).stdout == ""
    finally:
        run(["git", "checkout", "-q", "-f", branch], tiny, check=False)
        run(["git", "reset", "-q"], tiny, check=False)
