"""The pretrain stage: colour bins, the transfer into a network, labels never read, and its place in the DAG."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from deal.models import ModelConfig, build_model
from deal.pretrain import ColourBins, colorization_data, colour_bins, colour_targets, grey, lab_ab, transfer

from pipeline_utils import BIN, REPO, edit_params, repro, run


def _image(colours: list[tuple[int, int, int]], size: int = 4) -> torch.Tensor:
    """One uint8 image (1 x 3 x size x (size * len(colours))) of flat colour stripes."""
    stripes = [torch.tensor(c, dtype=torch.uint8).view(3, 1, 1).expand(3, size, size) for c in colours]
    return torch.cat(stripes, dim=2).unsqueeze(0).contiguous()


def test_grey_is_the_luma_of_each_pixel_on_all_three_channels():
    image = _image([(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)])
    out = grey(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
    assert out[0, :, 0, ::4].tolist() == [[76, 150, 29, 18]] * 3  # 0.299 R + 0.587 G + 0.114 B, rounded


def test_colour_bins_are_the_used_cells_and_each_pixel_gets_its_own():
    image = _image([(200, 30, 30), (30, 160, 40), (40, 60, 200), (200, 30, 30)])
    ab = lab_ab(image)
    bins = colour_bins(ab, bin_size=16)
    assert len(bins) == 3  # three distinct colours, each in its own 16-unit cell
    targets = colour_targets(ab, bins)
    assert targets.shape == (1, 4, 16) and targets.dtype == torch.uint8
    stripes = targets[0, 0, ::4].tolist()
    assert stripes[0] == stripes[3] and len(set(stripes)) == 3
    # the bin of a stripe is the grid cell its ab falls in
    a, b = ab[0, 0, 0]
    cell = int(np.floor((a + 128) / 16)) * bins.side + int(np.floor((b + 128) / 16))
    assert bins.cells[stripes[0]] == cell


def test_a_pixel_in_a_cell_left_out_gets_the_nearest_kept_bin():
    bins = ColourBins(16.0, (0, 5 * 16 + 5))  # two kept cells of the 16 x 16 grid: (0, 0) and (5, 5)
    ab = np.array([[[[-128 + 16 * 4 + 1, -128 + 16 * 4 + 1], [-127.0, -127.0]]]], dtype=np.float32)  # cells (4, 4), (0, 0)
    assert colour_targets(ab, bins).tolist() == [[[1, 0]]]


def test_colorization_data_reads_images_alone():
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    inputs, targets, bins = colorization_data(images, 16)
    assert torch.equal(inputs, grey(images)) and targets.shape == (3, 8, 8) and int(targets.max()) < len(bins)


def test_transfer_loads_every_tensor_that_fits_and_leaves_the_rest():
    source = build_model(ModelConfig(num_classes=40, width_mult=0.35, head_channels=32, difficulty=False), seed=1)
    target = build_model(ModelConfig(num_classes=5, width_mult=0.35, head_channels=32, grid=(8, 8)), seed=2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    loaded = transfer(target, source.state_dict())
    after = target.state_dict()
    assert "segmenter.classifier.weight" not in loaded  # 40 colour bins against 5 classes
    assert "segmenter.low_level.0.0.weight" in loaded
    for name, value in after.items():
        if name in loaded:
            assert torch.equal(value, source.state_dict()[name]), name
        else:  # the classifier and the difficulty branch keep their initialisation
            assert torch.equal(value, before[name]), name
    assert any(n.startswith("difficulty.") for n in after) and not any(n.startswith("difficulty.") for n in loaded)


# ---------------------------------------------------------------- the stage, end to end

@pytest.mark.slow
def test_pretraining_runs_first_and_starts_every_training(project):
    root, ran = project
    assert ran.index("pretrain") < ran.index("train_initial@0-segmentation")
    assert ran.index("prepare") < ran.index("pretrain")
    record = json.loads((root / "runs" / "pretrain" / "pretrain.json").read_text())
    assert record["method"] == "colorization" and record["steps"] == 10 and record["images"] == 40
    dag = run([str(BIN / "dvc"), "dag", "--dot"], root).stdout
    assert '"pretrain" -> "train_initial@0-segmentation"' in dag
    for path in ("runs/seed0/initial/segmentation/train.json", "runs/seed1/deal_de/r1/train.json"):
        assert json.loads((root / path).read_text())["pretrained"] == "colorization", path


@pytest.mark.slow
def test_the_pretraining_never_reads_a_mask(project, tmp_path):
    """Every mask of the prepared data replaced (and the train masks deleted): the same weights, byte for byte."""
    root, _ = project
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    shutil.copy(root / "params.yaml", work / "params.yaml")
    shutil.copytree(root / "data" / "prepared", work / "data" / "prepared")
    for masks in (work / "data" / "prepared").glob("*_masks.npy"):
        original = np.load(masks)
        np.save(masks, np.random.default_rng(0).integers(0, 11, original.shape).astype(original.dtype))
    (work / "data" / "prepared" / "train_masks.npy").unlink()
    argv = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["pretrain"]["cmd"].split()[1:]
    argv[argv.index("--out") + 1] = "out"
    subprocess.run([sys.executable, str(REPO / argv[0]), *argv[1:]], cwd=work, check=True, capture_output=True)
    assert (work / "out" / "model.pt").read_bytes() == (root / "runs" / "pretrain" / "model.pt").read_bytes()


@pytest.mark.slow
def test_a_pretrain_param_reruns_only_what_depends_on_it(changed_project):
    root, _ = changed_project
    edit_params(root, lambda p: p["pretrain"].update(steps=16))  # 2 epochs of 10 steps, not 1
    ran = repro(root)
    assert "pretrain" in ran
    assert not {"generate", "prepare", "init@0", "init@1"} & set(ran), ran
    # every training starts from it
    assert {"train_initial@0-segmentation", "train_initial@1-joint", "train@0-random-r1", "evaluate@0-random-r1",
            "train@1-deal_de-r1", "report"} <= set(ran), ran


@pytest.mark.slow
@pytest.mark.parametrize("change, says", [
    ({"seed": 0}, "pretrain.seed: 0 is dataset.seed"),
    ({"conditions": "none"}, "pretrain.conditions: none is the run's own dataset.synthetic.conditions"),
])
def test_scenes_pretraining_refuses_the_runs_own_scenes(project, tmp_path, change, says):
    """On the embedded data the supervised pretraining must use another seed and other conditions: one line, nothing written."""
    root, _ = project
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["pretrain"].update({"method": "scenes", "seed": 1, "conditions": "long_tail", **change})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(root / "data" / "prepared", work / "data" / "prepared")
    argv = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["pretrain"]["cmd"].split()[1:]
    argv[argv.index("--out") + 1] = "out"
    done = subprocess.run([sys.executable, str(REPO / argv[0]), *argv[1:]], cwd=work, capture_output=True, text=True)
    assert done.returncode == 1 and not (work / "out").exists()
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: params.yaml: ") and says in line, line
