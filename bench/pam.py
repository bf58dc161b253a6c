"""Naive (N x N bmm, as published) vs fused (scaled_dot_product_attention) PAM.

Three forms: `naive`; `fused`, the module as it runs (SDPA forward, and on
the CPU the symmetric backward of deal/models/pam_backward.c); `fused_sdpa`,
the same with SDPA's generic backward (deal.pam_backward: sdpa).

    python bench/pam.py --json bench/results/pam.json [--device auto] [--cases camvid,cityscapes]

Prints time and peak memory for forward and forward+backward. Each
(case, form) runs in a fresh subprocess so that one measurement's allocator
state does not leak into the next one's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FORMS = ("naive", "fused_sdpa", "fused")
CASES = {
    # name: (batch, classes, h, w)
    "camvid": (4, 11, 60, 80),  # the published CamVid attention grid
    "cityscapes": (4, 19, 86, 86),  # the published Cityscapes grid
    "cityscapes_quarter": (1, 19, 172, 172),  # the 1/4-resolution map of 688x688
}


def measure(case: str, form: str, device_name: str, repeat: int) -> dict:
    import torch

    from bench._common import peak_bytes, timed
    from deal.models import ProbabilityAttention, naive_probability_attention
    from deal.runtime import resolve_device

    device = resolve_device(device_name)
    b, c, h, w = CASES[case]
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(b, c, h, w, device=device), dim=1)
    backward = "sdpa" if form == "fused_sdpa" else "auto"  # deal.pam_backward
    pam = ProbabilityAttention(backward).to(device)
    with torch.no_grad():
        pam.gamma.fill_(0.5)
    run = (lambda p: naive_probability_attention(p, pam.gamma)) if form == "naive" else (lambda p: pam(p))

    def forward():
        with torch.no_grad():
            run(probs)

    def forward_backward():
        p = probs.detach().requires_grad_()
        run(p).sum().backward()

    return {
        "case": case,
        "form": form,
        "shape": f"{b}x{c}x{h}x{w}",
        "forward_ms": timed(forward, device, repeat) * 1e3,
        "forward_backward_ms": timed(forward_backward, device, repeat) * 1e3,
        "forward_peak_mb": peak_bytes(forward, device) / 2**20,
        "forward_backward_peak_mb": peak_bytes(forward_backward, device) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cases", default="camvid,cityscapes", help=f"comma list of {','.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--_one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._one:
        print(json.dumps(measure(*args._one, args.device, args.repeat)))
        return

    import torch

    from bench._common import machine, table, write_json
    from deal.runtime import resolve_device

    rows = []
    for case in args.cases.split(","):
        if case not in CASES:
            parser.error(f"unknown case {case!r}; known: {', '.join(CASES)}")
        for form in FORMS:
            cmd = [sys.executable, __file__, "--_one", case, form, "--device", args.device, "--repeat", str(args.repeat)]
            # Freed blocks of 64 KiB and more go back to the OS at once, so the
            # CPU peak-RSS reading sees every large temporary.
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["killed"])[-1]
                rows.append({"case": case, "form": form, "error": reason})
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for case in args.cases.split(","):
        naive = next((r for r in rows if r["case"] == case and r["form"] == "naive" and "error" not in r), None)
        for fused in (r for r in rows if r["case"] == case and r["form"] != "naive" and "error" not in r):
            if naive:
                fused["speedup_fwd_bwd"] = naive["forward_backward_ms"] / fused["forward_backward_ms"]
                fused["memory_ratio_fwd_bwd"] = naive["forward_backward_peak_mb"] / max(fused["forward_backward_peak_mb"], 0.1)
    shown = [
        {k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows
    ]
    device = resolve_device(args.device)
    print(f"PAM on {machine(device)}, torch {torch.__version__}")
    print(table(shown, [("case", "case"), ("form", "form"), ("shape", "BxCxhxw"), ("forward_ms", "fwd ms"),
                        ("forward_backward_ms", "fwd+bwd ms"), ("forward_peak_mb", "fwd MB"),
                        ("forward_backward_peak_mb", "fwd+bwd MB"), ("speedup_fwd_bwd", "x faster"),
                        ("memory_ratio_fwd_bwd", "x less mem"), ("error", "error")]))
    write_json(args.json, {"machine": machine(device), "torch": torch.__version__, "results": rows})


if __name__ == "__main__":
    main()
