"""PAM's backward on the CPU through its symmetry, compiled on first use.

The forward stays `scaled_dot_product_attention`. Its generic CPU backward
treats q, k and v as three tensors: every one of the N x N pairs, five small
matrix products each. PAM has q = k = v, so the gradient's kernel is
symmetric and `pam_backward.c` visits each pair once (see its header for the
formula). At the CamVid grid that makes forward+backward 1.7x faster on
2 AVX-512 cores (`bench/pam.py`: 214 -> 129 ms).

The C source is compiled with the system C compiler (`$CC`, else `cc`) for
this CPU into `$DEAL_KERNEL_CACHE` (default `~/.cache/deal/kernels`), once per
class count, and loaded with ctypes; no Python headers are needed. Without a
compiler, or with `DEAL_PAM_BACKWARD=sdpa`, PAM keeps SDPA's own backward:
same values to float32 rounding, only slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

SOURCE = Path(__file__).with_name("pam_backward.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared")
# Larger class counts would spill the per-row registers and the stack buffer.
MAX_CLASSES = 64
# The kernel shifts energies by max|x|^2, so they span [-2 max|x|^2, 0];
# keep that well inside float32 exp (e^-87 is its smallest normal).
MAX_SQUARED_NORM = 40.0


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    try:
        cmd = [compiler, *FLAGS, f"-DNC={num_classes}", str(SOURCE), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@lru_cache(maxsize=None)
def load_backward(num_classes: int) -> ctypes.CDLL | None:
    """The compiled kernel for `num_classes`, or None (with one warning) when it cannot be built."""
    if not 1 <= num_classes <= MAX_CLASSES:
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        warnings.warn(
            f"deal: no C compiler ({compiler!r}); PAM uses SDPA's generic backward (slower). "
            "Install gcc, set CC, or set DEAL_PAM_BACKWARD=sdpa to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(), _cpu_features().encode()]))
    target = cache_dir() / f"pam_backward-c{num_classes}-{key.hexdigest()[:16]}.so"
    try:
        if not target.exists():
            _compile(compiler, num_classes, target)
        library = ctypes.CDLL(str(target))
    except (OSError, RuntimeError) as error:
        warnings.warn(
            f"deal: could not build {SOURCE.name} with {compiler!r} ({error}); PAM uses SDPA's generic "
            "backward (slower). Set DEAL_PAM_BACKWARD=sdpa to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    library.pam_backward.restype = ctypes.c_int
    library.pam_backward.argtypes = [ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 4 + [ctypes.c_int]
    return library


def sdpa_attention(tokens: torch.Tensor) -> torch.Tensor:
    """Attention of `tokens` (B x N x C) over themselves, scale 1, through SDPA."""
    c = tokens.shape[-1]
    # Zero channels change no dot product and add zero output columns; a
    # multiple of 8 lets the CPU kernel vectorise (2x faster for C = 11).
    padded = F.pad(tokens, (0, (-c) % 8)).unsqueeze(1)
    return F.scaled_dot_product_attention(padded, padded, padded, scale=1.0)[:, 0, :, :c]


def symmetric_backward_for(tokens: torch.Tensor) -> ctypes.CDLL | None:
    """The kernel to differentiate `tokens` with, or None where SDPA's backward applies."""
    if not (tokens.requires_grad and torch.is_grad_enabled()):
        return None  # nothing to differentiate: the kernel has no forward of its own
    if tokens.device.type != "cpu" or tokens.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
        return None
    choice = os.environ.get("DEAL_PAM_BACKWARD", "auto")
    if choice not in ("auto", "sdpa"):
        raise ValueError(f"DEAL_PAM_BACKWARD={choice!r}: set it to auto (the default) or sdpa")
    if choice == "sdpa":
        return None
    library = load_backward(tokens.shape[-1])
    if library is None:
        return None
    with torch.no_grad():
        if float(tokens.square().sum(-1).max()) > MAX_SQUARED_NORM:
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


def attention(tokens: torch.Tensor) -> torch.Tensor:
    """Attention with q = k = v = `tokens` (B x N x C), scale 1."""
    tokens = tokens.contiguous()  # the kernel and SDPA's fused paths read rows in place
    library = symmetric_backward_for(tokens)
    if library is None:
        return sdpa_attention(tokens)
    return SymmetricAttention.apply(tokens, library)
