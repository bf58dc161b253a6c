"""Every preset merges over the defaults into params the pipeline accepts."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "presets").glob("*.yaml"))


def test_there_are_presets_for_both_datasets():
    assert {p.stem for p in PRESETS} >= {"camvid", "camvid-cpu", "cityscapes"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_writes_valid_params(preset, tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    data = tmp_path / "camvid"  # not ./data: that is where the pipeline writes (dataset.path may not overlap it)
    data.mkdir()
    done = subprocess.run([sys.executable, str(REPO / "tools" / "preset.py"), str(preset), "--data", str(data)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["dataset"]["path"] == str(data)
    assert params["dataset"]["kind"] == yaml.safe_load(preset.read_text())["dataset"]["kind"]
    assert (tmp_path / "params.yaml.bak").read_text() == (REPO / "params.yaml").read_text()
    # the values are written in place: every comment of the defaults stays, and a line the preset
    # leaves alone is the same line (with its comment) as in the defaults
    written = (tmp_path / "params.yaml").read_text().splitlines()
    defaults = (REPO / "params.yaml").read_text().splitlines()
    comments = [line for line in defaults if line.lstrip().startswith("#")]
    assert [line for line in written[1:] if line.lstrip().startswith("#")] == comments
    assert "  seed: 0                     # the embedded scenes and the Cityscapes hold-out (the data, not the AL seeds)" in written
    trailing = [line.split("#", 1)[1] for line in defaults if "#" in line and not line.lstrip().startswith("#")]
    assert [line.split("#", 1)[1] for line in written[1:] if "#" in line and not line.lstrip().startswith("#")] == trailing
    again = subprocess.run([sys.executable, str(REPO / "tools" / "preset.py"), str(preset)],
                           cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 1 and "already written from a preset" in again.stderr


def test_a_preset_without_its_data_path_is_refused(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "preset.py"), str(REPO / "presets" / "camvid.yaml")],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1
    assert "dataset.path" in done.stderr
    assert (tmp_path / "params.yaml").read_text() == (REPO / "params.yaml").read_text()


def test_set_overrides_one_param_and_refuses_unknown_keys(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    data = tmp_path / "CamVid"
    data.mkdir()
    script = [sys.executable, str(REPO / "tools" / "preset.py"), str(REPO / "presets" / "camvid-cpu.yaml"),
              "--data", str(data)]
    bad = subprocess.run([*script, "--set", "dataset.test_splitt=val"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: --set dataset.test_splitt=val: not KEY=VALUE")
    assert not (tmp_path / "params.yaml.bak").exists()
    done = subprocess.run([*script, "--set", "dataset.test_split=val", "--set", "train.epochs=3"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["dataset"]["test_split"] == "val" and params["train"]["epochs"] == 3


@pytest.mark.parametrize("preset", ["", "nope"])
def test_make_preset_without_a_known_preset_names_them_before_doing_anything(preset):
    before = (REPO / "params.yaml").read_bytes()
    done = subprocess.run(["make", "-C", str(REPO), "preset", f"PRESET={preset}"], capture_output=True, text=True)
    assert done.returncode != 0
    assert f"PRESET='{preset}': give one of " in done.stderr and "camvid-cpu" in done.stderr
    assert "preset.py" not in done.stdout  # stopped while make read the Makefile: nothing ran
    assert (REPO / "params.yaml").read_bytes() == before
