"""The resume key: equal for the same run, different when anything that determines it differs."""

import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages._shared import resume  # noqa: E402


@dataclasses.dataclass
class Config:
    lr: float = 0.01
    epochs: int = 10


def test_the_same_run_gets_the_same_key():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    parts = dict(train=Config(), options={"hidden": 128}, images=images, init={"w": torch.ones(3), "b": torch.zeros(())})
    assert resume.run_key(**parts) == resume.run_key(**{**parts, "images": images.clone()})


def test_any_part_of_the_run_changes_the_key():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    base = dict(train=Config(), options={"hidden": 128}, images=images, init={"w": torch.ones(3)})
    key = resume.run_key(**base)
    one_pixel = images.clone()
    one_pixel[1, 2, 3, 3] = 1
    changed = [
        dict(base, train=Config(lr=0.02)),
        dict(base, train=Config(epochs=9)),
        dict(base, options={"hidden": 64}),
        dict(base, images=one_pixel),
        dict(base, images=images[:1]),
        dict(base, init={"w": torch.ones(3) * 2}),
        dict(base, init={"w": torch.ones(3, dtype=torch.float64)}),
        dict(base, runtime={"precision": "torch.bfloat16"}),
    ]
    keys = {resume.run_key(**parts) for parts in changed}
    assert key not in keys and len(keys) == len(changed)


def test_the_code_is_part_of_the_key(tmp_path, monkeypatch):
    (tmp_path / "deal").mkdir()
    (tmp_path / "stages").mkdir()
    (tmp_path / "deal" / "training.py").write_text("LR = 0.01\n")
    (tmp_path / "stages" / "train.py").write_text("print('train')\n")
    monkeypatch.setattr(resume, "ROOT", tmp_path)
    before = resume.run_key(train=Config())
    (tmp_path / "deal" / "training.py").write_text("LR = 0.02\n")
    assert resume.run_key(train=Config()) != before
