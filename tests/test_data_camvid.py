"""CamVid (SegNet layout) on a fixture the test writes, and on the shared copy."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deal.data import CAMVID_INFO, CamVid, DatasetError
from deal.data.registry import open_dataset

SHARED_CAMVID = Path(__file__).resolve().parents[2] / "shared/data/CamVid"


def write_camvid(root: Path, counts=None, size=(24, 32), seed=0) -> Path:
    """A tiny CamVid: image pixel colour encodes the mask value (for read checks)."""
    counts = counts or {"train": 4, "val": 2, "test": 2}
    rng = np.random.default_rng(seed)
    h, w = size
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            mask = rng.integers(0, 12, size=(h, w), dtype=np.uint8)
            img = np.stack([mask * 20, 255 - mask * 20, np.full_like(mask, i)], axis=-1).astype(np.uint8)
            name = f"0001TP_{i:06d}.png"
            Image.fromarray(img).save(root / split / name)
            Image.fromarray(mask, mode="L").save(root / f"{split}annot" / name)
    return root


def test_info_is_the_11_camvid_classes():
    assert CAMVID_INFO.num_classes == 11
    assert CAMVID_INFO.void_index == 11
    assert CAMVID_INFO.class_names[0] == "Sky" and CAMVID_INFO.class_names[-1] == "Bicyclist"
    assert CAMVID_INFO.palette[3] == (128, 64, 128)  # Road
    assert len(set(CAMVID_INFO.palette)) == 11
    rgb = CAMVID_INFO.colorize(np.array([[3, 11]], dtype=np.uint8))
    assert rgb.tolist() == [[[128, 64, 128], [0, 0, 0]]]


def test_fixture_splits_ids_and_read(tmp_path):
    ds = CamVid(write_camvid(tmp_path))
    assert ds.splits() == ("train", "val", "test")
    ids = ds.ids("train")
    assert ids == sorted(ids) and ids[0] == "train/0001TP_000000.png" and len(ids) == 4
    assert ds.ids("test")[0].startswith("test/")
    img, mask = ds.read(ids[1])
    assert img.dtype == torch.uint8 and img.shape == (3, 24, 32)
    assert mask.dtype == torch.uint8 and mask.shape == (24, 32)
    # the image colour was written from the mask: they must agree pixel by pixel
    assert torch.equal(img[0], mask * 20)
    assert int(img[2, 0, 0]) == 1
    assert int(mask.max()) <= 11


def test_val_doubles_as_test_when_test_is_absent(tmp_path):
    root = write_camvid(tmp_path, {"train": 3, "val": 2})
    with pytest.raises(DatasetError, match="test_split='val'"):
        CamVid(root).ids("test")
    assert CamVid(root).splits() == ("train", "val")
    ds = CamVid(root, test_split="val")
    assert ds.splits() == ("train", "val", "test")
    assert ds.ids("test") == ds.ids("val") == ["val/0001TP_000000.png", "val/0001TP_000001.png"]
    with pytest.raises(ValueError):
        CamVid(root, test_split="nope")


def test_read_many_decodes_and_resizes(tmp_path):
    ds = CamVid(write_camvid(tmp_path))
    ids = ds.ids("train")
    images, masks = ds.read_many(ids)
    assert images.shape == (4, 3, 24, 32) and masks.shape == (4, 24, 32)
    assert images.dtype == torch.uint8 and masks.dtype == torch.uint8
    for k, sid in enumerate(ids):
        img, mask = ds.read(sid)
        assert torch.equal(images[k], img) and torch.equal(masks[k], mask)
    small_i, small_m = ds.read_many(ids, size=(12, 16))
    assert small_i.shape == (4, 3, 12, 16) and small_m.shape == (4, 12, 16)
    assert set(small_m.unique().tolist()) <= set(range(12))  # nearest: no invented labels
    empty_i, empty_m = ds.read_many([], size=(12, 16))
    assert empty_i.shape == (0, 3, 12, 16) and empty_m.shape == (0, 12, 16)


def test_read_many_refuses_mixed_sizes_without_size(tmp_path):
    root = write_camvid(tmp_path, {"train": 2})
    write_camvid(tmp_path / "other", {"train": 1}, size=(20, 20))
    (tmp_path / "other/train/0001TP_000000.png").rename(root / "train/0001TP_000009.png")
    (tmp_path / "other/trainannot/0001TP_000000.png").rename(root / "trainannot/0001TP_000009.png")
    ds = CamVid(root)
    with pytest.raises(DatasetError, match="pass size"):
        ds.read_many(ds.ids("train"))
    images, _ = ds.read_many(ds.ids("train"), size=(8, 8))
    assert images.shape == (3, 3, 8, 8)


def test_bad_mask_value_is_refused_on_read(tmp_path):
    root = write_camvid(tmp_path, {"train": 1})
    Image.fromarray(np.full((24, 32), 40, np.uint8), mode="L").save(root / "trainannot/0001TP_000000.png")
    with pytest.raises(DatasetError, match=r"0001TP_000000\.png: mask values 40"):
        CamVid(root).read("train/0001TP_000000.png")


def test_open_dataset_and_missing_root(tmp_path):
    ds = open_dataset("camvid", write_camvid(tmp_path), test_split="test")
    assert isinstance(ds, CamVid)
    with pytest.raises(DatasetError, match="not found"):
        CamVid(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown dataset kind"):
        open_dataset("kitti", tmp_path)


@pytest.mark.skipif(not SHARED_CAMVID.is_dir(), reason="shared CamVid copy absent")
def test_shared_camvid():
    ds = CamVid(SHARED_CAMVID, test_split="val")
    assert len(ds.ids("train")) == 367 and len(ds.ids("val")) == 101
    assert ds.ids("test") == ds.ids("val")
    assert "train/0001TP_006690.png" in ds.ids("train")
    ids = ds.ids("train")[::60]
    images, masks = ds.read_many(ids)
    assert images.shape == (len(ids), 3, 360, 480)
    values = set(masks.unique().tolist())
    assert values <= set(range(12)) and {0, 1, 3} <= values  # sky, building, road
    small_i, small_m = ds.read_many(ids[:2], size=(90, 120))
    assert small_i.shape == (2, 3, 90, 120) and small_m.shape == (2, 90, 120)
