"""train: the segmentation network (and, joint DEAL, its difficulty branch) on a labeled pool.

    python stages/train.py --initial                  # the round-0 model every method shares
    python stages/train.py --method M --round R       # round R of method M

Round 0 of a method adopts the shared initial model (it is the same model for
every method), except learning loss: its loss prediction module learns with
the network (Yoo and Kweon), so it trains its own round 0 on the same initial
pool, with method_train.learning_loss. The model is retrained from scratch
every round, as published.
An interrupted run resumes from its last epoch checkpoint in runs/.resume/.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)

from common import (  # noqa: E402
    POOLS, RUNS, Resume, copy_file, load_params, load_split, model_config, read_pool, round_index, run_key, runtime,
    save_state, set_threads, split_ids, train_config, write_json, dataset_info,
)


def training_mode(params: dict, method: str | None) -> str:
    """joint for DEAL methods when deal.mode is joint (the initial model too if any DEAL method runs)."""
    deal_here = bool(params["deal_methods"]) if method is None else method in params["deal_methods"]
    return "joint" if deal_here and params["deal"]["mode"] == "joint" else "segmentation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--initial", action="store_true")
    parser.add_argument("--method")
    parser.add_argument("--round")
    args = parser.parse_args()
    params = load_params()
    from deal.acquisition import CUSTOM_TRAINING

    custom = args.method in CUSTOM_TRAINING
    if args.initial:
        pool_path, out = POOLS / "initial.json", RUNS / "initial"
    else:
        out = RUNS / args.method / args.round
        if round_index(params, args.round) == 0 and not custom:
            copy_file(RUNS / "initial" / "train.json", out / "train.json")
            copy_file(RUNS / "initial" / "model.pt", out / "model.pt")
            print(f"train: {args.method} {args.round} adopts the shared initial model")
            return
        pool_path = POOLS / args.round / f"{args.method}.json"

    from deal.data.memory import InMemorySegmentation
    from deal.data.transforms import train_transforms
    from deal.models import build_model
    from deal.training import train

    set_threads(params)
    info = dataset_info()
    pool = read_pool(pool_path)
    mode = "learning_loss" if custom else training_mode(params, args.method)
    t = params["train"]
    images, masks = load_split("train", pool.labeled)
    augment = train_transforms(tuple(t["crop"]), scale=tuple(t["scale"]), void_index=info["void_index"], hflip=t["flip"])
    train_set = InMemorySegmentation(images, masks, transform=augment)
    val_set = InMemorySegmentation(*load_split("val")) if split_ids("val") else None
    cfg = train_config(params, "segmentation" if custom else mode, len(train_set), seed_offset=0)
    options = params["method_train"][args.method] if args.method else {}
    config = model_config(params, with_difficulty=mode == "joint", loss_module_hidden=options.get("hidden"))
    model = build_model(config, seed=params["seed"])

    stage = "initial" if args.initial else f"{args.method}-{args.round}"
    # a checkpoint resumes only this exact run: same configs, same images, same code
    key = run_key(train=cfg, model=config, mode=mode, options=options, seed=params["seed"], runtime=runtime(params),
                  dataset=info, images=images, masks=masks, val=val_set.images if val_set is not None else None,
                  val_masks=val_set.masks if val_set is not None else None, init=model.state_dict())
    resume = Resume(stage, key, "train")
    print(f"train: {stage}: {len(train_set)} labeled images, {cfg.epochs} epochs, mode {mode}")
    common = dict(num_classes=info["num_classes"], void_index=info["void_index"], val_set=val_set,
                  resume=resume.load(), save_last=resume.save)
    if custom:  # learning loss: the network and its loss prediction module together
        from deal.models.learning_loss import train_learning_loss

        result = train_learning_loss(model, model.loss_module, train_set, cfg, lambda_loss=options["lambda"],
                                     margin=options["margin"], detach_after=options["detach_after"], **common)
    else:
        result = train(model, train_set, cfg, **common)
    save_state(out / "model.pt", result.state_dict)
    write_json(out / "train.json", {
        "labeled": len(train_set), "epochs": cfg.epochs, "mode": mode,
        "best_epoch": result.best_epoch, "best_val_miou": result.best_miou, "history": result.history,
    })
    resume.done()
    best = f"{result.best_miou:.4f}" if result.best_miou is not None else "n/a"
    print(f"train: {stage}: best val mIoU {best} at epoch {result.best_epoch}")


if __name__ == "__main__":
    main()
