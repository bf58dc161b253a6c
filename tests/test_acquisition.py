import math

import pytest
import torch

from deal.acquisition import METHODS, get_heuristic
from deal.acquisition.difficulty import difficulty_entropy, difficulty_levels, difficulty_score
from deal.acquisition.select import random_scores, top_b
from deal.models import DEALOutput


def test_ds_is_the_mean_difficulty():
    maps = torch.stack([torch.full((1, 4, 4), 0.25), torch.linspace(0, 1, 16).reshape(1, 4, 4)])
    torch.testing.assert_close(difficulty_score(maps), torch.tensor([0.25, 0.5]))


@pytest.mark.parametrize("span", ["image", "fixed"])
def test_de_of_a_constant_map_is_zero(span):
    maps = torch.full((3, 1, 8, 8), 0.37)
    assert difficulty_entropy(maps, k=8, span=span).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("span", ["image", "fixed"])
def test_de_of_a_map_split_evenly_over_two_levels_is_log_2(span):
    half = torch.cat([torch.full((1, 4, 8), 0.1), torch.full((1, 4, 8), 0.9)], dim=1)
    assert difficulty_entropy(half.unsqueeze(0), k=8, span=span).item() == pytest.approx(math.log(2))


def test_de_of_a_uniform_ramp_over_k_levels_is_log_k():
    k = 10
    ramp = ((torch.arange(k * 7) // 7).float() / (k - 1)).reshape(1, 1, k, 7)  # 7 pixels at each level
    assert difficulty_entropy(ramp, k=k).item() == pytest.approx(math.log(k))


def test_image_span_rescales_each_image_fixed_span_does_not():
    narrow = torch.tensor([0.50, 0.51, 0.52, 0.53]).reshape(1, 1, 2, 2)
    assert difficulty_levels(narrow, k=4, span="image").tolist() == [[0, 1, 2, 3]]
    assert difficulty_levels(narrow, k=4, span="fixed").tolist() == [[2, 2, 2, 2]]
    assert difficulty_entropy(narrow, k=4, span="image").item() == pytest.approx(math.log(4))
    assert difficulty_entropy(narrow, k=4, span="fixed").item() == 0.0


def test_ds_and_de_rank_crafted_maps_exactly():
    flat_easy = torch.full((1, 8, 8), 0.1)
    flat_hard = torch.full((1, 8, 8), 0.8)
    mixed = torch.cat([torch.full((1, 8, 4), 0.1), torch.full((1, 8, 4), 0.6)], dim=2)
    logits = torch.logit(torch.stack([flat_easy, flat_hard, mixed]))
    out = DEALOutput(torch.zeros(3, 2, 8, 8), None, None, logits)
    ds = get_heuristic("deal_ds")(out)
    de = get_heuristic("deal_de", k=8)(out)
    assert top_b(["easy", "hard", "mixed"], ds.tolist(), 3) == ["hard", "mixed", "easy"]
    assert top_b(["easy", "hard", "mixed"], de.tolist(), 1) == ["mixed"]


def test_entropy_ranks_a_uniform_probability_map_first():
    confident = torch.zeros(1, 4, 3, 3)
    confident[:, 0] = 10.0
    uniform = torch.zeros(1, 4, 3, 3)
    half = torch.zeros(1, 4, 3, 3)
    half[:, :2] = 5.0
    out = DEALOutput(torch.cat([confident, uniform, half]), None, None, None)
    scores = get_heuristic("entropy")(out)
    assert scores[1].item() == pytest.approx(math.log(4), rel=1e-5)
    assert top_b(["confident", "uniform", "half"], scores.tolist(), 3) == ["uniform", "half", "confident"]
    lc = get_heuristic("least_confidence")(out)
    assert top_b(["confident", "uniform", "half"], lc.tolist(), 3) == ["uniform", "half", "confident"]
    # margin: uniform and half both have top-2 margin 0, a tie broken by id order
    margin = get_heuristic("margin")(out)
    assert top_b(["confident", "uniform", "half"], margin.tolist(), 3) == ["half", "uniform", "confident"]


def test_top_b_breaks_ties_by_id_and_refuses_too_many():
    assert top_b(["c", "a", "b"], [1.0, 1.0, 2.0], 2) == ["b", "a"]
    with pytest.raises(ValueError):
        top_b(["a"], [1.0], 2)
    with pytest.raises(ValueError):
        top_b(["a", "b"], [1.0, float("nan")], 1)


def test_random_scores_are_reproducible_and_order_free():
    ids = [f"id{i}" for i in range(50)]
    a = dict(zip(ids, random_scores(ids, seed=3)))
    b = dict(zip(ids[::-1], random_scores(ids[::-1], seed=3)))
    assert a == b
    assert a != dict(zip(ids, random_scores(ids, seed=4)))


def test_unknown_method_is_refused():
    assert "deal_de" in METHODS and "random" in METHODS
    with pytest.raises(KeyError, match="unknown acquisition method"):
        get_heuristic("vaal_typo")


def test_de_runs_batched_on_many_images():
    maps = torch.rand(16, 1, 32, 32)
    scores = difficulty_entropy(maps, k=8)
    assert scores.shape == (16,)
    assert torch.all(scores <= math.log(8) + 1e-6) and torch.all(scores > 0)
