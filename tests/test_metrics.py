import math

import torch

from deal.metrics import ConfusionMatrix


def test_confusion_matrix_iou_miou_and_accuracy():
    # classes 0..2, void 3; class 2 absent from ground truth and prediction.
    target = torch.tensor([0, 0, 0, 1, 1, 3, 3])
    prediction = torch.tensor([0, 0, 1, 1, 0, 2, 0])
    cm = ConfusionMatrix(num_classes=3, void_index=3)
    cm.update(target, prediction)
    result = cm.compute()
    # class 0: tp 2, fp 1, fn 1 -> 2/4; class 1: tp 1, fp 1, fn 1 -> 1/3; class 2: NaN
    assert result["per_class_iou"][0] == 0.5
    assert math.isclose(result["per_class_iou"][1], 1 / 3)
    assert math.isnan(result["per_class_iou"][2])
    assert math.isclose(result["miou"], (0.5 + 1 / 3) / 2)
    assert math.isclose(result["pixel_accuracy"], 3 / 5)


def test_class_only_predicted_counts_with_iou_zero():
    cm = ConfusionMatrix(num_classes=3, void_index=255)
    cm.update(torch.tensor([0, 0]), torch.tensor([0, 2]))
    result = cm.compute()
    assert result["per_class_iou"][2] == 0.0
    assert math.isnan(result["per_class_iou"][1])
    assert math.isclose(result["miou"], (0.5 + 0.0) / 2)


def test_updates_accumulate_and_reset():
    cm = ConfusionMatrix(num_classes=2, void_index=2)
    cm.update(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    cm.update(torch.tensor([[1, 1]]), torch.tensor([[1, 0]]))
    assert cm.mat.tolist() == [[1, 0], [1, 2]]
    cm.reset()
    assert cm.mat.sum() == 0
