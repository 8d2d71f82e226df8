"""Real containers-storage stores built with podman 4.3.1 and buildah 1.28.2 (vfs driver).

Every store lives in a temporary directory: ``<dir>/root`` is the graph root; the
run root is a short directory under ``/tmp`` (podman refuses run roots longer than
50 characters), removed when the test process exits. Every command gets explicit
``--root``/``--runroot``/``--storage-driver`` flags (SF-CF-6), so the host's own
store is never touched.
Nothing here needs a registry: images come from tarballs built in Python
(``podman import``), children from ``buildah from`` + ``copy`` + ``commit`` (so the
child's history and layers extend the parent's: parent/child as podman sees it),
manifest lists from ``podman manifest create``/``add`` with ``containers-storage:``
references.

Typical use, one store per module (building is the slow part)::

    from support.podman import PodmanStore, requires_podman

    pytestmark = requires_podman

    @pytest.fixture(scope="module")
    def store(tmp_path_factory: pytest.TempPathFactory) -> PodmanStore:
        store = PodmanStore.create(tmp_path_factory.mktemp("store"))
        base = store.import_image("localhost/base:1", {"a.txt": b"a"})
        store.child_image(base, "localhost/child:1", {"b.txt": b"b"})
        return store

Tests that change a store work on ``store.copy_to(tmp_path)``, which drops podman's
database (``<root>/libpod``), so podman's containers become storage-only ones there.

``created`` times: podman records them in nanoseconds, so records made one after
the other are ordered; ``podman images`` prints whole seconds. Call
:func:`next_second` between two images only when a test needs different seconds.

Import this module as ``support.podman`` (pytest puts ``tests/`` on ``sys.path``
because ``tests/conftest.py`` lives there).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from libimage.adapters.storage_conf import StoreOptions

PODMAN = shutil.which("podman")
BUILDAH = shutil.which("buildah")

requires_podman = pytest.mark.skipif(
    PODMAN is None or BUILDAH is None, reason="needs podman and buildah installed"
)

COMMAND_TIMEOUT = 300  # seconds; a hung podman must fail the test, not stall the run


class CommandFailed(AssertionError):
    """A podman/buildah command failed; the message carries the command and stderr."""


def _check_output(
    argv: list[str], *, check: bool, stdin: str | None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if check and completed.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)} exited {completed.returncode}\n"
            f"stdout: {completed.stdout}\nstderr: {completed.stderr}"
        )
    return completed


def make_tar(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar of regular files (mode 0644, owner 0, mtime 0), in name order.

    Equal ``files`` give equal bytes, hence the same layer: give each image some
    content of its own when separate layers matter.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _id_from_output(text: str) -> str:
    """The last line of a command's output as a bare 64-hex ID (drops ``sha256:``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise CommandFailed(f"expected an ID on stdout, got {text!r}")
    value = lines[-1].removeprefix("sha256:")
    if len(value) != 64:
        raise CommandFailed(f"expected a 64-hex ID, got {value!r}")
    return value


@dataclass(frozen=True)
class PodmanStore:
    """A vfs store under ``root``/``runroot`` and the podman/buildah commands that act on it.

    ``image_stores`` are read-only additional stores this view uses
    (``--storage-opt vfs.imagestore=DIR``, SF-RO-1); see :meth:`with_image_stores`.
    """

    root: Path
    runroot: Path
    driver: str = "vfs"
    image_stores: tuple[Path, ...] = field(default=())

    # -- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path) -> PodmanStore:
        """A new, empty store: graph root ``directory/root``, a short run root.

        podman refuses run roots longer than 50 characters (observed with 4.3.1), so
        the run root is a fresh directory under ``/tmp`` (see :func:`short_run_root`).
        """
        directory.mkdir(parents=True, exist_ok=True)
        return cls(root=directory / "root", runroot=short_run_root())

    def init(self) -> PodmanStore:
        """Let podman initialize the store (directories, lock files, database)."""
        self.run("images", "-q")
        return self

    def additional_store(self, directory: Path) -> PodmanStore:
        """A second, independent store in ``directory``, to be used read-only later.

        Build images in it, then read this store through
        ``self.with_image_stores(extra)``.
        """
        return PodmanStore.create(directory)

    def with_image_stores(self, *stores: PodmanStore) -> PodmanStore:
        """This store, with ``stores`` as read-only additional image stores (SF-RO-1)."""
        return replace(self, image_stores=tuple(store.root for store in stores))

    def copy_to(self, destination: Path) -> PodmanStore:
        """A copy of this store in ``destination`` without podman's database.

        Copies the graph root and the run root (symbolic links as links), then
        removes ``<root>/libpod`` and ``<runroot>/libpod``: podman's own containers
        are storage-only containers in the copy (decision 19).
        """
        destination.mkdir(parents=True, exist_ok=True)
        copy = replace(self, root=destination / "root", runroot=short_run_root())
        shutil.copytree(self.root, copy.root, symlinks=True)
        if self.runroot.exists():
            shutil.copytree(self.runroot, copy.runroot, symlinks=True, dirs_exist_ok=True)
        for libpod in (copy.root / "libpod", copy.runroot / "libpod"):
            if libpod.exists():
                shutil.rmtree(libpod)
        return copy

    # -- commands ------------------------------------------------------------------------

    def storage_flags(self) -> list[str]:
        """``--root``, ``--runroot``, ``--storage-driver`` and ``--storage-opt`` flags."""
        flags = ["--root", str(self.root), "--runroot", str(self.runroot)]
        flags += ["--storage-driver", self.driver]
        for store in self.image_stores:
            flags += ["--storage-opt", f"{self.driver}.imagestore={store}"]
        return flags

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman <flags> args``; raise :class:`CommandFailed` on failure when ``check``."""
        if PODMAN is None:
            pytest.skip("podman is not installed")
        argv = [PODMAN, *self.storage_flags(), "--cgroup-manager", "cgroupfs"]
        argv += ["--events-backend", "none", *args]
        return _check_output(argv, check=check, stdin=stdin)

    def buildah(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``buildah <flags> args``; raise :class:`CommandFailed` on failure when ``check``."""
        if BUILDAH is None:
            pytest.skip("buildah is not installed")
        return _check_output([BUILDAH, *self.storage_flags(), *args], check=check, stdin=None)

    # -- building ------------------------------------------------------------------------

    def import_image(
        self,
        name: str | None,
        files: Mapping[str, bytes],
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """``podman import`` a tarball of ``files``; return the new image's ID.

        ``name`` None makes a dangling image. ``labels`` become ``--change LABEL=k=v``.
        """
        with tempfile.TemporaryDirectory(prefix="libimage-import-") as scratch:
            tarball = Path(scratch) / "layer.tar"
            tarball.write_bytes(make_tar(files))
            args = ["import", "--quiet"]
            for key, value in (labels or {}).items():
                args += ["--change", f"LABEL={key}={value}"]
            args.append(str(tarball))
            if name is not None:
                args.append(name)
            return _id_from_output(self.run(*args).stdout)

    def tag(self, image: str, *names: str) -> None:
        """``podman tag image names…``."""
        self.run("tag", image, *names)

    def untag(self, image: str, *names: str) -> None:
        """``podman untag image names…``."""
        self.run("untag", image, *names)

    def child_image(
        self,
        base: str,
        name: str | None = None,
        files: Mapping[str, bytes] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """A child of ``base`` (buildah from + copy + commit); return its ID.

        The child's layers and history extend ``base``'s, which is what makes podman
        call ``base`` its parent. ``name`` None commits a dangling image.
        """
        container = self.buildah_container(base)
        try:
            if files:
                with tempfile.TemporaryDirectory(prefix="libimage-child-") as scratch:
                    for relative, data in files.items():
                        target = Path(scratch) / relative
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
                    self.buildah("copy", "--quiet", container, f"{scratch}/.", "/")
            for key, value in (labels or {}).items():
                self.buildah("config", "--label", f"{key}={value}", container)
            with tempfile.TemporaryDirectory(prefix="libimage-iid-") as scratch:
                iidfile = Path(scratch) / "iid"
                args = ["commit", "--quiet", "--iidfile", str(iidfile), container]
                if name is not None:
                    args.append(name)
                self.buildah(*args)
                return _id_from_output(iidfile.read_text())
        finally:
            self.buildah("rm", container)

    def manifest_list(self, name: str, instances: Iterable[str] = ()) -> str:
        """``podman manifest create name`` plus ``manifest add`` of local images; its ID.

        ``instances`` are names or IDs of images in this store, added as
        ``containers-storage:<instance>`` (works offline).
        """
        list_id = _id_from_output(self.run("manifest", "create", name).stdout)
        for instance in instances:
            self.run("manifest", "add", name, f"containers-storage:{instance}")
        return list_id

    def buildah_container(self, image: str, name: str | None = None) -> str:
        """A storage-only (buildah) working container from ``image``; return its ID."""
        with tempfile.TemporaryDirectory(prefix="libimage-cid-") as scratch:
            cidfile = Path(scratch) / "cid"
            args = ["from", "--quiet", "--cidfile", str(cidfile)]
            if name is not None:
                args += ["--name", name]
            self.buildah(*args, image)
            return _id_from_output(cidfile.read_text())

    def podman_container(self, image: str, name: str | None = None) -> str:
        """``podman create`` a container (known to podman's database); return its ID."""
        args = ["create"]
        if name is not None:
            args += ["--name", name]
        return _id_from_output(self.run(*args, image, "/true").stdout)

    # -- observing -----------------------------------------------------------------------

    def images_json(self) -> list[dict[str, Any]]:
        """``podman images -a --format json``, parsed (podman's view of the store)."""
        parsed = json.loads(self.run("images", "-a", "--format", "json").stdout or "[]")
        assert isinstance(parsed, list)
        return parsed

    def options(self) -> StoreOptions:
        """The store options libimage's adapters take for this view of the store."""
        return StoreOptions(
            graph_root=str(self.root),
            run_root=str(self.runroot),
            driver=self.driver,
            image_stores=tuple(str(store) for store in self.image_stores),
            driver_options=tuple(f"{self.driver}.imagestore={s}" for s in self.image_stores),
        )

    def metadata(self, kind: str) -> list[dict[str, Any]]:
        """The raw records of ``images``, ``layers`` or ``containers`` (``[]`` if absent)."""
        path = self.root / f"{self.driver}-{kind}" / f"{kind}.json"
        if not path.exists() or not path.stat().st_size:
            return []
        parsed = json.loads(path.read_bytes())
        assert isinstance(parsed, list)
        return parsed


_RUN_ROOTS: list[Path] = []


def short_run_root() -> Path:
    """A new empty directory with a short path, removed when the test process exits.

    podman 4.3.1 refuses a run root longer than 50 characters, which pytest's
    temporary directories easily exceed.
    """
    if not _RUN_ROOTS:
        atexit.register(_remove_run_roots)
    path = Path(tempfile.mkdtemp(prefix="lirr-", dir="/tmp"))
    _RUN_ROOTS.append(path)
    return path


def _remove_run_roots() -> None:
    for path in _RUN_ROOTS:
        shutil.rmtree(path, ignore_errors=True)


def next_second() -> None:
    """Sleep until the wall clock's second changes (for distinct whole-second times)."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


def tree_state(*roots: Path) -> dict[str, tuple[object, ...]]:
    """A recursive listing: path -> (type, mode, size, mtime_ns, link target).

    Equal listings before and after an operation show it created, removed and
    changed nothing (directories' mtimes change when entries come or go).
    """
    state: dict[str, tuple[object, ...]] = {}
    for root in roots:
        if not root.exists() and not root.is_symlink():
            continue
        for walked, subdirectories, files in os.walk(root):
            directory = Path(walked)
            for path in (directory, *(directory / name for name in (*subdirectories, *files))):
                info = path.lstat()
                target = str(path.readlink()) if stat.S_ISLNK(info.st_mode) else None
                state[str(path)] = (
                    stat.S_IFMT(info.st_mode),
                    stat.S_IMODE(info.st_mode),
                    info.st_size,
                    info.st_mtime_ns,
                    target,
                )
    return state
