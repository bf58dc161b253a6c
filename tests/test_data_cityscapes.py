"""Cityscapes (official layout) on a fixture the test writes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deal.data import CITYSCAPES_INFO, Cityscapes, DatasetError
from deal.data.cityscapes import label_id_to_train_id
from deal.data.validate import validate

# label id -> train id, from the Cityscapes definition (independent of the code under test)
KNOWN = {7: 0, 8: 1, 11: 2, 21: 8, 23: 10, 24: 11, 26: 13, 33: 18, 0: 255, 1: 255, 9: 255, 14: 255, 29: 255}


def _frame(root: Path, split: str, city: str, k: int, label: np.ndarray):
    stem = f"{city}_{k:06d}_000019"
    (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
    (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
    img = np.stack([label * 7, label, 255 - label], axis=-1).astype(np.uint8)
    Image.fromarray(img).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
    Image.fromarray(label.astype(np.uint8), mode="L").save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")


def write_cityscapes(root: Path, n_train=10, n_val=3, size=(16, 32)) -> Path:
    ids = np.array(sorted(KNOWN), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for k in range(n_train):
        _frame(root, "train", "aachen" if k < n_train // 2 else "bochum", k, rng.choice(ids, size=size))
    for k in range(n_val):
        _frame(root, "val", "frankfurt", k, rng.choice(ids, size=size))
    return root


def test_info_has_the_19_train_classes_and_void_255():
    info = CITYSCAPES_INFO
    assert info.num_classes == 19 and info.void_index == 255
    assert info.class_names[0] == "road" and info.class_names[13] == "car" and info.class_names[18] == "bicycle"
    assert info.palette[0] == (128, 64, 128)


def test_label_ids_map_to_train_ids():
    lut = label_id_to_train_id()
    for label_id, train_id in KNOWN.items():
        assert lut[label_id] == train_id, label_id
    assert lut[34] == -1 and lut[200] == -1  # not label ids


def test_read_maps_labels_and_keeps_alignment(tmp_path):
    ds = Cityscapes(write_cityscapes(tmp_path), val_holdout=0)
    assert ds.splits() == ("train", "test")
    sid = ds.ids("train")[0]
    assert sid == "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    img, mask = ds.read(sid)
    assert img.shape == (3, 16, 32) and mask.shape == (16, 32) and mask.dtype == torch.uint8
    raw = img[1]  # the image's green channel holds the raw label id
    for label_id, train_id in KNOWN.items():
        sel = raw == label_id
        if sel.any():
            assert set(mask[sel].tolist()) == {train_id}
    values = set(mask.unique().tolist())
    assert values <= set(range(19)) | {255}
    assert ((mask == ds.info.void_index) == torch.isin(raw, torch.tensor([0, 1, 9, 14, 29], dtype=torch.uint8))).all()


def test_holdout_split_by_seed(tmp_path):
    root = write_cityscapes(tmp_path)
    ds = Cityscapes(root, val_holdout=3, seed=0)
    assert ds.splits() == ("train", "val", "test")
    train, val, test = ds.ids("train"), ds.ids("val"), ds.ids("test")
    assert len(train) == 7 and len(val) == 3 and len(test) == 3
    assert not set(train) & set(val)
    assert all(s.startswith("leftImg8bit/val/") for s in test)  # test = official val
    assert train == sorted(train) and val == sorted(val)
    assert Cityscapes(root, val_holdout=3, seed=0).ids("val") == val  # stable
    held = {tuple(Cityscapes(root, val_holdout=3, seed=s).ids("val")) for s in range(6)}
    assert len(held) > 1  # the seed chooses
    with pytest.raises(DatasetError, match="val_holdout=11"):
        Cityscapes(root, val_holdout=11).ids("train")
    with pytest.raises(DatasetError, match="no split 'val'"):
        Cityscapes(root, val_holdout=0).ids("val")


def test_resize_option(tmp_path):
    ds = Cityscapes(write_cityscapes(tmp_path), val_holdout=2, size=(8, 8))
    img, mask = ds.read(ds.ids("test")[0])
    assert img.shape == (3, 8, 8) and mask.shape == (8, 8)
    assert set(mask.unique().tolist()) <= set(range(19)) | {255}
    assert Cityscapes(tmp_path, size=688).size == (688, 688)


def test_validate_reports_unknown_label_and_orphan(tmp_path):
    root = write_cityscapes(tmp_path, n_train=4, n_val=1)
    bad = root / "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"
    Image.fromarray(np.full((16, 32), 200, np.uint8), mode="L").save(bad)
    orphan = root / "gtFine/val/frankfurt/frankfurt_000099_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((16, 32), np.uint8), mode="L").save(orphan)
    problems = validate(Cityscapes(root, val_holdout=1), ["train", "val", "test"])
    assert any(str(bad) in p and "200" in p and "not Cityscapes label ids" in p for p in problems), problems
    assert any(str(orphan) in p and "without image" in p for p in problems), problems
    assert len(problems) == 2


def test_missing_layout(tmp_path):
    with pytest.raises(DatasetError, match="leftImg8bit"):
        Cityscapes(tmp_path)
