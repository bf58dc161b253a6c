"""train: the segmentation network (and, joint DEAL, its difficulty branch) on a labeled pool.

    python stages/train.py --stage train_initial@S-KIND --prepared P --pool POOL --out DIR
        # a round-0 model of seed S shared by methods: DIR/model.pt and DIR/train.json
    python stages/train.py --stage train@S-M-rK --prepared P --pool POOL --labels NPY \
        --initial-models DIR --model MODEL --record JSON     # round K of method M, seed S

(dvc.yaml and rounds/train/dvc.yaml spell the paths; under DVC the stage is $DVC_STAGE,
and --seed S --initial KIND or --seed S --method M --round R name it too.)

Round 0, as published: every baseline starts from one plain segmentation
network (KIND segmentation) and every DEAL method, with deal.mode joint,
from one network trained jointly with the difficulty loss (KIND joint), both
trained on the seed's initial pool, whatever methods are listed (adding a
method never retrains them); round 0 of a method adopts its kind's model.
In decoupled mode no method starts from the joint one: it is not trained
(its folder says so). Learning loss trains its own round 0: its loss prediction module
learns with the network (Yoo and Kweon), with method_train.learning_loss.
The model is retrained from scratch every round, as published. When the test
split doubles as validation, the last epoch's weights are kept instead of
the best-validation ones (train.json says which). An interrupted run resumes
from its last epoch checkpoint in runs/.resume/. A round's masks are the
dataset's, and for the images a person labelled (oracle: human) the label
stage's answers (--labels). With train.nproc (x train.nnodes) > 1
the script runs itself again under torchrun, DistributedDataParallel (docs/ddp.md);
rank 0 writes the checkpoints and the outputs.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import (  # noqa: E402
    class_weights_of, check_pam_backward, model_config, pam_backward_record, set_threads, start_from_pretrained,
    train_augmentation, train_config,
)
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_dir, copy_file, read_pool, save_state, write_json  # noqa: E402
from stages._shared.params import check_seed, load_params, round_index  # noqa: E402
from stages._shared.relaunch import distribute  # noqa: E402
from stages._shared.resume import Resume, run_key, runtime  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_params, stage_parser  # noqa: E402
from deal.config import INITIAL_MODELS, initial_model, initial_models_trained, training_mode  # noqa: E402
from deal.methods import method as lookup  # noqa: E402

# inside a round-0 model's folder (dvc.yaml names the folder: train_initial's out)
INITIAL_MODEL, INITIAL_RECORD = "model.pt", "train.json"


def adopt_initial(params: dict, seed: int, method: str, initial_models: Path, model: Path, record: Path) -> None:
    """Round 0 of `method`: a copy of the seed's shared round-0 model of its kind (initial_models/<kind>)."""
    kind = initial_model(params, method)
    src = initial_models / kind
    if not (src / INITIAL_MODEL).is_file():
        fail(f"{src}: holds no {kind} round-0 model; rerun `dvc repro` so that train_initial@{seed}-{kind} trains it")
    copy_file(src / INITIAL_RECORD, record)
    copy_file(src / INITIAL_MODEL, model)
    print(f"train: seed {seed} {method} round 0 adopts the shared {kind} round-0 model")


def main() -> None:
    parser = stage_parser(__doc__, kinds=("train", "train_initial"), pool="the labeled pool to train on (JSON)")
    parser.add_argument("--initial", dest="kind", choices=INITIAL_MODELS,
                        help="by hand: train the seed's shared round-0 model of this kind")
    parser.add_argument("--out", type=Path, help="round 0's shared model: the folder to write (model.pt, train.json)")
    parser.add_argument("--labels", type=Path, help="the pool's masks drawn by a person (.labels.npy, the label stage's)")
    parser.add_argument("--initial-models", type=Path, help="the seed's round-0 models' folder (round 0 adopts one)")
    parser.add_argument("--model", type=Path, help="the network to write (a round's training)")
    parser.add_argument("--record", type=Path, help="its train.json to write")
    parser.add_argument("--pretrained", type=Path, required=True, help="the pretrain stage's folder (its weights start the network)")
    args = parse_stage_args(parser)
    args.initial = args.kind  # train_initial@<seed>-<kind>: the seed's shared round-0 model of that kind
    if args.initial is not None and args.out is None:
        parser.error("a shared round-0 model (train_initial) needs --out DIR")
    if args.initial is None and None in (args.labels, args.initial_models, args.model, args.record):
        parser.error("a round's training needs --labels, --initial-models, --model and --record")
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    spec = lookup(args.method) if args.method else None
    own_round0 = spec is not None and not spec.shares_round0
    if args.initial:
        out = args.out
        if args.initial not in initial_models_trained(params):
            with atomic_dir(out) as work:
                write_json(work / "unused.json", {"kind": args.initial, "trained": False,
                                                  "reason": "deal.mode is decoupled: DEAL methods start from the plain network"})
            print(f"train: seed {seed}: deal.mode is decoupled, so no method starts from a joint round-0 model; "
                  "not trained")
            return
    elif round_index(params, args.round) == 0 and not own_round0:
        adopt_initial(params, seed, args.method, args.initial_models, args.model, args.record)
        return
    rank, world = distribute(params, __file__)  # several processes: torchrun runs this script again
    pool_path = args.pool

    from deal.data.memory import InMemorySegmentation
    from deal.distributed import finish, from_main  # rank 0's checkpoint for every rank: only rank 0 writes it
    from deal.models import build_model
    from deal.training import train

    set_threads(params)
    info = args.prepared.info
    pool = read_pool(pool_path)
    learning_loss = spec is not None and spec.training == "learning_loss"
    mode = args.initial or ("learning_loss" if learning_loss else training_mode(params, args.method))
    t = params["train"]
    # the initial pool is all the dataset's masks; a round's pool may hold a person's
    images, masks = args.prepared.load("train", pool.labeled) if args.initial else args.prepared.load_labeled(pool, args.labels)
    augment = train_augmentation(params, info)
    train_set = InMemorySegmentation(images, masks, transform=augment)
    val_set, checkpoint = args.prepared.checkpoint_rule()
    held_out = val_set is not None
    cfg = train_config(params, "segmentation" if learning_loss else mode, len(train_set), seed=seed,
                       class_weights=class_weights_of(params, masks, info))
    options = params["method_train"][args.method] if args.method else {}
    config = model_config(params, args.prepared.num_classes, with_difficulty=mode == "joint", loss_module_hidden=options.get("hidden"))
    model = build_model(config, seed=seed)
    start = start_from_pretrained(model, args.pretrained)
    if config.difficulty:
        check_pam_backward(params, info["num_classes"])

    stage = f"seed{seed}-initial-{args.initial}" if args.initial else f"seed{seed}-{args.method}-{args.round}"
    # a checkpoint resumes only this exact run: every param the stage declares (so DVC reruns it for), the
    # configs built from them, the same images and weights, the same code
    key = run_key(params=stage_params(params, args.stage_kind, vars(args)), train=cfg, model=config, mode=mode,
                  options=options, seed=seed, runtime=runtime(params),
                  dataset=info, images=images, masks=masks, val=val_set.images if val_set is not None else None,
                  val_masks=val_set.masks if val_set is not None else None, init=model.state_dict(), world=world)
    resume = Resume(stage, key, "train")
    print(f"train: {stage}: {len(train_set)} labeled images, {cfg.epochs} epochs, mode {mode}, "
          f"{'from the ' + start + ' pretraining' if start != 'none' else 'from scratch'}; keeps the {checkpoint}")
    extra_loss = None
    if learning_loss:  # its loss prediction module learns with the network
        from deal.acquisition.learning_loss import RankingLoss

        extra_loss = RankingLoss(model.loss_module, lambda_loss=options["lambda"], margin=options["margin"],
                                 detach_after=options["detach_after"])
    result = train(model, train_set, cfg, num_classes=info["num_classes"], void_index=info["void_index"], val_set=val_set,
                   resume=from_main(resume.load), save_last=resume.save, extra_loss=extra_loss)
    record = {
        "seed": seed, "labeled": len(train_set), "epochs": cfg.epochs, "mode": mode, "checkpoint": checkpoint,
        "pretrained": start,
        "best_epoch": result.best_epoch, "best_val_miou": result.best_miou, "history": result.history,
    }
    if config.difficulty:  # the two backwards agree to float32 rounding, not bit for bit
        record["pam_backward"] = pam_backward_record(params, model)
    if world > 1:
        record["processes"] = world
    if rank != 0:  # rank 0 writes; the others wait for it in finish()
        finish()
        return
    if args.initial:  # one folder, written whole: model.pt and train.json
        with atomic_dir(out) as work:
            save_state(work / INITIAL_MODEL, result.state_dict)
            write_json(work / INITIAL_RECORD, record)
    else:
        save_state(args.model, result.state_dict)
        write_json(args.record, record)
    resume.done()
    finish()
    best = f"best val mIoU {result.best_miou:.4f} at epoch {result.best_epoch}" if held_out else \
        f"kept epoch {result.best_epoch} ({checkpoint})"
    print(f"train: {stage}: {best}")


if __name__ == "__main__":
    main()
