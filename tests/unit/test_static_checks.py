"""mypy --strict and ruff are clean on the whole repository (configured in pyproject.toml).

They run in the test suite so that CI holds the tree to them: a type error or a lint
finding fails a test, naming the file and line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    assert on_path is not None, f"{name} is not installed (it is in the test extra)"
    return on_path


@pytest.mark.parametrize(
    "argv",
    [
        ["mypy"],
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
    ],
    ids=["mypy-strict", "ruff-check", "ruff-format"],
)
def test_the_tree_is_clean(argv: list[str], tmp_path: Path) -> None:
    command = [_tool(argv[0]), *argv[1:]]
    if argv[0] == "mypy":
        command += ["--cache-dir", str(tmp_path / "mypy-cache")]
    result = subprocess.run(
        command, check=False, cwd=CHECKOUT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
