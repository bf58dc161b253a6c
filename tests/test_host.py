"""The stage host runs a script as if started directly: argv, cwd, env, streams, exit status."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# these fake stages need no torch: a host that imports nothing starts at once
NO_PRELOAD = {"DEAL_STAGE_HOST_PRELOAD": ""}

SCRIPT = """
import os, sys
sys.path.insert(0, {repo!r})
from stages._shared.host import delegate
delegate(__file__)
print("ran", os.environ.get("DEAL_STAGE_HOST_CHILD", "direct"), sys.argv[1:], os.getcwd(), os.environ.get("MARK"))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def test_host_runs_scripts_with_their_argv_cwd_env_and_status(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT.format(repo=str(REPO)))
    work = tmp_path / "work"
    work.mkdir()
    inner = f"{sys.executable} {script} 3; echo status=$?; {sys.executable} {script} 0"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "host.py"), "bash", "-c", inner],
                          cwd=work, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "MARK": "m1", **NO_PRELOAD})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines == [f"ran 1 ['3'] {work} m1", "status=3", f"ran 1 ['0'] {work} m1"]
    assert done.stderr.count("to stderr") == 2


def test_without_a_host_the_script_runs_itself(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT.format(repo=str(REPO)))
    done = subprocess.run([sys.executable, str(script), "0"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "DEAL_STAGE_HOST": str(tmp_path / "absent.sock")})
    assert done.returncode == 0
    assert done.stdout.startswith("ran direct ['0']")


def test_host_passes_on_the_wrapped_commands_status(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "tools" / "host.py"), "bash", "-c", "exit 7"],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **NO_PRELOAD})
    assert done.returncode == 7


# A worker never outlives its caller (killing dvc must not leave a stage
# rewriting outputs later). The fake dvc starts one fake stage and records
# pids; the stage records its worker's pid, sleeps, then writes its output.
STAGE = """
import os, signal, sys, time
sys.path.insert(0, {repo!r})
from stages._shared.host import delegate
delegate(__file__)
out = sys.argv[1]
if "stubborn" in sys.argv[2:]:  # outlives Ctrl-C unless the host kills it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
with open(out + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(out + ".tmp", out + ".worker")
time.sleep(120)
with open(out, "w") as f:
    f.write("done")
"""

FAKE_DVC = """
import os, signal, subprocess, sys
out = sys.argv[1]
stage = subprocess.Popen([sys.executable, {stage!r}, *sys.argv[1:]])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # as dvc does while a stage runs
with open(out + ".tmp2", "w") as f:
    f.write(f"{{os.getpid()}} {{stage.pid}}")
os.replace(out + ".tmp2", out + ".dvc")
sys.exit(stage.wait() and 1)
"""


def alive(pid: int) -> bool:
    """Running, that is neither gone nor a zombie (init may reap an orphan's zombie late)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until(check, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def pipeline(tmp_path):
    """Start `host.py fake_dvc.py` in its own session; yield (host, pids); kill the whole group after."""
    stage = tmp_path / "stage.py"
    stage.write_text(STAGE.format(repo=str(REPO)))
    fake_dvc = tmp_path / "fake_dvc.py"
    fake_dvc.write_text(FAKE_DVC.format(stage=str(stage)))
    out = tmp_path / "out"
    started = []

    def start(*args: str):
        host = subprocess.Popen([sys.executable, str(REPO / "tools" / "host.py"), sys.executable, str(fake_dvc),
                                 str(out), *args], cwd=tmp_path, start_new_session=True, env={**os.environ, **NO_PRELOAD},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(host)
        assert wait_until(lambda: (tmp_path / "out.worker").exists() or host.poll() is not None, 120), "no worker"
        assert host.poll() is None, host.communicate()[0]
        dvc, client = map(int, (tmp_path / "out.dvc").read_text().split())
        worker = int((tmp_path / "out.worker").read_text())
        assert worker != client and alive(worker) and alive(client)
        return host, dvc, client, worker

    yield start, out
    for host in started:  # the group outlives a killed host (orphans keep its pgid)
        try:
            os.killpg(host.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        host.communicate()


def assert_stage_stopped(out: Path, *pids: int) -> None:
    assert wait_until(lambda: not any(alive(pid) for pid in pids)), [pid for pid in pids if alive(pid)]
    assert not out.exists()  # and being dead it never will be


def test_killing_the_client_kills_its_worker(pipeline):
    start, out = pipeline
    host, dvc, client, worker = start()
    os.kill(client, signal.SIGKILL)
    assert_stage_stopped(out, worker)
    assert host.wait(60) == 1  # the fake dvc saw its stage fail


def test_killing_dvc_kills_its_stages_and_ends_the_host(pipeline):
    start, out = pipeline
    host, dvc, client, worker = start()
    os.kill(dvc, signal.SIGKILL)
    assert host.wait(60) == 128 + signal.SIGKILL  # as a shell reports it
    assert_stage_stopped(out, worker, client)
    assert "stopped 1 stage(s) still running" in host.stdout.read()


def test_sigterm_to_the_host_stops_dvc_and_its_stages(pipeline):
    start, out = pipeline
    host, dvc, client, worker = start()
    host.terminate()
    assert host.wait(60) == 128 + signal.SIGTERM
    assert_stage_stopped(out, worker, client, dvc)


def test_ctrl_c_stops_a_stage_that_ignores_sigint(pipeline):
    start, out = pipeline
    host, dvc, client, worker = start("stubborn")
    os.killpg(host.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    assert host.wait(60) == 1  # the fake dvc's, whose stage died of KeyboardInterrupt
    assert_stage_stopped(out, worker, client, dvc)


def test_a_dead_host_takes_its_workers_along(pipeline):
    start, out = pipeline
    host, dvc, client, worker = start()
    os.kill(host.pid, signal.SIGKILL)
    host.wait(60)
    assert_stage_stopped(out, worker)
    assert wait_until(lambda: not alive(client))  # it got EOF instead of a status
    assert wait_until(lambda: not alive(dvc))


def test_usage_without_a_command():
    host = [sys.executable, str(REPO / "tools" / "host.py")]
    done = subprocess.run(host, capture_output=True, text=True)
    assert done.returncode == 2 and "python tools/host.py dvc repro" in done.stderr and not done.stdout
    for flag in ("-h", "--help"):
        done = subprocess.run([*host, flag], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.startswith("usage: python tools/host.py COMMAND")


PROBE = """
import sys
project = sorted(m for m in sys.modules if m.split(".")[0] in ("deal", "common", "check_params", "host"))
sys.path.insert(0, {repo!r})
from stages._shared.host import delegate
delegate(__file__)
import os
print("child" if os.environ.get("DEAL_STAGE_HOST_CHILD") else "direct", "yaml" in sys.modules, project)
"""


def test_forked_stages_import_the_project_afresh_and_the_host_preloads_only_third_party(tmp_path):
    # `dvc repro` makes the host check params.yaml (importing deal.config) before DVC starts;
    # a forked stage must still find no module of the project loaded: it imports the code DVC hashed.
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE.format(repo=str(REPO)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dvc").write_text(f"#!/bin/sh\nexec {sys.executable} {probe}\n")
    (bin_dir / "dvc").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DEAL_STAGE_HOST_PRELOAD": "yaml"}
    done = subprocess.run([sys.executable, str(REPO / "tools" / "host.py"), "dvc", "repro"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "child True []"
    refused = subprocess.run([sys.executable, str(REPO / "tools" / "host.py"), "true"], cwd=tmp_path, capture_output=True,
                             text=True, env={**env, "DEAL_STAGE_HOST_PRELOAD": "yaml,deal.models"})
    assert refused.returncode != 0 and "a module of this project" in refused.stderr


# A SIGKILLed host (as `make repro` killed) can run no cleanup of its own: whatever it started must still
# stop, and it must leave nothing behind. The fake dvc runs two stages one after the other, as DVC does.
TWO_STAGES = """
import subprocess, sys, time
out = sys.argv[1]
first = subprocess.run([sys.executable, {stage!r}, out + "-1"])
with open(out + ".between", "w") as f:  # DVC's own work between two stages (hashes, lock)
    f.write("x")
time.sleep(2)
subprocess.run([sys.executable, {stage!r}, out + "-2"])
"""


def test_a_killed_host_takes_dvc_along_and_no_later_stage_runs(tmp_path):
    stage = tmp_path / "stage.py"
    stage.write_text(STAGE.format(repo=str(REPO)))
    fake_dvc = tmp_path / "fake_dvc.py"
    fake_dvc.write_text(TWO_STAGES.format(stage=str(stage)))
    out = tmp_path / "out"
    before = set(Path(tempfile.gettempdir()).glob("deal-host-*"))
    host = subprocess.Popen([sys.executable, str(REPO / "tools" / "host.py"), sys.executable, str(fake_dvc), str(out)],
                            cwd=tmp_path, start_new_session=True, env={**os.environ, **NO_PRELOAD},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: (tmp_path / "out-1.worker").exists(), 120), "no first stage"
        worker = int((tmp_path / "out-1.worker").read_text())
        os.kill(host.pid, signal.SIGKILL)  # `make repro` returns 137 here
        host.wait(60)
        # everything it started stops: the worker (PR_SET_PDEATHSIG), its client (EOF), and DVC itself,
        # which would otherwise start the next stage, with no host to stop it
        assert wait_until(lambda: not alive(worker))
        assert not wait_until(lambda: (tmp_path / "out.between").exists(), 5), "dvc went on without its host"
        assert not (tmp_path / "out-2.worker").exists() and not (tmp_path / "out-2").exists()
        # and the host's socket went with it: nothing under the temporary folder
        assert set(Path(tempfile.gettempdir()).glob("deal-host-*")) == before
    finally:
        try:
            os.killpg(host.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_stage_whose_host_died_does_not_run_alone(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT.format(repo=str(REPO)))
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    env = {"PATH": "/usr/bin:/bin", "DEAL_STAGE_HOST": "@deal-host-gone", "DEAL_STAGE_HOST_PID": dead}
    done = subprocess.run([sys.executable, str(script), "0"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "ran" not in done.stdout
    assert done.stderr.strip() == (f"tools/host.py: the stage host (pid {dead}) that started this command is gone; "
                                   "not running stage.py without it (run `make repro` again)")


PEER = """
import os, sys
sys.path.insert(0, {repo!r})
from stages._shared.host import delegate
delegate(__file__)
print("ran", os.environ.get("DEAL_STAGE_HOST_CHILD", "direct"), os.getuid())
"""


@pytest.mark.skipif(os.getuid() != 0, reason="connecting as another user needs root")
def test_the_host_serves_only_its_own_user():
    """Its socket is in the abstract namespace, which has no file permissions: any local user can connect,
    and the host, which would run the stage as its own user, serves only its own (SO_PEERCRED)."""
    folder = Path(tempfile.mkdtemp(prefix="deal-peer-"))
    try:
        folder.chmod(0o755)
        script = folder / "stage.py"
        script.write_text(PEER.format(repo=str(REPO)))
        script.chmod(0o644)
        name = folder / "name"
        host = subprocess.Popen([sys.executable, str(REPO / "tools" / "host.py"), "bash", "-c",
                                 f"echo $DEAL_STAGE_HOST > {name}; sleep 60"], start_new_session=True,
                                env={**os.environ, **NO_PRELOAD})
        try:
            assert wait_until(lambda: name.exists() and name.read_text().strip(), 60)
            env = {"PATH": "/usr/bin:/bin", "DEAL_STAGE_HOST": name.read_text().strip()}
            mine = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, env=env)
            assert mine.stdout.strip() == "ran 1 0", mine.stderr  # forked by the host
            # the stage's client needs the standard library alone: the system's python, which any user may run
            other_python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
            try:
                other = subprocess.run([other_python, str(script)], cwd=folder, capture_output=True, text=True,
                                       env=env, user=65534, group=65534)
            except PermissionError as exc:
                pytest.skip(f"user 65534 cannot run a python here ({exc})")
            if "Permission denied" in other.stderr:
                pytest.skip(f"user 65534 cannot read the stage script: {other.stderr.strip()[:200]}")
            assert other.returncode == 1 and "ran" not in other.stdout
            assert "the stage host stopped or died before the stage finished" in other.stderr
        finally:
            os.killpg(host.pid, signal.SIGKILL)
            host.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
