"""Confusion matrix, per-class IoU, mIoU and pixel accuracy with void ignored."""

from __future__ import annotations

import torch
import torch.distributed as dist


class ConfusionMatrix:
    """Accumulates a C x C confusion matrix (rows: ground truth, columns: prediction).

    Void pixels (target == void_index) are ignored. A class absent from both
    the ground truth and the predictions has no IoU (NaN): it is left out of
    the mIoU, which is the mean over the classes that occur in either. This is
    the rule everywhere in the project (curves, per-class tables, reports).
    """

    def __init__(self, num_classes: int, void_index: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.void_index = void_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        target = target.reshape(-1).to(self.mat.device)
        prediction = prediction.reshape(-1).to(self.mat.device)
        keep = (target != self.void_index) & (target >= 0) & (target < self.num_classes)
        index = target[keep].long() * self.num_classes + prediction[keep].long()
        self.mat += torch.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, -1)

    def reset(self) -> None:
        self.mat.zero_()

    def reduce_from_all_processes(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.all_reduce(self.mat)

    def compute(self) -> dict:
        mat = self.mat.double()
        tp = mat.diag()
        union = mat.sum(0) + mat.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
        total = mat.sum()
        present = ~torch.isnan(iou)
        return {
            "miou": float(iou[present].mean()) if present.any() else float("nan"),
            "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
            "per_class_iou": [float(v) for v in iou.cpu()],
        }
