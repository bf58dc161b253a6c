"""Label Studio, out and back: tasks and labeling config, and its JSON export read into class-id masks.

tests/data/label_studio_export.json is a Label Studio JSON export whose brush strokes were
encoded by Label Studio's own encoder (label-studio-sdk 2.1.2, converter.brush.mask2rle):
two rectangles, car at rows 2-6 x cols 3-10 and sky at rows 5-11 x cols 9-15 (one pixel of
the sky stroke's edge at alpha 128, one at 127), then a road polygon over the bottom-left
quarter; an older annotation, a skipped one, and a task nobody annotated.
"""

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deal.labelstudio import decode_rle, encode_rle, labeling_config, local_file_url, masks_from_export, tasks

EXPORT = Path(__file__).parent / "data" / "label_studio_export.json"
CLASSES = ["road", "car", "sky"]
VOID = 255
REPO = Path(__file__).resolve().parents[1]


def expected_a() -> np.ndarray:
    mask = np.full((12, 16), VOID, np.uint8)
    mask[2:7, 3:11] = 1  # car
    sky = np.zeros((12, 16), bool)
    sky[5:12, 9:16] = True
    sky[11, 15] = False  # alpha 127: the anti-aliased edge, not painted
    mask[sky] = 2  # sky, drawn after car: over it where they overlap
    mask[9:12, 0:4] = 0  # the road polygon, drawn last (rows 75-100 %, cols 0-25 %)
    return mask


def test_label_studio_brush_strokes_decode_exactly():
    task = json.loads(EXPORT.read_text())[0]
    strokes = [r for r in task["annotations"][1]["result"] if r["type"] == "brushlabels"]
    car = decode_rle(strokes[0]["value"]["rle"]).reshape(12, 16, 4)
    assert (car[..., 3] == 255).sum() == 5 * 8 and car[2:7, 3:11].min() == 255 and car.sum() == 255 * 4 * 40
    sky = decode_rle(strokes[1]["value"]["rle"]).reshape(12, 16, 4)[..., 3]
    assert sky[6, 10] == 128 and sky[11, 15] == 127 and (sky == 255).sum() == 7 * 7 - 2


def test_our_encoder_round_trips_through_the_decoder():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 300, 5000):
        for values in (rng.integers(0, 256, n), np.repeat(rng.integers(0, 2, max(1, n // 50)) * 255, 50)[:n],
                       np.zeros(n), np.arange(n) % 3):
            values = np.asarray(values, np.uint8)
            assert np.array_equal(decode_rle(encode_rle(values)), values)


def image_12x16(sid: str) -> tuple[int, int]:
    return (12, 16)


def test_an_export_becomes_class_masks_from_each_tasks_latest_annotation():
    masks = masks_from_export(json.loads(EXPORT.read_text()), CLASSES, VOID, image_12x16)
    assert list(masks) == ["labels/masks/train/a.png"]  # b has no annotation; the skipped one is ignored
    assert np.array_equal(masks["labels/masks/train/a.png"], expected_a())


@pytest.mark.parametrize("change, words", [
    (lambda r: r["value"].update(brushlabels=["bus"]), "task 1 (images/train/a.png): label 'bus' is none of the dataset's classes"),
    (lambda r: r["value"].update(brushlabels=["car", "sky"]), "labels ['car', 'sky']; give each region one class"),
    (lambda r: r.update(original_width=8), "a brush stroke drawn on a 8x12 image (original_width x original_height), "
                                           "but its image is 16x12"),
    (lambda r: r["value"].update(rle=r["value"]["rle"][:20]), "a brush stroke whose rle ends after"),
])
def test_a_region_that_does_not_fit_names_its_task(change, words):
    export = json.loads(EXPORT.read_text())
    change(export[0]["annotations"][1]["result"][0])
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        masks_from_export(export, CLASSES, VOID, image_12x16)


def test_tasks_and_config_are_what_label_studio_imports():
    rows = [{"id": "images/a b.png", "image": local_file_url("images/a b.png"), "mask": "labels/masks/a b.png", "score": 0.5}]
    assert tasks(rows) == [{"data": {**rows[0], "image": "/data/local-files/?d=images/a%20b.png"}}]
    config = ET.fromstring(labeling_config(CLASSES, [[128, 64, 128], [0, 0, 142], [70, 130, 180]], difficulty=True))
    for control in ("BrushLabels", "PolygonLabels"):
        node = config.find(control)
        assert node.get("toName") == "image"
        assert [(label.get("value"), label.get("background")) for label in node] == [
            ("road", "#804080"), ("car", "#00008e"), ("sky", "#4682b4")]
    assert [i.get("value") for i in config.findall("Image")] == ["$image", "$difficulty"]
    assert ET.fromstring(labeling_config(["a&b"], [[0, 0, 0]], difficulty=False)).find("BrushLabels/Label").get("value") == "a&b"


def cli(*args, cwd):
    return subprocess.run([sys.executable, str(REPO / "tools" / "labels.py"), *args], cwd=cwd, capture_output=True, text=True)


def labelling(tmp_path: Path, size=(16, 12)) -> Path:
    """What from-label-studio reads besides the export: the prepared data's class names and
    source, and the dataset's images (at `size`, width x height)."""
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "info.json").write_text(json.dumps({"class_names": CLASSES, "void_index": VOID}))
    (prepared / "source.json").write_text(json.dumps({"path": "mine"}))
    for stem in ("a", "b"):
        (tmp_path / "mine" / "images" / "train").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size).save(tmp_path / "mine" / "images" / "train" / f"{stem}.png")
    return tmp_path


def test_the_cli_writes_the_masks_the_tasks_name(tmp_path):
    labelling(tmp_path)
    done = cli("from-label-studio", str(EXPORT), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 masks written into labels/masks" in done.stdout and "1 tasks without an annotation: images/train/b.png" in done.stdout
    assert np.array_equal(np.array(Image.open(tmp_path / "labels/masks/train/a.png")), expected_a())

    export = json.loads(EXPORT.read_text())
    export[0]["data"]["mask"] = "../elsewhere.png"
    (tmp_path / "bad.json").write_text(json.dumps(export))
    done = cli("from-label-studio", "bad.json", cwd=tmp_path)
    assert done.returncode == 1 and "is outside labels/masks" in done.stderr
    assert not (tmp_path.parent / "elsewhere.png").exists()


def test_a_polygon_mask_is_written_at_its_images_size_whatever_size_the_export_states(tmp_path):
    """Label Studio states the size the annotator's browser saw (here 16x12); the image in the dataset
    is 32x24: polygons (in % of the image) are drawn at the image's size, so the label stage takes the mask."""
    labelling(tmp_path, size=(32, 24))
    export = json.loads(EXPORT.read_text())
    latest = export[0]["annotations"][1]
    latest["result"] = [r for r in latest["result"] if r["type"] == "polygonlabels"]  # the road polygon alone
    (tmp_path / "polygons.json").write_text(json.dumps(export))
    done = cli("from-label-studio", "polygons.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    want = np.full((24, 32), VOID, np.uint8)
    want[18:24, 0:8] = 0  # rows 75-100 %, cols 0-25 %
    assert np.array_equal(np.array(Image.open(tmp_path / "labels/masks/train/a.png")), want)


def _latest(export):
    return export[0]["annotations"][1]


def _polygon(export):
    return next(r for r in _latest(export)["result"] if r["type"] == "polygonlabels")


def _brush(export):
    return _latest(export)["result"][0]


def _twice(export):
    second = copy.deepcopy(export[0])
    second["id"] = 7
    export.append(second)


def _bomb(export):
    """A stroke declaring 2^32 - 1 values (4.3 GB) in 10 bytes: its length is checked before it is decoded."""
    _brush(export)["value"]["rle"] = [255, 255, 255, 255, 56, 0x89, 0xE0, 0, 0, 0]


# case -> (what is done to the export, the one line from-label-studio stops with, after `error: bad.json: `)
BAD_EXPORTS = {
    "a brush stroke drawn on a smaller image": (
        lambda e: None, "task 1 (images/train/a.png): a brush stroke drawn on a 16x12 image (original_width x "
        "original_height), but its image is 32x24; paint on the image deal exported"),
    "a polygon outside the image": (
        lambda e: _polygon(e)["value"].update(points=[[150, 150], [160, 150], [160, 170]]),
        "task 1 (images/train/a.png): a road polygon paints no pixel of the 16x12 image (outside it, or narrower than a "
        "pixel); draw it over the pixels it labels"),
    "a NaN point": (
        lambda e: _polygon(e)["value"]["points"].__setitem__(1, [float("nan"), 80]),
        "task 1 (images/train/a.png): a polygon with a point that is no number ([[0, 75], [nan, 80], [25, 100], [0, 100]])"),
    "a one-point polygon": (
        lambda e: _polygon(e)["value"].update(points=[[10, 80]]),
        "task 1 (images/train/a.png): a polygon of 1 point; a region needs 3 or more"),
    "a two-point polygon": (
        lambda e: _polygon(e)["value"].update(points=[[10, 80], [20, 90]]),
        "task 1 (images/train/a.png): a polygon of 2 points; a region needs 3 or more"),
    "two tasks naming one mask": (
        _twice, "task 1 (images/train/a.png) and task 7 (images/train/a.png) both name the mask labels/masks/train/a.png; "
        "keep one of the two annotations (delete the other task in Label Studio) and export again"),
    "an RLE bomb": (
        _bomb, "task 1 (images/train/a.png): a brush stroke of 4294967295 values for 16x12 pixels"),
    "a task that is no object": (
        lambda e: e.append("images/train/b.png"),
        "entry 3 of the export is str 'images/train/b.png', not a task (an object)"),
    "data that is no object": (
        lambda e: e[0].update(data=["images/train/a.png"]),
        "task 1: its data is list \"['images/train/a.png']\", not an object; import the tasks.json deal wrote"),
    "a value that is no object": (
        lambda e: _polygon(e).update(value=[[0, 75], [25, 75], [25, 100]]),
        "task 1 (images/train/a.png): a polygonlabels region whose value is list '[[0, 75], [25, 75], [25, 100]]', "
        "not an object"),
    "a result that is no object": (
        lambda e: _latest(e)["result"].append("road"),
        "task 1 (images/train/a.png): a result that is str 'road', not a region (an object)"),
    "a result that is no list": (
        lambda e: _latest(e).update(result={"type": "polygonlabels"}),
        "task 1 (images/train/a.png): its result is dict \"{'type': 'polygonlabels'}\", not a list of regions"),
    "an int mask": (
        lambda e: e[0]["data"].update(mask=5),
        "task 1: its mask is int '5', not a path; import the tasks.json deal wrote"),
    "the masks folder as the mask": (
        lambda e: e[0]["data"].update(mask="labels/masks"),
        "task 1 (images/train/a.png): its mask 'labels/masks' is not labels/masks/train/a.png, where the label stage "
        "reads the mask of images/train/a.png; import the tasks deal exported"),
    "another image's mask": (
        lambda e: e[0]["data"].update(mask="labels/masks/train/b.png"),
        "task 1 (images/train/a.png): its mask 'labels/masks/train/b.png' is not labels/masks/train/a.png, where the "
        "label stage reads the mask of images/train/a.png; import the tasks deal exported"),
    "an image the dataset has not": (
        lambda e: e[0]["data"].update(id="images/train/zz.png"),
        "task 1 (images/train/zz.png): no image mine/images/train/zz.png in the dataset (mine); import the tasks deal "
        "exported for this dataset"),
}


@pytest.mark.parametrize("case", BAD_EXPORTS, ids=list(BAD_EXPORTS))
def test_an_export_that_does_not_fit_stops_with_one_line_naming_the_task_and_writes_nothing(tmp_path, case):
    labelling(tmp_path, size=(32, 24) if case == "a brush stroke drawn on a smaller image" else (16, 12))
    export = json.loads(EXPORT.read_text())
    change, line = BAD_EXPORTS[case]
    change(export)
    (tmp_path / "bad.json").write_text(json.dumps(export))
    done = cli("from-label-studio", "bad.json", cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (1, [f"error: bad.json: {line}"]), done.stderr
    assert not (tmp_path / "labels").exists()


def test_todo_refuses_a_picks_csv_without_its_mask_column(tmp_path):
    picks = tmp_path / "data" / "tasks" / "seed0" / "random" / "r1" / "label_studio" / "picks.csv"
    picks.parent.mkdir(parents=True)
    picks.write_text("id,image,score\nimages/train/a.png,mine/images/train/a.png,0.5\n")
    done = cli("todo", cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (1, [
        f"error: {picks.relative_to(tmp_path)}: no mask column; rerun the export stage that writes it "
        "(`dvc repro --force` on its export stage, or delete it and `dvc repro`)"]), done.stderr
    picks.write_text("id,image,mask,score,difficulty\nimages/train/a.png,mine/images/train/a.png,labels/masks/train/a.png,0.5,\n")
    done = cli("todo", cwd=tmp_path)
    assert done.returncode == 0 and "seed0 random r1: images/train/a.png -> labels/masks/train/a.png" in done.stdout
