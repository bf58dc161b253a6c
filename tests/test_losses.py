import math

import pytest
import torch
import torch.nn.functional as F

from deal.losses import deal_loss, error_mask, plain_bce, segmentation_loss, weighted_bce

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
