"""VAAL's acquisition: the images the discriminator is least sure are labeled.

The VAE and discriminator (`deal.models.vaal`) are trained afresh each round
on the labeled and unlabeled images (`train_vaal`, here); the segmentation network
plays no part. The published sampler takes the top `b` of `-D(mu)`; here the
score is `1 - sigmoid(D(mu))` in [0, 1], the same order, higher first.
"""

from __future__ import annotations

import torch

import torch.nn.functional as F

from deal.models.vaal import VAE, Discriminator, VAALConfig, build_vaal, prepare_images

__all__ = ["VAAL", "vaal_scores", "train_vaal", "vae_loss", "build_vaal", "VAALConfig"]


def vae_loss(x, recon, mu, logvar, beta: float, kl_reduction: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """`(MSE + beta * KLD, MSE)`: the published `vae_loss` (mean MSE, KLD summed)."""
    mse = F.mse_loss(recon.float(), x.float())
    kld = -0.5 * (1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()).sum()
    if kl_reduction == "mean":
        kld = kld / x.shape[0]
    return mse + beta * kld, mse


def _batches(n: int, size: int, generator: torch.Generator):
    """Endless random batches of indices, reshuffled every pass (the published read_data)."""
    while True:
        order = torch.randperm(n, generator=generator)
        if n <= size:
            yield order
            continue
        for i in range(0, n - size + 1, size):
            yield order[i : i + size]


def train_vaal(
    labeled_images: torch.Tensor,
    unlabeled_images: torch.Tensor,
    cfg: VAALConfig = VAALConfig(),
    log=None,
) -> tuple[VAE, Discriminator, list[dict]]:
    """Train a fresh VAE and discriminator adversarially (see the module docstring).

    Images: N x 3 x H x W, uint8 or normalised float. Returns
    `(vae, disc, history)`, both models in eval mode on the training device;
    `history` has one dict of losses per iteration (`vae`, `recon`, `adv`
    from the last VAE step; `disc`), also passed to `log`.
    """
    from tqdm.auto import tqdm

    from deal.runtime import autocast, resolve_device, resolve_precision

    if labeled_images.shape[0] == 0 or unlabeled_images.shape[0] == 0:
        raise ValueError("VAAL needs at least one labeled and one unlabeled image")
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    labeled = prepare_images(labeled_images, cfg.image_size).to(device)
    unlabeled = prepare_images(unlabeled_images, cfg.image_size).to(device)
    vae, disc = build_vaal(cfg, seed=cfg.seed)
    vae.to(device).train()
    disc.to(device).train()
    opt_vae = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    opt_disc = torch.optim.Adam(disc.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    lab_batches = _batches(labeled.shape[0], cfg.batch_size, generator)
    unlab_batches = _batches(unlabeled.shape[0], cfg.batch_size, generator)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)

    def bce(logits, target: float):
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))

    history = []
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        for _ in tqdm(range(cfg.iterations), desc="vaal", disable=None if cfg.progress else True, leave=False):
            for _ in range(cfg.vae_steps):
                x_l = labeled[next(lab_batches).to(device)]
                x_u = unlabeled[next(unlab_batches).to(device)]
                with autocast(device, dtype):
                    if cfg.joint_batches:
                        recon, _, mu, logvar = vae(torch.cat([x_l, x_u]))
                        n = x_l.shape[0]
                        recon_l, mu_l, logvar_l = recon[:n], mu[:n], logvar[:n]
                        recon_u, mu_u, logvar_u = recon[n:], mu[n:], logvar[n:]
                    else:
                        recon_l, _, mu_l, logvar_l = vae(x_l)
                        recon_u, _, mu_u, logvar_u = vae(x_u)
                    d_l, d_u = disc(mu_l), disc(mu_u)
                loss_l, mse_l = vae_loss(x_l, recon_l, mu_l, logvar_l, cfg.beta, cfg.kl_reduction)
                loss_u, mse_u = vae_loss(x_u, recon_u, mu_u, logvar_u, cfg.beta, cfg.kl_reduction)
                adversarial = bce(d_l, 1.0) + bce(d_u, 1.0)
                loss = loss_l + loss_u + cfg.adversary_weight * adversarial
                opt_vae.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt_vae)
                scaler.update()
            for step in range(cfg.disc_steps):
                if step > 0:  # the first step reuses the last VAE batch, as published
                    x_l = labeled[next(lab_batches).to(device)]
                    x_u = unlabeled[next(unlab_batches).to(device)]
                with torch.no_grad(), autocast(device, dtype):
                    if cfg.joint_batches:
                        mu_l, mu_u = vae.encode(torch.cat([x_l, x_u]))[0].split([x_l.shape[0], x_u.shape[0]])
                    else:
                        mu_l = vae.encode(x_l)[0]
                        mu_u = vae.encode(x_u)[0]
                with autocast(device, dtype):
                    d_loss = bce(disc(mu_l.float()), 1.0) + bce(disc(mu_u.float()), 0.0)
                opt_disc.zero_grad(set_to_none=True)
                scaler.scale(d_loss).backward()
                scaler.step(opt_disc)
                scaler.update()
            record = {
                "vae": loss.item(), "recon": (mse_l + mse_u).item() / 2, "adv": adversarial.item(), "disc": d_loss.item()
            }
            history.append(record)
            if log is not None:
                log(record)
    vae.eval()
    disc.eval()
    return vae, disc, history


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
