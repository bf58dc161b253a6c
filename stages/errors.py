"""errors: the error masks of a round's model on its labeled pool (DEAL methods).

Writes one array per round, runs/seed<S>/<method>/<round>/errors.npy, N x H x W uint8
(0 right, 1 error, 2 void), rows in the pool's sorted labeled order: one file
instead of hundreds of masks keeps a cloud remote to one request a round.

Beside it, errors.json: the share of wrong pixels and, when the network carries
its difficulty branch (deal.mode joint), the branch measured against these masks
on the same pass (deal.loss and the AUROC of difficulty -> error, with gamma):
the difficulty stage then takes the branch as it is, with no second pass.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import load_model, set_threads, train_config  # noqa: E402
from stages._shared.files import file_sha256, read_pool, write_json, write_npy  # noqa: E402
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def main() -> None:
    args = parse_stage_args(stage_parser(__doc__, pool="the round's labeled pool (JSON)",
                                         labels="its masks drawn by a person (.labels.npy)", model="the round's network",
                                         out="the error masks to write (errors.npy)",
                                         record="their summary to write (errors.json)"))
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    import numpy as np
    from deal.data.memory import InMemorySegmentation
    from deal.analysis import ERROR, VOID, branch_measures
    from deal.training import error_codes_of

    set_threads(params)
    info = args.prepared.info
    model = load_model(params, args.model, args.prepared.num_classes)
    pool = read_pool(args.pool)
    cfg = train_config(params, "segmentation", len(pool.labeled), epochs=1)
    labeled = InMemorySegmentation(*args.prepared.load_labeled(pool, args.labels))
    codes, difficulty_logits = error_codes_of(model, labeled, cfg, info["void_index"])
    packed = codes.numpy().astype(np.uint8)
    share = float((packed == ERROR).sum() / max(1, (packed != VOID).sum()))
    branch = None
    if difficulty_logits is not None:
        loss = params["deal"]["loss"]
        # the file measured, so that the difficulty stage takes that branch and no other
        branch = {"model_sha256": file_sha256(args.model), "loss": loss, **branch_measures(difficulty_logits, codes, loss),
                  "gamma": float(model.difficulty.attention.gamma.detach())}
    write_npy(args.out, packed)
    write_json(args.record, {"labeled": len(pool.labeled), "error_share": share, "difficulty_branch": branch})
    print(f"errors: seed {seed} {args.method} {args.round}: {len(pool.labeled)} labeled images, {100 * share:.2f} % of pixels wrong")


if __name__ == "__main__":
    main()
