"""prepare: the dataset at training size and its index.

The data is read where it lies, at dataset.path: the embedded scenes that
the generate stage wrote into data/synthetic, or a real dataset's root
outside the repository. That folder is a DVC dependency of this stage, so
an edited image, mask or split list reruns it. It is indexed and validated
(and the budget checked against its train split) before anything is
decoded; every split is then decoded once, resized to dataset.resize and
stored as uint8 arrays in data/prepared, which the other stages
memory-map, with data/prepared/source.json saying where it came from. Each
seed's initial pool is drawn from it by init@<seed>.

With oracle: human (a folder dataset), train images may lack masks: they are
the pool a person labels, stored as all void, and listed in
data/prepared/unmasked.json (empty otherwise); val and test may be absent.

    python stages/prepare.py        # what `dvc repro prepare` runs
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from deal.config import schedule  # noqa: E402
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_dir, write_json, write_npy  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def open_dataset(params: dict):
    """The dataset of dataset.kind; only that kind's module is imported."""
    data = params["dataset"]
    kind, path = data["kind"], data["path"]
    if kind == "synthetic":
        from deal.data.synthetic import SyntheticStreets

        if not Path(path, "synthetic.json").is_file() or not Path(path, "train").is_dir():
            fail(f"{path}: no generated scenes; run `dvc repro generate` (or the whole pipeline)")
        return SyntheticStreets(path)
    if kind == "camvid":
        from deal.data.camvid import CamVid

        return CamVid(path, test_split=data.get("test_split", "test"))
    if kind == "cityscapes":
        from deal.data.cityscapes import Cityscapes

        return Cityscapes(path, val_holdout=data.get("val_holdout", 300), seed=params["dataset"]["seed"])
    from deal.data.folder import FolderDataset

    return FolderDataset(path, unlabeled_pool=params["oracle"] == "human")


def splits_of(dataset, human: bool) -> tuple[str, ...]:
    """The splits prepare reads: all three, or with a person as the oracle train and whichever of
    val and test the folder has (no test split: nothing to score the rounds on, which the report says)."""
    if not human:
        return ("train", "val", "test")
    return ("train",) + tuple(s for s in ("val", "test") if s in dataset.splits())


def main() -> None:
    args = parse_stage_args(stage_parser(__doc__, per_round=False, with_prepared=False,
                                         out="the prepared arrays' folder to write"))
    params = load_params()
    from deal.config import ParamsError, check_params
    from deal.data.base import DatasetError
    from deal.data.validate import validate

    size = tuple(params["dataset"]["resize"])
    human = params["oracle"] == "human"
    try:
        dataset = open_dataset(params)
        splits = splits_of(dataset, human)
        # structure only: read_many decodes every file next and stops on a bad one
        problems = validate(dataset, splits, decode_images=False)
        if problems:
            fail(problems)
        ids = {split: dataset.ids(split) if split in splits else [] for split in ("train", "val", "test")}
        unmasked = dataset.unmasked("train") if human else []
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        fail(getattr(exc, "lines", None) or str(exc))
    try:  # the budget against this train split, and the run's size, before anything is decoded or written
        check_params(params, train_size=len(ids["train"]), counts={split: len(v) for split, v in ids.items()},
                     num_classes=dataset.info.num_classes, disk=True)
    except ParamsError as exc:
        fail(exc.lines)
    initial = schedule(params, len(ids["train"]))[0]  # checked just above
    masked = len(ids["train"]) - len(unmasked)
    if masked < initial:  # the initial pool is drawn from the images that have masks
        root = Path(params["dataset"]["path"])
        fail(f"{root / 'masks'}: {masked} of the {len(ids['train'])} train images have masks, but budget.initial is "
             f"{initial}: the initial pool is drawn from them; label {initial - masked} more into {root / 'masks'}, "
             "or lower budget.initial")
    with atomic_dir(args.out) as work:
        for split, split_ids in ids.items():
            images, masks = dataset.read_many(split_ids, size=size, progress=True)
            write_npy(work / f"{split}_images.npy", images.numpy())
            write_npy(work / f"{split}_masks.npy", masks.numpy())
        info = dataset.info.to_dict()
        info["num_classes"] = dataset.info.num_classes
        info["size"] = list(size)
        write_json(work / "info.json", info)
        write_json(work / "ids.json", ids)
        write_json(work / "unmasked.json", {"train": unmasked})
        write_json(work / "source.json", {
            "kind": params["dataset"]["kind"],
            "path": params["dataset"]["path"],
            "counts": {split: len(v) for split, v in ids.items()},
        })
    print(f"prepare: {params['dataset']['kind']}: " + ", ".join(f"{s} {len(v)}" for s, v in ids.items())
          + f"; initial pools of {initial} ({100 * initial / len(ids['train']):.1f} %)")
    if human:
        print(f"prepare: oracle human: {len(unmasked)} of {len(ids['train'])} train images have no mask yet (the pool a "
              f"person labels), {masked} have one (the initial pool is drawn from them)"
              + ("" if ids["test"] else "; no test split: the rounds are not scored (the report says so)"))


if __name__ == "__main__":
    main()
