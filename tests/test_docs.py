"""The README and docs/*.md: every relative link names a file that exists, every #anchor a heading
of it as GitHub slugs it (tools/check_links.py)."""

from __future__ import annotations

import sys

from pipeline_utils import REPO

sys.path.insert(0, str(REPO / "tools"))
import check_links  # noqa: E402  (tools/check_links.py)


def test_every_relative_link_and_anchor_in_the_readme_and_docs_resolves():
    problems = [line for path in check_links.documents() for line in check_links.broken_links(path)]
    assert not problems, "\n".join(problems)


def test_the_check_finds_missing_files_and_anchors_as_github_slugs_headings(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Scaling out: the `train.nproc` param (CUDA)\n\n"
                                       "## Notes\n\n## Notes\n\n```\n# not a heading\n```\n")
    (tmp_path / "image.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n"
        "[ok](other.md) [ok](other.md#scaling-out-the-trainnproc-param-cuda) [ok](other.md#notes-1) "
        "![ok](image.png) [ok](#a-page) [web](https://example.org/x#y) `[code](missing.md)`\n"
        "[gone](missing.md)\n"
        "[bad anchor](other.md#scaling-out)\n"
        "[not a heading](other.md#not-a-heading)\n"
        "[third notes](other.md#notes-2)\n"
        "[own](#nowhere) [png](image.png#x)\n"
        "```\n[in code](missing.md)\n```\n")
    assert check_links.slug("Scaling out: the `train.nproc` param (CUDA)") == "scaling-out-the-trainnproc-param-cuda"
    assert [line.split(": ", 1)[1] for line in check_links.broken_links(page)] == [
        f"(missing.md): no such file {tmp_path / 'missing.md'}",
        f"(other.md#scaling-out): no heading #scaling-out in {tmp_path / 'other.md'}",
        f"(other.md#not-a-heading): no heading #not-a-heading in {tmp_path / 'other.md'}",
        f"(other.md#notes-2): no heading #notes-2 in {tmp_path / 'other.md'}",
        f"(#nowhere): no heading #nowhere in {page}",
        "(image.png#x): an anchor into a file that is not Markdown"]
