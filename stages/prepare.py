"""prepare: the dataset at training size, its index, and the seeded initial pool.

The embedded generator writes its scenes (PNG, CamVid layout) into
data/source; a real dataset is indexed and validated where it lies, and
data/source/manifest.json says where. Every split is then decoded once,
resized to dataset.size and stored as uint8 arrays in data/prepared, which
the other stages memory-map. The PNGs stay out of data/prepared because
every later stage depends on that folder: DVC hashes a folder dep file by
file before and after each stage, and ~1,000 PNGs there cost ~0.3 s a stage.
The initial pool is drawn from the train split with `seed`: the same for
every method.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)

from common import POOLS, PREPARED, atomic_dir, fail, load_params, write_json  # noqa: E402

SOURCE = Path("data/source")


def open_dataset(params: dict, source: Path):
    from deal.data.camvid import CamVid
    from deal.data.cityscapes import Cityscapes
    from deal.data.folder import FolderDataset
    from deal.data.synthetic import SyntheticStreets, write_synthetic

    data = params["dataset"]
    kind = data["kind"]
    if kind == "synthetic":
        gen = data["synthetic"]
        meta = write_synthetic(
            source, seed=params["seed"], height=gen["height"], width=gen["width"],
            n_train=gen["train"], n_val=gen["val"], n_test=gen["test"], progress=True,
        )
        print(f"prepare: generated {sum(meta['counts'].values())} scenes at {meta['images_per_s']:.0f} images/s")
        return SyntheticStreets(source)
    if kind == "camvid":
        return CamVid(data["path"], test_split=data.get("test_split", "test"))
    if kind == "cityscapes":
        return Cityscapes(data["path"], val_holdout=data.get("val_holdout", 300), seed=params["seed"])
    return FolderDataset(data["path"])


def main() -> None:
    params = load_params(with_train_size=False)
    from deal.config import budget_count
    from deal.data.base import DatasetError
    from deal.data.pools import initial_pool
    from deal.data.validate import validate
    import numpy as np

    size = tuple(params["dataset"]["size"])
    with atomic_dir(PREPARED) as work, atomic_dir(SOURCE) as source:
        try:
            dataset = open_dataset(params, source)
        except (DatasetError, FileNotFoundError, ValueError) as exc:
            fail(getattr(exc, "lines", None) or str(exc))
        # structure only: read_many decodes every file next and stops on a bad one
        problems = validate(dataset, ("train", "val", "test"), decode_images=False)
        if problems:
            fail(problems)
        ids = {split: dataset.ids(split) for split in ("train", "val", "test")}
        for split, split_ids in ids.items():
            images, masks = dataset.read_many(split_ids, size=size, progress=True)
            np.save(work / f"{split}_images.npy", images.numpy())
            np.save(work / f"{split}_masks.npy", masks.numpy())
        info = dataset.info.to_dict()
        info["num_classes"] = dataset.info.num_classes
        info["size"] = list(size)
        write_json(work / "info.json", info)
        write_json(work / "ids.json", ids)
        write_json(source / "manifest.json", {
            "kind": params["dataset"]["kind"],
            "path": "data/source" if params["dataset"]["kind"] == "synthetic" else params["dataset"]["path"],
            "counts": {split: len(v) for split, v in ids.items()},
        })
        problems = []
        initial = budget_count(params["budget"]["initial"], len(ids["train"]), "budget.initial", problems)
        if problems or initial > len(ids["train"]):
            fail(problems or f"params.yaml: budget.initial: {initial} is more than the {len(ids['train'])} train images; lower it")
        pool = initial_pool(ids["train"], initial, seed=params["seed"])
        write_json(POOLS / "initial.json", pool.to_dict())
    print(f"prepare: {params['dataset']['kind']}: " + ", ".join(f"{s} {len(v)}" for s, v in ids.items())
          + f"; initial pool {initial} ({100 * initial / len(ids['train']):.1f} %)")


if __name__ == "__main__":
    main()
