"""Joint image + mask transforms (torchvision.transforms.v2) and normalisation.

Transforms take and return ``(tv_tensors.Image uint8 3xHxW, tv_tensors.Mask HxW)``
(plain tensors are wrapped by ``apply``). Images are resized bilinearly with
antialiasing, masks with nearest-exact: the mask pixel kept is the one under
the centre of the bilinear sample, so image and mask stay aligned. Random
draws use torch's global generator (seed it with ``torch.manual_seed``).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale`` (both sides alike)."""

    def __init__(self, scale: tuple[float, float] = (0.8, 1.2)):
        super().__init__()
        lo, hi = float(scale[0]), float(scale[1])
        if not 0 < lo <= hi:
            raise ValueError(f"scale must satisfy 0 < min <= max, got {scale}")
        self.scale = (lo, hi)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        s = self.scale[0] + float(torch.rand(())) * (self.scale[1] - self.scale[0])
        return {"size": [max(1, round(h * s)), max(1, round(w * s))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return F.resize(inpt, params["size"], interpolation=InterpolationMode.NEAREST_EXACT)
        if isinstance(inpt, (tv_tensors.Image, torch.Tensor)):
            return F.resize(inpt, params["size"], interpolation=InterpolationMode.BILINEAR, antialias=True)
        return inpt


class Resize(v2.Transform):
    """Resize to a fixed ``(H, W)``: bilinear image, nearest-exact mask."""

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = [int(size[0]), int(size[1])]

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if tuple(inpt.shape[-2:]) == tuple(self.size):
            return inpt
        if isinstance(inpt, tv_tensors.Mask):
            return F.resize(inpt, self.size, interpolation=InterpolationMode.NEAREST_EXACT)
        return F.resize(inpt, self.size, interpolation=InterpolationMode.BILINEAR, antialias=True)


def train_transforms(
    crop_size: tuple[int, int],
    scale: tuple[float, float] = (0.8, 1.2),
    void_index: int = 255,
    hflip: bool = True,
) -> v2.Compose:
    """Random scale, random ``crop_size`` crop (padded where the scaled image
    is smaller: image with 0, mask with ``void_index``), horizontal flip."""
    crop = [int(crop_size[0]), int(crop_size[1])]
    steps: list[v2.Transform] = []
    if scale is not None and tuple(scale) != (1.0, 1.0):
        steps.append(RandomScale(scale))
    steps.append(
        v2.RandomCrop(
            crop,
            pad_if_needed=True,
            fill={tv_tensors.Image: 0, tv_tensors.Mask: int(void_index), "others": 0},
        )
    )
    if hflip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    return v2.Compose(steps)


def eval_transforms(size: tuple[int, int] | None = None) -> v2.Transform:
    """Resize to ``size`` (bilinear image, nearest mask), or leave as is."""
    return Resize(size) if size is not None else v2.Identity()


def apply(transform, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a joint transform on plain tensors; returns plain tensors."""
    if transform is None:
        return image, mask
    img, m = transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
    return img.as_subclass(torch.Tensor), m.as_subclass(torch.Tensor)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 normalised with ImageNet mean/std."""
    x = images.to(torch.float32).div_(255.0)
    shape = (3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(shape)
    return x.sub_(mean).div_(std)


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Inverse of ``normalize`` -> uint8 (for figures)."""
    shape = (3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images * std + mean).mul(255.0).round().clamp(0, 255).to(torch.uint8)
