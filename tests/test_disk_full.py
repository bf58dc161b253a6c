"""A write that fails (a full disk, a quota, the file size limit): one line naming the file and the fix,
the temporary removed, the target as it was; under torchrun one line in all, not one traceback per rank.

Real failing writes, not mocked ones: /dev/full gives the kernel's ENOSPC to a writer's block, and a
stage run under RLIMIT_FSIZE (SIGXFSZ ignored, as a shell's `ulimit -f` leaves it for a process that
ignores it) gets EFBIG from the kernel on the write that crosses the limit, wherever in the stage,
its libraries or its torchrun workers that write happens. (A full tmpfs would need root to mount.)
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from deal.atomic import WriteError, atomic_dir, atomic_path
from pipeline_utils import REPO, tiny_params

pytestmark = pytest.mark.slow  # stage scripts, torchrun

PY = sys.executable


def full_disk(tmp: Path) -> None:
    """Write into `tmp` as onto a full disk: it becomes /dev/full, whose writes fail with ENOSPC."""
    tmp.unlink()
    tmp.symlink_to("/dev/full")
    with open(tmp, "wb") as f:
        f.write(b"0" * 100)


needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")


@needs_dev_full
def test_a_write_onto_a_full_disk_is_one_line_and_leaves_the_target_as_it_was(tmp_path):
    target = tmp_path / "out" / "scores.csv"
    target.parent.mkdir()
    target.write_text("the old scores\n")
    with pytest.raises(WriteError) as failed:
        with atomic_path(target) as tmp:
            full_disk(tmp)
    assert str(failed.value) == (f"{target}: cannot write it (No space left on device); the disk is full: free space "
                                 f"on it (df -h {target.parent}), then run it again")
    assert target.read_text() == "the old scores\n" and os.listdir(target.parent) == ["scores.csv"]

    folder = tmp_path / "out" / "prepared"
    folder.mkdir()
    (folder / "ids.json").write_text("{}")
    with pytest.raises(WriteError, match=rf"^{folder}: cannot write it \(No space left on device\); the disk is full"):
        with atomic_dir(folder) as work:
            (work / "a.npy").touch()
            full_disk(work / "a.npy")
    assert os.listdir(folder) == ["ids.json"] and sorted(os.listdir(folder.parent)) == ["prepared", "scores.csv"]


def test_an_input_that_cannot_be_read_inside_a_writer_is_no_write_error(tmp_path):
    """Only the write's own failures become WriteError: an input read in the block keeps its error."""
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "copy.txt") as tmp:
            tmp.write_text((tmp_path / "missing.txt").read_text())
    assert os.listdir(tmp_path) == []


def file_size_limit(limit: int):
    """For a child process: writes past `limit` bytes fail with EFBIG (SIGXFSZ ignored, as it stays across exec)."""
    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_writes


def stage(root: Path, script: str, *args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # nothing else of ours to write under the limit
    return subprocess.run([PY, str(REPO / "stages" / script), *args], cwd=root, env=env, capture_output=True, text=True,
                          preexec_fn=None if limit is None else file_size_limit(limit), timeout=600)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A workspace with the embedded scenes generated (its params: tiny, the reference trained on 2 processes)."""
    root = tmp_path_factory.mktemp("diskfull")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny_params(params, methods=("random",), rounds=2)
    params["reference"]["train"] = True
    params["train"].update(nproc=2, device="cpu", sync_bn=False, iterations=1)
    params["dataset"]["synthetic"].update(train=12, val=2, test=2)
    params["budget"] = {"initial": 4, "batch": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = stage(root, "generate.py", "--out", "data/synthetic")
    assert done.returncode == 0, done.stderr
    return root


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


def test_prepare_on_a_full_disk_stops_with_one_line_and_leaves_no_temporary(scenes):
    done = stage(scenes, "prepare.py", "--out", "data/prepared", limit=8 * 1024)  # its arrays are larger
    assert (done.returncode, done.stderr.splitlines()) == (1, [
        "error: data/prepared: cannot write it (File too large); over the file size limit (ulimit -f): raise it, "
        "then run it again"]), done.stderr
    assert not (scenes / "data" / "prepared").exists() and leftovers(scenes) == []


def test_a_failed_write_under_torchrun_is_one_line_not_one_traceback_per_rank(scenes):
    """The reference stage on 2 processes: rank 0 writes reference.json (past the limit: EFBIG); rank 1,
    waiting for it, loses its peer; torchrun sees a failed worker. One line says so."""
    done = stage(scenes, "prepare.py", "--out", "data/prepared")
    assert done.returncode == 0, done.stderr
    done = stage(scenes, "pretrain.py", "--images", "data/prepared/train_images.npy", "--info",
                 "data/prepared/info.json", "--out", "runs/pretrain")  # method none: a record, no weights
    assert done.returncode == 0, done.stderr
    done = stage(scenes, "reference.py", "--prepared", "data/prepared", "--pretrained", "runs/pretrain",
                 "--out", "metrics/reference.json", limit=100)
    assert done.returncode == 1, done.stderr
    assert [line for line in done.stderr.splitlines() if "error" in line.lower() or "Traceback" in line] == [
        "error: metrics/reference.json: cannot write it (File too large); over the file size limit (ulimit -f): "
        "raise it, then run it again"], done.stderr
    assert not (scenes / "metrics" / "reference.json").exists() and leftovers(scenes) == []


WORKER = '''
import os, signal, sys, time
from deal.distributed import barrier, init

rank, world = init("cpu")
if rank == 1:
    time.sleep(0.5)
    if sys.argv[1] == "raise":
        raise RuntimeError("rank 1 cannot go on")
    os.kill(os.getpid(), signal.SIGKILL)
barrier()  # rank 0 waits for rank 1, which fails first
'''


@pytest.mark.parametrize("how, report", [
    ("raise", "RuntimeError: rank 1 cannot go on"),
    ("kill", "error: {script}: the process of rank 1 was killed by SIGKILL; if it ran out of memory (dmesg says so), "
             "lower train.batch_size or train.nproc"),
])
def test_under_torchrun_the_first_failure_alone_is_reported(tmp_path, how, report):
    """Rank 1 fails first; rank 0, in a collective with it, fails because its peer is gone and is
    stopped by torchrun before it reports (a worker reports after REPORT_GRACE_S); torchrun's own
    traceback and exit log are left out. A killed worker, which could say nothing, gets one line."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    # what a SIGKILLed launcher left: its reports' folder, named by its pid, goes at the next launch
    gone = int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout)
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    left = shm / f"deal-ddp-reports-{gone}-abc123"
    left.mkdir()
    env = {**os.environ, "DEAL_DDP_LAUNCHED": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([PY, "-m", "deal.launch", "--standalone", "--nproc-per-node", "2", str(script), how],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert sum("Traceback (most recent call last)" in line for line in lines) == (how == "raise"), done.stderr
    assert lines[-1].removeprefix("[rank1]: ") == report.format(script=script), done.stderr  # torch prefixes a worker's traceback
    assert "[rank0]" not in done.stderr and "ChildFailedError" not in done.stderr
    assert not left.exists()
