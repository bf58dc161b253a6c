"""Starting weights for every training of a run, learned once per dataset without its labels.

Two methods, both trained with the project's own loop (deal.training.train) on the
segmentation network itself, so the encoder, ASPP and decoder all start trained:

- colorization (self-supervised; Zhang, Isola and Efros, "Colorful Image
  Colorization", ECCV 2016; as a pretraining task for segmentation, Larsson, Maire
  and Shakhnarovich, "Colorization as a Proxy Task for Visual Understanding", CVPR
  2017): the network sees the grey version of a train image and classifies each
  pixel's colour into bins of the Lab colour space's ab plane. It reads the train
  split's images only, never a mask. Why this one for a small CNN on two cores:
  one view per image and a dense per-pixel target, so each step trains the whole
  encoder-decoder at the cost of one segmentation step, with no large batches,
  negatives, momentum encoder or second view that contrastive methods (SimCLR,
  MoCo, BYOL, SimSiam) need for hundreds of epochs.
- scenes (supervised): the network is trained on generated street scenes
  (deal.data.synthetic) with their masks, at the dataset's size; they share
  CamVid's 11 classes, so the classifier transfers too. On a real dataset it is
  sim-to-real pretraining. On the embedded scenes it is pretraining on another
  world: scenes of their own seed, in their own conditions (the daylight scenes of
  `conditions: none` before an active-learning run on the long-tail ones), never
  the run's own scenes or conditions, whose labels the run is meant to ration.

`transfer` loads the result into a network of the segmentation kind: every tensor
whose name and shape match (the classifier only where the class count matches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

METHODS = ("none", "colorization", "scenes")
AB_RANGE = 128.0  # Lab's a and b lie in about [-128, 128)


@dataclass(frozen=True)
class ColourBins:
    """The ab bins a colorization network classifies into: the `bin_size` grid cells of the
    ab plane that the train images use, in grid order."""

    bin_size: float
    cells: tuple[int, ...]  # grid cell index (row-major over a grid of `side` x `side`) of each bin

    @property
    def side(self) -> int:
        return int(np.ceil(2 * AB_RANGE / self.bin_size))

    def __len__(self) -> int:
        return len(self.cells)

    def cell_of(self, ab: np.ndarray) -> np.ndarray:
        """The grid cell of each ab pair (... x 2 float) as int64."""
        index = np.clip(np.floor((ab + AB_RANGE) / self.bin_size), 0, self.side - 1).astype(np.int64)
        return index[..., 0] * self.side + index[..., 1]


def lab_ab(images: torch.Tensor) -> np.ndarray:
    """The ab channels (N x H x W x 2 float32) of uint8 RGB images (N x 3 x H x W)."""
    from skimage.color import rgb2lab

    rgb = images.permute(0, 2, 3, 1).numpy()
    return rgb2lab(rgb).astype(np.float32)[..., 1:]


def colour_bins(ab: np.ndarray, bin_size: float, max_bins: int = 254) -> ColourBins:
    """The bins of the grid cells the images' pixels fall in, the `max_bins` most used when more."""
    cells, counts = np.unique(ColourBins(bin_size, ()).cell_of(ab), return_counts=True)
    keep = np.sort(cells[np.argsort(-counts, kind="stable")[:max_bins]])
    return ColourBins(float(bin_size), tuple(int(c) for c in keep))


def colour_targets(ab: np.ndarray, bins: ColourBins) -> torch.Tensor:
    """Each pixel's bin (uint8 N x H x W): its own cell's, or the nearest kept cell's (by the
    cells' centres) for the few pixels in cells left out."""
    cells = bins.cell_of(ab)
    kept = np.asarray(bins.cells)
    lookup = np.full(bins.side * bins.side, -1, dtype=np.int64)
    lookup[kept] = np.arange(len(kept))
    target = lookup[cells]
    if (target < 0).any():
        centre = lambda c: np.stack([c // bins.side, c % bins.side], axis=-1).astype(np.float32)  # noqa: E731
        outside = np.unique(cells[target < 0])
        nearest = np.argmin(((centre(outside)[:, None] - centre(kept)[None]) ** 2).sum(-1), axis=1)
        lookup[outside] = nearest
        target = lookup[cells]
    return torch.from_numpy(target.astype(np.uint8))


def grey(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB images (N x 3 x H x W) as grey, repeated over the three channels (ITU-R 601 luma)."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return luma.expand(-1, 3, -1, -1).contiguous()


def colorization_data(images: torch.Tensor, bin_size: float) -> tuple[torch.Tensor, torch.Tensor, ColourBins]:
    """The colorization task of uint8 RGB images: (grey images, per-pixel ab bins, the bins)."""
    ab = lab_ab(images)
    bins = colour_bins(ab, bin_size)
    return grey(images), colour_targets(ab, bins), bins


def generated_scenes(count: int, size: tuple[int, int], seed: int, conditions: str | None = None):
    """`count` embedded street scenes at `size` (uint8 images N x 3 x H x W and masks N x H x W),
    from the generator's own seed `seed` (not the dataset's)."""
    from deal.data.synthetic import generate_scene

    pairs = [generate_scene(seed, i, size[0], size[1], conditions=conditions or "none") for i in range(count)]
    images = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(np.stack([p[1] for p in pairs]))
    return images, masks


def transfer(model: torch.nn.Module, state: dict) -> list[str]:
    """Load the pretrained `state` (a segmentation network's) into `model` wherever a tensor's name
    and shape match; returns the names loaded. The rest keeps its initialisation."""
    own = model.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded)
