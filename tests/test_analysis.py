import math

import numpy as np
import pytest
import torch

from deal.analysis import (
    ClassDifficulty,
    DifficultyAnalysis,
    ErrorAUROC,
    auroc_from_histograms,
    bin_index,
    class_table,
    difficulty_iou_correlation,
    error_auroc,
    error_codes,
    example_indices,
    hardest_classes,
    per_class_difficulty,
    rankdata,
    spearman,
)
from deal.analysis import auroc
from deal.metrics import ConfusionMatrix

VOID = 3


def _three_class_case():
    """Classes 0..2, void 3. Class 0 pixels at 0.1 and 0.3 (mean 0.2), class 1 at
    0.5, class 2 absent, void pixels at 0.99 (ignored)."""
    masks = np.array([[[0, 0, 1], [VOID, VOID, 1]], [[1, 1, 0], [0, VOID, 1]]], dtype=np.uint8)
    d = np.where(masks == 1, 0.5, 0.99).astype(np.float32)
    d[0, 0, 0], d[0, 0, 1], d[1, 0, 2], d[1, 1, 0] = 0.1, 0.3, 0.1, 0.3
    return masks, d


# --------------------------------------------------------------------------- per class


def test_per_class_difficulty_means_and_absent_class():
    masks, d = _three_class_case()
    result = per_class_difficulty(d, masks, num_classes=3, void_index=VOID)
    np.testing.assert_allclose(result[:2], [0.2, 0.5], rtol=1e-6)
    assert math.isnan(result[2])


def test_class_accumulator_over_batches_equals_one_shot_and_takes_tensors():
    masks, d = _three_class_case()
    acc = ClassDifficulty(3, VOID)
    for i in range(len(masks)):  # one image at a time, as torch B x 1 x H x W maps
        acc.update(torch.from_numpy(d[i : i + 1])[:, None], torch.from_numpy(masks[i : i + 1]))
    np.testing.assert_allclose(acc.result(), per_class_difficulty(d, masks, 3, VOID), rtol=1e-6)
    assert acc.counts.tolist() == [4, 5, 0]
    half = per_class_difficulty(torch.from_numpy(d).to(torch.bfloat16), masks, 3, VOID)  # autocast maps
    np.testing.assert_allclose(half[:2], [0.2, 0.5], rtol=1e-2)


def test_class_accumulator_rejects_a_map_of_another_size():
    with pytest.raises(ValueError, match="does not match"):
        ClassDifficulty(3, VOID).update(np.zeros((1, 2, 2)), np.zeros((1, 2, 3), np.uint8))


# --------------------------------------------------------------------------- spearman


def test_spearman_monotone_and_reversed():
    x = np.array([0.1, 0.2, 0.35, 0.9])
    assert spearman(x, x**3 + 5) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)


def test_spearman_ties_get_average_ranks():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4] -> rho = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert rankdata([1, 2, 2, 3]).tolist() == [1, 2.5, 2.5, 4]
    assert spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(3 / math.sqrt(10))


def test_spearman_drops_nan_pairs_and_is_nan_when_undefined():
    assert spearman([1, 2, np.nan, 3, 4], [2, 4, 1, 6, np.nan]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # constant side
    assert math.isnan(spearman([1, np.nan], [1, 2]))  # one pair left
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_class_table_and_correlation_on_known_classes():
    names = ["road", "car", "pole", "sign", "bus"]
    difficulty = [0.1, 0.2, 0.3, 0.4, np.nan]  # bus absent from the test pixels
    iou = [0.9, 0.8, 0.7, 0.6, 0.5]  # harder classes have lower IoU
    rows = class_table(names, difficulty, iou, pixels=[40, 30, 20, 10, 0])
    assert [r["class"] for r in rows] == names
    assert rows[2] == {"class": "pole", "mean_difficulty": 0.3, "iou": 0.7,
                       "one_minus_iou": pytest.approx(0.3), "pixels": 20}
    assert math.isnan(rows[4]["mean_difficulty"])
    assert difficulty_iou_correlation(difficulty, iou) == pytest.approx(1.0)
    assert difficulty_iou_correlation(difficulty, iou[::-1]) == pytest.approx(-1.0)
    # a class with no IoU (absent everywhere) is dropped too; ties -> 3 / sqrt(10)
    assert difficulty_iou_correlation([0.1, 0.2, 0.2, 0.3, 0.5], [0.9, 0.8, 0.7, 0.6, np.nan]) == \
        pytest.approx(3 / math.sqrt(10))
    assert hardest_classes(rows, 2) == ["sign", "pole"]
    with pytest.raises(ValueError):
        class_table(names[:2], difficulty, iou)


def test_analysis_end_to_end_with_the_confusion_matrix():
    # Classes 0..3 in the ground truth, class 4 only ever predicted, void 5.
    # Each class's pixels have one known difficulty, and the prediction errs
    # (says class 4) on more pixels of the harder classes: IoU 1, 8/9, 7/9, 6/9.
    c, void = 5, 5
    mask = np.repeat(np.arange(4), 10).reshape(1, 4, 10).astype(np.uint8)
    mask[0, :, 9] = void
    level = np.array([0.1, 0.4, 0.6, 0.8, 0.5, 0.99], np.float32)
    d = level[mask]
    pred = mask.copy()
    for k in range(4):  # class k: its first k pixels predicted as class 4
        pred[0, k, :k] = 4
    analysis = DifficultyAnalysis(c, void)
    for i in range(2):  # two batches of two rows
        rows = slice(2 * i, 2 * i + 2)
        analysis.update(torch.from_numpy(d[:, rows]), mask[:, rows], prediction=torch.from_numpy(pred[:, rows]))
    cm = ConfusionMatrix(c, void)
    cm.update(torch.from_numpy(mask), torch.from_numpy(pred))
    iou = cm.compute()["per_class_iou"]
    np.testing.assert_allclose(iou, [1, 8 / 9, 7 / 9, 6 / 9, 0])
    s = analysis.summary([f"c{k}" for k in range(c)], iou)
    np.testing.assert_allclose([r["mean_difficulty"] for r in s["rows"]][:4], level[:4], rtol=1e-6)
    assert math.isnan(s["rows"][4]["mean_difficulty"])  # predicted only: dropped from rho
    assert [r["pixels"] for r in s["rows"]] == [9, 9, 9, 9, 0]
    assert [r["iou"] for r in s["rows"]] == iou
    assert s["spearman"] == pytest.approx(1.0)
    assert s["hardest"] == ["c3", "c2", "c1"]
    err = error_codes(pred, mask, void)
    valid = err != 2
    assert s["auroc"] == pytest.approx(auroc(d[valid], err[valid] == 1))
    assert s["error_share"] == pytest.approx(6 / 36)
    assert s["mean_difficulty_error"] == pytest.approx(float(d[err == 1].mean()))
    with pytest.raises(ValueError, match="exactly one"):
        analysis.update(d, mask)


# --------------------------------------------------------------------------- AUROC


def test_error_codes_pack_right_error_void():
    mask = np.array([[0, 1, 5, 2]])
    pred = np.array([[0, 2, 1, 2]])
    assert error_codes(pred, mask, void_index=5).tolist() == [[0, 1, 2, 0]]


def test_auroc_is_one_when_the_map_is_the_error_mask():
    rng = np.random.default_rng(0)
    errors = (rng.random((3, 16, 16)) < 0.3).astype(np.uint8)
    errors[:, 0, :4] = 2  # void
    d = (errors == 1).astype(np.float32)
    assert error_auroc(d, errors) == 1.0
    valid = errors != 2
    assert auroc(d[valid], errors[valid] == 1) == 1.0
    assert error_auroc(1.0 - d, errors) == 0.0


def test_auroc_is_half_for_a_constant_map():
    rng = np.random.default_rng(1)
    errors = (rng.random((2, 8, 8)) < 0.4).astype(np.uint8)
    d = np.full(errors.shape, 0.37, np.float32)
    assert error_auroc(d, errors) == 0.5
    assert auroc(d, errors) == 0.5


@pytest.mark.parametrize("bins", [4096, 1 << 16])
def test_histogram_auroc_matches_the_rank_auroc(bins):
    rng = np.random.default_rng(2)
    n = 200_000
    wrong = rng.random(n) < 0.2
    # sigmoid outputs, errors somewhat harder
    d = 1 / (1 + np.exp(-(rng.normal(size=n) + 0.8 * wrong)))
    d = d.astype(np.float32)
    acc = ErrorAUROC(bins)
    for chunk in np.array_split(np.arange(n), 7):  # batches
        acc.update(d[chunk], wrong[chunk])
    exact = auroc(d, wrong)
    assert 0.6 < exact < 0.8
    assert acc.result() == pytest.approx(exact, abs=1e-3)
    # and it is exactly the tie-aware Mann-Whitney of the binned values
    assert acc.result() == pytest.approx(auroc(bin_index(d, bins), wrong), abs=1e-12)
    assert acc.n_error == int(wrong.sum()) and acc.n_right == int((~wrong).sum())
    assert acc.mean_error == pytest.approx(float(d[wrong].astype(np.float64).mean()))
    assert acc.mean_right == pytest.approx(float(d[~wrong].astype(np.float64).mean()))


def test_auroc_excludes_void_and_invalid_pixels():
    errors = np.array([[1, 0, 2, 2]], np.uint8)
    d = np.array([[0.9, 0.1, 0.0, 1.0]], np.float32)  # void pixels would flip the order
    assert error_auroc(d, errors) == 1.0
    bool_errors = np.array([[True, False, False, True]])
    assert error_auroc(d, bool_errors, valid=np.array([[1, 1, 0, 0]])) == 1.0
    assert math.isnan(error_auroc(d, np.zeros((1, 4), np.uint8)))  # no error pixel
    assert math.isnan(ErrorAUROC().result())
    assert math.isnan(ErrorAUROC().mean_error)


def test_auroc_from_histograms_ties_in_a_bin():
    # positives at bins 0 and 1, negatives at bin 1: (0 + 0.5) / 2 pairs = 0.25
    assert auroc_from_histograms([1, 1], [0, 1]) == 0.25
    assert bin_index([0.0, 0.5, 1.0, -0.1, 1.2], 4).tolist() == [0, 2, 3, 0, 3]


def test_example_indices_are_seeded_sorted_and_bounded():
    a = example_indices(100, 6, seed=3)
    assert a == example_indices(100, 6, seed=3)
    assert a == sorted(set(a)) and len(a) == 6 and all(0 <= i < 100 for i in a)
    assert a != example_indices(100, 6, seed=4)
    assert example_indices(3, 6, seed=0) == [0, 1, 2]
