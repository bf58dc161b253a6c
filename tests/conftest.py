"""Fixtures shared by the test modules: the tiny finished run, and a tiny dataset."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_utils import copy_repo, edit_params, repro, restore, run, tiny_params

VOID = 3  # the void index of tiny_set's masks
# the project's pretraining: one epoch of colorization (10 steps of 4 of the 40 tiny train images)
TINY_PRETRAIN = {"method": "colorization", "steps": 6, "batch_size": 4, "lr": 0.01, "bin_size": 32, "scenes": 8,
                 "conditions": "none", "seed": 1}


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """A tiny finished run (seeds 0 and 1, random and DEAL DE, 2 rounds, from the colorization
    pretraining), committed: (root, stages that ran).

    Shared by the modules that need one; a test that changes it takes
    `changed_project`, which restores it when the test ends.
    """
    root = copy_repo(tmp_path_factory.mktemp("deal"))
    edit_params(root, lambda p: (tiny_params(p, methods=("random", "deal_de"), rounds=2, seeds=(0, 1)),
                                 p["pretrain"].update(TINY_PRETRAIN)))
    ran = repro(root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny run"], root)
    return root, ran



@pytest.fixture
def changed_project(project):
    """`project` for a test that edits it: its params, outputs and leftovers are restored after."""
    yield project
    restore(project[0])


def make_tiny_set(n: int = 8, size: int = 32, seed: int = 0) -> TensorDataset:
    """Three classes told apart by colour, a void corner: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, 3, (n, size // 8, size // 8), generator=g)
    masks = masks.repeat_interleave(8, 1).repeat_interleave(8, 2)
    palette = torch.tensor([[1.5, -1.0, -1.0], [-1.0, 1.5, -1.0], [-1.0, -1.0, 1.5]])
    images = palette[masks].permute(0, 3, 1, 2) + 0.3 * torch.randn(n, 3, size, size, generator=g)
    masks[:, :2, :2] = VOID
    return TensorDataset(images.float(), masks.long())


@pytest.fixture
def tiny_set():
    """`make_tiny_set` as a fixture: call it with n, size, seed."""
    return make_tiny_set
