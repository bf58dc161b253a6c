"""Helpers of the end-to-end tests: a temporary copy of the repo that runs the real `dvc`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from deal.methods import split_lists

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import target as _stage_target  # noqa: E402  (tools/target.py)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# tests that commit set their own identity: CI has none
GIT_ENV = {
    "GIT_AUTHOR_NAME": "deal-tests", "GIT_AUTHOR_EMAIL": "tests@deal.local",
    "GIT_COMMITTER_NAME": "deal-tests", "GIT_COMMITTER_EMAIL": "tests@deal.local",
}
OUTPUTS = ("data", "runs", "metrics", "dvc.lock", ".venv")
LOCKS = ("dvc.lock", "rounds")


def env() -> dict:
    return {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def run(cmd: list[str] | str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, shell=isinstance(cmd, str))
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def copy_repo(dest: Path) -> Path:
    """The repo's files as a fresh clone would have them, in a new git repo, no outputs."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        output = name.split("/")[0] in OUTPUTS and not name.endswith(".gitignore")
        if output or name.endswith("dvc.lock") or not (REPO / name).is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


def edit_params(root: Path, change) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def target(stage: str) -> str:
    """`train@0-deal_de-r1` -> `rounds/train/dvc.yaml:train@0-deal_de-r1`; the top-level
    dvc.yaml's stages (init@0, train_initial@0-joint, ...) stay as named (tools/target.py,
    the helper `make stage` uses)."""
    return _stage_target.target(stage)


def stage_argv(root: Path, stage: str) -> list[str]:
    """The command of `stage` (as `target` names it) as DVC ran it in `root`: its dvc.lock entry,
    where dvc.yaml spelled the paths, and the stage's name, which DVC passes in $DVC_STAGE.
    For running one stage's script by hand."""
    import shlex

    file, _, name = target(stage).rpartition(":")
    lock = root / (Path(file).parent if file else Path(".")) / "dvc.lock"
    cmd = yaml.safe_load(lock.read_text())["stages"][name or stage]["cmd"]
    argv = shlex.split(cmd)[1:]  # without `python`
    return argv + ["--stage", name or stage] if "@" in (name or stage) else argv  # a matrix stage


def repro(root: Path, *args: str) -> list[str]:
    """Run `dvc repro` beside a stage host (stage names as `target` takes them);
    return the stages that ran, without their rounds/<kind>/dvc.yaml: prefix."""
    args = [a if a.startswith("-") else target(a) for a in args]
    done = run([str(BIN / "python"), "tools/host.py", str(BIN / "dvc"), "repro", *args], root)
    return [name.rsplit(":", 1)[-1] for name in re.findall(r"Running stage '([^']+)'", done.stdout)]


def tiny_params(params: dict, methods=("random", "entropy", "deal_de"), rounds: int = 3, seeds=(0,)) -> None:
    """A config that runs the whole pipeline in about a minute on 2 cores (a seed)."""
    params["seeds"] = list(seeds)
    params["baseline_ref"] = "random" if "random" in methods else None
    params["dataset"].update(resize=[32, 32], synthetic={"height": 32, "width": 32, "train": 40, "val": 8, "test": 16,
                                                         "conditions": "none"})
    params["budget"] = {"initial": 8, "batch": 4}
    params["methods"] = list(methods)
    params.update(split_lists(methods))  # baselines and deal_methods, from the method table
    params["rounds"] = [{"id": f"r{i}"} for i in range(rounds)]
    params["steps"] = [{"cur": f"r{i}", "next": f"r{i + 1}"} for i in range(rounds - 1)]
    params["model"].update(width_mult=0.35, head_channels=32)
    # one thread a stage: `make test` runs two tests at once on two cores, and torch spinning two threads
    # per stage on cores busy with the other test made the tiny stages several times slower
    params["train"].update(iterations=6, batch_size=4, val_every=2, crop=[32, 32], threads=1)
    params["deal"].update(grid=[8, 8], iterations=4)


def restore(root: Path) -> None:
    """Back to the committed params and outputs: drop what later stages left behind."""
    run(["git", "checkout", "--", "."], root)
    run(["git", "clean", "-fdxq", "--", "data", "runs", "metrics"], root)
    run([str(BIN / "dvc"), "checkout", "-q"], root)


def clone_run(root: Path, dest: Path) -> Path:
    """A git clone of the finished run at `root` with its outputs checked out from a cache of its own:
    the cache's objects hard-linked (DVC keeps them read-only), not its run-cache, so a stage
    that reruns in the clone is computed again, never restored from `root`'s earlier runs."""
    run(["git", "clone", "-q", str(root), str(dest)], root.parent)
    source = root / ".dvc" / "cache" / "files"
    for path in source.rglob("*"):
        if path.is_file():
            target = dest / ".dvc" / "cache" / "files" / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:  # another file system
                shutil.copy2(path, target)
    run([str(BIN / "dvc"), "checkout", "-q"], dest)
    return dest


def host(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`make repro`'s command line: `python tools/host.py dvc ARGS` (the host checks params first)."""
    return run([str(BIN / "python"), "tools/host.py", str(BIN / "dvc"), *args], root, check=check)


def kill_when(command: list[str], cwd: Path, condition, timeout: float = 300) -> bool:
    """Run `command` in its own session and SIGKILL the whole session as soon as `condition()` holds;
    True if it held before the command ended by itself."""
    import signal
    import time

    proc = subprocess.Popen(command, cwd=cwd, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if condition():
                return True
            assert time.monotonic() < deadline, f"{' '.join(command)} still running after {timeout} s"
            time.sleep(0.001)
        return condition()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
