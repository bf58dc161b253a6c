"""init: a seed's initial pool, and every method's round-0 pool, which is that pool (no torch).

    python stages/init.py --stage init@S --prepared P --initial JSON --pools DIR   # (or --seed S)

The initial pool is drawn from the train split with the seed: each seed its
own, and within a seed the same for every method, so that methods compare
paired by seed. With oracle: human it is drawn from the train images that
have masks. Beside each method's round-0 pool, DIR/<method>.labels.npy holds
the masks a person drew for it: none at round 0 (the label stage writes
them for the later rounds).
"""

import json
import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and matplotlib already imported)

from deal.config import schedule  # noqa: E402
from stages._shared.files import atomic_dir, write_json, write_npy  # noqa: E402
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def main() -> None:
    parser = stage_parser(__doc__, kinds=("init",), initial="the seed's initial pool (JSON) to write",
                          pools="the first round's folder of per-method pools to write")
    args = parse_stage_args(parser)
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    import numpy as np
    from deal.data.pools import Pool, initial_pool

    train_ids = args.prepared.ids("train")
    size = schedule(params, len(train_ids))[0]  # load_params checked the budget against this split
    unmasked = set(args.prepared.unmasked_ids())
    drawn = initial_pool([sid for sid in train_ids if sid not in unmasked], size, seed=seed)  # prepare checked the count
    pool = Pool(train_ids, drawn.labeled).to_dict()
    first = params["rounds"][0]["id"]
    no_labels = np.zeros((0, *args.prepared.info["size"]), dtype=np.uint8)
    write_json(args.initial, pool)
    with atomic_dir(args.pools) as work:
        for method in params["methods"]:
            (work / f"{method}.json").write_text(json.dumps(pool, indent=2) + "\n")
            write_npy(work / f"{method}.labels.npy", no_labels)
    print(f"init: seed {seed}: initial pool of {size} images ({100 * size / len(train_ids):.1f} %), "
          f"round {first} pools for {', '.join(params['methods'])}")


if __name__ == "__main__":
    main()
