"""Every relative link in the README and the docs names a file of the repository.

A renamed or missing page is found here, not by a reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [CHECKOUT / "README.md", CHECKOUT / "bench" / "README.md", *(CHECKOUT / "docs").glob("*.md")]
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    targets = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {Path(target).name for target in relative_links(CHECKOUT / "README.md")}
    pages = {page.name for page in (CHECKOUT / "docs").glob("*.md")}
    assert pages - linked == set()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(CHECKOUT)))
def test_relative_links_resolve(page: Path) -> None:
    missing = [target for target in relative_links(page) if not (page.parent / target).exists()]
    assert missing == []
