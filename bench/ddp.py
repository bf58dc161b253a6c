"""Several processes on one machine: training and scoring images/s by processes x threads.

    python bench/ddp.py [--layouts 1x2,2x1] [--n 32] [--size 64 64] [--batch 8] [--epochs 2]
                        [--device auto] [--json bench/results/ddp.json]

Each layout PxT runs P processes of T torch threads under torchrun, as a stage
with train.nproc P does (deal.launch), in fresh processes:

- training: `deal.training.train` (the real loop: augmentation, DataLoader,
  DistributedDataParallel for P > 1) on N random images at the default network
  (width 0.35, head 64, joint mode with the difficulty branch), global batch B
  (B / P per process); images/s over `--epochs` epochs after one warm-up epoch;
- scoring: `deal.acquisition.scoring.score` of entropy and DE on N candidates,
  P shards of whole batches gathered back; images/s of one call after a warm-up.

Timed inside the workers (rank 0, between barriers): torchrun's and the
interpreters' start-up (seconds a stage) are printed apart. On the CPU the
default compares 1 process x 2 threads with 2 processes x 1 thread; on CUDA
give e.g. `--layouts 1x1,2x1` (one GPU per process). Figures depend on what
else the machine runs: measure on an idle one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import cpu_name  # noqa: E402



def worker(a) -> None:
    """One process of a layout (under torchrun): rank 0 writes the rates to --out."""
    import torch

    from deal import distributed
    from deal.acquisition.scoring import score
    from deal.data.memory import InMemorySegmentation
    from deal.data.transforms import train_transforms
    from deal.models import ModelConfig, build_model
    from deal.runtime import resolve_device, resolve_precision, retain_freed_memory
    from deal.training import TrainConfig, train

    retain_freed_memory()
    torch.set_num_threads(a.threads)
    rank, world = distributed.init(a.device)
    device = resolve_device(a.device)
    h, w = a.size
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (a.n, 3, h, w), dtype=torch.uint8, generator=g)
    masks = torch.randint(0, 11, (a.n, h, w), dtype=torch.uint8, generator=g)
    config = ModelConfig(num_classes=11, width_mult=0.35, head_channels=64, grid=(h // 4, w // 4))
    data = InMemorySegmentation(images, masks, transform=train_transforms((h, w), void_index=11))
    cfg = TrainConfig(epochs=1, batch_size=a.batch, val_every=1000, device=a.device, progress=False, mode="joint")

    def timed(fn) -> float:
        distributed.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        distributed.barrier()
        return time.perf_counter() - start

    model = build_model(config, seed=0)
    train(model, data, cfg, num_classes=11, void_index=11)  # warm-up
    many = dataclasses.replace(cfg, epochs=a.epochs)
    seconds = timed(lambda: train(build_model(config, seed=0), data, many, num_classes=11, void_index=11))
    trained = a.epochs * (a.n // a.batch) * a.batch  # drop_last: whole global batches
    rates = {"train_img_s": trained / seconds}
    candidates = (images, masks)
    ids = [f"i{i}" for i in range(a.n)]
    for name, options, net in (("entropy", {"rho": 1.0}, build_model(config, seed=0)),
                               ("deal_de", {"rho": 1.0, "k": 8, "span": "image"}, build_model(config, seed=0))):
        def run():
            score(name, options, ids, seed=0, candidates=candidates, model=net, cfg=cfg)
        run()  # warm-up
        rates[f"score_{name}_img_s"] = a.n / timed(run)
    if rank == 0:
        precision = resolve_precision("auto", device)
        rates.update(processes=world, threads=a.threads, device=str(device),
                     precision={None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[precision],
                     gpu=torch.cuda.get_device_name() if device.type == "cuda" else None, torch=torch.__version__)
        Path(a.out).write_text(json.dumps(rates))
    distributed.finish()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layouts", default="1x2,2x1", help="processes x threads, comma-separated (default 1x2,2x1)")
    p.add_argument("--n", type=int, default=32, help="images trained on and scored")
    p.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    p.add_argument("--batch", type=int, default=8, help="the global training batch (split over the processes)")
    p.add_argument("--epochs", type=int, default=2, help="timed training epochs (after one warm-up epoch)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the figures to this JSON file")
    # a worker's settings as one JSON word: torchrun's own parser refuses arguments of the
    # script that abbreviate several of its options ambiguously (--n: --nnodes, --nproc-per-node)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(argparse.Namespace(**json.loads(a.worker)))
        return 0
    layouts = [tuple(int(v) for v in text.split("x")) for text in a.layouts.split(",")]
    for procs, threads in layouts:
        if procs < 1 or threads < 1 or a.batch % procs:
            p.error(f"layout {procs}x{threads}: processes and threads >= 1, and --batch {a.batch} must split over "
                    f"{procs} processes")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        for procs, threads in layouts:
            out = Path(tmp) / f"{procs}x{threads}.json"
            settings = {"threads": threads, "out": str(out), "n": a.n, "size": list(a.size), "batch": a.batch,
                        "epochs": a.epochs, "device": a.device}
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
                   __file__, "--worker", json.dumps(settings)]
            start = time.perf_counter()
            done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stderr[-4000:], file=sys.stderr)
                return done.returncode
            found = json.loads(out.read_text())
            rows.append({"layout": f"{procs} x {threads}", **{k: round(v, 1) if isinstance(v, float) else v
                                                              for k, v in found.items()}, "wall_s": round(wall, 1)})
            print(f"  {procs} process(es) x {threads} thread(s): train {found['train_img_s']:.1f} img/s", file=sys.stderr)
    device = rows[0]["device"]
    where = rows[0]["gpu"] or cpu_name()
    print(f"{where} ({os.cpu_count()} cores seen), {device}, {rows[0]['precision']}, torch {rows[0]['torch']}; "
          f"{a.n} images {a.size[0]}x{a.size[1]}, global batch {a.batch}")
    from bench._common import table

    print(table(rows, [("layout", "processes x threads"), ("train_img_s", "train img/s"),
                       ("score_entropy_img_s", "score entropy img/s"), ("score_deal_de_img_s", "score DE img/s"),
                       ("wall_s", "wall s (start-up included)")]))
    from bench._common import write_json

    write_json(a.json, {"machine": where, "cores": os.cpu_count(), "device": device, "n": a.n, "size": list(a.size),
                        "batch": a.batch, "epochs": a.epochs, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
