"""difficulty: the difficulty branch of a round's model (DEAL methods).

deal.mode decoupled: train the branch alone on the frozen segmentation
network, its own error masks as targets, then measure it against the labeled
pool's error masks (from the errors stage): weighted BCE and the AUROC of
difficulty as a predictor of error. deal.mode joint (published): the branch
was trained with the network and is taken as it is: model.pt's bytes become
difficulty.pt (one object in the DVC cache), and its measures are the ones the
errors stage took on its pass over the labeled pool (errors.json), so the
network runs on the pool once.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import (  # noqa: E402
    check_pam_backward, model_config, pam_backward_record, set_threads, train_augmentation, train_config,
)
from stages._shared.errors import fail, missing  # noqa: E402
from stages._shared.files import (  # noqa: E402
    copy_file, file_sha256, load_state, read_json, read_npy, read_pool, save_state, write_json,
)
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.resume import Resume, run_key, runtime  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_params, stage_parser  # noqa: E402


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, pool="the round's labeled pool (JSON)", labels="its masks drawn by a person (.labels.npy)",
        model="the round's network", errors="its error masks (errors.npy)",
        errors_record="their summary (errors.json; in joint mode it holds the branch's measures)",
        out="the network with its difficulty branch to write (difficulty.pt)", record="its measures to write (difficulty.json)"))
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    mode = params["deal"]["mode"]
    if mode == "joint":
        take_joint_branch(params, args)
    else:
        train_decoupled_branch(params, args, seed)


def take_joint_branch(params: dict, args) -> None:
    """The branch model.pt carries, as the errors stage measured it on the labeled pool."""
    record = read_json(args.errors_record)
    found = record.get("difficulty_branch") if isinstance(record, dict) else None
    if not Path(args.model).is_file():
        missing(args.model)
    if found is None:
        fail(f"{args.model}: has no difficulty branch, but deal.mode is joint; rerun its train stage (dvc repro -f)")
    if found.get("loss") != params["deal"]["loss"]:
        fail(f"{args.errors_record}: measured with deal.loss {found.get('loss')!r}, params.yaml says "
             f"{params['deal']['loss']!r}; rerun its errors stage (dvc repro)")
    if found.get("model_sha256") != file_sha256(args.model):
        fail(f"{args.errors_record}: measured another network than {args.model}; rerun its errors stage (dvc repro)")
    copy_file(args.model, args.out)
    write_json(args.record, {"mode": "joint", "labeled_bce": found["labeled_bce"], "labeled_auroc": found["labeled_auroc"],
                             "gamma": found["gamma"], "history": []})
    auc = found["labeled_auroc"]
    print(f"difficulty: seed {args.seed} {args.method} {args.round} (joint): BCE {found['labeled_bce']:.4f}, "
          f"AUROC {float('nan') if auc is None else auc:.3f} on the labeled pool, gamma {found['gamma']:.3f}")


def train_decoupled_branch(params: dict, args, seed: int) -> None:
    """Train the branch on the frozen network, then measure it on the labeled pool."""
    import torch
    from deal.analysis import branch_measures
    from deal.data.memory import InMemorySegmentation
    from deal.config import epochs_for_steps
    from deal.models import build_model
    from deal.training import difficulty_logits_of, train

    set_threads(params)
    info = args.prepared.info
    state = load_state(args.model)
    model = build_model(model_config(params, args.prepared.num_classes, with_difficulty=True), seed=seed)
    pool = read_pool(args.pool)
    images, masks = args.prepared.load_labeled(pool, args.labels)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # a tensor of another shape: another model.width_mult or head_channels
        missing, unexpected = [], ["(another shape)"]
    if unexpected or not all(k.startswith("difficulty.") for k in missing):
        fail(f"{args.model}: not the segmentation network params.yaml describes; rerun its train stage (dvc repro -f)")
    check_pam_backward(params, info["num_classes"])
    t, d = params["train"], params["deal"]
    augment = train_augmentation(params, info)
    train_set = InMemorySegmentation(images, masks, transform=augment)
    cfg = train_config(params, "decoupled", len(train_set), epochs=epochs_for_steps(d["iterations"], len(train_set), t["batch_size"]),
                       seed=seed + 1)
    # a checkpoint resumes only this exact run: every param the stage declares, the configs built from them,
    # the same network, images and code
    key = run_key(params=stage_params(params, "difficulty", vars(args)), train=cfg,
                  model=model_config(params, args.prepared.num_classes, with_difficulty=True), runtime=runtime(params), dataset=info,
                  network=state, init=model.state_dict(), images=images, masks=masks)
    resume = Resume(f"difficulty-seed{seed}-{args.method}-{args.round}", key, "difficulty")
    result = train(model, train_set, cfg, num_classes=info["num_classes"], void_index=info["void_index"],
                   resume=resume.load(), save_last=resume.save)

    errors = torch.from_numpy(read_npy(args.errors))
    cfg = train_config(params, "segmentation", len(pool.labeled), epochs=1)
    logits = difficulty_logits_of(model, InMemorySegmentation(images, masks), cfg)
    measures = branch_measures(logits, errors, d["loss"])
    gamma = float(model.difficulty.attention.gamma.detach())
    save_state(args.out, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    write_json(args.record, {"mode": "decoupled", **measures, "gamma": gamma, "history": result.history,
                             "pam_backward": pam_backward_record(params, model)})
    resume.done()  # only once the outputs are written
    auc = measures["labeled_auroc"]
    print(f"difficulty: seed {seed} {args.method} {args.round} (decoupled): BCE {measures['labeled_bce']:.4f}, "
          f"AUROC {float('nan') if auc is None else auc:.3f} on the labeled pool, gamma {gamma:.3f}")


if __name__ == "__main__":
    main()
