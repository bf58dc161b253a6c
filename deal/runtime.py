"""Where and how a network runs: device, autocast precision, memory format, seeds.

Shared by training (deal.training), scoring (deal.acquisition.runner) and
VAAL's own networks, so that all of them pick the same device and precision.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch



def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32.

    `auto`: bf16 on CPUs with native bf16 (AVX512-BF16/AMX; faster training:
    bench/train.py), bf16 on CUDA GPUs that have it, else fp16 on CUDA.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def memory_format(dtype: torch.dtype | None) -> torch.memory_format:
    # channels_last pays off with the reduced-precision kernels (oneDNN, cuDNN).
    return torch.channels_last if dtype is not None else torch.contiguous_format


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def retain_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MB in the process's heap (glibc) instead of handing
    them back to the OS at once. Inference and training allocate the same large
    temporaries every batch; handed back and faulted in again each time they cost more
    than the arithmetic on them (bench/score.py prints the scoring rates with and
    without). Changes no value computed. False where the C library is not glibc."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return mallopt(m_mmap_threshold, 32 * 2**20) == 1 and mallopt(m_trim_threshold, 2**30) == 1


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows: every
    figure of time or speed names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
