"""Training throughput: the bare two-branch step vs the real loop with data and augmentation.

    python bench/train.py --json bench/results/train.json [--sizes 64x64,180x240,360x480] [--device auto]

The bare step feeds synthetic tensors already on the device; the real loop is
`deal.training.train` on an in-memory dataset with the training transforms
(random scale, crop, flip, normalisation), the DataLoader and the losses.
Both use the project's default network (width 0.35, head 64) and the
published one (width 1.0, head 256) with precision `auto`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench._common import machine, table, timed, write_json  # noqa: E402
from deal.data.memory import InMemorySegmentation  # noqa: E402
from deal.data.transforms import train_transforms  # noqa: E402
from deal.losses import deal_loss  # noqa: E402
from deal.models import ModelConfig, build_model  # noqa: E402
from deal.runtime import autocast, memory_format, resolve_device, resolve_precision  # noqa: E402
from deal.training import TrainConfig, build_optimizer, train  # noqa: E402

NETWORKS = {"default": (0.35, 64), "published": (1.0, 256)}


def bare_step_rate(net: str, size: tuple[int, int], batch: int, device, steps: int) -> float:
    width, head = NETWORKS[net]
    model = build_model(ModelConfig(num_classes=11, width_mult=width, head_channels=head,
                                    grid=(size[0] // 4, size[1] // 4)), seed=0)
    dtype = resolve_precision("auto", device)
    fmt = memory_format(dtype)
    model.to(device, memory_format=fmt).train()
    optimizer = build_optimizer(model, TrainConfig())
    x = torch.randn(batch, 3, *size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 11, (batch, *size), device=device)

    def step():
        with autocast(device, dtype):
            out = model(x)
        loss, _ = deal_loss(out.logits, out.difficulty_logits, y, void_index=11)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def run():
        for _ in range(steps):
            step()

    return batch * steps / timed(run, device, repeat=1, warmup=1)


def loop_rate(net: str, size: tuple[int, int], batch: int, device, steps: int) -> float:
    width, head = NETWORKS[net]
    n = batch * steps
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, *size), dtype=torch.uint8, generator=g)
    masks = torch.randint(0, 11, (n, *size), dtype=torch.uint8, generator=g)
    data = InMemorySegmentation(images, masks, transform=train_transforms(size, void_index=11))
    model = build_model(ModelConfig(num_classes=11, width_mult=width, head_channels=head,
                                    grid=(size[0] // 4, size[1] // 4)), seed=0)
    cfg = TrainConfig(epochs=1, batch_size=batch, val_every=1000, device=str(device), progress=False, mode="joint")
    train(model, data, cfg, num_classes=11, void_index=11)  # warm-up
    start = time.perf_counter()
    train(model, data, cfg, num_classes=11, void_index=11)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="64x64,180x240,360x480")
    parser.add_argument("--nets", default="default,published")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    for net in args.nets.split(","):
        for text in args.sizes.split(","):
            size = tuple(int(v) for v in text.split("x"))
            steps = max(2, args.steps * 64 * 64 // (size[0] * size[1])) if device.type == "cpu" else args.steps * 4
            bare = bare_step_rate(net, size, args.batch, device, steps)
            loop = loop_rate(net, size, args.batch, device, steps)
            rows.append({"network": net, "size": text, "batch": args.batch, "bare_img_s": round(bare, 1),
                         "loop_img_s": round(loop, 1), "loop_vs_bare": round(loop / bare, 2)})
            print(f"{net} {text}: bare {bare:.1f} img/s, loop {loop:.1f} img/s", file=sys.stderr)
    print(f"training on {machine(device)}, precision {resolve_precision('auto', device)}, torch {torch.__version__}")
    print(table(rows, [("network", "network"), ("size", "HxW"), ("batch", "batch"), ("bare_img_s", "bare step img/s"),
                       ("loop_img_s", "real loop img/s"), ("loop_vs_bare", "loop / bare")]))
    write_json(args.json, {"machine": machine(device), "torch": torch.__version__, "results": rows})


if __name__ == "__main__":
    main()
