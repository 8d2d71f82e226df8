"""A full disk under every write of a removal (issue #8 item 3).

The store lives on a small tmpfs mounted for the test (we run as root). A filler file
leaves exactly ``n`` free pages (or, with an inode limit, ``n`` free inodes) before
``libimage rmi -f child:1`` runs, for every ``n`` from 0 until the removal succeeds,
so that ENOSPC hits the intent file, then each metadata save in turn. Every time:

* a read still works on the full disk;
* the removal either succeeds, or exits 125 with one ``Error:`` line naming a file of
  the store and "no space left on device", no traceback, and no temporary file left;
* when nothing was saved yet (the first write failed), every file of the store is
  byte-identical to before - the intent file was taken back;
* when a later save failed, the store is consistent (podman lists it, on a copy) and
  keeps the intent file; with space again, the same command finishes the job, and the
  store is then byte-identical to an uninterrupted run's.

Both kinds of outcome must occur in the page sweep, or it did not test what it claims.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from reliability_support import (
    Base,
    assert_store_sound,
    cli,
    leftovers,
    metadata_bytes,
    shared_base,
    store_bytes,
    tmpfs,
)
from support.podman import PodmanStore, requires_podman

pytestmark = [requires_podman, pytest.mark.reliability]

PAGE = 4096
REQUEST = ("rmi", "-f", "child:1")


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return shared_base(tmp_path_factory)


def _leave_free_pages(mountpoint: Path, pages: int) -> Path:
    filler = mountpoint / "filler"
    stats = os.statvfs(mountpoint)
    free = stats.f_bavail * stats.f_frsize
    size = max(free - pages * PAGE, 0)
    with filler.open("wb") as stream:
        stream.write(b"\0" * size)
    return filler


def _leave_free_inodes(mountpoint: Path, inodes: int) -> Path:
    filler = mountpoint / "filler"
    filler.mkdir()
    free = os.statvfs(mountpoint).f_favail
    for index in range(max(free - inodes, 0)):
        (filler / str(index)).touch()
    return filler


@pytest.mark.parametrize("resource", ["pages", "inodes"])
def test_no_space_at_every_write(base: Base, tmp_path: Path, resource: str) -> None:
    reference = base.copy(tmp_path / "reference")
    assert cli(reference, *REQUEST).code == 0
    outcomes: list[str] = []
    options = "size=8m" if resource == "pages" else "size=64m,nr_inodes=2000"
    with tmpfs(tmp_path / "tmpfs", options) as mountpoint:
        for free in range(40):
            store = base.copy(mountpoint / "store")
            before = store_bytes(store)
            original_metadata = metadata_bytes(store)
            if resource == "pages":
                filler = _leave_free_pages(mountpoint, free)
            else:
                filler = _leave_free_inodes(mountpoint, free)
            assert cli(store, "images").code == 0  # reading needs no space
            result = cli(store, *REQUEST)
            if result.code == 0:
                outcomes.append("done")
                _remove(filler)
                assert _finished_like(store, reference)
                break
            result.assert_clean_failure(str(store.root), "no space left on device")
            assert [p for p in leftovers(store) if ".tmp-" in p] == [], free
            if metadata_bytes(store) == original_metadata:
                outcomes.append("nothing written")
                assert store_bytes(store) == before, free
            else:
                outcomes.append("later save failed")
                assert (store.root / "vfs-layers" / "libimage-removal-intent.json").exists()
                assert_store_sound(store.copy_to(tmp_path / f"podman-{free}"))
            _remove(filler)
            assert cli(store, *REQUEST).code == 0, free
            assert _finished_like(store, reference), free
            _remove(store.root.parent)
    assert outcomes[-1] == "done"
    assert "nothing written" in outcomes
    # Each save takes an inode for its temporary file and frees the old file's: once
    # the intent and the first save fit, every later save fits too. Pages differ in size.
    assert ("later save failed" in outcomes) == (resource == "pages")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _finished_like(store: PodmanStore, reference: PodmanStore) -> bool:
    listing = {
        part: sorted(p.name for p in (store.root / part).iterdir())
        for part in ("vfs-images", "vfs-layers", "vfs-containers", "vfs/dir")
    }
    expected = {
        part: sorted(p.name for p in (reference.root / part).iterdir())
        for part in ("vfs-images", "vfs-layers", "vfs-containers", "vfs/dir")
    }
    return metadata_bytes(store) == metadata_bytes(reference) and listing == expected
