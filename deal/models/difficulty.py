"""The difficulty branch: probability attention (PAM) over the softmax map.

`P` (B x C x h x w, probabilities) attends to itself with no query/key/value
projections: `E = P^T P` (N x N, unscaled), `A = softmax(E)`,
`Q = gamma * P A^T + P`. That is attention with q = k = v = P^T and scale 1,
so `scaled_dot_product_attention` computes it without holding the N x N
matrix (the published code materialises it: 92 MB per CamVid image in fp32).
On the CPU its backward runs through a kernel that uses the symmetry of
q = k = v (`deal.models.pam_cpu`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deal.models.pam_cpu import attention


class ProbabilityAttention(nn.Module):
    """PAM with a learnable scalar `gamma` that starts at 0 (identity at init)."""

    def __init__(self, backward: str = "auto") -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.backward = backward  # deal.pam_backward: auto | symmetric | sdpa (deal.models.pam_cpu)
        self.backward_ran: set[str] = set()  # the backwards used since built: what a result records

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        b, c, h, w = probs.shape
        # The fused kernels need a unit stride on the last axis; a transposed
        # view would silently fall back to the math kernel and its N x N matrix.
        tokens = probs.reshape(b, c, h * w).transpose(1, 2).contiguous()  # B x N x C
        attended, ran = attention(tokens, self.backward)
        if ran is not None:
            self.backward_ran.add(ran)
        attended = attended.transpose(1, 2).reshape(b, c, h, w)
        return self.gamma * attended + probs


def naive_probability_attention(probs: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The published form, with the explicit N x N matrix. For tests and benchmarks only."""
    b, c, h, w = probs.shape
    p = probs.reshape(b, c, h * w)
    attention = torch.softmax(torch.bmm(p.transpose(1, 2), p), dim=-1)  # B x N x N
    q = torch.bmm(p, attention.transpose(1, 2))
    return gamma * q.reshape(b, c, h, w) + probs


class DifficultyHead(nn.Module):
    """Semantic difficulty from the 1/4-resolution logits.

    resize to the attention grid -> softmax -> PAM -> 1x1 conv (C -> 1, bias)
    -> bilinear upsampling to the output size. Returns the pre-sigmoid map
    (`M^d = sigmoid(result)`): the losses take logits for numerical stability.

    `detach=True` (decoupled training) stops the difficulty loss from reaching
    the segmentation branch; `detach=False` is the published joint training.
    The branch runs in float32 even under autocast: energies are probability
    dot products in [0, 1] whose small differences bf16 would round away.
    """

    def __init__(self, num_classes: int, grid: tuple[int, int] = (60, 80), detach: bool = False,
                 pam_backward: str = "auto") -> None:
        super().__init__()
        self.grid = tuple(int(g) for g in grid)
        self.detach = detach
        self.attention = ProbabilityAttention(pam_backward)
        self.project = nn.Conv2d(num_classes, 1, kernel_size=1, bias=True)

    def forward(self, low_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.detach:
            low_logits = low_logits.detach()
        with torch.autocast(low_logits.device.type, enabled=False):
            logits = low_logits.float()
            if tuple(logits.shape[-2:]) != self.grid:
                logits = F.interpolate(logits, size=self.grid, mode="bilinear", align_corners=False)
            probs = torch.softmax(logits, dim=1).contiguous()
            difficulty = self.project(self.attention(probs))
            return F.interpolate(difficulty, size=tuple(size), mode="bilinear", align_corners=False)
