"""difficulty: the difficulty branch of a round's model (DEAL methods).

deal.mode decoupled: train the branch alone on the frozen segmentation
network, its own error masks as targets. deal.mode joint (published): the
branch was trained with the network; it is taken as it is. Either way the
branch is then measured against the labeled pool's error masks (from the
errors stage): weighted BCE and the AUROC of difficulty as a predictor of error.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)

from common import (  # noqa: E402
    Resume, check_pam_backward, check_seed, dataset_info, fail, load_params, load_split, load_state, model_config,
    pam_backward_record, read_npy, read_pool,
    run_key, runtime, save_state, set_threads, parse_stage_args, stage_parser, train_config, write_json,
)


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, pool="the round's labeled pool (JSON)", model="the round's network", errors="its error masks (errors.npy)",
        out="the network with its difficulty branch to write (difficulty.pt)", record="its measures to write (difficulty.json)"))
    params = load_params()
    seed = check_seed(params, args.seed)
    import numpy as np
    import torch
    from deal.data.memory import InMemorySegmentation
    from deal.data.transforms import train_transforms
    from deal.losses import DIFFICULTY_LOSSES
    from deal.analysis import auroc
    from deal.models import build_model
    from deal.training import difficulty_logits_of, train

    set_threads(params)
    info = dataset_info()
    state = load_state(args.model)
    model = build_model(model_config(params, with_difficulty=True), seed=seed)
    pool = read_pool(args.pool)
    images, masks = load_split("train", pool.labeled)
    mode = params["deal"]["mode"]
    resume = None
    if mode == "joint":
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # another model.* config wrote it
            fail(f"{args.model}: does not fit the network params.yaml describes ({str(exc).splitlines()[0][:120]}); "
                 "rerun its train stage (dvc repro -f)")
        history = []
    else:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or not all(k.startswith("difficulty.") for k in missing):
            fail(f"{args.model}: not the segmentation network params.yaml describes; rerun its train stage (dvc repro -f)")
        check_pam_backward(params, info["num_classes"])
        t, d = params["train"], params["deal"]
        augment = train_transforms(tuple(t["crop"]), scale=tuple(t["scale"]), void_index=info["void_index"], hflip=t["flip"])
        train_set = InMemorySegmentation(images, masks, transform=augment)
        per_epoch = max(1, len(train_set) // t["batch_size"])
        cfg = train_config(params, "decoupled", len(train_set), epochs=max(1, -(-d["iterations"] // per_epoch)), seed=seed + 1)
        # a checkpoint resumes only this exact run: same configs, network, images and code
        key = run_key(train=cfg, model=model_config(params, with_difficulty=True), runtime=runtime(params), dataset=info,
                      network=state, init=model.state_dict(), images=images, masks=masks)
        resume = Resume(f"difficulty-seed{seed}-{args.method}-{args.round}", key, "difficulty")
        result = train(model, train_set, cfg, num_classes=info["num_classes"], void_index=info["void_index"],
                       resume=resume.load(), save_last=resume.save)
        history = result.history

    errors = torch.from_numpy(read_npy(args.errors))
    cfg = train_config(params, "segmentation", len(pool.labeled), epochs=1)
    logits = difficulty_logits_of(model, InMemorySegmentation(images, masks), cfg)
    valid = errors != 2
    target = (errors == 1).float()
    loss = DIFFICULTY_LOSSES[params["deal"]["loss"]](logits, target, valid)
    auc = auroc(torch.sigmoid(logits)[valid].numpy(), target[valid].numpy())
    save_state(args.out, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    write_json(args.record, {
        "mode": mode,
        "labeled_bce": float(loss),
        "labeled_auroc": None if np.isnan(auc) else auc,
        "gamma": float(model.difficulty.attention.gamma.detach()),
        "history": history,
        **({"pam_backward": pam_backward_record(params, model)} if mode == "decoupled" else {}),
    })
    if resume is not None:
        resume.done()  # only once the outputs are written
    print(f"difficulty: seed {seed} {args.method} {args.round} ({mode}): BCE {float(loss):.4f}, AUROC {auc:.3f} on the labeled pool, "
          f"gamma {float(model.difficulty.attention.gamma.detach()):.3f}")


if __name__ == "__main__":
    main()
