"""What tests/test_ddp.py runs under torchrun (2 processes, gloo, CPU): training, resume,
evaluation and scoring of the real network on tiny sets; rank 0 writes what it found
into OUT for the test to compare with one process.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py train|score OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deal import distributed  # noqa: E402
from deal.models import ModelConfig, build_model  # noqa: E402
from deal.training import TrainConfig, evaluate, train  # noqa: E402

VOID = 3  # as conftest.make_tiny_set
CFG = dict(batch_size=4, lr=0.01, val_every=2, precision="fp32", device="cpu", progress=False, seed=1)


def tiny_set(n: int, seed: int):
    """conftest.make_tiny_set (imported here would pull in the pipeline helpers)."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, 3, (n, 4, 4), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    palette = torch.tensor([[1.5, -1.0, -1.0], [-1.0, 1.5, -1.0], [-1.0, -1.0, 1.5]])
    images = palette[masks].permute(0, 3, 1, 2) + 0.3 * torch.randn(n, 3, 32, 32, generator=g)
    masks[:, :2, :2] = VOID
    return TensorDataset(images.float(), masks.long())


def uint8_set(n: int, seed: int):
    """(uint8 images N x 3 x 32 x 32, masks) with structure: what the score stage loads."""
    data = tiny_set(n, seed)
    images = ((data.tensors[0] + 1.5) * 70).clamp(0, 255).to(torch.uint8)
    return images, data.tensors[1].clamp(max=2).to(torch.uint8)


def model(seed: int = 0, difficulty: bool = True, loss_module: int | None = None):
    return build_model(ModelConfig(num_classes=3, width_mult=0.35, head_channels=32, grid=(8, 8), difficulty=difficulty,
                                   loss_module_hidden=loss_module), seed=seed)


def same_on_every_rank(state: dict) -> bool:
    digest = torch.stack([v.double().sum() for v in state.values()]).sum().reshape(1)
    parts = [torch.zeros_like(digest) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, digest)
    return all(torch.equal(p, parts[0]) for p in parts)


def run_train(out: Path, rank: int) -> dict:
    data, val, test = tiny_set(16, 0), tiny_set(6, 1), tiny_set(20, 2)
    cfg = TrainConfig(epochs=4, **CFG)
    saved = []

    def save_last(state):  # the resume checkpoint: one file per call, named by the rank that wrote it
        saved.append(state["epoch"])
        torch.save(state, out / f"last-rank{rank}-epoch{state['epoch']}.pt")

    net = model()
    result = train(net, data, cfg, num_classes=3, void_index=VOID, val_set=val, save_last=save_last)
    found = {"history": result.history, "best_epoch": result.best_epoch, "saved": saved,
             "weights_agree": same_on_every_rank(result.state_dict)}
    # the stage evaluates on every rank, each its whole batches of the 20 images (8, 8, 4)
    found["test"] = evaluate(net, test, num_classes=3, void_index=VOID, cfg=cfg)
    if rank == 0:
        torch.save(result.state_dict, out / "model.pt")
    distributed.barrier()
    # resumed from epoch 2's checkpoint (rank 0's file) into a differently initialised network
    resume = torch.load(out / "last-rank0-epoch2.pt", weights_only=True)
    resumed = train(model(seed=9), data, cfg, num_classes=3, void_index=VOID, val_set=val, resume=resume)
    if rank == 0:
        torch.save(resumed.state_dict, out / "resumed.pt")
    found["resumed_history"] = resumed.history
    # learning loss's extra term and decoupled training (a frozen segmenter) under DDP
    from deal.acquisition.learning_loss import RankingLoss

    ll = model(difficulty=False, loss_module=16)
    ll_result = train(ll, data, TrainConfig(epochs=2, **{**CFG, "mode": "segmentation"}), num_classes=3, void_index=VOID,
                      extra_loss=RankingLoss(ll.loss_module))
    found["learning_loss"] = {"history": ll_result.history, "weights_agree": same_on_every_rank(ll_result.state_dict)}
    dec = model(seed=3)
    before = {k: v.clone() for k, v in dec.state_dict().items()}
    dec_result = train(dec, data, TrainConfig(epochs=2, **{**CFG, "mode": "decoupled"}), num_classes=3, void_index=VOID)
    changed = sorted(k for k, v in dec_result.state_dict.items() if not torch.equal(before[k], v))
    found["decoupled"] = {"changed": changed, "weights_agree": same_on_every_rank(dec_result.state_dict)}
    return found


class Counter:
    """Images each rank's network ran on (a forward hook)."""

    def __init__(self, net):
        self.images = 0
        net.segmenter.low_level.register_forward_hook(lambda module, args, output: self.add(args[0]))

    def add(self, images):
        self.images += images.shape[0]


def run_score(out: Path, rank: int) -> dict:
    from deal.acquisition.scoring import score

    candidates, labeled, unlabeled = uint8_set(20, 3), uint8_set(6, 4), uint8_set(24, 5)[0]
    ids = [f"c{i:02d}" for i in range(20)]
    cfg = TrainConfig(epochs=1, **CFG)  # inference batches of max(4, 8) = 8: 8 + 8 + 4 images
    found = {}
    for name, options, kind in (
        ("entropy", {}, "plain"), ("deal_ds", {}, "dif"), ("deal_de", {"k": 8, "span": "image"}, "dif"),
        ("learning_loss", {}, "ll"), ("coreset", {"metric": "euclidean"}, "plain"), ("qbc", {"passes": 2}, "plain"),
        ("vaal", {"iterations": 2, "channels": [8, 16], "latent_dim": 8, "image_size": 32, "batch_size": 4}, "plain"),
    ):
        net = model(difficulty=kind == "dif", loss_module=16 if kind == "ll" else None)
        counter = Counter(net)
        scores = score(name, {"rho": 0.5, **options}, ids, seed=7, candidates=candidates, model=net, labeled=labeled,
                       unlabeled_images=unlabeled, batch=5, cfg=cfg)
        found[name] = {"scores": scores, "images_run": counter.images}
    return found


def main() -> None:
    task, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    rank, world = distributed.init("cpu")
    assert world == 2 and dist.get_backend() == "gloo", (world, dist.get_backend())
    found = {"train": run_train, "score": run_score}[task](out, rank)
    parts = [None] * world
    dist.all_gather_object(parts, found)
    if rank == 0:
        (out / f"{task}.json").write_text(json.dumps(parts))
    distributed.finish()


if __name__ == "__main__":
    main()
