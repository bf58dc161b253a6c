"""A person as the oracle (oracle: human), with the real `dvc repro` on a tiny folder dataset whose
pool masks are hidden from the pipeline: round 0 trains, its picks are exported as Label Studio
tasks, the test plays the annotator, and round 1 trains on the person's masks."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from deal.data.synthetic import SYNTHETIC_INFO, write_synthetic
from pipeline_utils import BIN, REPO, copy_repo, edit_params, run, tiny_params

pytestmark = pytest.mark.slow

MASKED = 10  # train images that come with masks: the initial pool (8) is drawn from them
METHODS = ("random", "deal_de")


def folder_dataset(root: Path, hidden: Path, test: bool = True) -> None:
    """Embedded street scenes as your own images: images/<split>/, masks/<split>/, dataset.yaml;
    the train masks beyond the first MASKED go to `hidden` (what the person will draw)."""
    scenes = root.parent / f"{root.name}-scenes"
    write_synthetic(scenes, seed=3, height=32, width=32, n_train=40, n_val=1, n_test=16)
    for split in ("train", "test") if test else ("train",):
        for i, image in enumerate(sorted((scenes / split).glob("*.png"))):
            mask = scenes / f"{split}annot" / image.name
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            shutil.copy(image, root / "images" / split / image.name)
            keep = split != "train" or i < MASKED
            target = (root / "masks" / split if keep else hidden / split) / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(mask, target)
    info = SYNTHETIC_INFO
    (root / "dataset.yaml").write_text(yaml.safe_dump({
        "name": "streets", "class_names": list(info.class_names), "palette": [list(c) for c in info.palette],
        "void_index": info.void_index}))


def human_project(tmp_path: Path, test: bool = True) -> tuple[Path, Path]:
    data, hidden = tmp_path / "mine", tmp_path / "hidden"
    folder_dataset(data, hidden, test=test)
    root = copy_repo(tmp_path / "repo")

    def human(p):
        tiny_params(p, methods=METHODS, rounds=2)
        p["dataset"].update(kind="folder", path=str(data))
        p["oracle"], p["export"] = "human", ["label_studio"]

    edit_params(root, human)
    run(["git", "commit", "-qam", "oracle: human"], root)
    return root, hidden


def repro(root: Path, *args: str):
    return run([str(BIN / "python"), "tools/host.py", str(BIN / "dvc"), "repro", *args], root, check=False)


def snapshot(root: Path) -> dict:
    """Every lock and every output file, by content."""
    files = [p for top in ("data", "runs", "metrics", "figures") for p in (root / top).rglob("*") if p.is_file()]
    files += [root / "dvc.lock"] + sorted((root / "rounds").rglob("dvc.lock"))
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def requested(root: Path) -> dict[str, list[str]]:
    """The export's picks per method (its picks.csv): id -> the mask file it asks for."""
    out = {}
    for method in METHODS:
        with open(root / "data" / "tasks" / "seed0" / method / "r1" / "label_studio" / "picks.csv") as f:
            out[method] = list(csv.DictReader(f))
    return out


def draw(root: Path, hidden: Path, rows, change=None) -> None:
    """The annotator: each requested mask from the hidden ones (changed by `change`, if given)."""
    for row in rows:
        source = hidden / Path(row["mask"]).relative_to("labels/masks")
        target = root / row["mask"]
        target.parent.mkdir(parents=True, exist_ok=True)
        mask = np.array(Image.open(source))
        if change is not None:
            mask = change(row, mask)
        Image.fromarray(mask).save(target)


def test_a_person_labels_each_round_through_exported_tasks(tmp_path):
    root, hidden = human_project(tmp_path)
    done = repro(root, "--keep-going")
    assert done.returncode != 0  # round 1 waits for the person's masks
    assert "no mask yet (the pool a person labels)" in done.stdout
    for method in METHODS:  # 4 picks, less those the dataset has a mask for (10 masked, 8 of them initial)
        line = rf"error: labels/masks: (\d) of the \1 masks {method} seed 0 r1 needs are missing \(images/train/"
        assert re.search(line, done.stderr), done.stderr[-3000:]
    assert "Running stage 'rounds/train/dvc.yaml:train@0-random-r1'" not in done.stdout

    # the task files, as Label Studio imports them: a JSON list of {"data": {...}}, a labeling config
    picks = requested(root)
    masked = {f"images/{p.relative_to(tmp_path / 'mine' / 'masks').as_posix()}" for p in (tmp_path / "mine" / "masks").rglob("*.png")}
    for method, rows in picks.items():
        folder = root / "data" / "tasks" / "seed0" / method / "r1" / "label_studio"
        tasks = json.loads((folder / "tasks.json").read_text())
        pool = json.loads((root / "data" / "pools" / "seed0" / "r1" / f"{method}.json").read_text())
        unlabelled = [sid for sid in pool["added"] if sid not in masked]
        assert len(pool["added"]) == 4 and isinstance(tasks, list)
        assert [t["data"]["id"] for t in tasks] == unlabelled == [r["id"] for r in rows]
        for task in tasks:
            data = task["data"]
            assert set(task) == {"data"}
            assert data["image"] == "/data/local-files/?d=" + data["id"]
            assert data["mask"] == "labels/masks/" + data["id"].removeprefix("images/")
            assert not (hidden.parent / "mine" / "masks" / data["id"].removeprefix("images/")).exists()
            if method == "deal_de":  # the difficulty map, inline, at the image's size
                png = base64.b64decode(data["difficulty"].removeprefix("data:image/png;base64,"))
                assert Image.open(io.BytesIO(png)).size == (32, 32)
            else:
                assert "difficulty" not in data
        config = ET.fromstring((folder / "labeling_config.xml").read_text())
        labels = [label.get("value") for label in config.find("BrushLabels")]
        assert labels == list(SYNTHETIC_INFO.class_names)
        assert (config.find("Image[@name='difficulty']") is not None) == (method == "deal_de")

    # random's masks, each case with one wrong; DE's not drawn yet: nothing may train
    before = snapshot(root)
    rows = picks["random"]
    assert len(rows) >= 3, "the cases below need three of random's picks unlabelled; change dataset seed"
    cases = {
        "missing": (rows[1:], None, f"1 of the {len(rows)} masks random seed 0 r1 needs are missing ({rows[0]['id']})"),
        "mis-sized": (rows, lambda row, m: m[:16, :16] if row is rows[1] else m,
                      f"{rows[1]['mask']}: mask is 16x16 but its image"),
        "out of range": (rows, lambda row, m: np.full_like(m, 50) if row is rows[-1] else m,
                         f"{rows[-1]['mask']}: mask values 50 are neither a class (0..10) nor void (11)"),
    }
    for name, (drawn, change, line) in cases.items():
        draw(root, hidden, drawn, change)
        done = repro(root, "--keep-going")
        assert done.returncode != 0, name
        assert line in done.stderr, (name, done.stderr[-2000:])
        assert snapshot(root) == before, f"{name}: a failed round changed the outputs or locks"
        shutil.rmtree(root / "labels" / "masks")

    # the person draws exactly the requested masks (and one nobody asked for), DVC tracks them
    every = [row for rows in picks.values() for row in rows]
    draw(root, hidden, every)
    asked = {Path(row["mask"]).name for row in every}
    extra = next(p for p in sorted((hidden / "train").glob("*.png")) if p.name not in asked)
    shutil.copy(extra, root / "labels" / "masks" / "train" / extra.name)
    run([str(BIN / "dvc"), "add", "-q", "labels/masks"], root)
    done = repro(root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Running stage 'rounds/train/dvc.yaml:train@0-random-r1'" in done.stdout
    assert "Running stage 'rounds/train/dvc.yaml:train@0-deal_de-r1'" in done.stdout
    assert "were not asked for by this pool; left out (train/" in done.stdout
    status = run([str(BIN / "dvc"), "status"], root)
    assert "Data and pipelines are up to date." in status.stdout, status.stdout

    # round 1 trained on the person's masks: the answers are the hidden masks, recorded by file
    for method, rows in picks.items():
        pool_dir = root / "data" / "pools" / "seed0" / "r1"
        answers = np.load(pool_dir / f"{method}.labels.npy")
        record = json.loads((pool_dir / f"{method}.labels.json").read_text())
        ids = sorted(r["id"] for r in rows)
        assert list(record["labels"]) == ids and record["oracle"] == "human"
        want = [np.array(Image.open(hidden / sid.removeprefix("images/"))) for sid in ids]
        assert np.array_equal(answers, np.stack(want))
        curves = (root / "metrics" / "curves.csv").read_text()
        assert f"0,{method},r1,12," in curves


def test_without_a_test_split_the_rounds_are_not_scored_and_the_report_says_so(tmp_path):
    root, hidden = human_project(tmp_path, test=False)
    done = repro(root, "--keep-going")
    assert "no test split: the rounds are not scored" in done.stdout
    draw(root, hidden, [row for rows in requested(root).values() for row in rows])
    done = repro(root)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (root / "metrics" / "report.md").read_text()
    assert "No labelled test split: the rounds are not scored" in report
    assert json.loads((root / "metrics" / "summary.json").read_text()) == {
        "scored": False, "random": {"labeled": 12}, "deal_de": {"labeled": 12}}
    evaluation = json.loads((root / "metrics" / "eval" / "seed0" / "deal_de" / "r1.json").read_text())
    assert evaluation["miou"] is None and evaluation["test_images"] == 0
    analysis = json.loads((root / "metrics" / "eval" / "seed0" / "deal_de" / "r0_difficulty.json").read_text())
    assert analysis["auroc_difficulty_vs_error"] is None


# ---------------------------------------------------------------- masks as a person's tools save them

LAYOUT_OF = {"a": "1", "b": "P;1", "c": "L;2", "d": "P;2"}  # the dataset's train masks; e and f: the person's


def bit_labels() -> np.ndarray:
    """Classes 0 and 1 in stripes: what a 1-bit mask can hold."""
    return ((np.arange(32)[:, None] // 3 + np.arange(32)[None] // 5) % 2).astype(np.uint8)


@pytest.fixture(scope="module")
def masks_project(tmp_path_factory):
    """A folder dataset whose masks are 1- and 2-bit PNGs, prepared by the real prepare stage
    (oracle: human: train/e and train/f have no mask, a person draws them)."""
    from mask_files import write_index_mask

    top = tmp_path_factory.mktemp("bitmasks")
    data, rng = top / "mine", np.random.default_rng(0)
    for split, stems in {"train": "abcdef", "test": "t"}.items():
        for stem in stems:
            (data / "images" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)).save(data / "images" / split / f"{stem}.png")
    for stem, layout in {**{f"train/{s}": layout for s, layout in LAYOUT_OF.items()}, "test/t": "1"}.items():
        write_index_mask(data / "masks" / f"{stem}.png", bit_labels(), layout)
    (data / "dataset.yaml").write_text(yaml.safe_dump({"class_names": ["road", "car", "sky"], "void_index": 255}))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny_params(params, methods=("random",), rounds=2)
    params["dataset"].update(kind="folder", path=str(data))
    params.update(oracle="human", export=["label_studio"], budget={"initial": 2, "batch": 2})
    (top / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = run([str(BIN / "python"), str(REPO / "stages" / "prepare.py"), "--out", "data/prepared"], top, check=False)
    return top, done


def label_stage(top: Path, masks: str, out: str, drawn: dict[str, np.ndarray]):
    """The label stage (its script, as dvc.yaml runs it) on a pool that asks for train/e and train/f,
    answered by `drawn` (stem -> a function that writes its PNG at the path it is given)."""
    ids = json.loads((top / "data" / "prepared" / "ids.json").read_text())["train"]
    asked = ["images/train/e.png", "images/train/f.png"]
    pool = top / f"{out}.pool.json"
    pool.write_text(json.dumps({"split": ids, "labeled": ["images/train/a.png", "images/train/b.png", *asked], "added": asked}))
    for stem, write in drawn.items():
        (top / masks / "train").mkdir(parents=True, exist_ok=True)
        write(top / masks / "train" / f"{stem}.png")
    return run([str(BIN / "python"), str(REPO / "stages" / "label.py"), "--seed", "0", "--method", "random", "--round", "r0",
                "--next", "r1", "--prepared", "data/prepared", "--pool", str(pool), "--masks", masks,
                "--out", f"{out}.labels.npy", "--record", f"{out}.labels.json"], top, check=False)


def test_prepare_reads_1_and_2_bit_masks_as_their_class_ids(masks_project):
    """A 1-bit PNG holds 0 and 1; decoded for display (0 and 255) its class 1 would be void (255)."""
    top, done = masks_project
    assert done.returncode == 0, done.stderr
    ids = json.loads((top / "data" / "prepared" / "ids.json").read_text())
    masks = np.load(top / "data" / "prepared" / "train_masks.npy")
    for sid, mask in zip(ids["train"], masks):
        stem = Path(sid).stem
        want = bit_labels() if stem in LAYOUT_OF else np.full((32, 32), 255, np.uint8)  # e, f: not drawn yet
        assert np.array_equal(mask, want), (sid, LAYOUT_OF.get(stem), np.unique(mask))
    assert np.array_equal(np.load(top / "data" / "prepared" / "test_masks.npy")[0], bit_labels())


def test_the_label_stage_reads_a_persons_1_bit_masks_as_class_ids(masks_project):
    from mask_files import write_index_mask

    top, _ = masks_project
    done = label_stage(top, "labels/bits", "bits", {
        "e": lambda p: write_index_mask(p, bit_labels(), "1"), "f": lambda p: write_index_mask(p, bit_labels(), "P;1")})
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(top / "bits.labels.npy"), np.stack([bit_labels(), bit_labels()]))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_the_label_stage_refuses_a_transparent_colour_mask_with_one_line(masks_project, mode):
    """A colour mask's transparent pixels: not the colour the person saw; one line, nothing written."""
    top, _ = masks_project
    info = json.loads((top / "data" / "prepared" / "info.json").read_text())
    palette = np.array(info["palette"], np.uint8)
    rgb = palette[bit_labels()]
    if mode == "LA":
        pixels = np.dstack([np.zeros((32, 32), np.uint8), np.where(bit_labels() == 1, 0, 255).astype(np.uint8)])
    else:
        pixels = np.dstack([rgb, np.full((32, 32), 255, np.uint8)])
        pixels[:4, :4, 3] = 0  # an eraser's strokes: transparent, colour kept
    done = label_stage(top, f"labels/{mode}", mode, {
        "e": lambda p: Image.fromarray(rgb).save(p), "f": lambda p: Image.fromarray(pixels, mode=mode).save(p)})
    seen = int((pixels[..., -1] < 255).sum())
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: labels/{mode}/train/f.png: transparent pixels ({seen} with alpha < 255), but a colour mask is read "
        "by its colours alone; paint them with void_color or a class colour and save without transparency; write "
        "class ids, or paint with the palette"], done.stderr
    assert not (top / f"{mode}.labels.npy").exists() and not (top / f"{mode}.labels.json").exists()
