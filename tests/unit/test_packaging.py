"""The built wheel installs under one namespace and works in a fresh virtual environment.

Issue #2: ``pip install .`` builds a wheel whose import names all live under
``libimage.`` (setuptools' ``package-dir`` maps the top-level ``pure/``,
``adapters/`` and ``spec/``), with its package data, its ``py.typed`` marker and the
``libimage`` console script. The wheel is built once per module, as ``pip install .``
builds it, and installed without dependencies into a new virtual environment; the
runtime dependencies come from this test's environment through a ``.pth`` path entry
(a path entry only: the checkout's editable install, made by an import hook in a
``.pth`` file there, is not loaded). Everything runs outside the checkout, so only the
installed copy can be imported.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[2]
SAMPLE_STORE = CHECKOUT / "examples" / "sample-store"


@dataclass(frozen=True)
class Installed:
    environment: Path
    site_packages: Path
    added: frozenset[str]

    @property
    def python(self) -> Path:
        return self.environment / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.environment / "bin" / "libimage"


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    wheels = base / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(CHECKOUT)],
        base,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("libimage-*.whl")
    environment = base / "fresh"
    venv.EnvBuilder(with_pip=True).create(environment)
    site_packages = Path(
        sysconfig.get_paths(vars={"base": str(environment), "platbase": str(environment)})[
            "purelib"
        ]
    )
    before = {entry.name for entry in site_packages.iterdir()}
    pip = [str(environment / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = _run([*pip, "--no-deps", "--no-index", str(wheel)], base)
    assert done.returncode == 0, done.stderr
    added = frozenset(entry.name for entry in site_packages.iterdir()) - before
    # The dependencies (pyrsistent, hypothesis) of this test's own environment.
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(environment, site_packages, added)


def test_only_the_libimage_namespace_lands_in_site_packages(installed: Installed) -> None:
    """Nothing generic (``pure``, ``adapters``, ``spec``) at the top of site-packages."""
    assert {name for name in installed.added if not name.endswith(".dist-info")} == {"libimage"}
    assert {name for name in installed.added if name.endswith(".dist-info")} == {
        "libimage-0.1.0.dist-info"
    }
    package = installed.site_packages / "libimage"
    assert {"pure", "adapters", "spec", "py.typed", "__main__.py"} <= {
        entry.name for entry in package.iterdir()
    }
    # Real directories, not links back into a checkout.
    assert not (package / "pure").is_symlink()
    assert (package / "spec" / "known-podman-differences.json").is_file()
    assert list((package / "spec" / "cases").glob("*.json"))


def test_the_installed_copy_is_the_one_imported(installed: Installed, tmp_path: Path) -> None:
    code = (
        "import libimage, libimage.pure.reference, libimage.adapters.cli, libimage.spec.model\n"
        "print(libimage.pure.reference.__file__)\n"
        "print(libimage.Runtime.__module__)\n"
        "import importlib.util\n"
        "print([n for n in ('pure', 'adapters', 'spec') if importlib.util.find_spec(n)])\n"
    )
    result = _run([str(installed.python), "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    module_file, runtime_module, generic = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(installed.site_packages / "libimage" / "pure")
    assert runtime_module == "libimage.adapters.runtime"
    assert generic == "[]"


def test_the_console_script_lists_the_sample_store(installed: Installed, tmp_path: Path) -> None:
    """The README's first command, from the installed script: the sample store's names."""
    result = _run([str(installed.script), "--root", str(SAMPLE_STORE), "images"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "localhost/alpha" in result.stdout
    assert result.stdout.splitlines()[0].split() == [
        "REPOSITORY",
        "TAG",
        "IMAGE",
        "ID",
        "CREATED",
        "SIZE",
    ]


def test_the_installed_oracle_finds_its_known_differences(
    installed: Installed, tmp_path: Path
) -> None:
    """Package data: the oracle's list of known podman differences ships with it."""
    code = "from libimage.spec.oracle import load_known\nprint(len(load_known()))\n"
    result = _run([str(installed.python), "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
