"""The package's shape: one namespace, a pure core, profiles as values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Modules that would let pure/ reach the file system, the clock, the environment,
# logging, other processes or randomness (style.md section 1).
FORBIDDEN_IN_PURE = {
    "os",
    "io",
    "pathlib",
    "subprocess",
    "shutil",
    "fcntl",
    "time",
    "logging",
    "random",
    "socket",
    "tempfile",
    "glob",
    "sys",
    "signal",
    "threading",
    "multiprocessing",
    "secrets",
    "uuid",
    "platform",
    "libimage.adapters",
    "builtins",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def pure_modules() -> list[Path]:
    return sorted((REPO / "pure").glob("**/*.py"))


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: p.name)
def test_pure_module_touches_no_io(path: Path) -> None:
    """pure/ never imports I/O, clock, environment or logging modules, nor adapters."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bad_imports = {
        name
        for name in imported_modules(tree)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_PURE)
    }
    assert not bad_imports, f"{path.name} imports {sorted(bad_imports)}"
    bad_calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FORBIDDEN_CALLS
    }
    assert not bad_calls, f"{path.name} calls {sorted(bad_calls)}"
    clock = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in {"now", "today", "utcnow", "monotonic"}
    ]
    assert not clock, f"{path.name} reads the clock: {clock}"


def test_purity_check_can_fail(tmp_path: Path) -> None:
    """The AST walk above sees an I/O import (so the check is not vacuous)."""
    tree = ast.parse("import os\nfrom pathlib import Path\n")
    assert {"os", "pathlib"} <= imported_modules(tree)


def test_profiles_differ_only_in_switches() -> None:
    """Decision 1: the two profiles are values of one type; every switch is named."""
    from dataclasses import fields

    from libimage.pure.semantics import PODMAN_4_3, PROFILES, SEED

    assert PROFILES["seed"] is SEED
    assert PROFILES["podman-4.3"] is PODMAN_4_3
    differing = [
        f.name for f in fields(SEED) if getattr(SEED, f.name) != getattr(PODMAN_4_3, f.name)
    ]
    assert "short_names_before_id_prefix" in differing  # DIV-1
    assert "sha256_needs_full_id" in differing  # DIV-2
    with pytest.raises(AttributeError):
        SEED.sha256_needs_full_id = True  # type: ignore[misc]


def test_typeguard_checks_the_public_api() -> None:
    """The typeguard plugin instruments libimage: a wrong argument type is caught."""
    from typeguard import TypeCheckError

    from libimage.pure.snapshot import is_full_id

    with pytest.raises(TypeCheckError):
        is_full_id(64)  # type: ignore[arg-type]
