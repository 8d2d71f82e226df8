"""The examples in docstrings are tests too (style.md section 7)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("libimage.pure", "libimage.adapters", "libimage.spec")


def package_modules() -> list[str]:
    names: list[str] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.extend(
            info.name for info in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}.")
        )
    return sorted(names)


@pytest.mark.parametrize("module_name", package_modules())
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
