"""tools/study.py: a study's per-seed files in, its recipe guarded, its tables from the files alone."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # the real dvc repro end to end: `make test-fast` leaves them out

REPO = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")


def _study(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "study.py"), *args], cwd=root,
                          capture_output=True, text=True)


def _curves(seeds, methods, rounds) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["seed", "method", "round", "labeled", "percent_labeled", "miou", "pixel_accuracy"])
    for s in seeds:
        for i, m in enumerate(methods):
            for k, r in enumerate(rounds):
                writer.writerow([s, m, r, 40 + 20 * k, 10 + 5 * k, f"{0.2 + 0.01 * k + 0.003 * i + 0.002 * s:.6f}", "0.8"])
    return out.getvalue()


# a stand-in for the pipeline: its report copies curves_src.csv to metrics/curves.csv, reading the
# params a study's seed changes, so `dvc status` tells a current curves.csv from a stale one
PIPELINE = {"stages": {"report": {
    "cmd": f"{sys.executable} -c \"import shutil; shutil.copy('curves_src.csv', 'metrics/curves.csv')\"",
    "deps": ["curves_src.csv"], "params": ["seeds", "train.lr"], "outs": [{"metrics/curves.csv": {"cache": False}}]}}}


def _produce(root: Path, curves: str) -> None:
    (root / "curves_src.csv").write_text(curves)
    done = subprocess.run([DVC, "repro", "-q"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_collect_keeps_each_seed_guards_the_recipe_and_assemble_reads_the_files(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    methods, rounds = params["methods"], [r["id"] for r in params["rounds"]]
    params["seeds"] = [0, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "metrics").mkdir()
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    _produce(tmp_path, _curves([0, 1], methods, rounds))
    done = _study(tmp_path, "collect", "studies/x")
    assert done.returncode == 0, done.stderr
    study = tmp_path / "studies" / "x"
    assert {p.name for p in study.iterdir()} >= {"recipe.yaml", "seed0.csv", "seed1.csv", "seeds.json", "summary.csv",
                                                  "paired.csv", "report.md", "curves.png"}
    assert "seeds" not in yaml.safe_load((study / "recipe.yaml").read_text())
    rows = list(csv.DictReader((study / "summary.csv").open()))
    assert {r["n"] for r in rows} == {"2"}
    # a later session: another seed of the same recipe joins; other params are refused
    params["seeds"] = [2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _produce(tmp_path, _curves([2], methods, rounds))
    # ... but not from a machine that ran it in another precision, unless asked to (--mixed)
    manifest = (study / "seeds.json").read_text()
    ran_here = json.loads(manifest)["0"]["precision"]
    (study / "seeds.json").write_text(manifest.replace(f'"precision": "{ran_here}"', '"precision": "fp16"'))
    mixed = _study(tmp_path, "collect", "studies/x")
    assert mixed.returncode == 1 and mixed.stderr.startswith(
        f"error: studies/x/seeds.json: the study's other seeds ran in cpu fp16, this run in cpu {ran_here};")
    assert not (study / "seed2.csv").exists()
    assert _study(tmp_path, "collect", "studies/x", "--mixed").returncode == 0
    assert "(fp16)" in (study / "report.md").read_text()
    (study / "seeds.json").write_text(manifest)
    assert _study(tmp_path, "collect", "studies/x").returncode == 0
    assert {r["n"] for r in csv.DictReader((study / "summary.csv").open())} == {"3"}
    # the same numbers again keep the seed's record of the run that produced them
    recorded = (study / "seeds.json").read_text()
    again = _study(tmp_path, "collect", "studies/x")
    assert again.returncode == 0 and "seed 2 already in the study with these numbers" in again.stdout
    assert (study / "seeds.json").read_text() == recorded
    # a stray seed file stops collect before it writes anything (assemble would refuse the study after it)
    shutil.copy(study / "seed1.csv", study / "seed1_old.csv")
    stray = _study(tmp_path, "collect", "studies/x")
    assert stray.returncode == 1 and stray.stderr.splitlines() == [
        "error: studies/x/seed1_old.csv: not a seed file (a study reads seed<N>.csv of the seeds studies/x/seeds.json "
        "lists: 0, 1, 2); move it out of studies/x"]
    assert (study / "seeds.json").read_text() == recorded
    (study / "seed1_old.csv").unlink()
    # params.yaml changed since the last `dvc repro`: metrics/curves.csv is not its result
    params["seeds"] = [3]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stale = _study(tmp_path, "collect", "studies/x")
    assert stale.returncode == 1 and stale.stderr.startswith(
        "error: metrics/curves.csv: not what params.yaml gives: `dvc status` lists report;")
    assert not (study / "seed3.csv").exists()
    params["seeds"] = [2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    params["train"]["lr"] = 0.02
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    refused = _study(tmp_path, "collect", "studies/x")
    assert refused.returncode == 1 and refused.stderr.startswith(
        "error: params.yaml: differs from studies/x/recipe.yaml in train.lr")
    # a seed already collected with other numbers is kept unless --replace
    params["train"]["lr"] = 0.01
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _produce(tmp_path, _curves([2], methods, rounds).replace("0.8\n", "0.7\n"))
    kept = _study(tmp_path, "collect", "studies/x")
    assert kept.returncode == 1 and "studies/x/seed2.csv: holds other numbers for seed 2" in kept.stderr
    # the tables come back from the files alone, and a seed missing a round is named
    (tmp_path / "metrics" / "curves.csv").unlink()
    before = (study / "paired.csv").read_text()
    assert _study(tmp_path, "assemble", "studies/x").returncode == 0 and (study / "paired.csv").read_text() == before
    lines = (study / "seed1.csv").read_text().splitlines()
    (study / "seed1.csv").write_text("\n".join(lines[:-1]) + "\n")
    broken = _study(tmp_path, "assemble", "studies/x")
    assert broken.returncode == 1 and f"seed 1 lacks {methods[-1]} {rounds[-1]}" in broken.stderr
    # setup writes params.yaml as the recipe with the seeds asked for
    assert _study(tmp_path, "setup", "studies/x", "--seeds", "3", "4").returncode == 0
    written = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert written["seeds"] == [3, 4] and written["dataset"]["path"] == "data/synthetic" and written["train"]["lr"] == 0.01


# ---------------------------------------------------------------- assemble reads exactly the seeds seeds.json lists

def _made_study(root: Path, seeds=(0, 1)) -> tuple[Path, list[str], list[str]]:
    """A study folder as collect leaves it (recipe.yaml, seeds.json, seed<N>.csv), no tables yet."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    methods, rounds = params["methods"], [r["id"] for r in params["rounds"]]
    del params["seeds"], params["dataset"]["path"]
    study = root / "studies" / "s"
    study.mkdir(parents=True)
    (study / "recipe.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = {"commit": "abc1234", "cpu": "a CPU", "device": "cpu", "precision": "fp32"}
    (study / "seeds.json").write_text(json.dumps({str(s): run for s in seeds}))
    for s in seeds:
        (study / f"seed{s}.csv").write_text(_curves([s], methods, rounds))
    return study, methods, rounds


def _edit_csv(path: Path, row: int, column: str, value: str) -> None:
    rows = list(csv.reader(path.open()))
    rows[row + 1][rows[0].index(column)] = value
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _yaml_without(key: str):
    def edit(study: Path) -> None:
        recipe = yaml.safe_load((study / "recipe.yaml").read_text())
        del recipe[key]
        (study / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return edit


def _seeds_json(change):
    def edit(study: Path) -> None:
        manifest = json.loads((study / "seeds.json").read_text())
        (study / "seeds.json").write_text(json.dumps(change(manifest)))
    return edit


# case -> (what is done to a sound two-seed study, the one line assemble must stop with)
BAD_STUDIES = {
    "a stray copy of a seed file": (
        lambda st: shutil.copy(st / "seed1.csv", st / "seed1_old.csv"),
        "studies/s/seed1_old.csv: not a seed file (a study reads seed<N>.csv of the seeds studies/s/seeds.json lists: "
        "0, 1); move it out of studies/s"),
    "a seed file seeds.json does not list": (
        lambda st: (st / "seed5.csv").write_text((st / "seed1.csv").read_text().replace("\n1,", "\n5,")),
        "studies/s/seed5.csv: studies/s/seeds.json does not list seed 5; collect that seed (which records its run), "
        "or move the file out of studies/s"),
    "another seed's rows": (
        lambda st: shutil.copy(st / "seed0.csv", st / "seed1.csv"),
        "studies/s/seed1.csv: a row of seed 0 ({m0} {r0}) among seed 1's (seed<N>.csv holds seed N's rows alone); "
        "restore it (git checkout studies/s/seed1.csv) or collect seed 1 again (collect --replace)"),
    "a listed seed's file gone": (
        lambda st: (st / "seed1.csv").unlink(),
        "studies/s/seed1.csv: missing, but studies/s/seeds.json lists seed 1; restore it "
        "(git checkout studies/s/seed1.csv), or collect seed 1 again"),
    "a NaN mIoU": (
        lambda st: _edit_csv(st / "seed0.csv", 1, "miou", "nan"),
        "studies/s/seed0.csv: seed 0 {m0} {r1}: miou 'nan'; a score is a finite number in [0, 1] (an absent class's "
        "IoU: empty); restore it (git checkout studies/s/seed0.csv) or collect seed 0 again (collect --replace)"),
    "an mIoU in percent": (
        lambda st: _edit_csv(st / "seed1.csv", 0, "miou", "42.5"),
        "studies/s/seed1.csv: seed 1 {m0} {r0}: miou '42.5'; a score is a finite number in [0, 1] (an absent class's "
        "IoU: empty); restore it (git checkout studies/s/seed1.csv) or collect seed 1 again (collect --replace)"),
    "an empty mIoU": (
        lambda st: _edit_csv(st / "seed1.csv", 0, "miou", ""),
        "studies/s/seed1.csv: seed 1 {m0} {r0}: miou ''; a score is a finite number in [0, 1] (an absent class's "
        "IoU: empty); restore it (git checkout studies/s/seed1.csv) or collect seed 1 again (collect --replace)"),
    "a row twice": (
        lambda st: (st / "seed0.csv").write_text((st / "seed0.csv").read_text()
                                                 + (st / "seed0.csv").read_text().splitlines()[1] + "\n"),
        "studies/s/seed0.csv: seed 0 {m0} {r0}: a second row; restore it (git checkout studies/s/seed0.csv) or "
        "collect seed 0 again (collect --replace)"),
    "seeds.json missing": (
        lambda st: (st / "seeds.json").unlink(),
        "studies/s/seeds.json: missing; it lists the study's seeds (collect writes it: `python tools/study.py "
        "collect studies/s`), or restore it (git checkout studies/s/seeds.json)"),
    "seeds.json as a list": (
        _seeds_json(lambda m: list(m)),
        'studies/s/seeds.json: holds a list, not an object of seed -> its run ({{"0": {{"cpu": ..., "device": ..., '
        '"precision": ...}}}}); restore it (git checkout studies/s/seeds.json)'),
    "an entry without cpu": (
        _seeds_json(lambda m: {**m, "1": {k: v for k, v in m["1"].items() if k != "cpu"}}),
        "studies/s/seeds.json: seed 1: no cpu (what ran it); restore it (git checkout studies/s/seeds.json)"),
    "an entry that is no object": (
        _seeds_json(lambda m: {**m, "1": "fp32"}),
        "studies/s/seeds.json: seed 1: 'fp32' is not an object (cpu, device, precision, ...); restore it "
        "(git checkout studies/s/seeds.json)"),
    "recipe.yaml without methods": (
        _yaml_without("methods"),
        "studies/s/recipe.yaml: no methods; restore it (git checkout studies/s/recipe.yaml)"),
    "recipe.yaml without rounds": (
        _yaml_without("rounds"),
        "studies/s/recipe.yaml: no rounds; restore it (git checkout studies/s/recipe.yaml)"),
}


@pytest.mark.parametrize("case", BAD_STUDIES, ids=list(BAD_STUDIES))
def test_assemble_stops_on_a_study_file_that_does_not_fit_with_one_line_and_writes_nothing(tmp_path, case):
    study, methods, rounds = _made_study(tmp_path)
    spoil, line = BAD_STUDIES[case]
    spoil(study)
    before = {p.name: p.read_bytes() for p in study.iterdir()}
    done = _study(tmp_path, "assemble", "studies/s")
    assert (done.returncode, done.stderr.splitlines()) == (
        1, ["error: " + line.format(m0=methods[0], r0=rounds[0], r1=rounds[1])]), done.stderr
    assert {p.name: p.read_bytes() for p in study.iterdir()} == before  # no table written


def test_assemble_counts_each_listed_seed_once(tmp_path):
    """The sound study the cases above spoil: two seeds, each once; an absent class's IoU (empty) is no fault."""
    study, methods, rounds = _made_study(tmp_path)
    _edit_csv(study / "seed0.csv", 0, "pixel_accuracy", "")
    (study / "notes.csv").write_text("not a seed file, not read\n")
    done = _study(tmp_path, "assemble", "studies/s")
    assert done.returncode == 0, done.stderr
    assert {r["n"] for r in csv.DictReader((study / "summary.csv").open())} == {"2"}
    assert "from seed0.csv, seed1.csv;" in (study / "report.md").read_text()
