"""Fixtures shared by the end-to-end test modules."""

from __future__ import annotations

import pytest

from pipeline_utils import copy_repo, edit_params, repro, run, tiny_params


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """A tiny finished run (seeds 0 and 1, random and DEAL DE, 2 rounds), committed: (root, stages that ran).

    Shared by the modules that need one; a test that changes it restores it
    (pipeline_utils.restore) before it ends.
    """
    root = copy_repo(tmp_path_factory.mktemp("deal"))
    edit_params(root, lambda p: tiny_params(p, methods=("random", "deal_de"), rounds=2, seeds=(0, 1)))
    ran = repro(root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny run"], root)
    return root, ran

