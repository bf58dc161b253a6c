"""generate: the embedded street scenes (PNG, CamVid layout) into data/synthetic.

Only for dataset.kind synthetic; for a real dataset the folder holds a note
and nothing else. The scenes are a function of `dataset.seed` and
dataset.synthetic (with `conditions: long_tail`, conditions.csv says each
scene's lighting, weather, scene type and camera), so `prepare` depends on them like on any data folder
(dataset.path, data/synthetic by default): an edited scene reruns it.

    python stages/generate.py        # what `dvc repro generate` runs
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from deal.atomic import clear_stale  # noqa: E402
from stages._shared.files import atomic_dir, write_json  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def main() -> None:
    args = parse_stage_args(stage_parser(__doc__, per_round=False, with_prepared=False,
                                         out="the scenes' folder (params.yaml's dataset.path of the synthetic kind)"))
    SYNTHETIC = args.out
    params = load_params(disk=True)  # the first stage of a run: the disk it will fill
    data = params["dataset"]
    if data["kind"] != "synthetic":
        with atomic_dir(SYNTHETIC) as work:
            write_json(work / "synthetic.json", {"generator": None, "note": f"dataset.kind is {data['kind']}: "
                                                 f"the data is read from dataset.path ({data['path']})"})
        print(f"generate: dataset.kind is {data['kind']}; nothing to generate")
        return
    from deal.data.synthetic import write_synthetic

    clear_stale(SYNTHETIC)  # what a killed write_synthetic left beside it
    gen = data["synthetic"]
    meta = write_synthetic(SYNTHETIC, seed=data["seed"], height=gen["height"], width=gen["width"],
                           n_train=gen["train"], n_val=gen["val"], n_test=gen["test"], progress=True,
                           conditions=gen["conditions"])
    print(f"generate: {sum(meta['counts'].values())} scenes at {meta['images_per_s']:.0f} images/s into {SYNTHETIC}")


if __name__ == "__main__":
    main()
