"""score: one acquisition score per image of the (sub-sampled) unlabeled pool.

Each round only a seeded fraction `rho` of the unlabeled pool is scored
(method_cfg.<method>.rho; published 0.5). Random needs no model and no torch;
VAAL trains its own VAE and discriminator here; learning loss reads the loss
prediction module its train stage saved in model.pt; core-set's joint pick is
written as scores (b - pick position) so that select takes it in order.
Writes scores.csv (id, score), highest first, where --out says (rounds/score*/dvc.yaml).
With train.nproc (x train.nnodes) > 1 the methods that share the work
(deal.acquisition.scoring.SPLIT: the per-image ones and core-set's features)
run under torchrun, each process scoring whole batches of the candidates;
the scores are those of one process and rank 0 writes them. Random, QBC and
VAAL run in one process.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import check_device, load_model, set_threads, train_config  # noqa: E402
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_path, read_pool  # noqa: E402
from stages._shared.params import check_seed, load_params, round_index  # noqa: E402
from stages._shared.relaunch import distribute  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def main() -> None:
    parser = stage_parser(__doc__, kinds=("score", "score_deal"), pool="the round's pool (JSON)", out="the scores to write (scores.csv)")
    parser.add_argument("--model", type=Path, help="the round's network: model.pt, or difficulty.pt for a DEAL method "
                        "(every method but those that score from nothing)")
    args = parse_stage_args(parser)
    params = load_params(prepared=args.prepared)
    al_seed = check_seed(params, args.seed)
    from deal.config import round_batch, round_seed
    from deal.data.pools import subsample
    from deal.methods import method

    spec = method(args.method)
    from deal.acquisition.scoring import SPLIT

    rank, _ = distribute(params, __file__, split=spec.scores_from in SPLIT)
    pool = read_pool(args.pool)
    options = params["method_cfg"][args.method]
    seed = round_seed(al_seed, round_index(params, args.round))
    candidates = subsample(pool.unlabeled, options["rho"], seed=seed)
    set_threads(params)
    inputs = {}
    if spec.scores_from != "nothing":
        check_device(options.get("device", params["train"]["device"]))
        inputs["cfg"] = train_config(params, "segmentation", len(candidates), epochs=1)
        inputs["candidates"] = args.prepared.load("train", candidates)
    if spec.reads_model:  # a DEAL method reads the network with its trained difficulty branch
        if args.model is None:
            fail(f"score: {args.method} scores from the round's network; give --model (its dvc.yaml stage does)")
        inputs["model"] = load_model(params, args.model, args.prepared.num_classes)
    if spec.reads_labeled:
        inputs["labeled"] = args.prepared.load("train", pool.labeled)
    if spec.scores_from == "images":
        inputs["unlabeled_images"] = args.prepared.load("train", pool.unlabeled)[0]
    from deal.acquisition.scoring import score

    try:
        scores = score(args.method, options, candidates, seed=seed, batch=round_batch(params, args.round, len(pool.split_ids)),
                       report=lambda line: print(f"score: {line}"), **inputs)
    except ValueError as exc:  # a model.pt without the parts its method needs
        fail(f"{args.model}: {exc}; rerun its train stage (dvc repro -f)")
    from deal.distributed import finish

    if rank != 0:  # every rank holds the scores; rank 0 writes them
        finish()
        return
    ranked = sorted(zip(candidates, scores), key=lambda p: (-p[1], p[0]))
    with atomic_path(args.out) as tmp:
        tmp.write_text("id,score\n" + "".join(f"{sid},{score:.9g}\n" for sid, score in ranked))
    print(f"score: seed {al_seed} {args.method} {args.round}: {len(candidates)} of {len(pool.unlabeled)} unlabeled images "
          f"scored (rho {options['rho']})")
    finish()


if __name__ == "__main__":
    main()
