"""DeepLabv3+ with a MobileNetV2 encoder, built from torchvision parts.

As in docs/method.md (#segmentation-branch; and the DEAL code it was read from): output stride 16 by
dilating the last stride-2 stage, ASPP with rates 6/12/18 plus image pooling
on the 320-channel features (the 1280-channel head conv of the classifier is
dropped), low-level features at stride 4 projected 24 -> 48, a decoder of two
3x3 convs (256 channels, dropout 0.5 then 0.1) and a 1x1 classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.models.segmentation.deeplabv3 import ASPP

# features[0:4] end at stride 4 (the low-level 24 channels); features[4:18]
# end at stride 32 in the classifier, stride 16 here once block 14 is undilated.
LOW_LEVEL_END = 4
HIGH_LEVEL_END = 18
FIRST_STRIDE32_BLOCK = 14
# The last block of each encoder stage, counted in mobilenet_v2.features: stride 4
# (24 channels at width 1), stride 8 (32), stride 16 (96) and the encoder output
# (320). The multi-level features that learning loss reads, as ResNet's 4 stages.
LEVEL_ENDS = (3, 6, 13, 17)


class SegmentationOutput(NamedTuple):
    logits: torch.Tensor  # B x C x H x W, the input size
    low_logits: torch.Tensor  # B x C x H/4 x W/4, what the difficulty branch reads
    features: torch.Tensor  # B x 256 x H/4 x W/4, decoder features (core-set pools them)


def _dilate_from(features: nn.Sequential, start: int, dilation: int) -> None:
    """Turn the stride-2 block at `start` into stride 1 and dilate what follows.

    The first block keeps dilation 1 on its (former stride-2) depthwise conv,
    the later ones use `dilation`, the usual recipe for output stride 16.
    """
    for index in range(start, len(features)):
        for module in features[index].modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                if module.stride == (2, 2):
                    module.stride = (1, 1)
                else:
                    module.dilation = (dilation, dilation)
                    module.padding = (dilation, dilation)


class DeepLabV3Plus(nn.Module):
    def __init__(
        self,
        num_classes: int,
        width_mult: float = 1.0,
        head_channels: int = 256,
        low_level_channels: int = 48,
        atrous_rates: tuple[int, int, int] = (6, 12, 18),
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        encoder = mobilenet_v2(weights=None, width_mult=width_mult).features
        _dilate_from(encoder, FIRST_STRIDE32_BLOCK, dilation=2)
        self.low_level = encoder[:LOW_LEVEL_END]
        self.high_level = encoder[LOW_LEVEL_END:HIGH_LEVEL_END]
        low_in = self.low_level[-1].out_channels
        high_in = self.high_level[-1].out_channels
        self.aspp = ASPP(high_in, list(atrous_rates), out_channels=head_channels)
        self.low_project = nn.Sequential(
            nn.Conv2d(low_in, low_level_channels, 1, bias=False),
            nn.BatchNorm2d(low_level_channels),
            nn.ReLU(inplace=True),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(head_channels + low_level_channels, head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
        )
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)
        self._init_heads()

    def _init_heads(self) -> None:
        for module in self.head_modules():
            for m in module.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def encoder_modules(self) -> list[nn.Module]:
        return [self.low_level, self.high_level]

    def head_modules(self) -> list[nn.Module]:
        return [self.aspp, self.low_project, self.decoder, self.classifier]

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        size = x.shape[-2:]
        low = self.low_level(x)
        high = self.aspp(self.high_level(low))
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        features = self.decoder(torch.cat([high, self.low_project(low)], dim=1))
        low_logits = self.classifier(features)
        logits = F.interpolate(low_logits, size=size, mode="bilinear", align_corners=False)
        return SegmentationOutput(logits, low_logits, features)


    def level_channels(self) -> list[int]:
        """Channels of the `LEVEL_ENDS` features that `forward_with_levels` returns."""
        encoder = list(self.low_level) + list(self.high_level)
        return [encoder[i].out_channels for i in LEVEL_ENDS]

    def forward_with_levels(self, x: torch.Tensor) -> tuple[SegmentationOutput, list[torch.Tensor]]:
        """`forward(x)` plus the encoder features at the end of each stage (`LEVEL_ENDS`).

        The same computation as `forward` (the output is identical); learning
        loss feeds the levels to its loss prediction module.
        """
        size = x.shape[-2:]
        levels = []
        low = self.low_level(x)
        levels.append(low)
        high = low
        for index, block in enumerate(self.high_level, start=LOW_LEVEL_END):
            high = block(high)
            if index in LEVEL_ENDS:
                levels.append(high)
        high = self.aspp(high)
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        features = self.decoder(torch.cat([high, self.low_project(low)], dim=1))
        low_logits = self.classifier(features)
        logits = F.interpolate(low_logits, size=size, mode="bilinear", align_corners=False)
        return SegmentationOutput(logits, low_logits, features), levels


def load_imagenet_encoder(model: DeepLabV3Plus, path: str | Path) -> None:
    """Load a torchvision `mobilenet_v2` ImageNet state dict into the encoder.

    The file is a plain state dict as saved by torchvision
    (`mobilenet_v2-b0353104.pth`); nothing is downloaded. Raises
    FileNotFoundError / ValueError with one line saying what to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: ImageNet weights not found; put torchvision's mobilenet_v2 state dict there "
            "or set the model's `pretrained` param to null"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-state-dict file
        raise ValueError(f"{path}: not a readable torch state dict ({exc.__class__.__name__}: {exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    wanted = {}
    for name in model.low_level.state_dict():
        wanted[f"low_level.{name}"] = f"features.{name}"
    # Slicing an nn.Sequential keeps the original indices, so the names match.
    for name in model.high_level.state_dict():
        wanted[f"high_level.{name}"] = f"features.{name}"
    own = model.state_dict()
    missing = [src for src in wanted.values() if src not in state]
    if missing:
        raise ValueError(
            f"{path}: not a torchvision mobilenet_v2 state dict (missing {missing[0]} and "
            f"{len(missing) - 1} more); use the file torchvision saves for mobilenet_v2"
        )
    mismatched = [
        src for dst, src in wanted.items() if tuple(state[src].shape) != tuple(own[dst].shape)
    ]
    if mismatched:
        raise ValueError(
            f"{path}: shapes do not match the encoder ({mismatched[0]}: "
            f"{tuple(state[mismatched[0]].shape)}); ImageNet weights need width_mult 1.0"
        )
    model.load_state_dict({dst: state[src] for dst, src in wanted.items()}, strict=False)
