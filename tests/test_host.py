"""The stage host runs a script as if started directly: argv, cwd, env, streams, exit status."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import os, sys
sys.path.insert(0, {stages!r})
from host import delegate
delegate(__file__)
print("ran", os.environ.get("DEAL_STAGE_HOST_CHILD", "direct"), sys.argv[1:], os.getcwd(), os.environ.get("MARK"))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def test_host_runs_scripts_with_their_argv_cwd_env_and_status(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT.format(stages=str(REPO / "stages")))
    work = tmp_path / "work"
    work.mkdir()
    inner = f"{sys.executable} {script} 3; echo status=$?; {sys.executable} {script} 0"
    done = subprocess.run([sys.executable, str(REPO / "stages" / "host.py"), "bash", "-c", inner],
                          cwd=work, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "MARK": "m1"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines == [f"ran 1 ['3'] {work} m1", "status=3", f"ran 1 ['0'] {work} m1"]
    assert done.stderr.count("to stderr") == 2


def test_without_a_host_the_script_runs_itself(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT.format(stages=str(REPO / "stages")))
    done = subprocess.run([sys.executable, str(script), "0"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "DEAL_STAGE_HOST": str(tmp_path / "absent.sock")})
    assert done.returncode == 0
    assert done.stdout.startswith("ran direct ['0']")


def test_host_passes_on_the_wrapped_commands_status(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "stages" / "host.py"), "bash", "-c", "exit 7"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 7
