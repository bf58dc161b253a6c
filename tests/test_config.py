"""Params validation: every problem is one line naming the param and the fix."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deal.config import ParamsError, check_params, schedule

REPO = Path(__file__).resolve().parents[1]
REPO_PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# the cases below edit the defaults widened to the presets' 7 rounds and four methods
PARAMS = {**copy.deepcopy(REPO_PARAMS), "methods": ["random", "entropy", "deal_ds", "deal_de"],
          "baselines": ["random", "entropy"], "rounds": [{"id": f"r{i}"} for i in range(7)],
          "steps": [{"cur": f"r{i}", "next": f"r{i + 1}"} for i in range(6)]}


def problems(change, train_size=None, root=str(REPO)):
    params = copy.deepcopy(PARAMS)
    change(params)
    with pytest.raises(ParamsError) as info:
        check_params(params, train_size=train_size, root=root)
    return info.value.lines


def test_the_repository_params_are_valid():
    check_params(REPO_PARAMS, train_size=REPO_PARAMS["dataset"]["synthetic"]["train"])
    assert schedule(REPO_PARAMS, 400) == [40, 60, 80, 100, 120]
    check_params(PARAMS, train_size=400)
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
    done = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--out", "data/prepared"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: params.yaml: methods: unknown method 'qbc_typo'; use any of random, entropy, margin, "
        "least_confidence, qbc, qbc_bald, coreset, vaal, learning_loss, deal_ds, deal_de"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def _leaves(node, prefix=()):
    """Every key path of `node`, list entries (rounds, steps, sizes) included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, prefix + (i,))
    yield prefix


@pytest.mark.parametrize("junk", [None, "x", -1, 0.5, True, [], {}, [1, 2, 3]], ids=repr)
def test_any_junk_in_any_param_is_a_line_never_a_crash(junk):
    """Every key and list entry of params.yaml (sections too) set to junk: one-line problems, or valid."""
    for path in _leaves(PARAMS):
        if not path:
            continue
        params = copy.deepcopy(PARAMS)
        node = params
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = copy.deepcopy(junk)
        try:
            check_params(params, train_size=400)
        except ParamsError as exc:
            assert exc.lines and all(line.startswith("params.yaml: ") and "\n" not in line for line in exc.lines), path


def test_unknown_keys_are_named_with_the_nearest_valid_one():
    def typos(p):
        p["train"]["epoch"] = 3
        p["dataset"]["synthetic"]["trian"] = 10
        p["method_cfg"]["deal_de"]["kk"] = 4
        p["method_cfg"]["entropyy"] = {"rho": 0.5}
        p["method_train"]["random"]["lr"] = 0.1
        p["rounds"][2]["idd"] = "x"
        p["methds"] = []

    assert problems(typos) == [
        "params.yaml: methds: unknown key; did you mean 'methods'?",
        "params.yaml: dataset.synthetic.trian: unknown key; did you mean 'train'?",
        "params.yaml: train.epoch: unknown key; did you mean 'epochs'?",
        "params.yaml: method_cfg.entropyy: unknown key; did you mean 'entropy'?",
        "params.yaml: method_train.random.lr: unknown key; random trains with the shared recipe and takes no options "
        "(set them in train:, or write `random: {}`)",
        "params.yaml: method_cfg.deal_de.kk: unknown key; did you mean 'k'?",
        "params.yaml: rounds[2].idd: unknown key; did you mean 'id'?",
    ]


def test_values_are_checked_for_type_and_range():
    def bad(p):
        p["train"].update(epochs=-2, batch_size=0, device="tpu", lr="fast", momentum=1.0, flip="yes", iterations=0)
        p["seeds"] = "zero"
        p["model"]["width_mult"] = 0
        p["method_cfg"]["qbc"]["passes"] = 0

    assert problems(bad) == [
        "params.yaml: seeds: 'zero'; a list of ints in [0, 2147483647], e.g. [0] or [0, 1, 2, 3, 4] (each seed draws its own "
        "initial pool and trains its own round-0 models)",
        "params.yaml: model.width_mult: 0; a number > 0",
        "params.yaml: train.epochs: -2; an int >= 1 (passes over the labeled pool a round)",
        "params.yaml: train.iterations: 0; an int >= 1, or null",
        "params.yaml: train.batch_size: 0; an int >= 1",
        "params.yaml: train.lr: 'fast'; a number > 0",
        "params.yaml: train.momentum: 1.0; a number in [0, 1)",
        "params.yaml: train.flip: 'yes'; true or false",
        "params.yaml: train.device: 'tpu'; auto (CUDA when present), cpu, cuda or cuda:N",
        "params.yaml: method_cfg.qbc.passes: 0; an int >= 1",
    ]


def test_budgets_are_checked_before_the_data_exists():
    (line,) = problems(lambda p: p["budget"].update(initial="150%"))
    assert line == ("params.yaml: budget.initial: '150%' is more than the whole train split; "
                    "a percent of the train split is in (0, 100]")
    # the embedded generator's train split is known from its params
    (line,) = problems(lambda p: p["budget"].update(initial=401))
    assert line == "params.yaml: budget.initial: 401 is more than the 400 images of the train split; lower it"
    (line,) = problems(lambda p: p["budget"].update(batch="0.1%"), train_size=400)
    assert line == "params.yaml: budget.batch: '0.1%' of the 400 train images is 0 images; raise it"


@pytest.mark.parametrize("round_id", ["r1$(touch PWNED)", "../../../../tmp/x", "r 1", "r1;ls", "", 1, None])
def test_round_ids_that_could_reach_a_shell_or_a_path_are_refused(round_id):
    def change(p):
        p["rounds"][1]["id"] = round_id
        p["steps"][0]["next"] = p["steps"][1]["cur"] = round_id

    assert problems(change)[0].startswith(f"params.yaml: rounds[1].id: {round_id!r}; a round id is letters, digits, _ and -")


def test_weights_must_live_where_dvc_sees_them(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "mnv2.pth").write_bytes(b"x")

    def outside(p):
        p["model"].update(pretrained="/data/mnv2.pth", width_mult=1.0)

    (line,) = problems(outside, root=str(tmp_path))
    assert line.startswith("params.yaml: model.pretrained: '/data/mnv2.pth' is outside weights/")
    assert "dvc add weights/mnv2.pth" in line
    params = copy.deepcopy(PARAMS)
    params["model"].update(pretrained="weights/mnv2.pth", width_mult=1.0)
    check_params(params, root=str(tmp_path))
    (line,) = problems(lambda p: p["model"].update(pretrained="weights/mnv2.pth"), root=str(tmp_path))
    assert line.startswith("params.yaml: model.width_mult: 0.35; ImageNet weights")


def test_the_validator_knows_the_libraries_choices():
    from deal.acquisition import coreset, qbc
    from deal.methods import CORESET_METRICS, QBC_RESOLUTIONS, QBC_STRATEGIES

    assert (QBC_STRATEGIES, QBC_RESOLUTIONS, CORESET_METRICS) == (qbc.STRATEGIES, qbc.RESOLUTIONS, coreset.METRICS)


def test_seeds_baseline_and_nesterov_are_checked():
    def old_seed(p):
        p["seed"] = 1
    assert problems(old_seed) == ["params.yaml: seed: unknown key; did you mean 'seeds'?"]
    assert problems(lambda p: p.update(seeds=[]))[0].startswith("params.yaml: seeds: []; a list of ints in [0, 2147483647]")
    assert problems(lambda p: p.update(seeds=[0, True]))[0].startswith("params.yaml: seeds: [0, true]; a list of ints")
    assert problems(lambda p: p.update(baseline_ref="qbc")) == [
        "params.yaml: baseline_ref: 'qbc'; the method every other one is compared with, paired by seed: "
        "one of methods (random, entropy, deal_ds, deal_de), or null for no comparison"]
    valid = copy.deepcopy(PARAMS)
    valid["baseline_ref"] = None
    check_params(valid, root=str(REPO))
    assert problems(lambda p: p["train"].update(momentum=0)) == [
        "params.yaml: train.nesterov: true needs momentum > 0 (train.momentum is 0); set train.nesterov: false or a momentum"]
    valid["train"].update(momentum=0, nesterov=False)
    check_params(valid, root=str(REPO))


def test_round_0_models_follow_the_method_table():
    from deal.config import initial_model

    params = copy.deepcopy(PARAMS)
    assert [initial_model(params, m) for m in ("random", "qbc", "deal_ds", "learning_loss")] == [
        "segmentation", "segmentation", "joint", None]
    params["deal"]["mode"] = "decoupled"
    assert initial_model(params, "deal_de") == "segmentation"


def test_the_oracle_and_its_task_export_are_checked(tmp_path):
    def human(p, **changes):
        p.update(oracle="human", export=["label_studio"])
        p["dataset"].update(kind="folder", path=str(tmp_path))
        p.update(changes)

    params = copy.deepcopy(PARAMS)
    human(params)
    check_params(params, train_size=400)
    assert problems(lambda p: p.update(oracle="person")) == [
        "params.yaml: oracle: 'person'; simulated (the dataset's masks answer) or human "
        "(a person writes the picks' masks into labels/masks/)"]
    assert problems(lambda p: p.update(export=["cvat", "label_studio", "label_studio"])) == [
        "params.yaml: export: unknown format 'cvat'; one of label_studio",
        "params.yaml: export: a format is listed twice; list each once"]
    found = problems(lambda p: p.update(oracle="human"))  # the embedded scenes, no export
    assert found[0].startswith("params.yaml: oracle: human needs your own images (dataset.kind: folder")
    assert found[1] == "params.yaml: export: [] with oracle: human; the person needs the picks: export: [label_studio]"
    found = problems(lambda p: (human(p), p["reference"].update(train=True)))
    assert found == ["params.yaml: reference.train: true trains on every train image, but with oracle: human the pool "
                     "has no masks; set reference.train: false"]


@pytest.mark.parametrize("recipe", sorted((REPO / "studies").glob("*/recipe.yaml")), ids=lambda p: p.parent.name)
def test_every_committed_study_recipe_is_valid_params(recipe, tmp_path):
    """A study continues in a later session (`study.py run --seeds 3`): its recipe must still be
    params the current code accepts, with the data path of the machine it runs on."""
    from deal.config import parse_params

    params = parse_params(recipe.read_text())
    params["seeds"] = [0]  # a recipe holds everything but the seeds and the data's path (tools/study.py)
    params["dataset"]["path"] = "data/synthetic" if params["dataset"]["kind"] == "synthetic" else str(tmp_path)
    check_params(params)
