import math

import pytest
import torch
import torch.nn.functional as F

from deal.losses import deal_loss, error_mask, plain_bce, segmentation_loss, weighted_bce, median_frequency_weights

VOID = 3


def _bce(logit, target):
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_weighted_bce_matches_hand_computation():
    # 1 x 1 x 2 x 3 map: 4 right pixels, 1 error pixel, 1 void pixel.
    logits = torch.tensor([[[[0.0, 1.0, -2.0], [0.5, 3.0, 4.0]]]])
    errors = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]])
    valid = torch.tensor([[[True, True, True], [True, True, False]]])
    right = [_bce(0.0, 0), _bce(1.0, 0), _bce(-2.0, 0), _bce(0.5, 0)]
    wrong = [_bce(3.0, 1)]
    inv_r, inv_e = 1 / math.sqrt(4 + 1), 1 / math.sqrt(1 + 1)
    w_r, w_e = inv_r / (inv_r + inv_e), inv_e / (inv_r + inv_e)
    expected = w_r * sum(right) / 4 + w_e * sum(wrong) / 1
    assert weighted_bce(logits, errors, valid).item() == pytest.approx(expected, rel=1e-6)


def test_weighted_bce_with_no_errors_is_right_mean_times_its_weight():
    logits = torch.tensor([[[[0.3, -0.7]]]])
    errors = torch.zeros(1, 1, 2)
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    inv_r, inv_e = 1 / math.sqrt(3), 1.0
    expected = inv_r / (inv_r + inv_e) * (_bce(0.3, 0) + _bce(-0.7, 0)) / 2
    assert weighted_bce(logits, errors, valid).item() == pytest.approx(expected, rel=1e-6)


def test_plain_bce_is_mean_over_valid():
    logits = torch.tensor([[[[0.0, 2.0, -1.0]]]])
    errors = torch.tensor([[[0.0, 1.0, 1.0]]])
    valid = torch.tensor([[[True, True, False]]])
    expected = (_bce(0.0, 0) + _bce(2.0, 1)) / 2
    assert plain_bce(logits, errors, valid).item() == pytest.approx(expected, rel=1e-6)


def _logits_predicting(prediction, num_classes=3):
    return F.one_hot(prediction, num_classes).permute(0, 3, 1, 2).float() * 5


def test_error_mask_excludes_void_by_default():
    prediction = torch.tensor([[[0, 1, 2, 0]]])
    target = torch.tensor([[[0, 2, VOID, VOID]]])
    errors, valid = error_mask(_logits_predicting(prediction), target, VOID)
    assert errors.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]
    assert valid.tolist() == [[[True, True, False, False]]]


def test_error_mask_void_as_correct_is_published_behaviour():
    prediction = torch.tensor([[[0, 1, 2, 0]]])
    target = torch.tensor([[[0, 2, VOID, VOID]]])
    errors, valid = error_mask(_logits_predicting(prediction), target, VOID, void_as_correct=True)
    assert errors.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]
    assert valid.all()


def test_error_mask_has_no_gradient():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    errors, _ = error_mask(logits, torch.zeros(1, 2, 2, dtype=torch.long), VOID)
    assert not errors.requires_grad


def test_segmentation_loss_ignores_void():
    logits = torch.randn(1, 3, 1, 2)
    target = torch.tensor([[[1, VOID]]])
    expected = F.cross_entropy(logits[..., :1], target[..., :1])
    torch.testing.assert_close(segmentation_loss(logits, target, VOID), expected)


def test_deal_loss_adds_lambda_times_difficulty():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    dif = torch.randn(2, 1, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    total, parts = deal_loss(logits, dif, target, VOID, lambda_dif=0.5)
    torch.testing.assert_close(total, parts["loss_seg"] + 0.5 * parts["loss_dif"])
    errors, valid = error_mask(logits, target, VOID)
    torch.testing.assert_close(parts["loss_dif"], weighted_bce(dif, errors, valid))


def test_median_frequency_weights_on_crafted_masks():
    """Eigen and Fergus's f_c: class pixels over the labelled pixels of the images holding the class."""
    void = 255
    a = torch.zeros(2, 4, dtype=torch.uint8)  # image a: 6 of class 0, 2 of class 1
    a[1, :2] = 1
    b = torch.full((2, 4), 2, dtype=torch.uint8)  # image b: 4 of class 2, 2 of class 0, 2 void
    b[0, :2] = 0
    b[1, :2] = void
    weights = median_frequency_weights(torch.stack([a, b]), num_classes=4, void_index=void)
    # f_0 = 8 / 14 (in both images: 8 + 6 labelled pixels), f_1 = 2 / 8, f_2 = 4 / 6; class 3 absent
    f = [8 / 14, 2 / 8, 4 / 6]
    median = sorted(f)[1]
    assert weights == pytest.approx((median / f[0], median / f[1], median / f[2], 0.0))
    assert weights[0] == pytest.approx(1.0)  # the median class weighs 1


def test_class_weights_weigh_each_class_and_leave_void_out():
    logits = torch.zeros(1, 3, 1, 3)
    logits[0, 0, 0, :] = 2.0  # every pixel predicts class 0
    target = torch.tensor([[[0, 1, 255]]])
    plain = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="none")[0, 0]
    weights = torch.tensor([1.0, 3.0, 0.5])
    expected = (1.0 * plain[0] + 3.0 * plain[1]) / (1.0 + 3.0)
    assert segmentation_loss(logits, target, 255, weights) == pytest.approx(float(expected))
    assert segmentation_loss(logits, target, 255) == pytest.approx(float((plain[0] + plain[1]) / 2))


def test_median_frequency_weights_refuse_masks_without_a_label():
    with pytest.raises(ValueError, match="no labelled pixel"):
        median_frequency_weights(torch.full((1, 2, 2), 255, dtype=torch.uint8), num_classes=3, void_index=255)
