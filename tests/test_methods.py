"""The method table (deal.methods) is the one definition: params, scorers, figures and
the stage files agree with it, and `make methods` writes params.yaml's lists from it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deal.config import ParamsError, check_params, parse_params
from deal.methods import BASELINES, DEAL, METHODS, split_lists

REPO = Path(__file__).resolve().parents[1]
PARAMS = parse_params((REPO / "params.yaml").read_text())


def test_params_lists_are_the_tables_split_of_methods():
    assert {k: PARAMS[k] for k in ("baselines", "deal_methods")} == split_lists(PARAMS["methods"])
    assert split_lists(list(METHODS)) == {"baselines": list(BASELINES), "deal_methods": list(DEAL)}
    # every method of the table can be listed: params.yaml carries its options, and they validate
    assert set(PARAMS["method_cfg"]) == set(METHODS) == set(PARAMS["method_train"])
    every = {**PARAMS, "methods": list(METHODS), **split_lists(list(METHODS)), "baseline_ref": "random"}
    check_params(every, root=str(REPO))


def test_a_list_that_disagrees_with_the_table_names_the_fix():
    wrong = {**PARAMS, "methods": ["random", "entropy", "deal_de"], "baselines": ["random"], "deal_methods": ["deal_de"]}
    with pytest.raises(ParamsError) as caught:
        check_params(wrong, root=str(REPO))
    assert caught.value.lines == ["params.yaml: baselines: must list the other methods of `methods` in order: "
                                  "['random', 'entropy'] (`make methods` writes it)"]


def test_scorers_figures_and_stage_files_follow_the_table():
    from deal.acquisition import get_strategy
    from deal.acquisition.base import Heuristic
    from deal.figures import colour, label

    for name, spec in METHODS.items():
        if spec.scorer is not None:
            scorer = get_strategy(name)
            assert scorer.name == name
            assert isinstance(scorer, Heuristic) == (spec.scores_from == "output")
            assert getattr(scorer, "needs_difficulty", False) == spec.difficulty
        assert label(name) == spec.label and colour(name) == spec.colour
    # one colour and one label per method, in every figure
    assert len({m.colour for m in METHODS.values()}) == len({m.label for m in METHODS.values()}) == len(METHODS)
    # the DEAL-only stages iterate over deal_methods, the baselines' score stage over baselines
    for kind, listed in (("errors", "deal_methods"), ("difficulty", "deal_methods"), ("score_deal", "deal_methods"),
                         ("analyze", "deal_methods"), ("score", "baselines"), ("train", "methods")):
        stage = yaml.safe_load((REPO / "rounds" / kind / "dvc.yaml").read_text())["stages"][kind]
        assert stage["matrix"]["m"] == f"${{{listed}}}", kind


def test_presets_write_the_split_from_methods(tmp_path):
    for preset in sorted((REPO / "presets").glob("*.yaml")):
        raw = yaml.safe_load(preset.read_text()) or {}
        assert "baselines" not in raw and "deal_methods" not in raw, f"{preset.name}: methods alone; the split is derived"
    out = tmp_path / "params.yaml"
    done = subprocess.run([sys.executable, "tools/preset.py", "presets/camvid.yaml", "--data", str(tmp_path), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = yaml.safe_load(out.read_text())
    assert written["methods"] == ["random", "entropy", "qbc", "coreset", "vaal", "deal_ds", "deal_de"]
    assert (written["baselines"], written["deal_methods"]) == (["random", "entropy", "qbc", "coreset", "vaal"], ["deal_ds", "deal_de"])


def test_make_methods_rewrites_the_two_lines_in_place_and_check_refuses_a_mismatch(tmp_path):
    original = (REPO / "params.yaml").read_text()
    edited = original.replace("methods: [random, deal_ds, deal_de]", "methods: [random, entropy, deal_de, qbc]")
    assert edited != original
    path = tmp_path / "params.yaml"
    path.write_text(edited)
    script = [sys.executable, str(REPO / "tools/methods.py"), "--params", str(path)]
    check = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "run `make methods`" in check.stderr and path.read_text() == edited
    done = subprocess.run(script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = path.read_text()
    lines = dict(zip(original.splitlines(), text.splitlines()))
    changed = {a: b for a, b in lines.items() if a != b}
    # only the three list lines differ; every comment and every other line is kept
    assert len(text.splitlines()) == len(original.splitlines()) and len(changed) == 3
    params = parse_params(text)
    assert (params["baselines"], params["deal_methods"]) == (["random", "entropy", "qbc"], ["deal_de"])
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0
    listed = subprocess.run([*script, "--list"], capture_output=True, text=True)
    assert listed.returncode == 0 and all(name in listed.stdout for name in METHODS)
