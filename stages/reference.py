"""reference: the full-data model's test mIoU, the paper's dashed line (optional).

With `reference.train: true` the network is trained once on the whole train
split with the round recipe and evaluated on the test split; with false
(the default: it costs a training on all the data) the stage only records
that no reference was computed, and the report draws no dashed line. When
the test split doubles as validation, the last epoch's weights are kept, as
in the train stage (reference.json says which). With train.nproc (x train.nnodes) > 1
it trains and evaluates under torchrun, as the train and evaluate stages; rank 0 writes.
An interrupted training resumes from its last-epoch checkpoint (runs/.resume/reference.pt)
only if it is the same run, as the train stage's.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import (  # noqa: E402
    class_weights_of, model_config, set_threads, start_from_pretrained, train_augmentation, train_config,
)
from stages._shared.files import write_json  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from stages._shared.relaunch import distribute  # noqa: E402
from stages._shared.resume import Resume, run_key, runtime  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_params, stage_parser  # noqa: E402


def main() -> None:
    args = parse_stage_args(stage_parser(__doc__, per_round=False, out="the full-data model's test scores to write (JSON)",
                                         pretrained="the pretrain stage's folder (its weights start the network)"))
    params = load_params(prepared=args.prepared)
    out = args.out
    if not params.get("reference", {}).get("train", False):
        write_json(out, {"computed": False})
        print("reference: not computed (set reference.train: true for the full-data line)")
        return
    rank, world = distribute(params, __file__)
    from deal.data.memory import InMemorySegmentation
    from deal.distributed import finish, from_main  # rank 0's checkpoint for every rank: only rank 0 writes it
    from deal.models import build_model
    from deal.training import evaluate, train

    set_threads(params)
    info = args.prepared.info
    t = params["train"]
    augment = train_augmentation(params, info)
    images, masks = args.prepared.load("train")
    train_set = InMemorySegmentation(images, masks, transform=augment)
    val_set, checkpoint = args.prepared.checkpoint_rule()  # as the train stage
    seed = params["reference"]["seed"]
    cfg = train_config(params, "segmentation", len(train_set), seed=seed, class_weights=class_weights_of(params, masks, info))
    config = model_config(params, args.prepared.num_classes, with_difficulty=False)
    model = build_model(config, seed=seed)
    start_from_pretrained(model, args.pretrained)
    # the run's longest training resumes too, and only this exact run (as the train stage's key: init holds the
    # pretrained weights it starts from)
    key = run_key(params=stage_params(params, "reference"), train=cfg, model=config, seed=seed, runtime=runtime(params),
                  dataset=info, images=train_set.images, masks=train_set.masks,
                  val=val_set.images if val_set is not None else None,
                  val_masks=val_set.masks if val_set is not None else None, init=model.state_dict(), world=world)
    resume = Resume("reference", key, "reference")
    result = train(model, train_set, cfg, num_classes=info["num_classes"], void_index=info["void_index"], val_set=val_set,
                   resume=from_main(resume.load), save_last=resume.save)
    scores = evaluate(model, InMemorySegmentation(*args.prepared.load("test")), num_classes=info["num_classes"],
                      void_index=info["void_index"], cfg=cfg)
    if rank != 0:
        finish()
        return
    write_json(out, {"computed": True, "labeled": len(train_set), "miou": scores["miou"],
                     "pixel_accuracy": scores["pixel_accuracy"], "best_epoch": result.best_epoch,
                     "checkpoint": checkpoint})
    resume.done()  # only once the output is written
    finish()
    print(f"reference: all {len(train_set)} train images: test mIoU {scores['miou']:.4f} ({checkpoint})")


if __name__ == "__main__":
    main()
