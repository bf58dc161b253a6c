"""params.yaml is read as DVC reads it, and every param is one DVC's run-cache and lock can see (#26)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from deal import config, limits
from deal.config import ParamsReadError, parse_params
from deal.methods import METHODS

REPO = Path(__file__).resolve().parents[1]

# scalars that YAML 1.1 (PyYAML) and YAML 1.2 (ruamel, DVC) read differently, and some they agree on
SCALARS = ["010", "08", "0o10", "0x10", "1:20", "1_000", "on", "off", "yes", "no", "y", "On", "TRUE", "1e3", "1e-3",
           ".5", "+1", ".inf", "-.inf", "~", "null", "2001-01-01", "0.1", "1.0e+3", "'010'", "[010, on]"]


def test_params_are_read_exactly_as_dvc_reads_them():
    from dvc.utils.serialize import parse_yaml

    text = "".join(f"k{i}: {value}\n" for i, value in enumerate(SCALARS))
    assert parse_params(text) == parse_yaml(text, "params.yaml")
    ours = parse_params(text)
    assert ours["k0"] == 10 and ours["k4"] == "1:20" and ours["k6"] == "on"  # PyYAML: 8, 4800, True
    assert yaml.safe_load(text)["k0"] == 8  # the reader this replaced


def test_a_duplicate_key_is_one_line_naming_it():
    with pytest.raises(ParamsReadError) as exc:
        parse_params("train:\n  lr: 0.01\n  epochs: 3\n  lr: 0.02\n")
    assert str(exc.value).startswith('line 4: found duplicate key "lr"') and "\n" not in str(exc.value)


def test_an_alias_bomb_is_refused_at_once():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 20)]  # 10**20 values expanded
    start = time.monotonic()
    with pytest.raises(ParamsReadError) as exc:
        parse_params("\n".join(lines) + "\n")
    assert time.monotonic() - start < 5
    assert "once its YAML aliases (*name) are expanded" in str(exc.value)
    with pytest.raises(ParamsReadError, match="contains itself"):
        parse_params("a: &a [1, *a]\n")
    assert parse_params("a: &a [1, 2]\nb: *a\n") == {"a": [1, 2], "b": [1, 2]}  # a small alias is fine


def _keys(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{prefix}{key}"
            yield from _keys(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value, prefix)


def test_no_param_is_named_as_a_key_dvc_leaves_out_of_its_run_cache():
    """DVC's run-cache key drops every key named `size` or `nfiles`, at any depth, params included: a param so
    named would let DVC restore a run made with another value (dataset.size did)."""
    from dvc.stage.cache import _get_cache_hash
    from dvc_data.hashfile.meta import Meta

    assert set(config.DVC_HIDDEN_KEYS) == {Meta.PARAM_SIZE, Meta.PARAM_NFILES}
    entry = {"cmd": "c", "params": {"params.yaml": {"dataset": {"size": [32, 32]}}}}
    assert _get_cache_hash(entry) == _get_cache_hash({**entry, "params": {"params.yaml": {"dataset": {"size": [48, 48]}}}})
    entry = {"cmd": "c", "params": {"params.yaml": {"dataset": {"resize": [32, 32]}}}}
    assert _get_cache_hash(entry) != _get_cache_hash({**entry, "params": {"params.yaml": {"dataset": {"resize": [48, 48]}}}})

    names = set(_keys(config.SECTIONS)) | set(_keys(limits.SCHEMA)) | set(config.TOP_LEVEL)
    for method in METHODS.values():
        names |= set(method.options) | set(method.train_options)
    for path in [REPO / "params.yaml", *sorted((REPO / "presets").glob("*.yaml")),
                 *sorted((REPO / "studies").glob("*/recipe.yaml"))]:
        names |= set(_keys(parse_params(path.read_text())))
    hidden = sorted(n for n in names if n.rsplit(".", 1)[-1] in config.DVC_HIDDEN_KEYS)
    assert hidden == []


def test_an_old_params_file_is_told_the_new_name():
    params = parse_params((REPO / "params.yaml").read_text())
    params["dataset"]["size"] = params["dataset"].pop("resize")
    with pytest.raises(config.ParamsError) as exc:
        config.check_params(params)
    assert "params.yaml: dataset.size: unknown key; did you mean 'resize'?" in exc.value.lines


@pytest.mark.parametrize("shape", [dict(), dict(seeds=[0, 1, 2], export=["label_studio"]),
                                   dict(methods=["random", "entropy", "qbc", "deal_ds", "deal_de"], rounds=3)])
def test_the_stage_count_is_the_one_dvc_resolves(tmp_path, shape):
    from dvc.repo import Repo

    from deal.methods import split_lists
    from pipeline_utils import copy_repo

    root = copy_repo(tmp_path / "repo")
    params = parse_params((root / "params.yaml").read_text())
    params.update({k: v for k, v in shape.items() if k != "rounds"})
    params.update(split_lists(params["methods"]))
    if "rounds" in shape:
        params["rounds"] = [{"id": f"r{i}"} for i in range(shape["rounds"])]
        params["steps"] = [{"cur": f"r{i}", "next": f"r{i + 1}"} for i in range(shape["rounds"] - 1)]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with Repo(str(root)) as repo:
        resolved = len(repo.index.stages)
    assert limits.stage_count(params) == resolved


@pytest.mark.parametrize("cut", ["empty", "mid-key"])
def test_check_params_reports_a_truncated_lock_with_its_fix(tmp_path, cut):
    """DVC rewrites a lock in place: killed while it writes, the lock is empty (just opened) or cut short."""
    from pipeline_utils import copy_repo

    root = copy_repo(tmp_path / "repo")
    lock = root / "rounds" / "train" / "dvc.lock"
    text = (REPO / "rounds" / "train" / "dvc.lock").read_text()
    lock.write_text("" if cut == "empty" else text[: text.index("    cmd") + len("    cmd")])
    done = subprocess.run([sys.executable, "tools/check_params.py"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: rounds/train/dvc.lock: not ") and "(DVC was killed while it wrote it)" in line
    assert line.endswith("restore it: git checkout rounds/train/dvc.lock (or delete it: its stages rerun), or run "
                         "`make repro`, which restores it")
    # by hand, after a plain dvc: tools/repair.py says so, then repairs it (git has no copy here: removed)
    done = subprocess.run([sys.executable, "tools/repair.py", "--check"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout.startswith("rounds/train/dvc.lock: not ") and lock.exists()
    done = subprocess.run([sys.executable, "tools/repair.py"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and "removed" in done.stdout and not lock.exists()
    done = subprocess.run([sys.executable, "tools/repair.py", "--check"], cwd=root, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "")


def test_every_output_a_stage_declares_is_a_path_its_command_writes(tmp_path):
    """The commands name their paths as templates, the stage files' outs with ${item...}: filled in from the
    stage's identity (as the stage fills them from $DVC_STAGE), every out is a path its command is given."""
    import shlex

    from dvc.repo import Repo

    from pipeline_utils import copy_repo

    from stages._shared.stage import stage_identity

    root = copy_repo(tmp_path / "repo")
    params = parse_params((root / "params.yaml").read_text())
    params.update(export=["label_studio"], seeds=[0, 3])  # every kind of stage, two seeds
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    checked = 0
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            if "@" not in stage.name:
                continue
            kind = stage.name.split("@")[0]
            _, identity = stage_identity(params, (kind,), stage.name)
            given = {word.format(**identity) for word in shlex.split(stage.cmd)}
            for out in stage.outs:
                assert out.def_path in given, (stage.name, out.def_path, stage.cmd)
                checked += 1
    assert checked > 200
