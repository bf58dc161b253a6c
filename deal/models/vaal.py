"""VAAL (Sinha, Ebrahimi and Darrell, ICCV 2019): a VAE and a discriminator.

As published (github.com/sinhasam/vaal, model.py and solver.py):
- VAE: a conv encoder of stride-2 4x4 convs with BatchNorm and ReLU,
  flattened into two linear layers for `mu` and `logvar`; a decoder from a
  linear layer to a feature map twice the encoder's final size, 4x4
  transposed convs (stride 2) and a 1x1 transposed conv to 3 channels.
  Published channels 128-256-512-1024 and latent 32; here the channels are
  a parameter (smaller defaults: the pool is scored on CPU too).
- Discriminator: an MLP on `mu` (latent -> 512 -> 512 -> 512 -> 512 -> 1),
  ReLU; the published sigmoid is folded into a BCE-with-logits loss (same
  function, stable under autocast): `disc(mu)` returns logits and
  `sigmoid(disc(mu))` is the probability that the image is labeled.
- Each iteration, `vae_steps` (2) VAE updates, each on a fresh labeled and
  unlabeled batch, then `disc_steps` (1) discriminator update on the last
  of them:
  VAE loss = [MSE(recon, x) + beta * KLD] on the labeled batch
           + [the same] on the unlabeled batch
           + adversary_weight * [BCE(D(mu_l), 1) + BCE(D(mu_u), 1)]
  (the VAE learns to make the discriminator take unlabeled images for
  labeled ones); discriminator loss = BCE(D(mu_l), 1) + BCE(D(mu_u), 0) on
  the VAE's detached `mu`. Adam, lr 5e-4, for both. The published KLD is
  summed over batch and latent while the MSE is a mean (`kl_reduction="sum"`);
  `"mean"` averages the KLD per image instead.
- Selection: the unlabeled images that the discriminator is least sure are
  labeled: score = 1 - sigmoid(D(mu)) (`deal.acquisition.vaal`).

One deliberate difference, an option: by default (`joint_batches`) the
labeled and unlabeled batches pass through the VAE together (see
`VAALConfig.joint_batches`), and scoring runs in eval mode.

Images are resized to `image_size` x `image_size` (the VAE's input; a
multiple of 2 ** len(channels)). The segmentation network plays no part: in
the paper the task model is trained independently of the VAE and
discriminator, which are trained afresh each round.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KL_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class VAALConfig:
    latent_dim: int = 32
    channels: tuple[int, ...] = (32, 64, 128, 256)  # published: (128, 256, 512, 1024)
    image_size: int = 64
    disc_hidden: int = 512
    disc_layers: int = 4  # hidden layers of the discriminator (published 4)
    beta: float = 1.0
    adversary_weight: float = 1.0
    kl_reduction: str = "sum"  # published
    lr: float = 5e-4
    batch_size: int = 16  # published 128
    iterations: int = 200  # published: epochs * labeled images / batch size
    vae_steps: int = 2
    # True: the labeled and unlabeled batches go through the VAE as one batch,
    # so BatchNorm's statistics during training are those it uses in eval mode
    # at scoring. False (published): two forwards, each batch normalised by its
    # own statistics; the published sampler then scored in train mode too (an
    # image's score depending on its batch), and in eval mode the
    # discriminator meets latents unlike any it was trained on.
    joint_batches: bool = True
    disc_steps: int = 1
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16, as TrainConfig
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.kl_reduction not in KL_REDUCTIONS:
            raise ValueError(f"kl_reduction must be one of {KL_REDUCTIONS}, got {self.kl_reduction!r}")
        if not self.channels:
            raise ValueError("the VAE needs at least one conv layer")
        factor = 2 ** len(self.channels)
        if self.image_size % factor or self.image_size < factor:
            raise ValueError(
                f"image_size {self.image_size} must be a multiple of 2**len(channels) = {factor}"
            )
        if min(self.iterations, self.batch_size, self.vae_steps, self.disc_steps, self.latent_dim) < 1:
            raise ValueError("iterations, batch_size, vae_steps, disc_steps and latent_dim must be >= 1")


def _init(module: nn.Module) -> None:
    # the published kaiming_init: kaiming-normal weights, zero biases, BN at (1, 0)
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class VAE(nn.Module):
    def __init__(self, latent_dim: int = 32, channels: tuple[int, ...] = (32, 64, 128, 256), image_size: int = 64):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_size = image_size
        layers, previous = [], 3
        for c in channels:
            layers += [nn.Conv2d(previous, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            previous = c
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        bottom = image_size // 2 ** len(channels)
        flat = channels[-1] * bottom * bottom
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        start = bottom * 2
        layers = [nn.Linear(latent_dim, channels[-1] * start * start), nn.Unflatten(1, (channels[-1], start, start))]
        reversed_channels = list(reversed(channels))
        for c_in, c_out in zip(reversed_channels, reversed_channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers.append(nn.ConvTranspose2d(channels[0], 3, 1))
        self.decoder = nn.Sequential(*layers)
        _init(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(recon, z, mu, logvar)` as the published VAE."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), z, mu, logvar


class Discriminator(nn.Module):
    """MLP on the latent; returns logits (sigmoid = probability of "labeled")."""

    def __init__(self, latent_dim: int = 32, hidden: int = 512, layers: int = 4) -> None:
        super().__init__()
        blocks, previous = [], latent_dim
        for _ in range(layers):
            blocks += [nn.Linear(previous, hidden), nn.ReLU(inplace=True)]
            previous = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(previous, 1))
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


def build_vaal(cfg: VAALConfig, seed: int | None = None) -> tuple[VAE, Discriminator]:
    """A fresh VAE and discriminator; `seed` makes their weights reproducible."""
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        vae = VAE(cfg.latent_dim, tuple(cfg.channels), cfg.image_size)
        disc = Discriminator(cfg.latent_dim, cfg.disc_hidden, cfg.disc_layers)
    return vae, disc


def prepare_images(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """N x 3 x H x W (uint8, or float already normalised) -> float32 normalised,
    resized to image_size x image_size."""
    from deal.data.transforms import normalize

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be N x 3 x H x W, got {tuple(images.shape)}")
    x = normalize(images) if images.dtype == torch.uint8 else images.float()
    if tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return x
