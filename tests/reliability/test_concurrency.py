"""podman and libimage changing one store at the same time (issue #8 item 1).

Loops run side by side on one store for a bounded amount of work (each stops early
at a deadline, so the test's length is bounded whatever the machine):

* podman ``tag`` adds names to ``bb``, in the ``images.json`` our removals rewrite: a
  removal that wrote back a stale file would lose them (podman's tags go to another
  image than our untags because podman's own ``Tag`` writes back the names it read
  at lookup, ``SetNames(append(i.Names(), name))`` in containers/common v0.50.1, and so
  itself undoes an untag that lands between its lookup and its write - observed
  here with our untags and podman's alike; see docs/reliability.md);
* podman ``import`` adds new images, and podman ``rmi`` removes every other one of
  those again once it exists;
* our removals in this process (a long-lived :class:`Runtime`, one thread) untag
  other names of ``aa``; our command line in other processes untags more and deletes
  images of every kind (alone on a layer, dangling, a child whose intermediate parent
  is pruned, one used by a storage container);
* a reader thread of ours looks images up through another long-lived runtime all the
  time and must never fail.

Every command's effect is recorded when it succeeds, and the effects commute (they
touch different names and images), so the expected end state follows from the
records alone. At the end: every process and thread finished (no deadlock; each
command is bounded by a timeout far above its normal length), no update was lost,
podman and we read the same images, every layer is accounted for, nothing is left
over (temporary files, our intent file, flagged layers).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
from reliability_support import (
    WAIT_BOUND,
    Base,
    assert_store_sound,
    leftovers,
    libimage_argv,
    our_view,
    podman_argv,
    podman_view,
    shared_base,
)
from support.podman import PodmanStore, make_tar, requires_podman

from libimage.adapters.runtime import Runtime
from libimage.pure.plan import RemoveOptions
from libimage.pure.semantics import PODMAN_4_3

pytestmark = [requires_podman, pytest.mark.reliability]

WORK_DEADLINE = 25.0  # seconds after which a loop starts no new command
TAGS = 12  # podman tag loop: localhost/p:<i> on aa
IMPORTS = 6  # podman import loop: localhost/n:<i>; odd ones removed by podman rmi
OUR_THREAD_UNTAGS = 6  # localhost/u:<i>, i < 6, untagged by our thread
OUR_CLI_UNTAGS = 5  # localhost/u:<i>, 6 <= i < 11, untagged by our command line


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return shared_base(tmp_path_factory)


@dataclass
class Loop:
    """One worker: commands run in order until done or past the deadline."""

    name: str
    done: list[str] = field(default_factory=list)  # what succeeded, in order
    failures: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=WAIT_BOUND, check=False)


def test_podman_loops_and_our_removals_on_one_store(base: Base, tmp_path: Path) -> None:
    store = base.copy(tmp_path / "store")
    untag_names = [f"localhost/u:{i}" for i in range(OUR_THREAD_UNTAGS + OUR_CLI_UNTAGS)]
    store.tag(base.aa, *untag_names)
    tarballs = []
    for index in range(IMPORTS):
        tarball = tmp_path / f"n{index}.tar"
        tarball.write_bytes(make_tar({f"n{index}.txt": f"n{index}".encode()}))
        tarballs.append(tarball)
    deadline = time.monotonic() + WORK_DEADLINE
    imported = threading.Condition()
    imported_names: list[str] = []
    stop_reading = threading.Event()

    def in_time() -> bool:
        return time.monotonic() < deadline

    def podman_tags(loop: Loop) -> None:
        for index in range(TAGS):
            if not in_time():
                return
            name = f"localhost/p:{index}"
            completed = _run(podman_argv(store, "tag", base.bb, name))
            _record(loop, completed, name)

    def podman_imports(loop: Loop) -> None:
        for index, tarball in enumerate(tarballs):
            if not in_time():
                break
            name = f"localhost/n:{index}"
            completed = _run(podman_argv(store, "import", "--quiet", str(tarball), name))
            _record(loop, completed, name)
            with imported:
                imported_names.append(name)
                imported.notify_all()
        with imported:
            imported_names.append("")  # the end of the imports
            imported.notify_all()

    def podman_removals(loop: Loop) -> None:
        for index in range(1, IMPORTS, 2):
            name = f"localhost/n:{index}"
            with imported:
                imported.wait_for(partial(_imported_or_done, imported_names, name))
            if name not in imported_names or not in_time():
                return
            _record(loop, _run(podman_argv(store, "rmi", name)), name)

    runtime = Runtime.from_options(store.options(), semantics=PODMAN_4_3)

    def our_thread(loop: Loop) -> None:
        for name in untag_names[:OUR_THREAD_UNTAGS]:
            if not in_time():
                return
            try:
                reports, errors = runtime.remove_images([name], RemoveOptions())
            except Exception as error:  # a store error: reported as a failure
                loop.failures.append(f"{name}: {error}")
                continue
            if len(errors) or [list(r.untagged) for r in reports] != [[name]]:
                loop.failures.append(f"{name}: {list(reports)} {list(errors)}")
            else:
                loop.done.append(name)

    our_cli_work = [["rmi", name] for name in untag_names[OUR_THREAD_UNTAGS:]]
    our_cli_work += [["rmi", "solo:1"], ["rmi", base.dangling], ["rmi", "c:1"]]
    our_cli_work += [["rmi", "-f", "child:1"]]

    def our_command_line(loop: Loop) -> None:
        for args in our_cli_work:
            if not in_time():
                return
            _record(loop, _run(libimage_argv(store, *args)), " ".join(args))

    reader_runtime = Runtime.from_options(store.options(), semantics=PODMAN_4_3)

    def our_reader(loop: Loop) -> None:
        while not stop_reading.is_set():
            try:
                found = reader_runtime.lookup_image("bb:1")
                assert found.image is not None
                assert found.image.id == base.bb
                assert reader_runtime.exists("list:1")
            except Exception as error:  # any failure of a read is what this test looks for
                loop.failures.append(repr(error))
                return
            loop.done.append("read")

    workers: dict[str, Callable[[Loop], None]] = {
        "podman tag": podman_tags,
        "podman import": podman_imports,
        "podman rmi": podman_removals,
        "our thread": our_thread,
        "our command line": our_command_line,
    }
    loops = {name: Loop(name) for name in [*workers, "our reader"]}
    reader = threading.Thread(target=our_reader, args=(loops["our reader"],), daemon=True)
    reader.start()
    for name, work in workers.items():
        thread = threading.Thread(target=work, args=(loops[name],), daemon=True)
        loops[name].thread = thread
        thread.start()
    for name in workers:
        worker = loops[name].thread
        assert worker is not None
        worker.join(WAIT_BOUND * 3)
        assert not worker.is_alive(), f"{name} never finished (deadlock?)"
    stop_reading.set()
    reader.join(WAIT_BOUND)
    assert not reader.is_alive(), "the reader never finished (deadlock?)"

    for loop in loops.values():
        assert loop.failures == [], loop.name
    assert loops["our reader"].done, "the reader never read"

    # The expected store follows from what succeeded (the effects commute).
    tagged = loops["podman tag"].done
    untagged = [*loops["our thread"].done, *(d.split()[-1] for d in loops["our command line"].done)]
    assert untagged, "none of our removals ran"
    assert tagged, "podman never tagged"
    expected_aa = {"localhost/aa:1", "localhost/aa:2", *(set(untag_names) - set(untagged))}
    view = podman_view(store)
    assert set(view[base.aa]) == expected_aa  # every untag of ours stayed done
    assert set(view[base.bb]) == {"localhost/bb:1", *tagged}  # no tag of podman's was lost
    imported_ok = set(loops["podman import"].done)
    removed_by_podman = set(loops["podman rmi"].done)
    listed_names = {name for names in view.values() for name in names}
    assert imported_ok - removed_by_podman <= listed_names
    assert not removed_by_podman & listed_names
    ours_deleted = {
        "rmi solo:1": base.solo,
        f"rmi {base.dangling}": base.dangling,
        "rmi c:1": base.c,
        "rmi -f child:1": base.child,
    }
    for command, image_id in ours_deleted.items():
        assert (image_id in view) == (command not in loops["our command line"].done), command
    if "rmi c:1" in loops["our command line"].done:
        assert base.parent not in view  # pruned with its child (RM-D8)
    assert base.bb in view
    # podman and we read the same store; nothing half-done or left over.
    assert view == our_view(store)
    assert_store_sound(store)
    assert leftovers(store) == []
    _assert_every_layer_used(store)


def _imported_or_done(imported_names: list[str], name: str) -> bool:
    return name in imported_names or "" in imported_names


def _record(loop: Loop, completed: subprocess.CompletedProcess[str], what: str) -> None:
    if completed.returncode == 0:
        loop.done.append(what)
    else:
        loop.failures.append(f"{what}: exit {completed.returncode}: {completed.stderr.strip()}")


def _assert_every_layer_used(store: PodmanStore) -> None:
    """Every layer record is some image's or container's layer, or an ancestor of one;
    every layer directory has a record and every record a directory (nothing leaked)."""
    layers = {record["id"]: record.get("parent", "") for record in store.metadata("layers")}
    used: set[str] = set()
    tops = [image.get("layer", "") for image in store.metadata("images")]
    tops += [container["layer"] for container in store.metadata("containers")]
    for top in tops:
        layer = top
        while layer and layer not in used:
            used.add(layer)
            layer = layers.get(layer, "")
    assert set(layers) == used
    assert {p.name for p in (store.root / "vfs" / "dir").iterdir()} == set(layers)
    image_dirs = {p.name for p in (store.root / "vfs-images").iterdir() if p.is_dir()}
    assert image_dirs == {image["id"] for image in store.metadata("images")}
