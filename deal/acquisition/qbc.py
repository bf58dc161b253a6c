"""QBC by Monte-Carlo dropout: `T` stochastic passes, vote entropy or BALD.

As in DEAL's comparison (after Gal et al. 2017): the committee is `T`
forward passes (default 10) with dropout on at inference time and every
other layer, BatchNorm included, in eval mode. Per pixel, the committee's
disagreement is the entropy of its votes (`vote_entropy`, the argmax class of
each pass) or the mutual information between the prediction and the weights
(`bald`: `H(mean_t p_t) - mean_t H(p_t)`); an image's score is the mean over
its pixels, higher first.

QBC needs the model, not one output, so it is not a `Heuristic`: a
`QBC` instance has `score_batch(model, images) -> Tensor[B]` (the same "one
score per image, higher first" contract; the caller sets device, autocast
and memory format, as for `predict`).

Two ways to run the passes, equal up to float rounding:
- `strategy="split"` (default, DeepLabV3Plus or DEALNet only): the network
  has three dropout layers, at the end of ASPP (0.5, torchvision's ASPP
  like DEAL's) and in the decoder (0.5, 0.1). What comes before the first
  (encoder, ASPP's convolutions, low-level projection) runs once; the rest
  (ASPP's dropout, upsampling, the decoder, classifier) once per pass, the
  passes stacked along the batch axis.
- `strategy="repeat"`: any model with `nn.Dropout` layers; the batch is
  repeated and the whole network runs on the stacked passes.
The split saves less than one might hope: at 64x64 the per-pass part (the
decoder at stride 4, upsampling to the input size, argmax) outweighs the
encoder: `bench/score.py` prints the time of each strategy against T bare
forwards (docs/performance.md). `resolution="low"` (votes on the
1/4-resolution logits) cuts the per-pass cost further, as an option.

Dropout masks come from generators seeded by `seed` (one per dropout layer,
drawn pass after pass), not from torch's global RNG: the same seed gives the
same scores however the passes are grouped (`passes_per_batch`), and the
network's dropout modules never change mode. Votes and probabilities are
accumulated pass by pass: memory does not grow with `T`.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from deal.acquisition.uncertainty import pixel_entropy

SCORES = ("vote_entropy", "bald")
STRATEGIES = ("split", "repeat")
RESOLUTIONS = ("full", "low")


class CommitteeStats:
    """Pass-by-pass accumulation of the committee's votes or mean probabilities.

    `add(logits)` takes one or more passes (P x B x C x H x W logits);
    `scores()` gives one score per image (B).
    """

    def __init__(self, score: str = "vote_entropy") -> None:
        if score not in SCORES:
            raise ValueError(f"QBC score must be one of {SCORES}, got {score!r}")
        self.score = score
        self.passes = 0
        self.votes: torch.Tensor | None = None  # B x C x H x W vote counts
        self.prob_sum: torch.Tensor | None = None  # B x C x H x W sum of p_t
        self.entropy_sum: torch.Tensor | None = None  # B x H x W sum of H(p_t)

    def add(self, logits: torch.Tensor) -> None:
        p, b, c = logits.shape[:3]
        if self.score == "vote_entropy":
            if self.votes is None:
                self.votes = torch.zeros((b, c, *logits.shape[3:]), device=logits.device)
            votes = logits.argmax(dim=2).transpose(0, 1)  # B x P x H x W class ids
            self.votes.scatter_add_(1, votes, torch.ones_like(votes, dtype=self.votes.dtype))
        else:
            probs = torch.softmax(logits.float(), dim=2)
            if self.prob_sum is None:
                self.prob_sum = torch.zeros((b, c, *logits.shape[3:]), device=logits.device)
                self.entropy_sum = torch.zeros((b, *logits.shape[3:]), device=logits.device)
            self.prob_sum += probs.sum(dim=0)
            self.entropy_sum += pixel_entropy(probs.flatten(0, 1)).unflatten(0, (p, b)).sum(dim=0)
        self.passes += p

    def scores(self) -> torch.Tensor:
        if self.passes == 0:
            raise ValueError("no committee pass was added")
        if self.score == "vote_entropy":
            per_pixel = pixel_entropy(self.votes / self.passes)
        else:
            # H(mean p) - mean H(p) >= 0 in exact arithmetic; clamp the rounding
            per_pixel = (pixel_entropy(self.prob_sum / self.passes) - self.entropy_sum / self.passes).clamp_min(0)
        return per_pixel.flatten(1).mean(dim=1)


def vote_entropy(pass_logits: torch.Tensor) -> torch.Tensor:
    """Mean pixel vote entropy of `T x B x C x H x W` committee logits (B scores)."""
    stats = CommitteeStats("vote_entropy")
    stats.add(pass_logits)
    return stats.scores()


def bald(pass_logits: torch.Tensor) -> torch.Tensor:
    """Mean pixel mutual information (BALD) of `T x B x C x H x W` committee logits."""
    stats = CommitteeStats("bald")
    stats.add(pass_logits)
    return stats.scores()


def _segmenter(model: nn.Module) -> nn.Module:
    return getattr(model, "segmenter", model)


def _repeat(x: torch.Tensor, passes: int) -> torch.Tensor:
    """`passes` copies of the batch, pass-major, in `x`'s memory format."""
    if passes == 1:
        return x
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return x.repeat(passes, *([1] * (x.dim() - 1))).contiguous(memory_format=fmt)


def _dropouts(module: nn.Module) -> list[nn.Dropout]:
    """The model's element-wise dropout layers, in module order (their mask generators' index)."""
    others = [type(m).__name__ for m in module.modules()
              if isinstance(m, nn.modules.dropout._DropoutNd) and type(m) is not nn.Dropout]
    if others:
        raise TypeError(f"QBC's masks are element-wise (nn.Dropout); the model also has {others[0]}")
    return [m for m in module.modules() if type(m) is nn.Dropout]


class QBC:
    """Query by committee with MC dropout; `score_batch(model, images) -> B scores`."""

    name = "qbc"
    needs_difficulty = False

    def __init__(
        self,
        passes: int = 10,
        score: str = "vote_entropy",
        seed: int = 0,
        strategy: str = "split",
        passes_per_batch: int | None = None,
        max_batch: int = 64,
        resolution: str = "full",
    ) -> None:
        if passes < 1:
            raise ValueError(f"QBC needs at least one pass, got passes={passes}")
        if score not in SCORES:
            raise ValueError(f"QBC score must be one of {SCORES}, got {score!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"QBC strategy must be one of {STRATEGIES}, got {strategy!r}")
        if resolution not in RESOLUTIONS:
            raise ValueError(f"QBC resolution must be one of {RESOLUTIONS}, got {resolution!r}")
        self.passes = passes
        self.score = score
        self.seed = seed
        self.strategy = strategy
        # passes stacked in one forward: all of them unless that exceeds max_batch images
        self.passes_per_batch = passes_per_batch
        self.max_batch = max_batch
        self.resolution = resolution
        self._generators: dict[tuple[str, int], torch.Generator] = {}

    # -------------------------------------------------------------- dropout masks

    def _generator(self, device: torch.device, layer: int) -> torch.Generator:
        key = (str(device), layer)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed * 1009 + layer)
        return self._generators[key]

    def _dropped(self, x: torch.Tensor, layer: int, p: float, passes: int) -> torch.Tensor:
        """Dropout of `x` (passes*B rows, pass-major) with pass-by-pass seeded masks."""
        if p == 0:
            return x
        if p >= 1:
            return torch.zeros_like(x)
        gen = self._generator(x.device, layer)
        rows = x.shape[0] // passes
        keep = torch.cat(
            [torch.rand((rows, *x.shape[1:]), generator=gen, device=x.device) >= p for _ in range(passes)]
        )
        return x * keep / (1 - p)

    def _chunks(self, batch: int) -> list[int]:
        per = self.passes_per_batch or max(1, min(self.passes, self.max_batch // max(batch, 1)))
        sizes, left = [], self.passes
        while left > 0:
            sizes.append(min(per, left))
            left -= sizes[-1]
        return sizes

    # -------------------------------------------------------------- passes

    def _split_passes(self, model: nn.Module, images: torch.Tensor):
        seg = _segmenter(model)
        aspp = getattr(seg, "aspp", None)
        if not (hasattr(seg, "decoder") and hasattr(aspp, "convs") and hasattr(aspp, "project")):
            raise TypeError(
                f"strategy 'split' needs a DeepLabV3Plus or DEALNet, got {type(model).__name__}; use strategy='repeat'"
            )
        layer_of = {m: i for i, m in enumerate(_dropouts(model))}
        if not set(layer_of) <= set(aspp.project) | set(seg.decoder):
            raise TypeError("strategy 'split' expects dropout only in ASPP's projection and the decoder; use 'repeat'")
        project = list(aspp.project)
        first = next((i for i, m in enumerate(project) if type(m) is nn.Dropout), len(project))
        # Deterministic, once: encoder, ASPP up to its dropout, low-level projection.
        low = seg.low_level(images)
        high = seg.high_level(low)
        pooled = torch.cat([conv(high) for conv in aspp.convs], dim=1)
        for module in project[:first]:
            pooled = module(pooled)
        low = seg.low_project(low)

        def run(modules, h, passes):
            for module in modules:
                if type(module) is nn.Dropout:
                    h = self._dropped(h, layer_of[module], module.p, passes)
                else:
                    h = module(h)
            return h

        batch = images.shape[0]
        for passes in self._chunks(batch):
            # Per pass: ASPP dropout, upsampling, the decoder with its two dropouts, classifier.
            h = run(project[first:], _repeat(pooled, passes), passes)
            h = F.interpolate(h, size=low.shape[-2:], mode="bilinear", align_corners=False)
            h = run(seg.decoder, torch.cat([h, _repeat(low, passes)], dim=1), passes)
            yield self._resized(seg.classifier(h), images).unflatten(0, (passes, batch))

    def _repeat_passes(self, model: nn.Module, images: torch.Tensor):
        dropouts = _dropouts(model)
        current = {"passes": 1}

        def hook(layer):
            def apply(module, inputs, output):
                return self._dropped(output, layer, module.p, current["passes"])
            return apply

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(dropouts)]
        try:
            for passes in self._chunks(images.shape[0]):
                current["passes"] = passes
                out = model(_repeat(images, passes))
                logits = out.logits if self.resolution == "full" else out.low_logits
                yield logits.unflatten(0, (passes, images.shape[0]))
        finally:
            for handle in handles:
                handle.remove()

    def _resized(self, low_logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if self.resolution == "low":
            return low_logits
        return F.interpolate(low_logits, size=images.shape[-2:], mode="bilinear", align_corners=False)

    def pass_logits(self, model: nn.Module, images: torch.Tensor):
        """Yield the committee's logits, P x B x C x H x W per group of P passes.

        The model is put in eval mode: dropout comes from the seeded masks.
        """
        model.eval()
        run = self._split_passes if self.strategy == "split" else self._repeat_passes
        yield from run(model, images)

    @torch.inference_mode()
    def score_batch(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """One score per image of `images` (B x 3 x H x W), higher = more disagreement."""
        stats = CommitteeStats(self.score)
        for logits in self.pass_logits(model, images):
            stats.add(logits)
        return stats.scores()


@contextmanager
def mc_dropout(model: nn.Module):
    """Eval mode with only the dropout layers in train mode (torch's global RNG).

    For models scored outside `QBC` (BatchNorm keeps its running statistics);
    restores each module's mode on exit.
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in _dropouts(model):
        m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.train(mode)


class QBCBald(QBC):
    """QBC scored by BALD by default: a method name of its own, to run beside `qbc`."""

    name = "qbc_bald"

    def __init__(self, passes: int = 10, score: str = "bald", **options) -> None:
        super().__init__(passes=passes, score=score, **options)
