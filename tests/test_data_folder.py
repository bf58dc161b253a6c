"""Your own folders: images/ + masks/ + dataset.yaml."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from deal.data import DatasetError, FolderDataset
from deal.data.validate import validate
from mask_files import INDEX_LAYOUTS, png_bytes, write_index_mask

CLASSES = ["road", "car", "sky"]
PALETTE = [[128, 64, 128], [0, 0, 142], [70, 130, 180]]


def write_folder(root: Path, stems, config=None, size=(12, 16), image_ext=".png", sub=""):
    cfg = {"class_names": CLASSES, "palette": PALETTE, "void_index": 255}
    cfg.update(config or {})
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump(cfg))
    rng = np.random.default_rng(len(stems))
    for stem in stems:
        mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=size)
        img = np.stack([mask, 255 - mask, np.zeros_like(mask)], axis=-1)
        ip = root / "images" / sub / f"{stem}{image_ext}"
        mp = root / "masks" / sub / f"{stem}.png"
        ip.parent.mkdir(parents=True, exist_ok=True)
        mp.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(ip, quality=100) if image_ext == ".jpg" else Image.fromarray(img).save(ip)
        Image.fromarray(mask, mode="L").save(mp)
    return root


def test_a_flat_folder_without_splits_is_split_by_a_seeded_fraction_and_read(tmp_path):
    stems = [f"s{i:02d}" for i in range(20)]
    ds = FolderDataset(write_folder(tmp_path, stems, {"name": "mine"}))
    assert ds.info.name == "mine" and ds.info.num_classes == 3 and ds.info.void_index == 255
    assert ds.splits() == ("train", "val", "test")
    sizes = {split: len(ds.ids(split)) for split in ds.splits()}
    assert sizes == {"train": 14, "val": 2, "test": 4}
    assert sorted(sum((ds.ids(s) for s in ds.splits()), [])) == [f"images/{s}.png" for s in stems]
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump({"name": "mine", "class_names": ["a", "b", "c"], "split_seed": 1}))
    assert FolderDataset(tmp_path).ids("test") != ds.ids("test")  # drawn by split_seed
    with pytest.raises(DatasetError, match=r"dataset.yaml: no split 'extra' .*name it under splits"):
        ds.ids("extra")
    img, mask = ds.read("images/s00.png")
    assert img.shape == (3, 12, 16) and mask.dtype == torch.uint8
    assert torch.equal(img[0], mask)  # written from the mask
    assert set(mask.unique().tolist()) <= {0, 1, 2, 255}
    assert validate(ds, ["train"]) == []


def test_splits_from_lists_files_fractions_and_rest(tmp_path):
    stems = [f"f{i:02d}" for i in range(20)]
    root = write_folder(tmp_path, stems)
    (root / "test.txt").write_text("# held out\nf00\nimages/f01.png\n\nf02\n")
    cfg = yaml.safe_load((root / "dataset.yaml").read_text())
    cfg["splits"] = {"test": "test.txt", "val": ["f03", "f04"], "extra": 0.25, "train": "*"}
    cfg["split_seed"] = 3
    (root / "dataset.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    ds = FolderDataset(root)
    assert ds.splits() == ("test", "val", "extra", "train")
    assert ds.ids("test") == ["images/f00.png", "images/f01.png", "images/f02.png"]
    assert ds.ids("val") == ["images/f03.png", "images/f04.png"]
    extra, train = ds.ids("extra"), ds.ids("train")
    assert len(extra) == 4 and len(train) == 11  # 25 % of the 15 unlisted, rounded; the rest
    all_ids = [i for s in ds.splits() for i in ds.ids(s)]
    assert len(all_ids) == len(set(all_ids)) == 20
    assert FolderDataset(root).ids("extra") == extra  # seeded
    cfg["split_seed"] = 4
    (root / "dataset.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert FolderDataset(root).ids("extra") != extra
    assert validate(ds, ds.splits()) == []


def test_split_subfolders(tmp_path):
    write_folder(tmp_path, ["x", "y"], sub="train")
    write_folder(tmp_path, ["z"], sub="val")
    ds = FolderDataset(tmp_path)
    assert ds.splits() == ("train", "val")
    assert ds.ids("train") == ["images/train/x.png", "images/train/y.png"]
    assert ds.paths("images/val/z.png")[1] == tmp_path / "masks/val/z.png"
    assert validate(ds, ["train", "val"]) == []
    write_folder(tmp_path, ["stray"])
    problems = validate(FolderDataset(tmp_path), ["train"])
    assert len(problems) == 1 and str(tmp_path / "images/stray.png") in problems[0] and "outside the split subfolders" in problems[0]


def test_jpeg_images_and_palette_masks(tmp_path):
    root = write_folder(tmp_path, ["a"], image_ext=".jpg")
    mask = np.array([[0, 1], [2, 255]], dtype=np.uint8).repeat(6, 0).repeat(8, 1)
    pal = Image.fromarray(mask, mode="P")
    pal.putpalette([v for c in range(256) for v in (c, 200, 255 - c)])
    pal.save(root / "masks/a.png")
    ds = FolderDataset(root)
    assert ds.ids("train") == ["images/a.jpg"]
    img, m = ds.read("images/a.jpg")
    assert img.shape == (3, 12, 16)
    assert torch.equal(m, torch.from_numpy(mask))  # palette indices, not colours


def test_colour_masks(tmp_path):
    root = write_folder(tmp_path, ["a"], {"mask_format": "color", "void_color": [0, 0, 0], "void_index": 3})
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8).repeat(6, 0).repeat(8, 1)
    lut = np.array(PALETTE + [[0, 0, 0]], dtype=np.uint8)
    Image.fromarray(lut[labels]).save(root / "masks/a.png")
    ds = FolderDataset(root)
    _, m = ds.read("images/a.png")
    assert torch.equal(m, torch.from_numpy(labels))
    rgb = lut[labels].copy()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(root / "masks/a.png")
    problems = validate(ds, ["train"])
    assert len(problems) == 1 and "masks/a.png" in problems[0] and "(1, 2, 3)" in problems[0]


def test_bad_config(tmp_path):
    with pytest.raises(DatasetError, match="dataset.yaml: missing"):
        FolderDataset(tmp_path)
    write_folder(tmp_path, ["a"], {"class_names": []})
    with pytest.raises(DatasetError, match="class_names"):
        FolderDataset(tmp_path)
    write_folder(tmp_path, ["a"], {"class_names": CLASSES, "void_index": 1})
    with pytest.raises(DatasetError, match="void_index 1"):
        FolderDataset(tmp_path)
    write_folder(tmp_path, ["a"], {"void_index": 255, "splits": {"train": 0.7, "test": 0.6}})
    with pytest.raises(DatasetError, match="sum to 1.3"):
        FolderDataset(tmp_path)
    write_folder(tmp_path, ["a"], {"splits": {"train": "nope.txt"}})
    with pytest.raises(DatasetError, match="nope.txt"):
        FolderDataset(tmp_path)
    write_folder(tmp_path, ["a"], {"splits": {"train": "*"}, "mask_format": "rgb"})
    with pytest.raises(DatasetError, match="mask_format"):
        FolderDataset(tmp_path)


def test_default_palette_when_omitted(tmp_path):
    root = write_folder(tmp_path, ["a"])
    cfg = yaml.safe_load((root / "dataset.yaml").read_text())
    del cfg["palette"]
    (root / "dataset.yaml").write_text(yaml.safe_dump(cfg))
    info = FolderDataset(root).info
    assert len(info.palette) == 3 and len(set(info.palette)) == 3


def test_a_pool_a_person_labels_may_lack_masks_only_in_train(tmp_path):
    """oracle: human: train images without masks read as void and are no problem; val and test
    images still need theirs; each missing-mask line says what this oracle allows."""
    root = write_folder(tmp_path / "d", ["a", "b", "c"], sub="train")
    write_folder(root, ["t"], sub="test")
    (root / "masks" / "train" / "b.png").unlink()
    (root / "masks" / "test" / "t.png").unlink()
    simulated = validate(FolderDataset(root), ["train", "test"])
    assert any("b.png: missing mask" in line and "with oracle: human, train images may lack one" in line for line in simulated)
    person = FolderDataset(root, unlabeled_pool=True)
    assert person.unmasked("train") == ["images/train/b.png"]
    lines = validate(person, ["train", "test"])
    assert len(lines) == 1 and "t.png: missing mask" in lines[0] and "only train images" in lines[0]
    image, mask = person.read("images/train/b.png")
    assert image.shape == (3, 12, 16) and bool((mask == 255).all())


def test_a_flat_folder_a_person_labels_is_all_train(tmp_path):
    root = write_folder(tmp_path / "d", [f"s{i}" for i in range(10)])
    assert FolderDataset(root, unlabeled_pool=True).splits() == ("train",)
    assert len(FolderDataset(root, unlabeled_pool=True).ids("train")) == 10
    assert set(FolderDataset(root).splits()) == {"train", "val", "test"}


@pytest.mark.parametrize("layout", INDEX_LAYOUTS)
def test_an_index_mask_reads_as_its_stored_class_ids_whatever_its_bit_depth(tmp_path, layout):
    """A 1-bit mask holds 0 and 1 (a viewer shows 0 and 255: read that way, class 1 would be void);
    2- and 4-bit grey hold 0..3 and 0..15, not their display values; sub-byte palette indices are
    indices (libpng as torchvision calls it returns other bytes for them)."""
    root = write_folder(tmp_path, ["a"])
    top = 1 if layout in ("1", "P;1") else 2
    labels = np.random.default_rng(7).integers(0, top + 1, size=(12, 16)).astype(np.uint8)
    write_index_mask(root / "masks" / "a.png", labels, layout)
    ds = FolderDataset(root)
    _, mask = ds.read("images/a.png")
    assert mask.dtype == torch.uint8 and torch.equal(mask, torch.from_numpy(labels))
    assert validate(ds, ["train"]) == []


@pytest.mark.parametrize("mode, channels", [("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_an_index_mask_with_several_channels_is_one_line(tmp_path, mode, channels):
    root = write_folder(tmp_path, ["a"])
    labels = np.zeros((12, 16, channels), np.uint8)
    Image.fromarray(labels, mode=mode).save(root / "masks" / "a.png")
    problems = validate(FolderDataset(root), ["train"])
    assert problems == [f"{root / 'masks' / 'a.png'}: mask has {channels} channels; expected a single-channel "
                        "label PNG (grey or palette) holding class indices"]


def test_colour_masks_in_any_png_layout_read_by_their_colours_and_transparency_is_refused(tmp_path):
    """mask_format: color: a palette PNG of 2 or 4 colours (PIL stores it at 1 or 2 bits), grey, or
    an opaque RGBA mask read by the colours shown; a transparent pixel's colour is not what the
    person saw, and 16-bit colours are no palette colour: one line each."""
    root = write_folder(tmp_path, ["a"], {"mask_format": "color", "void_color": [0, 0, 0], "void_index": 3})
    path = root / "masks" / "a.png"
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8).repeat(6, 0).repeat(8, 1)
    lut = np.array(PALETTE + [[0, 0, 0]], dtype=np.uint8)
    ds = FolderDataset(root)
    for colours in (2, 4):  # 1- and 2-bit palette PNGs
        shown = np.where(labels < colours, labels, 0).astype(np.uint8)
        image = Image.fromarray(shown, mode="P")
        image.putpalette([v for c in [*PALETTE[:colours - 1], [0, 0, 0]][:colours] for v in c])
        image.save(path)
        assert path.read_bytes()[24] == colours.bit_length() - 1
        want = np.where(shown == colours - 1, 3, shown)  # the last palette entry is black: void
        assert torch.equal(ds.read("images/a.png")[1], torch.from_numpy(want.astype(np.uint8)))
    opaque = np.dstack([lut[labels], np.full(labels.shape, 255, np.uint8)])
    Image.fromarray(opaque, mode="RGBA").save(path)
    assert torch.equal(ds.read("images/a.png")[1], torch.from_numpy(labels))
    see_through = opaque.copy()
    see_through[:2, :2, 3] = 0
    Image.fromarray(see_through, mode="RGBA").save(path)
    assert validate(ds, ["train"]) == [
        f"{path}: transparent pixels (4 with alpha < 255), but a colour mask is read by its colours alone; paint "
        "them with void_color or a class colour and save without transparency"]
    path.write_bytes(png_bytes(lut[labels].astype(np.uint16) * 257, 16, 2))  # 16-bit RGB
    assert validate(ds, ["train"]) == [
        f"{path}: a 16-bit colour mask; save it with 8 bits a channel, painted in the palette's colours"]

