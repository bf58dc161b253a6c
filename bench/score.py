"""Scoring speed of every acquisition method on a pool, beside the bare forward.

    python bench/score.py [--n 128] [--size 64 64] [--models 0.35:64,1.0:256]
                          [--batch 16] [--passes 10] [--device auto] [--json bench/results/score.json]

A pool of N random images (untrained networks: speed does not depend on the
weights), 11 classes, inference_mode, with bf16 autocast + channels_last
where `deal.runtime.resolve_precision('auto', device)` picks bf16. Prints
images/s per method, for each model size (width multiplier : head
channels):

- forward: the segmentation network alone (the bare inference forward)
- entropy: forward + mean pixel entropy
- deal_ds / deal_de: forward with the difficulty branch (PAM on a grid of
  1/4 the input) + DS / DE
- qbc (split / repeat), qbc_bald: T MC-dropout passes; `x fwd` is the time
  relative to T bare forwards of the same pool
- coreset: pooled features of the pool and of a labeled set of N/2 images,
  then greedy k-center for b = 20 (the k-center time alone in its own column)
- vaal: VAE encoder + discriminator (default VAALConfig), scoring only
- learning_loss: forward_with_levels + loss prediction module, scoring only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=128, help="pool size (images)")
    p.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    p.add_argument("--models", default="0.35:64,1.0:256", help="width_mult:head_channels, comma-separated")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--passes", type=int, default=10, help="QBC passes T")
    p.add_argument("--b", type=int, default=20, help="core-set batch")
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-retain", action="store_true",
                   help="leave glibc's allocator as it is (the stages call deal.runtime.retain_freed_memory)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)

    import torch

    from bench._common import machine, timed, table, write_json
    from deal.acquisition import get_heuristic
    from deal.acquisition.coreset import kcenter_greedy, pooled_features
    from deal.acquisition.learning_loss import LearningLoss
    from deal.acquisition.qbc import QBC
    from deal.acquisition.vaal import VAAL, vaal_scores
    from deal.models import ModelConfig, build_model
    from deal.runtime import autocast, memory_format, resolve_device, resolve_precision

    if a.threads:
        torch.set_num_threads(a.threads)
    if not a.no_retain:
        from deal.runtime import retain_freed_memory

        retain_freed_memory()
    device = resolve_device(a.device)
    dtype = resolve_precision("auto", device)
    fmt = memory_format(dtype)
    h, w = a.size
    pool = torch.randn(a.n, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    labeled = torch.randn(max(1, a.n // 2), 3, h, w, generator=torch.Generator().manual_seed(1)).to(device)
    chunks = [c.contiguous(memory_format=fmt) for c in pool.split(a.batch)]
    labeled_chunks = [c.contiguous(memory_format=fmt) for c in labeled.split(a.batch)]
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    print(f"{machine(device)}; pool {a.n} x {h}x{w}, batch {a.batch}, {precision}"
          f"{' + channels_last' if dtype is not None else ''}")

    rows = []
    for spec in a.models.split(","):
        width, head = spec.split(":")
        cfg = dict(num_classes=a.classes, width_mult=float(width), head_channels=int(head), grid=(h // 4, w // 4))
        seg = build_model(ModelConfig(**cfg, difficulty=False), seed=0).to(device, memory_format=fmt).eval()
        dif = build_model(ModelConfig(**cfg, difficulty=True), seed=0).to(device, memory_format=fmt).eval()
        vaal = VAAL(device=str(device))
        vae, disc = vaal.build()
        vae.to(device).eval()
        disc.to(device).eval()
        ll = LearningLoss()
        ll.build(seg)
        ll.loss_module.to(device)

        def run(fn, over=chunks):
            def go():
                with torch.inference_mode(), autocast(device, dtype):
                    for x in over:
                        fn(x)
            return go

        entropy, ds, de = get_heuristic("entropy"), get_heuristic("deal_ds"), get_heuristic("deal_de", k=8)

        def coreset():
            with torch.inference_mode(), autocast(device, dtype):
                u = torch.cat([pooled_features(seg(x)) for x in chunks])
                l = torch.cat([pooled_features(seg(x)) for x in labeled_chunks])
            kcenter_greedy(u, l, min(a.b, a.n))

        with torch.inference_mode(), autocast(device, dtype):
            u = torch.cat([pooled_features(seg(x)) for x in chunks])
            l = torch.cat([pooled_features(seg(x)) for x in labeled_chunks])
        kcenter_s = timed(lambda: kcenter_greedy(u, l, min(a.b, a.n)), device, a.repeat)

        cases = {
            "forward": run(lambda x: seg(x)),
            "entropy": run(lambda x: entropy(seg(x))),
            "deal_ds": run(lambda x: ds(dif(x))),
            "deal_de": run(lambda x: de(dif(x))),
            "qbc split": run(lambda x: QBC(passes=a.passes).score_batch(seg, x)),
            "qbc repeat": run(lambda x: QBC(passes=a.passes, strategy="repeat").score_batch(seg, x)),
            "qbc_bald split": run(lambda x: QBC(passes=a.passes, score="bald").score_batch(seg, x)),
            "coreset": coreset,
            "vaal": run(lambda x: vaal_scores(vae, disc, x, batch_size=a.batch)),
            "learning_loss": run(lambda x: ll.score_batch(seg, x)),
        }
        forward_s = None
        for name, fn in cases.items():
            seconds = timed(fn, device, a.repeat)
            forward_s = seconds if name == "forward" else forward_s
            row = {
                "model": spec, "method": name, "images_per_s": round(a.n / seconds, 1),
                "vs_forward": round(seconds / forward_s, 2),
            }
            if name.startswith("qbc"):
                row["vs_T_forwards"] = round(seconds / (a.passes * forward_s), 2)
            if name == "coreset":
                row["kcenter_ms"] = round(kcenter_s * 1e3, 1)
            rows.append(row)
            print(f"  {spec} {name}: {row['images_per_s']} img/s", flush=True)

    print(table(rows, [("model", "width:head"), ("method", "method"), ("images_per_s", "img/s"),
                       ("vs_forward", "x forward time"), ("vs_T_forwards", f"x {a.passes} forwards"),
                       ("kcenter_ms", "k-center ms")]))
    write_json(a.json, {
        "machine": machine(device), "device": str(device), "precision": precision, "n": a.n, "size": [h, w],
        "batch": a.batch, "passes": a.passes, "coreset_b": a.b, "labeled_for_coreset": labeled.shape[0],
        "rows": rows,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
