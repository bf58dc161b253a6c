"""VAAL's acquisition: the images the discriminator is least sure are labeled.

The VAE and discriminator (`deal.models.vaal`) are trained afresh each round
on the labeled and unlabeled images (`train_vaal`); the segmentation network
plays no part. The published sampler takes the top `b` of `-D(mu)`; here the
score is `1 - sigmoid(D(mu))` in [0, 1], the same order, higher first.
"""

from __future__ import annotations

import torch

from deal.models.vaal import VAE, Discriminator, VAALConfig, build_vaal, prepare_images, train_vaal

__all__ = ["VAAL", "vaal_scores", "train_vaal", "build_vaal", "VAALConfig"]


@torch.inference_mode()
def vaal_scores(vae: VAE, disc: Discriminator, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """`1 - P(labeled)` per image of `images` (N x 3 x H x W, uint8 or normalised
    float, any size: resized to the VAE's input). Both models in eval mode;
    scores float32 on the models' device."""
    vae.eval()
    disc.eval()
    device = next(vae.parameters()).device
    scores = []
    for i in range(0, images.shape[0], batch_size):
        x = prepare_images(images[i : i + batch_size].to(device), vae.image_size)
        scores.append(1 - torch.sigmoid(disc(vae.encode(x)[0]).float()))
    return torch.cat(scores) if scores else torch.zeros(0, device=device)


class VAAL:
    """Options of VAAL as a method: `train(labeled, unlabeled) -> (vae, disc, history)`,
    then `scores(vae, disc, candidates)`. Keyword options are `VAALConfig` fields."""

    name = "vaal"
    needs_difficulty = False

    def __init__(self, **options) -> None:
        self.config = VAALConfig(**{k: tuple(v) if k == "channels" else v for k, v in options.items()})

    def train(self, labeled_images: torch.Tensor, unlabeled_images: torch.Tensor, log=None):
        return train_vaal(labeled_images, unlabeled_images, self.config, log=log)

    def build(self) -> tuple[VAE, Discriminator]:
        """Untrained models of this config (to load saved state dicts into)."""
        return build_vaal(self.config)

    def scores(self, vae: VAE, disc: Discriminator, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        return vaal_scores(vae, disc, images, batch_size)
