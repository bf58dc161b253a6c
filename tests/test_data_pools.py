"""Pools: labeled/unlabeled stay disjoint, their union is the split; refusals."""

import json
import subprocess
import sys

import pytest

from deal.data.pools import Pool, initial_pool, subsample

SPLIT = [f"train/{i:04d}.png" for i in range(50)]


def invariants(pool, split):
    lab, unl = pool.labeled, pool.unlabeled
    assert lab == sorted(lab) and unl == sorted(unl)
    assert not set(lab) & set(unl)
    assert sorted(lab + unl) == sorted(split)
    assert len(lab) == len(set(lab))


def test_initial_pool_is_seeded_and_order_free():
    a = initial_pool(SPLIT, 10, seed=0)
    invariants(a, SPLIT)
    assert len(a.labeled) == 10 and len(a.unlabeled) == 40
    assert initial_pool(list(reversed(SPLIT)), 10, seed=0) == a
    assert initial_pool(SPLIT, 10, seed=1) != a
    assert initial_pool(SPLIT, 0, seed=0).labeled == []
    assert initial_pool(SPLIT, 50, seed=0).unlabeled == []
    with pytest.raises(ValueError, match="larger than the split"):
        initial_pool(SPLIT, 51, seed=0)


def test_add_keeps_invariants_and_refuses_bad_ids():
    p = initial_pool(SPLIT, 5, seed=0)
    new = p.unlabeled[:3]
    q = p.add(new)
    invariants(q, SPLIT)
    assert set(q.labeled) == set(p.labeled) | set(new)
    assert len(p.labeled) == 5  # p unchanged
    with pytest.raises(ValueError, match="train/9999.png: not in the split"):
        q.add(["train/9999.png"])
    with pytest.raises(ValueError, match=f"{new[0]}: already labeled"):
        q.add([new[0]])
    with pytest.raises(ValueError, match="given twice"):
        p.add([new[0], new[0]])
    with pytest.raises(AttributeError):
        q.labeled_ids = []


def test_constructor_refusals():
    with pytest.raises(ValueError, match="x: labeled id is not in the split"):
        Pool(SPLIT, ["x"])
    with pytest.raises(ValueError, match="duplicate id in the split"):
        Pool(SPLIT + SPLIT[:1], [])
    with pytest.raises(ValueError, match="duplicate id in the labeled set"):
        Pool(SPLIT, SPLIT[:1] * 2)


def test_json_round_trip():
    p = initial_pool(SPLIT, 7, seed=3).add(["train/0049.png"] if "train/0049.png" not in initial_pool(SPLIT, 7, seed=3).labeled else [])
    d = json.loads(json.dumps(p.to_dict()))
    q = Pool.from_dict(d)
    assert q == p and hash(q) == hash(p)
    d["unlabeled"] = p.unlabeled
    assert Pool.from_dict(d) == p
    d["unlabeled"] = p.unlabeled[1:]
    with pytest.raises(ValueError, match="unlabeled"):
        Pool.from_dict(d)
    assert 0 < p.fraction_labeled < 1 and len(p) == len(p.labeled)


def test_subsample():
    ids = initial_pool(SPLIT, 10, seed=0).unlabeled
    half = subsample(ids, 0.5, seed=0)
    assert len(half) == 20 and half == sorted(half) and set(half) <= set(ids)
    assert subsample(ids, 0.5, seed=0) == half
    assert subsample(ids, 0.5, seed=1) != half
    assert subsample(ids, 1.0, seed=0) == sorted(ids)
    assert len(subsample(ids, 0.01, seed=0)) == 1  # ceil: never empty
    assert len(subsample(ids[:5], 0.5, seed=0)) == 3
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="rho"):
            subsample(ids, bad, seed=0)


def test_light_modules_do_not_import_torch():
    code = (
        "import sys, deal.data, deal.data.pools, deal.data.camvid, deal.data.cityscapes, "
        "deal.data.folder, deal.data.synthetic, deal.data.validate, deal.data.registry\n"
        "deal.data.Pool; deal.data.CamVid; deal.data.generate_scene\n"
        "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
