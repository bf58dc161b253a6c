"""Label Studio, out and back: tasks and labeling config, and its JSON export read into class-id masks.

tests/data/label_studio_export.json is a Label Studio JSON export whose brush strokes were
encoded by Label Studio's own encoder (label-studio-sdk 2.1.2, converter.brush.mask2rle):
two rectangles, car at rows 2-6 x cols 3-10 and sky at rows 5-11 x cols 9-15 (one pixel of
the sky stroke's edge at alpha 128, one at 127), then a road polygon over the bottom-left
quarter; an older annotation, a skipped one, and a task nobody annotated.
"""

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


def test_an_export_becomes_class_masks_from_each_tasks_latest_annotation():
    masks = masks_from_export(json.loads(EXPORT.read_text()), CLASSES, VOID)
    assert list(masks) == ["labels/masks/train/a.png"]  # b has no annotation; the skipped one is ignored
    assert np.array_equal(masks["labels/masks/train/a.png"], expected_a())


@pytest.mark.parametrize("change, words", [
    (lambda r: r["value"].update(brushlabels=["bus"]), "task 1 (images/train/a.png): label 'bus' is none of the dataset's classes"),
    (lambda r: r["value"].update(brushlabels=["car", "sky"]), "labels ['car', 'sky']; give each region one class"),
    (lambda r: r.update(original_width=8), "a brush stroke of 768 values for 8x12 pixels"),
])
def test_a_region_that_does_not_fit_names_its_task(change, words):
    export = json.loads(EXPORT.read_text())
    change(export[0]["annotations"][1]["result"][0])
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        masks_from_export(export, CLASSES, VOID)


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
    return subprocess.run([sys.executable, str(REPO / "stages" / "labels.py"), *args], cwd=cwd, capture_output=True, text=True)


def test_the_cli_writes_the_masks_the_tasks_name(tmp_path):
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data" / "prepared" / "info.json").write_text(json.dumps({"class_names": CLASSES, "void_index": VOID}))
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
