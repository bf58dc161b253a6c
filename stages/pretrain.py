"""pretrain: the starting weights of every training of the run, learned once per dataset.

    python stages/pretrain.py --images data/prepared/train_images.npy --info data/prepared/info.json --out runs/pretrain

pretrain.method (deal.pretrain):
- none: the trainings start from their seeded initialisation (and model.pretrained's
  ImageNet encoder, when set); OUT/pretrain.json says so.
- colorization: self-supervised on the train split's images (the file --images: the
  masks are not among this stage's inputs): the segmentation network learns to colour
  grey images, pretrain.steps SGD steps with the train recipe's augmentation.
- scenes: supervised on pretrain.scenes generated street scenes at the dataset's size,
  in pretrain.conditions, from pretrain.seed (a dataset with CamVid's 11 classes; on the
  embedded scenes another seed and other conditions than the run's own).
OUT/model.pt holds the network; every train stage (train_initial, train, reference)
loads each tensor whose name and shape fit (deal.pretrain.transfer). A team computes
it once: it is a DVC output like any other (dvc push / pull). An interrupted run
resumes from its last-epoch checkpoint in runs/.resume/.
"""

import math
import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import set_threads, train_config  # noqa: E402
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_dir, read_json, read_npy, save_state, write_json  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from stages._shared.resume import Resume, run_key, runtime  # noqa: E402
from stages._shared.stage import stage_params, stage_parser  # noqa: E402

MODEL, RECORD = "model.pt", "pretrain.json"


def main() -> None:
    parser = stage_parser(__doc__, per_round=False, with_prepared=False,
                          images="the train split's images (the prepared train_images.npy)",
                          info="the prepared dataset's info.json (classes, size)",
                          out="the folder to write: model.pt and pretrain.json")
    args = parser.parse_args()
    params = load_params()
    p = params["pretrain"]
    info = read_json(args.info)
    if p["method"] == "none":
        with atomic_dir(args.out) as work:
            write_json(work / RECORD, {"method": "none"})
        print("pretrain: method none; the trainings start from their own initialisation")
        return
    if p["method"] == "scenes":
        from deal.data.synthetic import SYNTHETIC_INFO

        data = params["dataset"]
        if data["kind"] == "synthetic" and p["seed"] == data["seed"]:
            fail(f"params.yaml: pretrain.seed: {p['seed']} is dataset.seed: the pretraining scenes would be the run's own "
                 "train scenes with their labels; give pretrain.seed another value")
        if data["kind"] == "synthetic" and p["conditions"] == data["synthetic"]["conditions"]:
            fail(f"params.yaml: pretrain.conditions: {p['conditions']} is the run's own dataset.synthetic.conditions: "
                 "pretraining with labels of the very distribution the run rations; pretrain on another world "
                 "(e.g. conditions none before a long_tail run) or use colorization")
        if list(info["class_names"]) != list(SYNTHETIC_INFO.class_names):
            fail(f"params.yaml: pretrain.method: scenes needs a dataset with CamVid's 11 classes, but {args.info} has "
                 f"{len(info['class_names'])} ({', '.join(info['class_names'][:4])}, ...); use colorization (or none)")

    import torch
    from deal.data.memory import InMemorySegmentation
    from deal.data.transforms import train_transforms
    from deal.models import ModelConfig, build_model
    from deal.training import train

    set_threads(params)
    t, m = params["train"], params["model"]
    size = tuple(info["size"])
    if p["method"] == "colorization":
        from deal.pretrain import colorization_data

        images = torch.from_numpy(read_npy(args.images))
        inputs, targets, bins = colorization_data(images, p["bin_size"])
        classes, void, task = len(bins), 255, {"bins": len(bins), "bin_size": bins.bin_size, "images": len(images)}
    else:
        from deal.data.synthetic import SYNTHETIC_INFO
        from deal.pretrain import generated_scenes

        inputs, targets = generated_scenes(p["scenes"], size, p["seed"], p["conditions"])
        classes, void = len(SYNTHETIC_INFO.class_names), SYNTHETIC_INFO.void_index
        task = {"scenes": p["scenes"], "conditions": p["conditions"], "seed": p["seed"]}
    data = InMemorySegmentation(inputs, targets, transform=train_transforms(
        tuple(t["crop"]), scale=tuple(t["scale"]), void_index=void, hflip=t["flip"]))
    run = {**params, "train": {**t, "iterations": p["steps"], "batch_size": p["batch_size"], "lr": p["lr"],
                               "average": "none"}}
    cfg = train_config(run, "segmentation", len(data), seed=p["seed"])
    config = ModelConfig(num_classes=classes, width_mult=m["width_mult"], head_channels=m["head_channels"],
                         difficulty=False, pretrained=m["pretrained"])
    model = build_model(config, seed=p["seed"])
    # every param the stage declares (train.crop, scale and flip among them), the configs, inputs and code
    key = run_key(params=stage_params(params, "pretrain"), pretrain=p, train=cfg, model=config, runtime=runtime(params),
                  inputs=inputs, targets=targets, init=model.state_dict())
    resume = Resume("pretrain", key, "pretrain")
    steps_per_epoch = max(1, len(data) // cfg.batch_size)
    print(f"pretrain: {p['method']} on {len(data)} images at {size[0]}x{size[1]}, {cfg.epochs} epochs "
          f"({cfg.epochs * steps_per_epoch} steps), {classes} classes")
    result = train(model, data, cfg, num_classes=classes, void_index=void, resume=resume.load(), save_last=resume.save)
    with atomic_dir(args.out) as work:
        save_state(work / MODEL, result.state_dict)
        write_json(work / RECORD, {"method": p["method"], **task, "classes": classes, "epochs": cfg.epochs,
                                   "steps": cfg.epochs * steps_per_epoch,
                                   "loss": [round(r["loss"], 4) for r in result.history]})
    resume.done()
    last = result.history[-1]["loss"] if result.history else math.nan
    print(f"pretrain: {p['method']}: final loss {last:.3f}")


if __name__ == "__main__":
    main()
