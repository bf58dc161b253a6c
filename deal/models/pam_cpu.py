"""PAM's backward on the CPU through its symmetry, compiled on first use.

The forward stays `scaled_dot_product_attention`. Its generic CPU backward
treats q, k and v as three tensors: every one of the N x N pairs, five small
matrix products each. PAM has q = k = v, so the gradient's kernel is
symmetric and `pam_backward.c` visits each pair once (see its header for the
formula), which makes forward+backward faster on the CPU (`bench/pam.py`
prints both; docs/performance.md).

The C source is compiled with the system C compiler (`$CC`, else `cc`) for
this CPU into `$DEAL_KERNEL_CACHE` (default `~/.cache/deal/kernels`), once per
class count, and loaded with ctypes; no Python headers are needed. The
backward is a param (`deal.pam_backward`, passed down as `backward`): `auto`
uses the kernel where it applies (float32 CPU tensors, a compiler) and SDPA's
own backward elsewhere, with one warning when the kernel cannot be built;
`symmetric` raises instead of falling back; `sdpa` never uses the kernel. The
two agree to float32 rounding, not bit for bit, so the backend that ran is
recorded beside the results (train.json).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from deal.atomic import atomic_path

SOURCE = Path(__file__).with_name("pam_backward.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared")
# Larger class counts would spill the per-row registers and the stack buffer.
MAX_CLASSES = 64
# The kernel shifts energies by max|x|^2, so they span [-2 max|x|^2, 0];
# keep that well inside float32 exp (e^-87 is its smallest normal).
MAX_SQUARED_NORM = 40.0
BACKWARDS = ("auto", "symmetric", "sdpa")


def cache_dir() -> Path:
    if os.environ.get("DEAL_KERNEL_CACHE"):
        return Path(os.environ["DEAL_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deal" / "kernels"


def _cpu_features() -> str:
    # -march=native code is only valid on the CPU it was built for.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compile(compiler: str, num_classes: int, target: Path) -> None:
    with atomic_path(target) as tmp:
        cmd = [compiler, *FLAGS, f"-DNC={num_classes}", str(SOURCE), "-o", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")


class KernelUnavailable(RuntimeError):
    """deal.pam_backward is symmetric but the kernel cannot run here."""


def clear_cache() -> None:
    """Forget built kernels and given warnings (tests that change $CC or the cache folder)."""
    _build.cache_clear()
    _warn_once.cache_clear()


def load_backward(num_classes: int, required: bool = False) -> ctypes.CDLL | None:
    """The compiled kernel for `num_classes`; when it cannot be built, None with one
    warning, or (`required`) KernelUnavailable."""
    library, reason = _build(num_classes)
    if library is None:
        if required:
            raise KernelUnavailable(reason)
        _warn_once(reason)
    return library


@lru_cache(maxsize=None)
def _warn_once(reason: str) -> None:
    warnings.warn(f"deal: {reason}; PAM uses SDPA's generic backward (slower). Install gcc or set CC, "
                  "or set deal.pam_backward: sdpa to silence this.", RuntimeWarning, stacklevel=4)


@lru_cache(maxsize=None)
def _build(num_classes: int) -> tuple[ctypes.CDLL | None, str]:
    """The kernel, or None and why (once per process: a failed build is not retried every forward)."""
    try:
        return _build_uncached(num_classes), ""
    except KernelUnavailable as error:
        return None, str(error)


def _build_uncached(num_classes: int) -> ctypes.CDLL:
    if not 1 <= num_classes <= MAX_CLASSES:
        raise KernelUnavailable(f"the kernel handles 1 to {MAX_CLASSES} classes, not {num_classes}")
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise KernelUnavailable(f"no C compiler ({compiler!r}) to build {SOURCE.name}")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(), _cpu_features().encode()]))
    target = cache_dir() / f"pam_backward-c{num_classes}-{key.hexdigest()[:16]}.so"
    try:
        if not target.exists():
            _compile(compiler, num_classes, target)
        library = ctypes.CDLL(str(target))
    except (OSError, RuntimeError) as error:
        raise KernelUnavailable(f"could not build {SOURCE.name} with {compiler!r} ({error})") from None
    library.pam_backward.restype = ctypes.c_int
    library.pam_backward.argtypes = [ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 4 + [ctypes.c_int]
    return library


def sdpa_attention(tokens: torch.Tensor) -> torch.Tensor:
    """Attention of `tokens` (B x N x C) over themselves, scale 1, through SDPA."""
    c = tokens.shape[-1]
    # Zero channels change no dot product and add zero output columns; a
    # multiple of 8 lets the CPU kernel vectorise (faster for C = 11: bench/pam.py).
    padded = F.pad(tokens, (0, (-c) % 8)).unsqueeze(1)
    return F.scaled_dot_product_attention(padded, padded, padded, scale=1.0)[:, 0, :, :c]


def check_backward(backward: str, device: torch.device, num_classes: int) -> None:
    """Raise KernelUnavailable when `backward` is symmetric and cannot run on `device`
    for `num_classes` (the train stages call it before training)."""
    if backward not in BACKWARDS:
        raise ValueError(f"PAM backward must be one of {', '.join(BACKWARDS)}, got {backward!r}")
    if backward == "symmetric":
        if torch.device(device).type != "cpu":
            raise KernelUnavailable(f"the symmetric kernel runs on the CPU, and training runs on {device}")
        load_backward(num_classes, required=True)


def symmetric_backward_for(tokens: torch.Tensor, backward: str = "auto") -> ctypes.CDLL | None:
    """The kernel to differentiate `tokens` with, or None where SDPA's backward applies."""
    if backward not in BACKWARDS:
        raise ValueError(f"PAM backward must be one of {', '.join(BACKWARDS)}, got {backward!r}")
    if backward == "sdpa" or not (tokens.requires_grad and torch.is_grad_enabled()):
        return None  # nothing to differentiate: the kernel has no forward of its own
    required = backward == "symmetric"
    if tokens.device.type != "cpu" or tokens.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
        if required:
            raise KernelUnavailable(f"the symmetric kernel needs float32 CPU tokens, got {tokens.dtype} on {tokens.device}")
        return None
    library = load_backward(tokens.shape[-1], required)
    if library is None:
        return None
    with torch.no_grad():
        if float(tokens.square().sum(-1).max()) > MAX_SQUARED_NORM:
            if required:
                raise KernelUnavailable(f"token norms beyond the kernel's range (squared norm > {MAX_SQUARED_NORM})")
            return None
    return library


class SymmetricAttention(torch.autograd.Function):
    """SDPA's forward with the symmetric backward of `pam_backward.c`."""

    @staticmethod
    def forward(ctx, tokens: torch.Tensor, library: ctypes.CDLL) -> torch.Tensor:
        attended = sdpa_attention(tokens).contiguous()
        ctx.save_for_backward(tokens, attended)
        ctx.library = library
        return attended

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_attended: torch.Tensor):
        tokens, attended = ctx.saved_tensors
        grad_attended = grad_attended.float().contiguous()
        grad_tokens = torch.empty_like(tokens)
        b, n, _ = tokens.shape
        failed = ctx.library.pam_backward(
            b, n, tokens.data_ptr(), attended.data_ptr(), grad_attended.data_ptr(), grad_tokens.data_ptr(),
            torch.get_num_threads(),
        )
        if failed:
            raise MemoryError(f"PAM backward: out of memory for {b} x {n} tokens")
        return grad_tokens, None


def attention(tokens: torch.Tensor, backward: str = "auto") -> tuple[torch.Tensor, str | None]:
    """Attention with q = k = v = `tokens` (B x N x C), scale 1; and the backward it
    will differentiate with (symmetric or sdpa; None when nothing is differentiated)."""
    tokens = tokens.contiguous()  # the kernel and SDPA's fused paths read rows in place
    library = symmetric_backward_for(tokens, backward)
    if library is None:
        differentiated = tokens.requires_grad and torch.is_grad_enabled()
        return sdpa_attention(tokens), "sdpa" if differentiated else None
    return SymmetricAttention.apply(tokens, library), "symmetric"
