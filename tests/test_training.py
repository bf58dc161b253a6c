import pytest
import torch

from deal.models import ModelConfig, build_model
from deal.training import TrainConfig, evaluate, resolve_precision, train

from conftest import VOID, make_tiny_set as _tiny_set  # the shared tiny dataset


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(num_classes=3, width_mult=0.35, head_channels=32, grid=(8, 8)))


CFG = dict(batch_size=4, lr=0.01, val_every=1, precision="fp32", device="cpu", progress=False, seed=1)


def test_a_few_steps_lower_the_loss():
    data = _tiny_set()
    result = train(_model(), data, TrainConfig(epochs=6, **CFG), num_classes=3, void_index=VOID)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < losses[0]
    assert all(r["loss_dif"] > 0 for r in result.history)


def test_best_validation_checkpoint_is_kept():
    data = _tiny_set()
    model = _model()
    result = train(model, data, TrainConfig(epochs=3, **CFG), num_classes=3, void_index=VOID, val_set=data)
    vals = [r["val_miou"] for r in result.history]
    assert result.best_miou == max(vals)
    assert result.best_epoch == vals.index(max(vals)) + 1
    again = evaluate(model, data, num_classes=3, void_index=VOID, cfg=TrainConfig(**CFG))
    assert again["miou"] == pytest.approx(result.best_miou)


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    model = _model()
    result = train(model, _tiny_set(), TrainConfig(epochs=1, **CFG), num_classes=3, void_index=VOID)
    path = tmp_path / "model.pt"
    torch.save(result.state_dict, path)
    loaded = torch.load(path, weights_only=True)
    fresh = _model(seed=5)
    fresh.load_state_dict(loaded)
    x = torch.randn(1, 3, 32, 32)
    model.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x).logits, model(x).logits)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    data = _tiny_set()
    cfg = TrainConfig(epochs=3, **CFG)
    full = train(_model(), data, cfg, num_classes=3, void_index=VOID, val_set=data)

    path = tmp_path / "last.pt"

    class Interrupted(Exception):
        pass

    def save_then_die(state):
        torch.save(state, path)
        if state["epoch"] == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_model(), data, cfg, num_classes=3, void_index=VOID, val_set=data, save_last=save_then_die)
    resume = torch.load(path, weights_only=True)
    assert resume["epoch"] == 2
    resumed = train(_model(seed=9), data, cfg, num_classes=3, void_index=VOID, val_set=data, resume=resume)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.best_epoch == full.best_epoch
    for key, value in full.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, msg=key)


def test_decoupled_training_changes_only_the_difficulty_branch():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, _tiny_set(), TrainConfig(epochs=2, mode="decoupled", **CFG), num_classes=3, void_index=VOID)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("difficulty.") for k in changed)
    assert "difficulty.attention.gamma" in changed


def test_segmentation_mode_leaves_the_difficulty_branch_untouched():
    model = _model()
    before = {k: v.clone() for k, v in model.difficulty.state_dict().items()}
    train(model, _tiny_set(), TrainConfig(epochs=1, mode="segmentation", **CFG), num_classes=3, void_index=VOID)
    for k, v in model.difficulty.state_dict().items():
        assert torch.equal(before[k], v)


def test_bf16_autocast_trains_on_cpu():
    dtype = resolve_precision("bf16", torch.device("cpu"))
    assert dtype is torch.bfloat16
    cfg = TrainConfig(epochs=2, **{**CFG, "precision": "bf16"})
    result = train(_model(), _tiny_set(), cfg, num_classes=3, void_index=VOID)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)


# ---------------------------------------------------------------- weight averaging


def _filled(value: float) -> torch.nn.Module:
    """A tiny network with BatchNorm whose every weight and float buffer is `value`."""
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    with torch.no_grad():
        for tensor in [*net.parameters(), net[1].running_mean, net[1].running_var]:
            tensor.fill_(value)
    return net


@pytest.mark.parametrize("kind", ["swa", "ema"])
def test_weight_average_is_exact_on_a_crafted_sequence(kind):
    from deal.training import WeightAverage

    weights = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0]  # the network after steps 1..6
    start = 2  # averaged from step 3 on: 4, 1, -5, 9
    average = WeightAverage(_filled(0.0), kind, start=start, decay=0.75)
    for step, value in enumerate(weights, start=1):
        average.update(_filled(value), step)
    if kind == "swa":
        expected = (4.0 + 1.0 - 5.0 + 9.0) / 4  # equal weights
    else:  # the first averaged network is copied, then avg = 0.75 avg + 0.25 w
        expected = 4.0
        for value in (1.0, -5.0, 9.0):
            expected = 0.75 * expected + 0.25 * value
    assert average.count == 4
    net = average.averaged.module
    for tensor in [*net.parameters(), net[1].running_mean, net[1].running_var]:  # buffers averaged too
        torch.testing.assert_close(tensor, torch.full_like(tensor, expected), rtol=0, atol=1e-6)


def test_before_its_start_the_average_is_the_network_itself():
    from deal.training import WeightAverage

    model = _filled(7.0)
    average = WeightAverage(model, "swa", start=5, decay=0.9)
    average.update(_filled(1.0), 5)  # step 5 is not after the start
    assert average.count == 0 and average.network(model) is model


def test_training_keeps_the_average_of_the_steps_after_the_start(monkeypatch):
    """train with SWA from half the run keeps exactly the mean of the network after each later step."""
    from deal import training

    snapshots = {}
    update = training.WeightAverage.update

    def recording(self, model, steps_done):
        snapshots[steps_done] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        update(self, model, steps_done)

    monkeypatch.setattr(training.WeightAverage, "update", recording)
    data = _tiny_set()
    cfg = TrainConfig(epochs=4, average="swa", average_start=0.5, **CFG)
    result = train(_model(), data, cfg, num_classes=3, void_index=VOID)
    steps = len(snapshots)
    later = [snapshots[s] for s in range(steps // 2 + 1, steps + 1)]
    assert len(later) == steps - steps // 2 >= 2
    for key, value in result.state_dict.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, torch.stack([s[key] for s in later]).mean(0), msg=key)
    assert result.history[-1]["averaged"] == len(later)


def test_an_interrupted_averaged_run_resumes_to_the_same_weights(tmp_path):
    data = _tiny_set()
    cfg = TrainConfig(epochs=3, average="ema", average_start=0.2, ema_decay=0.9, **CFG)
    full = train(_model(), data, cfg, num_classes=3, void_index=VOID)
    path = tmp_path / "last.pt"

    class Interrupted(Exception):
        pass

    def save_then_die(state):
        torch.save(state, path)
        if state["epoch"] == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_model(), data, cfg, num_classes=3, void_index=VOID, save_last=save_then_die)
    resumed = train(_model(seed=9), data, cfg, num_classes=3, void_index=VOID,
                    resume=torch.load(path, weights_only=True))
    for key, value in full.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, msg=key, rtol=0, atol=0)
