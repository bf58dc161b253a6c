import os
import shutil

import pytest
import torch

from deal.models import DifficultyHead, ProbabilityAttention, naive_probability_attention
from deal.models import pam_cpu

# Token counts below, at and across the kernel's 256-token blocks, with tails
# that are not a multiple of its vector width.
SHAPES = [(1, 2, 4, 4), (1, 3, 1, 5), (2, 11, 6, 8), (3, 19, 9, 9), (2, 5, 15, 20), (1, 11, 30, 40), (2, 11, 17, 31)]

HAS_COMPILER = shutil.which(os.environ.get("CC") or "cc") is not None


def uses_symmetric_backward(tensor: torch.Tensor) -> bool:
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__.startswith("SymmetricAttentionBackward"):
            return True
        todo.extend(next_node for next_node, _ in node.next_functions)
    return False


@pytest.fixture(params=["symmetric", "sdpa"])
def backward(request, monkeypatch):
    """Run a test once with the compiled symmetric backward and once with SDPA's own."""
    if request.param == "symmetric" and not HAS_COMPILER:
        pytest.skip("no C compiler: the symmetric backward is not built here")
    return request.param


def pam_for(backward: str) -> ProbabilityAttention:
    """The symmetric case runs as deal.pam_backward auto: the kernel where it applies."""
    return ProbabilityAttention("auto" if backward == "symmetric" else "sdpa")


@pytest.mark.parametrize("shape", SHAPES)
def test_fused_pam_matches_naive_outputs_and_gradients(shape, backward):
    torch.manual_seed(sum(shape))
    logits = torch.randn(*shape) * 3
    probs_fused = torch.softmax(logits, dim=1).requires_grad_()
    probs_naive = probs_fused.detach().clone().requires_grad_()
    pam = pam_for(backward)
    with torch.no_grad():
        pam.gamma.fill_(0.75)
    gamma_naive = pam.gamma.detach().clone().requires_grad_()

    fused = pam(probs_fused)
    naive = naive_probability_attention(probs_naive, gamma_naive)
    torch.testing.assert_close(fused, naive, atol=1e-5, rtol=0)
    assert uses_symmetric_backward(fused) == (backward == "symmetric")

    upstream = torch.randn(shape)
    (fused * upstream).sum().backward()
    (naive * upstream).sum().backward()
    torch.testing.assert_close(probs_fused.grad, probs_naive.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(pam.gamma.grad, gamma_naive.grad, atol=1e-5, rtol=1e-5)


def test_pam_starts_as_identity():
    probs = torch.softmax(torch.randn(2, 3, 5, 5), dim=1)
    pam = ProbabilityAttention()
    assert pam.gamma.item() == 0.0
    torch.testing.assert_close(pam(probs), probs)


def test_attention_rows_are_softmax_of_unscaled_dot_products():
    # Two pixels, one-hot on different classes: E = [[1, 0], [0, 1]].
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)
    pam = ProbabilityAttention()
    with torch.no_grad():
        pam.gamma.fill_(1.0)
    e = torch.e
    a_same, a_other = e / (e + 1), 1 / (e + 1)
    expected = torch.tensor([[1 + a_same, a_other], [a_other, 1 + a_same]]).reshape(1, 2, 1, 2)
    torch.testing.assert_close(pam(probs), expected)


@pytest.mark.parametrize("detach", [True, False])
def test_difficulty_head_shapes_and_detach(detach):
    head = DifficultyHead(num_classes=4, grid=(6, 8), detach=detach)
    low = torch.randn(2, 4, 5, 7, requires_grad=True)
    out = head(low, (20, 28))
    assert out.shape == (2, 1, 20, 28)
    out.sum().backward()
    assert (low.grad is None) == detach
    assert head.attention.gamma.grad is not None


@pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler: the symmetric backward is not built here")
def test_symmetric_backward_at_the_camvid_grid_is_as_exact_as_sdpa(monkeypatch):
    # One image of the published CamVid grid against float64: the kernel's
    # float32 error must stay within 2x of SDPA's own backward.
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(1, 11, 60, 80) * 3, dim=1)
    upstream = torch.randn(1, 11, 60, 80)
    pam = ProbabilityAttention()
    with torch.no_grad():
        pam.gamma.fill_(1.0)

    def input_gradient(p):
        p = p.detach().requires_grad_()
        out = pam(p)
        (out * upstream).sum().backward()
        return out, p.grad.double()

    p64 = probs.double().requires_grad_()
    (naive_probability_attention(p64, pam.gamma.detach().double()) * upstream.double()).sum().backward()
    out, symmetric = input_gradient(probs)
    assert uses_symmetric_backward(out)
    pam.backward = "sdpa"
    _, sdpa = input_gradient(probs)
    symmetric_error = (symmetric - p64.grad).abs().max().item()
    sdpa_error = (sdpa - p64.grad).abs().max().item()
    assert symmetric_error < max(2 * sdpa_error, 1e-7), (symmetric_error, sdpa_error)


@pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler: the symmetric backward is not built here")
def test_symmetric_backward_is_the_same_on_one_thread_and_on_two():
    torch.manual_seed(1)
    tokens = torch.softmax(torch.randn(2, 300, 5), dim=-1)
    upstream = torch.randn(2, 300, 5)
    grads = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            t = tokens.clone().requires_grad_()
            (pam_cpu.attention(t)[0] * upstream).sum().backward()
            grads.append(t.grad)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-7, rtol=1e-6)


def test_inputs_beyond_the_kernels_exp_range_keep_sdpas_backward(backward):
    # |x|^2 up to 100: the kernel's shifted energies could leave float32 exp.
    torch.manual_seed(2)
    probs = (torch.randn(1, 4, 6, 6) * 5).requires_grad_()
    reference = probs.detach().clone().requires_grad_()
    pam = pam_for(backward)
    with torch.no_grad():
        pam.gamma.fill_(1.0)
    out = pam(probs)
    assert not uses_symmetric_backward(out)
    out.sum().backward()
    naive_probability_attention(reference, pam.gamma.detach()).sum().backward()
    torch.testing.assert_close(probs.grad, reference.grad, atol=1e-4, rtol=1e-4)


def test_no_gradient_needed_means_no_kernel(backward):
    probs = torch.softmax(torch.randn(1, 3, 4, 4), dim=1)
    pam = pam_for(backward)
    out = pam(probs)  # input detached: only gamma learns, SDPA's forward is enough
    assert not uses_symmetric_backward(out)
    with torch.no_grad():
        assert pam(probs.requires_grad_()).grad_fn is None


@pytest.mark.parametrize("compiler", ["/nonexistent/cc", "false"])
def test_a_missing_or_failing_compiler_falls_back_to_sdpa_with_one_warning(compiler, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", compiler)
    monkeypatch.setenv("DEAL_KERNEL_CACHE", str(tmp_path / "kernels"))
    pam_cpu.clear_cache()
    try:
        probs = torch.softmax(torch.randn(1, 7, 5, 5), dim=1).requires_grad_()
        pam = ProbabilityAttention("auto")
        with pytest.warns(RuntimeWarning, match="SDPA's generic backward"):
            out = pam(probs)
        assert not uses_symmetric_backward(out) and pam.backward_ran == {"sdpa"}
        out.sum().backward()
        assert probs.grad is not None
        assert not list((tmp_path / "kernels").glob("*.tmp"))  # a failed build leaves nothing behind
        # asked for by name, the kernel does not fall back: it stops, saying why
        with pytest.raises(pam_cpu.KernelUnavailable, match="C compiler|could not build"):
            ProbabilityAttention("symmetric")(probs)
        with pytest.raises(pam_cpu.KernelUnavailable):
            pam_cpu.check_backward("symmetric", torch.device("cpu"), 7)
        pam_cpu.check_backward("auto", torch.device("cpu"), 7)  # auto and sdpa always run
    finally:
        pam_cpu.clear_cache()


@pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler: the symmetric backward is not built here")
def test_kernel_builds_once_into_its_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEAL_KERNEL_CACHE", str(tmp_path))
    pam_cpu.clear_cache()
    try:
        assert pam_cpu.load_backward(6) is not None
        built = sorted(tmp_path.iterdir())
        assert [p.suffix for p in built] == [".so"] and built[0].name.startswith("pam_backward-c6-")
        mtime = built[0].stat().st_mtime_ns
        pam_cpu.clear_cache()
        assert pam_cpu.load_backward(6) is not None
        assert sorted(tmp_path.iterdir()) == built and built[0].stat().st_mtime_ns == mtime
    finally:
        pam_cpu.clear_cache()


def test_an_unknown_backward_choice_stops_with_the_fix():
    probs = torch.softmax(torch.randn(1, 3, 4, 4), dim=1).requires_grad_()
    with pytest.raises(ValueError, match="auto, symmetric, sdpa"):
        ProbabilityAttention("fast")(probs)


@pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler: the symmetric backward is not built here")
def test_the_backward_that_ran_is_recorded_and_symmetric_refuses_what_it_cannot_run():
    probs = torch.softmax(torch.randn(1, 5, 6, 6), dim=1).requires_grad_()
    for choice, ran in (("auto", {"symmetric"}), ("symmetric", {"symmetric"}), ("sdpa", {"sdpa"})):
        pam = ProbabilityAttention(choice)
        with torch.no_grad():
            pam(probs)  # nothing differentiated: nothing recorded
        assert pam.backward_ran == set()
        out = pam(probs)
        assert uses_symmetric_backward(out) == (ran == {"symmetric"}) and pam.backward_ran == ran
    with pytest.raises(pam_cpu.KernelUnavailable, match="float32 CPU"):
        ProbabilityAttention("symmetric")(probs.double())
    with pytest.raises(pam_cpu.KernelUnavailable, match="on the CPU"):
        pam_cpu.check_backward("symmetric", torch.device("cuda"), 5)
