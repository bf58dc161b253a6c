"""A torch Dataset over images and masks decoded once into memory."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .transforms import apply, normalize


class InMemorySegmentation(Dataset):
    """``(float32 normalised image 3xHxW, int64 mask HxW)`` pairs from uint8
    tensors ``images`` (N x 3 x H x W) and ``masks`` (N x H x W), through an
    optional joint ``transform`` (see ``deal.data.transforms``) applied to the
    uint8 pair before normalisation. ``return_index=True`` adds the sample's
    position as a third element (to map outputs back to sample ids)."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, transform=None, return_index: bool = False):
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
        if masks.ndim != 3 or masks.shape[0] != images.shape[0] or masks.shape[1:] != images.shape[2:]:
            raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
        self.images = images
        self.masks = masks
        self.transform = transform
        self.return_index = return_index

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        img, mask = apply(self.transform, self.images[i], self.masks[i])
        out = (normalize(img), mask.to(torch.int64))
        return out + (i,) if self.return_index else out
