"""Params validation: every problem is one line naming the param and the fix."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deal.config import ParamsError, check_params, schedule

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def problems(change, train_size=None, root=str(REPO)):
    params = copy.deepcopy(PARAMS)
    change(params)
    with pytest.raises(ParamsError) as info:
        check_params(params, train_size=train_size, root=root)
    return info.value.lines


def test_the_repository_params_are_valid():
    check_params(PARAMS, train_size=PARAMS["dataset"]["synthetic"]["train"])
    assert schedule(PARAMS, 400) == [40, 60, 80, 100, 120, 140, 160]


def test_percent_budgets_follow_the_train_split():
    params = copy.deepcopy(PARAMS)
    params["budget"] = {"initial": "10%", "batch": "5%"}
    assert schedule(params, 367) == [37, 55, 73, 91, 109, 127, 145]


def test_unknown_method_and_dataset_are_named():
    def change(p):
        p["methods"] = ["random", "vaal_typo"]
        p["dataset"]["kind"] = "kitti"

    lines = problems(change)
    assert any(l.startswith("params.yaml: methods: unknown method 'vaal_typo'") for l in lines)
    assert any(l.startswith("params.yaml: dataset.kind: unknown dataset 'kitti'") for l in lines)
    assert all("\n" not in l for l in lines)


def test_missing_data_path_is_named():
    def change(p):
        p["dataset"].update(kind="camvid", path="/nonexistent/CamVid")

    (line,) = problems(change)
    assert line.startswith("params.yaml: dataset.path: '/nonexistent/CamVid' is not a folder")

    def no_path(p):
        p["dataset"].update(kind="cityscapes", path=None)

    (line,) = problems(no_path)
    assert "dataset.path" in line and "set dataset.path" in line


def test_rounds_that_do_not_chain_are_named():
    def broken_step(p):
        p["steps"][2] = {"cur": "r2", "next": "r4"}

    (line,) = problems(broken_step)
    assert line.startswith("params.yaml: steps[2]:") and "'next': 'r3'" in line

    def missing_step(p):
        p["rounds"].append({"id": "r7"})

    (line,) = problems(missing_step)
    assert line.startswith("params.yaml: steps: 6 steps for 8 rounds")

    def repeated(p):
        p["rounds"][3] = {"id": "r1"}

    assert problems(repeated)[0].startswith("params.yaml: rounds: round ids repeat")


def test_a_batch_larger_than_the_unlabeled_pool_is_named():
    def big(p):
        p["budget"]["batch"] = 70

    (line,) = problems(big, train_size=400)
    assert line.startswith("params.yaml: budget: 7 rounds need 460 labeled images but the train split has 400")

    def rho(p):
        p["rounds"], p["steps"] = p["rounds"][:3], p["steps"][:2]
        p["budget"] = {"initial": 40, "batch": 55}
        p["method_cfg"]["entropy"]["rho"] = 0.1

    lines = problems(rho, train_size=400)
    assert lines == [
        "params.yaml: budget.batch: 55 is larger than the 36 images method entropy scores after r0 "
        "(rho 0.1 of 360 unlabeled); lower the batch or raise method_cfg.entropy.rho"
    ]


def test_method_lists_must_agree():
    def change(p):
        p["deal_methods"] = ["deal_de"]

    (line,) = problems(change)
    assert line.startswith("params.yaml: deal_methods: must list the DEAL methods")


def test_training_options_are_checked_per_method():
    def change(p):
        p["methods"] = ["random", "learning_loss", "deal_ds", "deal_de"]
        p["baselines"] = ["random", "learning_loss"]
        del p["method_train"]["random"]
        p["method_train"]["learning_loss"].update(hidden=0, detach_after=1.5)

    lines = problems(change)
    assert lines == [
        "params.yaml: method_train.random: missing; add `random: {}` (the shared recipe) or its options",
        "params.yaml: method_train.learning_loss.hidden: 0; the loss module's width is a positive int (paper: 128)",
        "params.yaml: method_train.learning_loss.detach_after: 1.5; the fraction of epochs before the features are "
        "detached, in [0, 1] (paper: 0.6), or null for never",
    ]


def test_learning_loss_is_a_pipeline_method():
    params = copy.deepcopy(PARAMS)
    params["methods"] = ["random", "learning_loss", "deal_de"]
    params["baselines"] = ["random", "learning_loss"]
    params["deal_methods"] = ["deal_de"]
    check_params(params, train_size=400)


def test_a_stage_with_bad_params_exits_with_the_lines_and_writes_nothing(tmp_path):
    params = copy.deepcopy(PARAMS)
    params["methods"] = ["random", "entropy", "deal_ds", "deal_de", "qbc_typo"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py")], cwd=tmp_path,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: params.yaml: methods: unknown method 'qbc_typo'; use any of random, entropy, margin, "
        "least_confidence, qbc, qbc_bald, coreset, vaal, learning_loss, deal_ds, deal_de"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
