"""The paper's baselines (issue 5): QBC, core-set, VAAL, learning loss, the registry."""

import dataclasses
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from deal.acquisition import get_heuristic, get_strategy
from deal.acquisition.coreset import CoreSet, kcenter_greedy, pick_scores, pooled_features
from deal.acquisition.learning_loss import (
    LearningLoss, RankingLoss, detach_epoch, loss_prediction_loss, per_image_loss,
)
from deal.acquisition.qbc import QBC, CommitteeStats, bald, mc_dropout, vote_entropy
from deal.acquisition.runner import pool_features, score_pool
from deal.acquisition.select import top_b
from deal.acquisition.vaal import VAAL, train_vaal, vaal_scores
from deal.methods import METHODS
from deal.models import DEALOutput, DeepLabV3Plus, ModelConfig, build_model
from deal.models.vaal import VAALConfig
from deal.training import TrainConfig, train

from conftest import VOID, make_tiny_set as _tiny_set  # the shared tiny dataset


def _segmenter(seed=0):
    torch.manual_seed(seed)
    return DeepLabV3Plus(num_classes=3, width_mult=0.35, head_channels=16).eval()


def _images(n=3, size=32, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


FP32 = dict(precision="fp32", device="cpu", progress=False)


# ---------------------------------------------------------------- QBC


def test_vote_entropy_and_bald_are_zero_where_all_passes_agree():
    one = torch.randn(1, 2, 4, 5, 5)
    agreeing = one.expand(6, -1, -1, -1, -1)  # 6 identical passes, 2 images
    assert vote_entropy(agreeing).tolist() == [0.0, 0.0]
    assert bald(agreeing).abs().max().item() < 1e-6
    # agreeing but uncertain: BALD measures disagreement, not entropy
    uniform = torch.zeros(4, 1, 3, 2, 2)
    assert bald(uniform).item() == pytest.approx(0.0, abs=1e-7)
    assert get_heuristic("entropy")(DEALOutput(uniform[0], None, None, None)).item() == pytest.approx(math.log(3))


def test_committee_scores_of_crafted_votes():
    # 4 passes, 2 classes, three images voting 4-0, 2-2 and 3-1 on every pixel
    sure = torch.tensor([20.0, -20.0]).view(2, 1, 1)
    other = sure.flip(0)
    votes = {"agree": [sure] * 4, "split": [sure, other] * 2, "three_one": [sure] * 3 + [other]}
    logits = torch.stack([torch.stack([votes[k][t].expand(2, 3, 3) for k in votes]) for t in range(4)])
    ve = vote_entropy(logits)
    h31 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    torch.testing.assert_close(ve, torch.tensor([0.0, math.log(2), h31]))
    torch.testing.assert_close(bald(logits), torch.tensor([0.0, math.log(2), h31]), atol=1e-6, rtol=1e-5)
    assert top_b(list(votes), ve.tolist(), 3) == ["split", "three_one", "agree"]
    # accumulating pass by pass gives the same as all at once
    stats = CommitteeStats("bald")
    for t in range(4):
        stats.add(logits[t : t + 1])
    torch.testing.assert_close(stats.scores(), bald(logits))


def _reference_passes(model, images, passes, seed):
    """The naive committee: `passes` full forwards, each dropout layer's mask drawn
    from its own generator (seed * 1009 + layer), pass after pass."""
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    gens = [torch.Generator().manual_seed(seed * 1009 + i) for i in range(len(dropouts))]

    def hook(i):
        def apply(module, inputs, output):
            keep = torch.rand(output.shape, generator=gens[i]) >= module.p
            return output * keep / (1 - module.p)
        return apply

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(dropouts)]
    try:
        with torch.no_grad():
            return torch.stack([model(images).logits for _ in range(passes)])
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("strategy,per_batch", [("split", None), ("split", 2), ("repeat", None), ("repeat", 1)])
def test_qbc_batched_passes_equal_a_naive_loop(strategy, per_batch):
    model = _segmenter()
    images = _images()
    reference = _reference_passes(model, images, passes=5, seed=7)
    assert (reference[0] - reference[1]).abs().max() > 1e-3  # dropout does change the passes
    qbc = QBC(passes=5, seed=7, strategy=strategy, passes_per_batch=per_batch)
    with torch.no_grad():
        got = torch.cat(list(qbc.pass_logits(model, images)))
    torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-4)
    for score, fn in (("vote_entropy", vote_entropy), ("bald", bald)):
        scores = QBC(passes=5, seed=7, score=score, strategy=strategy, passes_per_batch=per_batch).score_batch(model, images)
        torch.testing.assert_close(scores, fn(reference), atol=1e-5, rtol=1e-4)


def test_qbc_runs_on_a_dealnet_and_is_seeded():
    model = build_model(ModelConfig(num_classes=3, width_mult=0.35, head_channels=16, grid=(8, 8)), seed=0).eval()
    images = _images(4)
    # an untrained network's argmax rarely flips (vote entropy ~0); BALD still sees the spread
    a = QBC(passes=4, seed=1, score="bald").score_batch(model, images)
    b = QBC(passes=4, seed=1, score="bald").score_batch(model, images)
    c = QBC(passes=4, seed=2, score="bald").score_batch(model, images)
    assert a.shape == (4,) and torch.isfinite(a).all() and (a > 0).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    low = QBC(passes=4, seed=1, resolution="low").score_batch(model, images)  # vote entropy
    assert low.shape == (4,) and torch.isfinite(low).all()


def test_qbc_of_a_network_without_dropout_is_zero_and_leaves_batchnorm_alone():
    model = _segmenter()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    stats_before = {k: v.clone() for k, v in model.state_dict().items()}
    for strategy in ("split", "repeat"):
        assert QBC(passes=3, strategy=strategy).score_batch(model, _images()).tolist() == [0.0, 0.0, 0.0]
        assert QBC(passes=3, score="bald", strategy=strategy).score_batch(model, _images()).abs().max() < 1e-6
    after = model.state_dict()
    assert all(torch.equal(stats_before[k], after[k]) for k in after)  # BN running stats untouched


def test_mc_dropout_turns_on_dropout_only_and_restores_modes():
    model = _segmenter().train()
    model.decoder[1].eval()  # a module in its own mode must get it back
    with mc_dropout(model):
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                assert m.training
            elif isinstance(m, nn.BatchNorm2d):
                assert not m.training
    assert model.training and not model.decoder[1].training and model.decoder[4].training


def test_qbc_refuses_bad_options():
    with pytest.raises(ValueError):
        QBC(score="kl")
    with pytest.raises(ValueError):
        QBC(passes=0)
    with pytest.raises(TypeError, match="repeat"):
        QBC(passes=2).score_batch(nn.Sequential(nn.Conv2d(3, 3, 1)), _images())


# ---------------------------------------------------------------- core-set


def test_coreset_picks_the_point_farthest_from_the_labeled_centres_first():
    labeled = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    unlabeled = torch.tensor([[1.0, 0.0], [5.0, 0.0], [0.0, 4.0], [9.0, 1.0], [5.0, 6.0]])
    # nearest-centre distances 1, 5, 4, 1.41, 6.40 -> (5, 6) first; then (5, 0) is 5 from
    # its centres but 6 from (5, 6): still 5, the farthest left.
    assert kcenter_greedy(unlabeled, labeled, 2) == [4, 1]
    assert top_b(list("abcde"), CoreSet().scores(unlabeled, labeled, 2).tolist(), 2) == ["e", "b"]
    # cosine: the labeled direction is +x; the most opposite point goes first
    angles = torch.tensor([10.0, 170.0, 90.0, -60.0]) * math.pi / 180
    points = torch.stack([angles.cos(), angles.sin()], dim=1) * torch.tensor([[1.0], [3.0], [0.5], [2.0]])
    assert kcenter_greedy(points, torch.tensor([[2.0, 0.0]]), 1, metric="cosine") == [1]
    # no labeled point: start from the point farthest from the pool's mean
    assert kcenter_greedy(unlabeled, None, 1) == kcenter_greedy(unlabeled, unlabeled.mean(0, keepdim=True), 1)


def _brute_force_kcenter(unlabeled, labeled, b, metric):
    """Greedy k-center recomputing every distance to every centre at each pick."""
    u = unlabeled.double()
    centres = labeled.double()
    if metric == "cosine":
        u, centres = nn.functional.normalize(u, dim=1), nn.functional.normalize(centres, dim=1)
    picks = []
    for _ in range(b):
        best, best_d = None, -1.0
        for i in range(u.shape[0]):
            if i in picks:
                continue
            if metric == "euclidean":
                d = min(float(((u[i] - c) ** 2).sum().sqrt()) for c in centres)
            else:
                d = min(float(1 - (u[i] * c).sum()) for c in centres)
            if d > best_d:
                best, best_d = i, d
        picks.append(best)
        centres = torch.cat([centres, u[best : best + 1]])
    return picks


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_coreset_matches_a_brute_force_kcenter(metric):
    g = torch.Generator().manual_seed(3)
    unlabeled, labeled = torch.randn(40, 8, generator=g), torch.randn(6, 8, generator=g)
    expected = _brute_force_kcenter(unlabeled, labeled, 12, metric)
    assert kcenter_greedy(unlabeled, labeled, 12, metric) == expected
    assert kcenter_greedy(unlabeled, labeled, 12, metric, chunk=5) == expected  # chunked distances
    assert len(set(expected)) == 12


def test_coreset_scores_and_limits():
    scores = pick_scores(5, [3, 0])
    assert scores.tolist() == [1.0, 0.0, 0.0, 2.0, 0.0]
    with pytest.raises(ValueError):
        kcenter_greedy(torch.randn(3, 2), None, 4)
    with pytest.raises(ValueError):
        CoreSet(metric="manhattan")
    out = DEALOutput(None, None, torch.arange(2 * 3 * 4.0).view(2, 3, 2, 2), None)
    assert pooled_features(out).tolist() == [[1.5, 5.5, 9.5], [13.5, 17.5, 21.5]]


# ---------------------------------------------------------------- VAAL


def _coloured(n, hot, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 3, 32, 32, generator=g) * 120).to(torch.uint8)
    x[:, hot] += 120
    return x


TINY_VAAL = dict(image_size=32, latent_dim=8, channels=(8, 16, 32), disc_hidden=64, batch_size=4,
                 iterations=20, precision="fp32", device="cpu", progress=False)


def test_vaal_trains_and_gives_one_finite_score_per_image():
    labeled, unlabeled = _coloured(8, 0, 0), _coloured(8, 2, 1)
    vae, disc, history = train_vaal(labeled, unlabeled, VAALConfig(**TINY_VAAL))
    first, last = history[:3], history[-3:]
    for key in ("vae", "recon"):
        assert sum(r[key] for r in last) < sum(r[key] for r in first)
    candidates = torch.cat([_coloured(3, 0, 2), _coloured(3, 2, 3)])
    scores = vaal_scores(vae, disc, candidates)
    assert scores.shape == (6,) and torch.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    # the same seed gives the same networks; any input size is resized to the VAE's
    again = VAAL(**TINY_VAAL)
    vae2, disc2, _ = again.train(labeled, unlabeled)
    torch.testing.assert_close(again.scores(vae2, disc2, candidates), scores)
    big = nn.functional.interpolate(candidates.float(), size=(48, 64)).round().to(torch.uint8)
    assert vaal_scores(vae, disc, big).shape == (6,)


def test_vaal_discriminator_learns_to_tell_labeled_from_unlabeled():
    # without the VAE fighting it (adversary weight 0), the discriminator's loss falls
    cfg = VAALConfig(**{**TINY_VAAL, "adversary_weight": 0.0, "beta": 1e-3, "kl_reduction": "mean"})
    _, _, history = train_vaal(_coloured(8, 0, 0), _coloured(8, 2, 1), cfg)
    assert sum(r["disc"] for r in history[-3:]) < sum(r["disc"] for r in history[:3])


def test_vaal_sizes_and_config_checks():
    for size, channels in ((32, (8, 16, 32)), (64, (8, 16, 32, 32))):
        vae, disc = VAAL(image_size=size, channels=channels, latent_dim=4).build()
        recon, z, mu, logvar = vae(torch.randn(2, 3, size, size))
        assert recon.shape == (2, 3, size, size) and mu.shape == (2, 4) and disc(mu).shape == (2,)
    with pytest.raises(ValueError, match="multiple"):
        VAALConfig(image_size=40, channels=(8, 16, 32, 64))
    with pytest.raises(ValueError):
        VAALConfig(kl_reduction="max")


# ---------------------------------------------------------------- learning loss


def test_margin_ranking_loss_equals_a_hand_computed_value():
    predicted = torch.tensor([3.0, 1.0, 2.0, 0.5])
    target = torch.tensor([1.0, 2.0, 0.0, 0.5])
    # pairs (0, 3): pred diff 2.5, target diff 0.5 > 0 -> max(0, 1 - 2.5) = 0
    #       (1, 2): pred diff -1, target diff 2 > 0   -> max(0, 1 + 1) = 2; mean 1
    assert loss_prediction_loss(predicted, target).item() == pytest.approx(1.0)
    assert loss_prediction_loss(predicted, target, margin=3.0).item() == pytest.approx((0.5 + 4.0) / 2)
    # a tie counts as "not larger" (-1): max(0, 1 - (-1)(0.25 - 0)) = 1.25
    assert loss_prediction_loss(torch.tensor([0.25, 0.0]), torch.tensor([1.0, 1.0])).item() == pytest.approx(1.25)
    # odd batch: the middle image sits out; pair (0, 2): pred diff -2, target diff 1 -> 1 + 2 = 3
    assert loss_prediction_loss(torch.tensor([0.0, 9.0, 2.0]), torch.tensor([1.0, 5.0, 0.0])).item() == pytest.approx(3.0)
    # one image: no pair, 0
    assert loss_prediction_loss(torch.tensor([1.0]), torch.tensor([2.0])).item() == 0.0


def test_per_image_loss_is_each_images_mean_over_non_void_pixels():
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 0] = 10.0  # confident class 0
    target = torch.tensor([[[0, 0], [1, VOID]], [[VOID, VOID], [VOID, VOID]]])
    ce_wrong = nn.functional.cross_entropy(torch.tensor([[10.0, 0.0, 0.0]]), torch.tensor([1])).item()
    ce_right = nn.functional.cross_entropy(torch.tensor([[10.0, 0.0, 0.0]]), torch.tensor([0])).item()
    got = per_image_loss(logits, target, VOID)
    assert got.tolist() == pytest.approx([(2 * ce_right + ce_wrong) / 3, 0.0])


def test_forward_with_levels_is_forward_plus_four_encoder_levels():
    model = _segmenter()
    images = _images(2)
    with torch.no_grad():
        out, levels = model.forward_with_levels(images)
        plain = model(images)
    for a, b in zip(out, plain):
        assert torch.equal(a, b)
    assert [x.shape[1] for x in levels] == model.level_channels()
    assert [x.shape[-1] for x in levels] == [8, 4, 2, 2]  # strides 4, 8, 16, 16 at 32 px


def _ll_model(hidden=128):
    return build_model(ModelConfig(num_classes=3, width_mult=0.35, head_channels=16, difficulty=False,
                                   loss_module_hidden=hidden), seed=0)


def train_learning_loss(model, data, cfg, lambda_loss=1.0, detach_after=0.6, **kwargs):
    """deal.training.train with learning loss's ranking term, as the train stage runs it."""
    term = RankingLoss(model.loss_module, lambda_loss=lambda_loss, detach_after=detach_after)
    return train(model, data, dataclasses.replace(cfg, mode="segmentation"), num_classes=3, void_index=VOID,
                 extra_loss=term, **kwargs)


def test_learning_loss_trains_and_scores_one_finite_value_per_image():
    data = _tiny_set()
    model = _ll_model()
    # the network learns: its segmentation loss falls. The total is no witness: 10 steps of the
    # ranking term on random images are noise whose last epoch may land above the first, and
    # where it lands differs between CPUs (2.19 -> 3.38 on an AMD EPYC, 2.06 -> 1.10 on an Intel Xeon)
    cfg = TrainConfig(epochs=5, batch_size=4, lr=0.01, seed=1, nesterov=False, **FP32)
    result = train_learning_loss(model, data, cfg, val_set=data)
    losses = [r["loss_seg"] for r in result.history]
    assert losses[-1] < losses[0]
    assert all(math.isfinite(r["loss_pred"]) for r in result.history)
    assert [r["detached"] for r in result.history] == [False, False, False, True, True]
    assert list(result.history[0])[:3] == ["epoch", "lr", "detached"] and "loss_dif" not in result.history[0]
    scorer = LearningLoss()
    scorer.load(model, {k.split(".", 1)[1]: v for k, v in result.state_dict.items() if k.startswith("loss_module.")})
    images = data.tensors[0]
    scores = scorer.score_batch(model, images)
    assert scores.shape == (8,) and torch.isfinite(scores).all()
    pooled = score_pool(scorer, model, data, cfg, batch_size=3)
    torch.testing.assert_close(pooled, scores, atol=1e-5, rtol=1e-4)


def test_the_loss_module_lives_in_the_model_state_and_reloads_with_it():
    # the pipeline saves one state dict per round: the network and its loss module
    data = _tiny_set()
    cfg_model = ModelConfig(num_classes=3, width_mult=0.35, head_channels=16, difficulty=False, loss_module_hidden=8)
    model = build_model(cfg_model, seed=0)
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.01, seed=1, **FP32)
    result = train_learning_loss(model, data, cfg)
    assert any(k.startswith("loss_module.") for k in result.state_dict)
    torch.testing.assert_close(result.state_dict["loss_module.out.weight"], model.loss_module.out.weight.detach())
    reloaded = build_model(cfg_model)
    reloaded.load_state_dict(result.state_dict)
    images = data.tensors[0]
    expected = LearningLoss(loss_module=model.loss_module).score_batch(model, images)
    torch.testing.assert_close(LearningLoss(loss_module=reloaded.loss_module).score_batch(reloaded, images), expected)
    # the same seed builds the same segmentation network with or without the module
    plain = build_model(ModelConfig(num_classes=3, width_mult=0.35, head_channels=16, difficulty=False), seed=0)
    assert all(torch.equal(v, build_model(cfg_model, seed=0).state_dict()[k]) for k, v in plain.state_dict().items())


def test_detached_features_keep_the_ranking_loss_off_the_segmentation_network():
    data = _tiny_set()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.01, seed=1, **FP32)

    def trained(lambda_loss, detach_after):
        model = _ll_model()
        train_learning_loss(model, data, cfg, lambda_loss=lambda_loss, detach_after=detach_after)
        return {k: v for k, v in model.state_dict().items() if k.startswith("segmenter.")}

    base = trained(0.0, 0.0)
    detached = trained(5.0, 0.0)
    joint = trained(5.0, None)
    assert all(torch.equal(base[k], detached[k]) for k in base)
    assert any(not torch.equal(base[k], joint[k]) for k in base if base[k].is_floating_point())
    assert detach_epoch(200, 0.6) == 120 and detach_epoch(10, None) is None


# ---------------------------------------------------------------- registry and runner


def test_every_method_of_the_table_builds_its_scorer():
    for name, spec in METHODS.items():
        if spec.scorer is not None:
            assert get_strategy(name).name == name
    assert get_strategy("qbc_bald").score == "bald" and get_strategy("qbc").score == "vote_entropy"
    with pytest.raises(KeyError, match="get_strategy"):
        get_heuristic("qbc")
    with pytest.raises(KeyError, match="random_scores"):
        get_strategy("random")
    with pytest.raises(KeyError, match="unknown acquisition method"):
        get_strategy("vaal_typo")


def test_importing_the_registry_does_not_import_torch():
    code = ("import sys, deal.acquisition, deal.acquisition.scoring, deal.methods, deal.config; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runner_matches_direct_scoring_and_pools_features():
    model = build_model(ModelConfig(num_classes=3, width_mult=0.35, head_channels=16, grid=(8, 8)), seed=0)
    data = _tiny_set(n=5)
    cfg = TrainConfig(batch_size=4, **FP32)
    images = data.tensors[0]
    model.eval()
    with torch.no_grad():
        out = model(images)
    entropy = get_heuristic("entropy")
    torch.testing.assert_close(score_pool(entropy, model, data, cfg, batch_size=2), entropy(out), atol=1e-5, rtol=1e-4)
    feats = pool_features(model, data, cfg, batch_size=2)
    torch.testing.assert_close(feats, pooled_features(out), atol=1e-5, rtol=1e-4)
    assert feats.shape == (5, 16)
    qbc = score_pool(QBC(passes=3, seed=1, score="bald"), model, data, cfg, batch_size=2)
    assert qbc.shape == (5,) and torch.isfinite(qbc).all() and (qbc > 0).all()
