"""``libimage exists``, ``libimage lookup`` and ``libimage resolve`` (EX-1, LK, RN-1).

* ``libimage exists NAME``: exit 0 if the image exists, 1 if not (or if it exists but
  does not open: the reason goes to stderr), 125 on any other error, as
  ``podman image exists``.
* ``libimage lookup NAME [--arch A] [--os O] [--variant V] [--manifest-list]
  [--explain] [--format json]``: prints the full ID of the image ``LookupImage``
  finds. ``--explain`` first prints every candidate tried and what came of it;
  ``--format json`` prints one object instead: ``{"Id", "ResolvedName",
  "ManifestList", "Error", "Trace": [{"Candidate", "Rule", "Outcome", "Detail",
  "ImageId"}, ...]}`` (also when the lookup fails, with ``Id`` null). An unknown
  image exits 1, other errors 125, with ``Error: <message>`` on stderr.
* ``libimage resolve NAME``: prints what ``ResolveName`` gives.

The store is named by the global options (``--root``, ``--runroot``,
``--storage-driver``, ``--storage-opt``, ``--storage-conf``), the registries
configuration by ``--registries-conf`` (else ``CONTAINERS_REGISTRIES_CONF``, SN-3), the
behaviour by ``--semantics``. Warnings noticed while reading the store or looking up
go to stderr as ``WARNING: <text>``. Store errors (no store, a metadata file that
does not parse) exit 125 with a message naming the file.

This module keeps the command's import path lean: the runtime, the lookup core
and their dependencies, never hypothesis, typeguard, listing or removal code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import TextIO

from libimage.adapters.cli import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    CommandError,
    Invocation,
    escape_control,
    one_line,
)
from libimage.adapters.runtime import Runtime
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.lookup import (
    ExistsResult,
    LookupOptions,
    LookupResult,
    StepOutcome,
    TraceStep,
    check_exists,
    lookup_image,
    resolve_name,
)
from libimage.pure.manifest import is_manifest_list
from libimage.pure.snapshot import Snapshot


def build(name: str, parser: argparse.ArgumentParser) -> Callable[[Invocation], int]:
    """Add the arguments of ``exists``, ``lookup`` or ``resolve`` to ``parser``."""
    if name == "exists":
        parser.description = "Exit 0 if NAME is an image in local storage, 1 if not."
        parser.add_argument("name", metavar="NAME", help="image name or ID")
        return run_exists
    if name == "resolve":
        parser.description = "Print the name NAME resolves to (ResolveName)."
        parser.add_argument("name", metavar="NAME", help="image name or ID")
        return run_resolve
    if name != "lookup":
        raise ValueError(f"cmd_lookup does not implement {name!r}")
    parser.description = "Print the ID of the image NAME refers to (LookupImage)."
    parser.add_argument("name", metavar="NAME", help="image name or ID")
    parser.add_argument("--arch", default="", help="look for this architecture")
    parser.add_argument("--os", default="", help="look for this operating system")
    parser.add_argument("--variant", default="", help="look for this architecture variant")
    parser.add_argument(
        "--manifest-list",
        action="store_true",
        help="return a manifest list itself rather than its instance",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print every candidate tried and its outcome"
    )
    parser.add_argument("--format", choices=["json"], help="print a JSON object")
    return run_lookup


def _store_errors(handler: Callable[[Invocation], int]) -> Callable[[Invocation], int]:
    """Report store and configuration errors as ``Error: <message>``, exit 125."""

    def guarded(invocation: Invocation) -> int:
        try:
            return handler(invocation)
        except LibimageError as error:
            raise CommandError(error.failure.message) from None

    guarded.__doc__ = handler.__doc__
    return guarded


def _warn(stream: TextIO, warnings: Sequence[str]) -> None:
    for warning in warnings:
        stream.write(f"WARNING: {one_line(warning)}\n")


def _read(
    runtime: Runtime, invocation: Invocation, name: str, options: LookupOptions | None = None
) -> Snapshot:
    """Read what a lookup of ``name`` needs now, so that store errors and warnings come first.

    The persistent index may answer instead of the full read
    (:meth:`Runtime.read_for_lookup`); the snapshot is only for lookups of ``name``.
    """
    read = runtime.read_for_lookup(name, options)
    _warn(invocation.stderr, read.warnings)
    return read.snapshot


@_store_errors
def run_exists(invocation: Invocation) -> int:
    """``podman image exists``: 0, 1 or 125 (EX-1)."""
    runtime = invocation.runtime()
    snapshot = _read(runtime, invocation, invocation.args.name)
    checked = check_exists(snapshot, invocation.args.name, runtime.context())
    _warn(invocation.stderr, checked.lookup.warnings)
    if checked.failure is not None:
        raise CommandError(checked.failure.message)
    if checked.corruption is not None:
        invocation.stderr.write(f"ERROR: {one_line(checked.corruption.message)}\n")
    return exists_exit_code(checked)


def exists_exit_code(checked: ExistsResult) -> int:
    """``podman image exists``'s exit code: 0 exists, 1 does not, 125 error (EX-1)."""
    if checked.failure is not None:
        return EXIT_ERROR
    return EXIT_OK if checked.exists else EXIT_NOT_FOUND


def lookup_exit_code(result: LookupResult) -> int:
    """``libimage lookup``'s exit code: 0 found, 1 unknown image, 125 other errors."""
    if result.failure is None:
        return EXIT_OK
    return EXIT_NOT_FOUND if result.failure.kind is ErrorKind.IMAGE_UNKNOWN else EXIT_ERROR


@_store_errors
def run_resolve(invocation: Invocation) -> int:
    """``ResolveName`` (RN-1): print the resolved name."""
    runtime = invocation.runtime()
    snapshot = _read(runtime, invocation, invocation.args.name)
    resolved = resolve_name(snapshot, invocation.args.name, runtime.context())
    if isinstance(resolved, Failure):
        raise CommandError(resolved.message)
    invocation.stdout.write(f"{escape_control(resolved)}\n")
    return EXIT_OK


def trace_line(number: int, step: TraceStep) -> str:
    """One line of ``--explain``: number, rule, candidate, outcome, detail, image.

    >>> trace_line(2, TraceStep("localhost/foo:latest", "LK-7", StepOutcome.FOUND, "by name",
    ...     "140f" + "0" * 60))
    '  2. [LK-7] localhost/foo:latest: found in store (by name) -> 140f00000000'
    """
    candidate = escape_control(step.candidate) if step.candidate else '""'
    line = f"{number:>3}. [{step.rule}] {candidate}: {step.outcome.value}"
    if step.detail:
        line += f" ({one_line(step.detail)})"
    if step.image_id:
        shown = step.image_id if step.outcome is StepOutcome.CHOSEN else step.image_id[:12]
        line += f" -> {shown}"
    return line


def _trace_json(step: TraceStep) -> dict[str, str]:
    return {
        "Candidate": step.candidate,
        "Rule": step.rule,
        "Outcome": step.outcome.name,
        "Detail": step.detail,
        "ImageId": step.image_id,
    }


@_store_errors
def run_lookup(invocation: Invocation) -> int:
    """``LookupImage``: print the ID (and the trace with ``--explain``) or the JSON object."""
    args = invocation.args
    runtime = invocation.runtime()
    options = LookupOptions(
        architecture=args.arch,
        os=args.os,
        variant=args.variant,
        manifest_list=args.manifest_list,
    )
    snapshot = _read(runtime, invocation, args.name, options)
    result: LookupResult = lookup_image(snapshot, args.name, options, runtime.context())
    _warn(invocation.stderr, result.warnings)
    out = invocation.stdout
    if args.format == "json":
        listed = False
        if result.image is not None:
            listed = is_manifest_list(snapshot, result.image) is True
        document = {
            "Id": result.image.id if result.image is not None else None,
            "ResolvedName": result.resolved_name,
            "ManifestList": listed,
            "Error": result.failure.message if result.failure is not None else None,
            "Trace": [_trace_json(step) for step in result.trace],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        if args.explain:
            context = runtime.context()
            host = context.host
            out.write(
                f"Looking up {json.dumps(args.name)} (semantics {context.semantics.name}, "
                f"host {host.os}/{host.architecture}"
                + (f"/{host.variant}" if host.variant else "")
                + ")\n"
            )
            for number, step in enumerate(result.trace, start=1):
                out.write(trace_line(number, step) + "\n")
        if result.image is not None:
            out.write(result.image.id + "\n")
    if result.failure is not None:
        invocation.stderr.write(f"Error: {one_line(result.failure.message)}\n")
    return lookup_exit_code(result)
