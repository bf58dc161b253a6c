"""The two-branch DEAL network and the factory the stages call."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from deal.models.deeplab import DeepLabV3Plus, load_imagenet_encoder
from deal.models.difficulty import DifficultyHead


class DEALOutput(NamedTuple):
    logits: torch.Tensor  # B x C x H x W
    low_logits: torch.Tensor  # B x C x H/4 x W/4
    features: torch.Tensor  # B x 256 x H/4 x W/4
    difficulty_logits: torch.Tensor | None  # B x 1 x H x W, sigmoid gives M^d


class DEALNet(nn.Module):
    """Segmentation branch plus (optionally) the difficulty branch, and for the
    learning-loss baseline (optionally) its loss prediction module, so that one
    state dict holds every network a round trained. The forward pass runs the
    segmentation and difficulty branches only; the loss prediction module reads
    `segmenter.forward_with_levels` (see deal.models.learning_loss)."""

    def __init__(self, segmenter: DeepLabV3Plus, difficulty: DifficultyHead | None = None,
                 loss_module: nn.Module | None = None) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.difficulty = difficulty
        self.loss_module = loss_module

    @property
    def num_classes(self) -> int:
        return self.segmenter.num_classes

    def forward(self, x: torch.Tensor) -> DEALOutput:
        seg = self.segmenter(x)
        difficulty = None
        if self.difficulty is not None:
            difficulty = self.difficulty(seg.low_logits, x.shape[-2:])
        return DEALOutput(seg.logits, seg.low_logits, seg.features, difficulty)

    def param_groups(self, lr: float, head_lr_mult: float = 10.0) -> list[dict]:
        """Encoder at `lr`; ASPP, decoder, classifier, difficulty branch (and gamma) at 10x.
        The loss prediction module is not in them: its trainer adds its own group."""
        encoder = [p for m in self.segmenter.encoder_modules() for p in m.parameters()]
        heads = [p for m in self.segmenter.head_modules() for p in m.parameters()]
        if self.difficulty is not None:
            heads += list(self.difficulty.parameters())
        return [
            {"params": encoder, "lr": lr, "name": "encoder"},
            {"params": heads, "lr": lr * head_lr_mult, "name": "heads"},
        ]


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    width_mult: float = 1.0
    head_channels: int = 256
    difficulty: bool = True
    grid: tuple[int, int] = (60, 80)
    detach: bool = False  # decoupled (True) or joint, as published (False)
    pretrained: str | None = None  # a local torchvision mobilenet_v2 state dict
    loss_module_hidden: int | None = None  # learning loss: its module's width (None: no module)
    pam_backward: str = "auto"  # PAM's backward: auto | symmetric | sdpa (deal.models.pam_cpu)


def build_model(cfg: ModelConfig, seed: int | None = None) -> DEALNet:
    """The network of `cfg`; `seed` makes its initial weights reproducible
    (torch's own seed differs per process) without touching the global RNG."""
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        segmenter = DeepLabV3Plus(cfg.num_classes, width_mult=cfg.width_mult, head_channels=cfg.head_channels)
        head = DifficultyHead(cfg.num_classes, grid=cfg.grid, detach=cfg.detach, pam_backward=cfg.pam_backward) if cfg.difficulty else None
        loss_module = None
        if cfg.loss_module_hidden:
            from deal.models.learning_loss import LossPredictionModule

            loss_module = LossPredictionModule(segmenter.level_channels(), cfg.loss_module_hidden)
    if cfg.pretrained:
        load_imagenet_encoder(segmenter, cfg.pretrained)
    return DEALNet(segmenter, head, loss_module)


def load_model(state: dict, cfg: ModelConfig) -> DEALNet:
    """The network a saved state dict holds: `cfg`'s architecture, with the difficulty
    branch and the loss prediction module (and its width) as the state holds them.
    Raises ValueError when the state does not fit `cfg` (another model.* config)."""
    hidden = state["loss_module.levels.0.weight"].shape[0] if "loss_module.levels.0.weight" in state else None
    cfg = dataclasses.replace(cfg, difficulty=any(k.startswith("difficulty.") for k in state),
                              loss_module_hidden=hidden, pretrained=None)
    model = build_model(cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # shapes or names of another config
        raise ValueError(str(exc).splitlines()[0]) from None
    return model
