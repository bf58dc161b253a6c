"""evaluate: mIoU, per-class IoU and pixel accuracy of a round's model on the test split.

Without a test split (your own images, oracle: human, no labelled test images)
the round is not scored: the record says so (miou null), and so does the report.

With train.nproc (x train.nnodes) > 1 it runs itself again under torchrun: each
process evaluates whole batches of the test split and the confusion matrices
are summed, which gives the single-process numbers exactly; rank 0 writes.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import load_model, set_threads, train_config  # noqa: E402
from stages._shared.files import read_json, write_json  # noqa: E402
from stages._shared.params import check_seed, load_params, round_index  # noqa: E402
from stages._shared.relaunch import distribute  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def main() -> None:
    args = parse_stage_args(stage_parser(__doc__, model="the round's network", record="its train.json",
                                         out="the test scores to write (JSON)"))
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    rank, _ = distribute(params, __file__, split=bool(args.prepared.ids("test")))  # no test split: nothing to share
    from deal.data.memory import InMemorySegmentation
    from deal.distributed import finish
    from deal.training import evaluate

    set_threads(params)
    info = args.prepared.info
    test_set = InMemorySegmentation(*args.prepared.load("test"))
    if len(test_set):
        model = load_model(params, args.model, args.prepared.num_classes)
        cfg = train_config(params, "segmentation", len(test_set), epochs=1)
        scores = evaluate(model, test_set, num_classes=info["num_classes"], void_index=info["void_index"], cfg=cfg)
    else:  # nothing to score on: said, not invented
        scores = {"miou": None, "pixel_accuracy": None, "per_class_iou": [None] * info["num_classes"]}
    if rank != 0:
        finish()
        return
    record = read_json(args.record)
    labeled = record["labeled"]
    train_size = len(args.prepared.ids("train"))
    result = {
        "seed": seed,
        "method": args.method,
        "round": args.round,
        "round_index": round_index(params, args.round),
        "labeled": labeled,
        "percent_labeled": 100 * labeled / train_size,
        "test_images": len(test_set),
        "miou": scores["miou"],
        "pixel_accuracy": scores["pixel_accuracy"],
        "per_class_iou": dict(zip(info["class_names"], scores["per_class_iou"])),
        "checkpoint": record.get("checkpoint"),  # which weights train kept: best validation or last epoch
        # the training of these weights, per epoch (loss, lr, validation mIoU): report draws it
        "history": record.get("history", []),
    }
    write_json(args.out, result)
    finish()
    scored = (f"test mIoU {scores['miou']:.4f}, pixel accuracy {scores['pixel_accuracy']:.4f}" if len(test_set)
              else "not scored: the dataset has no labelled test split")
    print(f"evaluate: seed {seed} {args.method} {args.round}: {labeled} labeled ({result['percent_labeled']:.1f} %), {scored}")


if __name__ == "__main__":
    main()
