"""Time and profile libimage's in-process steps on one store (a development aid).

``python -m bench.profile_steps --root R --runroot RR [--summary S.json] [--steps a,b]
[--profile STEP] [--top N] [--sort tottime|cumtime] [--apply-copy DIR]``

Steps: ``parse`` (the three ``json.loads``: the floor), ``load`` (``read_snapshot``),
``index`` (``Snapshot.index`` on a fresh snapshot), ``lookup`` (full name, short
name, ID prefix, missing name on a warm snapshot, per call), ``list`` /
``list-a`` (``list_images`` + summaries + the table), ``list-json`` (the same with
the JSON document), ``plan1`` / ``plan100`` / ``planall`` (``plan_removal`` of one
name, 100 names, ``-a -f`` on a fresh snapshot) and ``applyall`` (``remove_images``
``-a -f`` on a fresh ``cp -a`` copy of the store under ``--apply-copy``, which is
deleted afterwards). The sample names come from the synthesiser's summary
(``bench/synth.py --summary``).

``--profile STEP`` runs that step once under cProfile and prints the top functions.
Nothing here is part of the package; the benchmark suite (``bench/run.py``) is the
measurement of record.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

STEPS = (
    "parse",
    "load",
    "index",
    "lookup",
    "list",
    "list-a",
    "list-json",
    "plan1",
    "plan100",
    "planall",
    "applyall",
)


def _best(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The shortest wall time and the shortest CPU time of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def _format(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--runroot", required=True)
    parser.add_argument("--summary", help="the synthesiser's --summary file (sample names)")
    parser.add_argument("--steps", default=",".join(s for s in STEPS if s != "applyall"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", help="profile this step once")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--apply-copy", help="directory for the store copy of applyall")
    args = parser.parse_args(argv)

    from pyrsistent import pvector

    from libimage.adapters.runtime import Runtime
    from libimage.adapters.store import read_snapshot, resolve_layout
    from libimage.pure.listing import images_json, list_images, summarize_all, table_rows, tabulate
    from libimage.pure.lookup import lookup_image
    from libimage.pure.plan import RemoveOptions
    from libimage.pure.remove import plan_removal
    from libimage.pure.semantics import PROFILES

    samples: dict[str, Any] = {}
    if args.summary:
        samples = json.loads(Path(args.summary).read_text())
        samples = samples.get("samples", samples)
    runtime = Runtime.from_flags(
        root=args.root,
        runroot=args.runroot,
        storage_driver="vfs",
        semantics=PROFILES["podman-4.3"],
    )
    options = runtime.store_options
    layout = resolve_layout(options)
    now_ns = time.time_ns()
    context = replace(runtime.context(), now_ns=now_ns, utc_offset_seconds=0)
    snapshot = read_snapshot(options).snapshot
    names = list(samples.get("names_to_remove", []))[:100]

    def fresh() -> Any:
        return replace(snapshot)

    def parse() -> None:
        for path in (layout.images_json, layout.layers_json, layout.containers_json):
            json.loads(Path(path).read_bytes())

    def listing(filters: list[str], output: str) -> Callable[[], object]:
        def run() -> object:
            snap = fresh()
            listed = list_images(snap, [], filters, context)
            summaries = summarize_all(snap, listed.images)
            if output == "json":
                return images_json(summaries)
            return tabulate(table_rows(summaries, now_ns))

        return run

    def apply_all() -> tuple[float, int]:
        if not args.apply_copy:
            raise SystemExit("applyall needs --apply-copy DIR")
        copy = Path(args.apply_copy)
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir(parents=True)
        subprocess.run(["cp", "-a", args.root, str(copy / "root")], check=True)
        subprocess.run(["sync"], check=True)
        copied = Runtime.from_flags(
            root=str(copy / "root"),
            runroot=str(copy / "run"),
            storage_driver="vfs",
            semantics=PROFILES["podman-4.3"],
        )
        start = time.perf_counter()
        outcome = copied.remove_images_outcome(
            [], RemoveOptions(force=True, filters=pvector(["readonly=false"]))
        )
        elapsed = time.perf_counter() - start
        shutil.rmtree(copy, ignore_errors=True)
        return elapsed, len(outcome.reports)

    warm = fresh()
    lookup_image(warm, samples.get("full_name", "x"), None, context)
    calls: dict[str, Callable[[], object]] = {
        "parse": parse,
        "load": lambda: read_snapshot(options),
        "index": lambda: fresh().index,
        "list": listing(["intermediate=false"], "table"),
        "list-a": listing([], "table"),
        "list-json": listing([], "json"),
        "plan1": lambda: plan_removal(fresh(), names[:1], RemoveOptions(), context),
        "plan100": lambda: plan_removal(fresh(), names, RemoveOptions(), context),
        "planall": lambda: plan_removal(
            fresh(), [], RemoveOptions(force=True, filters=pvector(["readonly=false"])), context
        ),
        "applyall": apply_all,
    }
    lookups = {
        key: samples[key]
        for key in ("full_name", "short_name", "id_prefix", "missing_name")
        if key in samples
    }
    gc.disable()  # as the command line runs (adapters.cli.collector_paused)
    for step in args.steps.split(","):
        if step == "lookup":
            for key, name in lookups.items():
                count = 2000
                start = time.perf_counter()
                for _ in range(count):
                    lookup_image(warm, name, None, context)
                per = (time.perf_counter() - start) / count
                print(f"lookup {key:<12} {_format(per)} per call", flush=True)
            continue
        if step == "applyall":
            elapsed, reports = apply_all()
            print(f"applyall     {_format(elapsed)} ({reports} reports)", flush=True)
            continue
        gc.collect()
        wall, cpu = _best(calls[step], args.repeat)
        print(f"{step:<12} {_format(wall):>10} wall {_format(cpu):>10} CPU", flush=True)
    if args.profile:
        profiler = cProfile.Profile()
        if args.profile == "lookup":
            profiler.runcall(
                lambda: [
                    lookup_image(warm, name, None, context)
                    for _ in range(500)
                    for name in lookups.values()
                ]
            )
        else:
            profiler.runcall(calls[args.profile])
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
