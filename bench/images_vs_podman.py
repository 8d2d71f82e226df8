"""Time ``libimage images`` against ``podman images`` on the same synthesised store.

``python -m bench.images_vs_podman [--images N]... [--runs R] [--all] [--format F]``

For each size (default 1,000 and 10,000 images) a store is synthesised with
:func:`bench.synth.synthesise` in a temporary directory; then both commands list it,
alternately (libimage ``R`` times, podman ``--podman-runs`` times), with the same
``--root``/``--runroot``/``--storage-driver`` flags, and the best and median
wall-clock times are printed with their ratio
(libimage / podman: below 1 means libimage is faster). Both are run as the user
would run them: the ``libimage`` console script of this environment and the
``podman`` on ``PATH``, each a fresh process that reads the store from disk.
``--podman-runs`` (default 1) bounds podman's runs: its time grows with the square
of the store size (see :func:`compare`).

The outputs of the first runs are compared (the set of table rows, or the JSON
facts): a benchmark of commands that disagree would be meaningless.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.synth import synthesise

DEFAULT_SIZES = (1_000, 10_000)


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock seconds of repeated runs of one command."""

    seconds: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One store size: both timings and the ratio of their best runs."""

    images: int
    libimage: Timing
    podman: Timing

    @property
    def ratio(self) -> float:
        return self.libimage.best / self.podman.best

    def line(self) -> str:
        return (
            f"{self.images:>7} images  libimage best {self.libimage.best:8.3f}s "
            f"median {self.libimage.median:8.3f}s ({len(self.libimage.seconds)} runs)  "
            f"podman best {self.podman.best:8.3f}s median {self.podman.median:8.3f}s "
            f"({len(self.podman.seconds)} runs)  ratio {self.ratio:6.3f}"
        )


def libimage_command() -> list[str]:
    """The ``libimage`` console script next to this interpreter, else ``python -m libimage``."""
    script = Path(sys.executable).with_name("libimage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "libimage"]


def store_flags(root: Path, runroot: Path) -> list[str]:
    return ["--root", str(root), "--runroot", str(runroot), "--storage-driver", "vfs"]


def run_once(argv: Sequence[str]) -> tuple[float, str]:
    """Run ``argv``; return the wall-clock seconds and stdout (fail loudly on errors)."""
    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {completed.returncode}: {completed.stderr}")
    return elapsed, completed.stdout


def same_listing(ours: str, theirs: str, output: str) -> bool:
    """Do both outputs list the same thing? Table rows as a set; JSON folded per image."""
    if output == "json":
        folded: list[object] = []
        for entry in json.loads(theirs):
            if entry not in folded:
                folded.append(entry)
        mine = json.loads(ours)
        return sorted(map(json.dumps, mine)) == sorted(map(json.dumps, folded))
    return sorted(ours.splitlines()) == sorted(theirs.splitlines())


def compare(
    images: int,
    runs: int,
    podman_runs: int,
    workdir: Path,
    *,
    all_images: bool,
    output: str,
    seed: int = 0,
) -> Comparison:
    """Synthesise a store of ``images`` images under ``workdir`` and time both commands.

    The outputs of the first runs must agree. podman 4.3.1 builds the layer tree
    again for every image it summarises (``IsDangling`` and ``Parent`` without a
    shared tree), so its time grows with the square of the store's size: at 10,000
    images one run takes the better part of an hour, hence ``podman_runs``.
    """
    root, runroot = workdir / f"store-{images}", workdir / f"run-{images}"
    synthesise(root, images, seed=seed, runroot=runroot)
    flags = store_flags(root, runroot)
    listing = ["images"] + (["-a"] if all_images else [])
    if output == "json":
        listing += ["--format", "json"]
    podman = shutil.which("podman")
    if podman is None:
        raise RuntimeError("podman is not installed")
    ours_argv = [*libimage_command(), "--semantics", "podman-4.3", *flags, *listing]
    theirs_argv = [podman, *flags, "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    theirs_argv += listing
    ours_times: list[float] = []
    theirs_times: list[float] = []
    ours_out = theirs_out = ""
    for index in range(max(runs, podman_runs)):
        if index < runs:
            elapsed, text = run_once(ours_argv)
            ours_times.append(elapsed)
            ours_out = ours_out or text
        if index < podman_runs:
            elapsed, text = run_once(theirs_argv)
            theirs_times.append(elapsed)
            theirs_out = theirs_out or text
    if not same_listing(ours_out, theirs_out, output):
        raise RuntimeError(f"libimage and podman list different things for {images} images")
    return Comparison(images, Timing(tuple(ours_times)), Timing(tuple(theirs_times)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.images_vs_podman",
        description="Time libimage images against podman images on synthesised stores.",
    )
    parser.add_argument(
        "--images", type=int, action="append", help="store size (repeatable; default 1000, 10000)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of libimage")
    parser.add_argument(
        "--podman-runs", type=int, default=1, help="timed runs of podman (slow on large stores)"
    )
    parser.add_argument("--all", action="store_true", help="list with -a")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = args.images or list(DEFAULT_SIZES)
    with tempfile.TemporaryDirectory(prefix="libimage-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            result = compare(
                size, args.runs, args.podman_runs, workdir, all_images=args.all, output=args.format
            )
            print(result.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
