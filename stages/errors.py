"""errors: the error masks of a round's model on its labeled pool (DEAL methods).

Writes one array per round, runs/seed<S>/<method>/<round>/errors.npy, N x H x W uint8
(0 right, 1 error, 2 void), rows in the pool's sorted labeled order: one file
instead of hundreds of masks keeps a cloud remote to one request a round.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)

from common import (  # noqa: E402
    check_seed, dataset_info, load_model, load_params, load_split, read_pool, set_threads, parse_stage_args, stage_parser,
    train_config, write_npy,
)


def main() -> None:
    args = parse_stage_args(stage_parser(__doc__, pool="the round's labeled pool (JSON)", model="the round's network",
                                         out="the error masks to write (errors.npy)"))
    params = load_params()
    seed = check_seed(params, args.seed)
    import numpy as np
    from deal.data.memory import InMemorySegmentation
    from deal.training import error_codes_of

    set_threads(params)
    info = dataset_info()
    model = load_model(params, args.model)
    pool = read_pool(args.pool)
    cfg = train_config(params, "segmentation", len(pool.labeled), epochs=1)
    labeled = InMemorySegmentation(*load_split("train", pool.labeled))
    packed = error_codes_of(model, labeled, cfg, info["void_index"]).numpy().astype(np.uint8)
    write_npy(args.out, packed)
    share = float((packed == 1).sum() / max(1, (packed != 2).sum()))
    print(f"errors: seed {seed} {args.method} {args.round}: {len(pool.labeled)} labeled images, {100 * share:.2f} % of pixels wrong")


if __name__ == "__main__":
    main()
