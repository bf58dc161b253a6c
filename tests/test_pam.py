import pytest
import torch

from deal.models import DifficultyHead, ProbabilityAttention, naive_probability_attention

SHAPES = [(1, 2, 4, 4), (2, 11, 6, 8), (3, 19, 9, 9), (2, 5, 15, 20), (1, 11, 30, 40)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fused_pam_matches_naive_outputs_and_gradients(shape):
    torch.manual_seed(sum(shape))
    logits = torch.randn(*shape) * 3
    probs_fused = torch.softmax(logits, dim=1).requires_grad_()
    probs_naive = probs_fused.detach().clone().requires_grad_()
    pam = ProbabilityAttention()
    with torch.no_grad():
        pam.gamma.fill_(0.75)
    gamma_naive = pam.gamma.detach().clone().requires_grad_()

    fused = pam(probs_fused)
    naive = naive_probability_attention(probs_naive, gamma_naive)
    torch.testing.assert_close(fused, naive, atol=1e-5, rtol=0)

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
