"""Bad input: each problem is one line naming the file; all are listed; nothing is written."""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from deal.data import CamVid, DatasetError, FolderDataset
from deal.data.validate import ensure_valid, validate

from test_data_camvid import write_camvid
from test_data_folder import write_folder


def snapshot(root: Path) -> dict:
    """Every path under root with its size and mtime: proof that nothing was written."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def check(ds, splits, root, **kw):
    before = snapshot(root)
    problems = validate(ds, splits, **kw)
    with pytest.raises(DatasetError) as err:
        ensure_valid(ds, splits, **kw)
    assert err.value.lines == problems
    assert snapshot(root) == before, "validation wrote something"
    return problems


def one_line(problems, *needles):
    hits = [p for p in problems if all(n in p for n in needles)]
    assert len(hits) == 1, (needles, problems)
    assert "\n" not in hits[0]
    return hits[0]


@pytest.fixture
def camvid(tmp_path):
    root = write_camvid(tmp_path / "camvid", {"train": 4, "val": 2, "test": 2})
    return root


def test_clean_dataset_has_no_problems(camvid):
    ds = CamVid(camvid)
    assert validate(ds, ["train", "val", "test"]) == []
    ensure_valid(ds, ["train", "val", "test"])  # does not raise


def test_missing_mask(camvid):
    gone = camvid / "trainannot/0001TP_000001.png"
    gone.unlink()
    problems = check(CamVid(camvid), ["train"], camvid)
    one_line(problems, str(gone), "missing mask")
    assert len(problems) == 1


def test_missing_image(camvid):
    gone = camvid / "val/0001TP_000000.png"
    gone.unlink()
    problems = check(CamVid(camvid), ["val"], camvid)
    one_line(problems, str(camvid / "valannot/0001TP_000000.png"), "mask without image", str(gone))


def test_truncated_image_and_mask(camvid):
    img = camvid / "train/0001TP_000002.png"
    img.write_bytes(img.read_bytes()[:60])
    mask = camvid / "trainannot/0001TP_000003.png"
    mask.write_bytes(mask.read_bytes()[:40])
    problems = check(CamVid(camvid), ["train"], camvid)
    one_line(problems, str(img), "unreadable or truncated image")
    one_line(problems, str(mask), "unreadable or truncated mask")
    assert len(problems) == 2
    # the cheap structural check catches the truncated image too
    problems = validate(CamVid(camvid), ["train"], decode_images=False)
    one_line(problems, str(img), "unreadable or truncated image")


def test_truncated_jpeg(tmp_path):
    root = write_folder(tmp_path, ["a", "b"], image_ext=".jpg")
    img = root / "images/b.jpg"
    img.write_bytes(img.read_bytes()[:-300])
    for deep in (True, False):
        problems = check(FolderDataset(root), ["train"], root, decode_images=deep)
        one_line(problems, str(img), "unreadable or truncated image")
        assert len(problems) == 1


def test_garbage_file(camvid):
    img = camvid / "train/0001TP_000000.png"
    img.write_bytes(b"this is not a png at all")
    one_line(check(CamVid(camvid), ["train"], camvid), str(img), "unreadable")


def test_size_mismatch(camvid):
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(camvid / "testannot/0001TP_000001.png")
    problems = check(CamVid(camvid), ["test"], camvid)
    line = one_line(problems, str(camvid / "test/0001TP_000001.png"), "32x24", "10x10")
    assert str(camvid / "testannot/0001TP_000001.png") in line


def test_mask_values_outside_classes_and_void(camvid):
    m = np.zeros((24, 32), np.uint8)
    m[0, :3] = [12, 99, 11]  # 11 is void and fine; 12 and 99 are not
    Image.fromarray(m, mode="L").save(camvid / "trainannot/0001TP_000000.png")
    problems = check(CamVid(camvid), ["train"], camvid)
    line = one_line(problems, str(camvid / "trainannot/0001TP_000000.png"), "12, 99")
    assert "11" in line and "void" in line


def test_rgb_mask_is_refused(camvid):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(camvid / "trainannot/0001TP_000000.png")
    one_line(check(CamVid(camvid), ["train"], camvid), "0001TP_000000.png", "3 channels")


def test_empty_and_absent_split(camvid):
    for f in (camvid / "val").iterdir():
        f.unlink()
    for f in (camvid / "valannot").iterdir():
        f.unlink()
    problems = check(CamVid(camvid), ["train", "val"], camvid)
    one_line(problems, str(camvid), "empty split 'val'")
    assert len(problems) == 1
    import shutil

    shutil.rmtree(camvid / "test")
    problems = check(CamVid(camvid), ["test"], camvid)
    one_line(problems, "test", "missing CamVid test folder", "test_split='val'")


def test_val_as_test_is_not_a_duplicate(tmp_path):
    root = write_camvid(tmp_path, {"train": 2, "val": 2})
    assert validate(CamVid(root, test_split="val"), ["train", "val", "test"]) == []


def test_duplicate_ids_in_folder_dataset(tmp_path):
    root = write_folder(tmp_path, ["a", "b", "c"])
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(root / "images/a.jpg")  # second image for stem a
    cfg = yaml.safe_load((root / "dataset.yaml").read_text())
    cfg["splits"] = {"train": ["a", "b", "b"], "test": ["b", "c"]}
    (root / "dataset.yaml").write_text(yaml.safe_dump(cfg))
    problems = check(FolderDataset(root), ["train", "test"], root)
    one_line(problems, str(root / "images/a.jpg"), "duplicate id", str(root / "images/a.png"))
    one_line(problems, str(root / "images/b.png"), "duplicate id", "listed 2 times")
    one_line(problems, str(root / "images/b.png"), "duplicate id", "'train'", "'test'")


def test_folder_missing_files(tmp_path):
    root = write_folder(tmp_path, ["a", "b", "c"])
    (root / "masks/b.png").unlink()
    (root / "images/c.png").unlink()
    cfg = yaml.safe_load((root / "dataset.yaml").read_text())
    cfg["splits"] = {"train": ["a", "b", "c", "d"]}
    (root / "dataset.yaml").write_text(yaml.safe_dump(cfg))
    problems = check(FolderDataset(root), ["train"], root)
    one_line(problems, str(root / "masks/b.png"), "missing mask")
    one_line(problems, str(root / "masks/c.png"), "mask without image")
    one_line(problems, str(root / "images/c") + ".*", "missing image", "'train'")
    one_line(problems, str(root / "images/d") + ".*", "missing image")
    assert len(problems) == 4


def test_every_problem_listed_up_to_the_cap(camvid):
    for i in range(4):
        Image.fromarray(np.full((24, 32), 50, np.uint8), mode="L").save(camvid / f"trainannot/0001TP_{i:06d}.png")
    (camvid / "valannot/0001TP_000000.png").unlink()
    problems = validate(CamVid(camvid), ["train", "val"])
    assert len(problems) == 5
    capped = validate(CamVid(camvid), ["train", "val"], cap=2)
    assert capped[:2] == problems[:2] and capped[2] == "... and 3 more"
