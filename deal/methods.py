"""The method table: every acquisition method, defined once.

One `Method` per method (baal's single table) says what it scores from, how
its network trains, whether it starts from the seed's shared round-0 model,
its figure label and colour, and the options its params sections take.
Everything else is derived from it: the params checks (deal.config), the
scorer lookup (deal.acquisition), the figures (deal.figures), the stage
branches. params.yaml lists methods flatly because DVC's `matrix:` needs the
lists: `methods` is the one a user edits; `baselines` and `deal_methods`
split it (`make methods` writes them from `methods`).

Plain Python, no torch: the select and report stages import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deal.specs import boolean, choice, device, integer, list_of, number, optional, seed

# what a method's score stage reads (and runs) to score the unlabeled candidates
SCORES_FROM = {
    "nothing": "seeded random draws; no model, no torch",
    "output": "one forward pass of the round's network: heuristic(output) -> B scores",
    "committee": "MC-dropout passes of the round's network (scorer.score_batch(model, images))",
    "features": "the network's pooled features of the candidates and of the labeled pool, picked jointly",
    "images": "networks of its own (VAE and discriminator) trained this round on labeled vs unlabeled images",
    "loss_module": "the loss prediction module trained with the round's network",
}
# how a method's segmentation network trains each round
TRAININGS = {
    "shared": "deal.training.train with the shared recipe (train:); joint with the difficulty branch for DEAL methods",
    "learning_loss": "deal.training.train with the loss prediction module's ranking loss as an extra term",
}

# DE's difficulty levels: its per-image histogram holds k counts, so k bounds its memory (k = 10**9 asked for 32 GB)
MAX_LEVELS = 65536
RHO = number(0, 1, low_open=True, why=" (the scored fraction of the unlabeled pool)")
QBC_STRATEGIES = ("split", "repeat")  # deal.acquisition.qbc.STRATEGIES (a test keeps them equal)
QBC_RESOLUTIONS = ("full", "low")
CORESET_METRICS = ("euclidean", "cosine")
QBC_OPTIONS = {"rho": RHO, "passes": integer(1), "strategy": choice(*QBC_STRATEGIES),
               "passes_per_batch": optional(integer(1)), "max_batch": integer(1),
               "resolution": choice(*QBC_RESOLUTIONS), "seed": seed()}


def described(spec, what: str):
    """`spec`'s test with its own line for the error."""
    return spec[0], what


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # in figures and tables
    colour: str  # the same in every figure
    marker: str
    scores_from: str  # a key of SCORES_FROM
    scorer: str | None = None  # "module:Class" of its scorer (None: seeded random draws)
    difficulty: bool = False  # a DEAL method: the difficulty branch, its errors/difficulty stages, listed in deal_methods
    training: str = "shared"  # a key of TRAININGS
    shares_round0: bool = True  # round 0 adopts the seed's shared model (train_initial); else it trains its own
    options: dict = field(default_factory=lambda: {"rho": RHO})  # method_cfg.<name>: key -> spec
    required: tuple = ("rho",)  # method_cfg keys without a default in the scorer
    train_options: dict = field(default_factory=dict)  # method_train.<name>: key -> spec ({}: the shared recipe)

    def __post_init__(self) -> None:
        if self.scores_from not in SCORES_FROM:
            raise ValueError(f"{self.name}: scores_from {self.scores_from!r}; one of {', '.join(SCORES_FROM)}")
        if self.training not in TRAININGS:
            raise ValueError(f"{self.name}: training {self.training!r}; one of {', '.join(TRAININGS)}")
        if (self.scorer is None) != (self.scores_from == "nothing"):
            raise ValueError(f"{self.name}: a scorer is needed exactly when it scores from a model or images")

    @property
    def reads_model(self) -> bool:
        """Its score stage reads the round's segmentation network."""
        return self.scores_from in ("output", "committee", "features", "loss_module")

    @property
    def reads_labeled(self) -> bool:
        """Its score stage also reads the labeled pool's images."""
        return self.scores_from in ("features", "images")


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("random", "Random", "#595959", "o", "nothing"),
    Method("entropy", "Entropy", "#1f77b4", "s", "output", "deal.acquisition.uncertainty:Entropy"),
    Method("margin", "Margin", "#17becf", "v", "output", "deal.acquisition.uncertainty:Margin"),
    Method("least_confidence", "Least confidence", "#9467bd", "<", "output", "deal.acquisition.uncertainty:LeastConfidence"),
    # vote entropy of an MC-dropout committee: DEAL's QBC comparison
    Method("qbc", "QBC", "#8c564b", ">", "committee", "deal.acquisition.qbc:QBC", options=QBC_OPTIONS),
    Method("qbc_bald", "QBC (BALD)", "#bcbd22", "p", "committee", "deal.acquisition.qbc:QBCBald", options=QBC_OPTIONS),
    Method("coreset", "Core-set", "#2ca02c", "D", "features", "deal.acquisition.coreset:CoreSet",
           options={"rho": RHO, "metric": choice(*CORESET_METRICS), "chunk": integer(1)}),
    Method("vaal", "VAAL", "#e377c2", "h", "images", "deal.acquisition.vaal:VAAL", options={
        "rho": RHO, "latent_dim": integer(1), "channels": list_of(integer(1)), "image_size": integer(8, 4096),
        "disc_hidden": integer(1), "disc_layers": integer(1), "beta": number(0), "adversary_weight": number(0),
        "kl_reduction": choice("sum", "mean"), "lr": number(0, low_open=True), "batch_size": integer(1),
        "iterations": integer(1), "vae_steps": integer(1), "joint_batches": boolean(), "disc_steps": integer(1),
        "seed": seed(), "precision": choice("auto", "fp32", "bf16", "fp16"), "device": device()}),
    # Yoo and Kweon: its loss prediction module learns with the network, from round 0 on
    Method("learning_loss", "Learning loss", "#8b0a50", "*", "loss_module", "deal.acquisition.learning_loss:LearningLoss",
           training="learning_loss", shares_round0=False, train_options={
               "hidden": described(integer(1), "the loss module's width is a positive int (paper: 128)"),
               "lambda": described(number(0), "a number >= 0 (paper: 1)"),
               "margin": described(number(0), "a number >= 0 (paper: 1)"),
               "detach_after": described(optional(number(0, 1)), "the fraction of epochs before the features are "
                                         "detached, in [0, 1] (paper: 0.6), or null for never")}),
    Method("deal_ds", "DEAL (DS)", "#f0a202", "^", "output", "deal.acquisition.difficulty:DifficultyScore", difficulty=True),
    Method("deal_de", "DEAL (DE)", "#d62728", "X", "output", "deal.acquisition.difficulty:DifficultyEntropy",
           difficulty=True, required=("rho", "k", "span"), options={
               "rho": RHO,
               "k": described(integer(2, MAX_LEVELS), f"the number of difficulty levels is an int in [2, {MAX_LEVELS}] "
                              "(published: 8 CamVid, 10 Cityscapes)"),
               "span": described(choice("image", "fixed"), "use image (published) or fixed")}),
)}
NAMES = tuple(METHODS)
DEAL = tuple(m for m in NAMES if METHODS[m].difficulty)
BASELINES = tuple(m for m in NAMES if not METHODS[m].difficulty)


def method(name: str) -> Method:
    if name not in METHODS:
        raise KeyError(f"unknown acquisition method {name!r}; known: {', '.join(NAMES)}")
    return METHODS[name]


def split_lists(methods) -> dict[str, list[str]]:
    """params.yaml's `baselines` and `deal_methods` for a `methods` list (its order kept)."""
    return {"baselines": [m for m in methods if m in METHODS and not METHODS[m].difficulty],
            "deal_methods": [m for m in methods if m in METHODS and METHODS[m].difficulty]}


def label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def colour(name: str) -> str:
    return METHODS[name].colour if name in METHODS else "#000000"
