import pytest
import torch
from torchvision.models import mobilenet_v2

from deal.models import DeepLabV3Plus, ModelConfig, build_model, load_imagenet_encoder


def test_forward_returns_full_and_quarter_logits_and_difficulty():
    model = build_model(ModelConfig(num_classes=5, width_mult=0.5, head_channels=32, grid=(8, 8))).eval()
    out = model(torch.randn(2, 3, 48, 64))
    assert out.logits.shape == (2, 5, 48, 64)
    assert out.low_logits.shape == (2, 5, 12, 16)
    assert out.difficulty_logits.shape == (2, 1, 48, 64)


def test_output_stride_is_16_with_dilation():
    model = DeepLabV3Plus(num_classes=3, width_mult=0.5)
    x = torch.randn(1, 3, 64, 96)
    high = model.high_level(model.low_level(x))
    assert high.shape[-2:] == (4, 6)
    dilations = {m.dilation for m in model.high_level[10:].modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)}
    assert dilations == {(1, 1), (2, 2)}


def test_published_architecture_sizes():
    model = DeepLabV3Plus(num_classes=11)
    assert model.low_project[0].in_channels == 24 and model.low_project[0].out_channels == 48
    assert model.aspp.convs[0][0].in_channels == 320
    rates = [c[0].dilation[0] for c in model.aspp.convs[1:4]]
    assert rates == [6, 12, 18]
    dropouts = [m.p for m in model.decoder if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.5, 0.1]
    assert 5.5e6 < sum(p.numel() for p in model.parameters()) < 6.0e6


def test_imagenet_weights_load_from_a_local_state_dict(tmp_path):
    torch.manual_seed(0)
    reference = mobilenet_v2(weights=None)
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(reference.state_dict(), path)
    model = DeepLabV3Plus(num_classes=4)
    load_imagenet_encoder(model, path)
    torch.testing.assert_close(model.low_level[0][0].weight, reference.features[0][0].weight)
    torch.testing.assert_close(model.high_level[13].conv[2].weight, reference.features[17].conv[2].weight)


def test_imagenet_weights_missing_or_mismatched_file_is_a_clear_error(tmp_path):
    model = DeepLabV3Plus(num_classes=4, width_mult=0.5)
    with pytest.raises(FileNotFoundError, match="ImageNet weights not found"):
        load_imagenet_encoder(model, tmp_path / "absent.pth")
    path = tmp_path / "full_width.pth"
    torch.save(mobilenet_v2(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="width_mult 1.0"):
        load_imagenet_encoder(model, path)
    other = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not a torchvision mobilenet_v2"):
        load_imagenet_encoder(DeepLabV3Plus(num_classes=4), other)


def test_build_model_with_a_seed_is_reproducible_and_leaves_the_global_rng_alone():
    cfg = ModelConfig(num_classes=3, width_mult=0.35, head_channels=16, grid=(4, 4))
    before = torch.get_rng_state()
    a, b = build_model(cfg, seed=7), build_model(cfg, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    c = build_model(cfg, seed=8)
    assert not torch.equal(a.segmenter.classifier.weight, c.segmenter.classifier.weight)
