"""``libimage rmi``: remove images as podman's ``rmi`` does, with a dry run and a JSON plan.

``libimage rmi [-f|--force] [-a|--all] [--filter K=V]... [--lookup-manifest]
[--dry-run] [--format json] NAME...``

* stdout: ``Untagged: NAME`` for every name of every report, then ``Deleted: ID``
  for every report that removed its image: podman 4.3.1 groups the lines of all
  reports this way (POD-R-11; libimage itself returns reports in processing order).
* stderr: ``Error: <err>`` for one error, podman's multi-error form for several::

      Error: 2 errors occurred:
      \t* aa:2: image not known
      \t* aa:2: image not known

  in RM-8 order; store warnings as ``WARNING: <text>`` lines before them.
* exit code (decision 13, podman's ``removeErrorsToExitCode``): 0 without errors; 2
  if any error is "image is in use by a container"; else 1 if every error is "image
  not known" (or "layer not known"); else 125. Store errors (no store, a metadata
  file that does not parse, a write that failed) and refusals (a record with an
  invalid ID, decision 10) are one ``Error:`` line naming the file, exit 125.

Arguments as podman's CLI checks them: no NAME without ``--all`` (or ``--filter``)
is ``image name or ID must be specified`` (POD-R-17); ``--all`` with names is
``when using the --all switch, you may not pass any images names or IDs``
(POD-R-18); both exit 125. ``--all`` removes every image with the filter
``readonly=false``, so images of read-only additional stores are skipped rather than
reported (decision 15). ``--filter K=V`` (repeatable; not in podman 4.3.1's ``rmi``)
removes the images ``images -a --filter`` lists, whatever their names (RM-4); it
cannot be combined with names, whose removal ignores filters (RM-3). ``--force``
removes the storage containers that use an image (RM-C5; never a container podman's
database knows, decision 19) and, in the ``podman-4.3`` profile, ignores names that
do not exist (decision 16). ``--lookup-manifest`` accepts only manifest lists (RLK-7).

``--dry-run`` prints the same lines and errors from the same plan, with the same
exit code, and changes nothing: no lock is taken for writing, no token is written.
``--format json`` prints one JSON object instead of the lines: the plan's effects
(each with its rule and why), the reports, the events and the errors; see
``docs/rmi.md``.

The import path is lean: the runtime, the planner and the disk adapter; never
hypothesis or typeguard.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pyrsistent import pvector

from libimage.adapters.cli import (
    EXIT_ERROR,
    EXIT_IN_USE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    CommandError,
    Invocation,
    escape_control,
    one_line,
)
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.plan import RemovalPlan, RemoveImageReport, RemoveOptions, plan_to_json

NO_NAMES = "image name or ID must be specified"  # POD-R-17
ALL_WITH_NAMES = "when using the --all switch, you may not pass any images names or IDs"
FILTER_WITH_NAMES = "when using --filter, you may not pass any images names or IDs"
READONLY_FALSE = "readonly=false"  # decision 15

_NOT_KNOWN = frozenset({ErrorKind.IMAGE_UNKNOWN, ErrorKind.LAYER_UNKNOWN})


def build(name: str, parser: argparse.ArgumentParser) -> Callable[[Invocation], int]:
    """Add ``rmi``'s options and NAMEs to ``parser``; return the handler."""
    if name != "rmi":
        raise ValueError(f"cmd_rmi does not implement {name!r}")
    parser.description = "Remove one or more images from local storage."
    parser.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    parser.add_argument("-a", "--all", action="store_true", help="remove all images")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="K=V",
        help="remove the images this filter lists (repeatable)",
    )
    parser.add_argument("--lookup-manifest", action="store_true", help="accept only manifest lists")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would happen; change nothing"
    )
    parser.add_argument("--format", choices=["json"], help="print the plan as a JSON object")
    parser.add_argument("names", nargs="*", metavar="NAME", help="image names or IDs")
    return run_rmi


# -- pure presentation -------------------------------------------------------------------------


def exit_code(errors: Sequence[Failure]) -> int:
    """Podman's exit code for ``rmi``'s errors (decision 13, ``removeErrorsToExitCode``).

    >>> from libimage.pure.errors import wrap_unknown
    >>> exit_code([]), exit_code([wrap_unknown("a")])
    (0, 1)
    >>> exit_code([wrap_unknown("a"), Failure(ErrorKind.READ_ONLY, "b", "x")])
    125
    """
    if not errors:
        return EXIT_OK
    kinds = {error.kind for error in errors}
    if ErrorKind.IMAGE_IN_USE in kinds:
        return EXIT_IN_USE
    if kinds <= _NOT_KNOWN:
        return EXIT_NOT_FOUND
    return EXIT_ERROR


def output_lines(reports: Sequence[RemoveImageReport]) -> list[str]:
    """Podman's stdout: every ``Untagged:`` line of every report, then the ``Deleted:`` lines.

    POD-R-11: the grouping is podman 4.3.1's CLI, not libimage's report order.
    """
    untagged = [f"Untagged: {escape_control(name)}" for r in reports for name in r.untagged]
    deleted = [f"Deleted: {r.id}" for r in reports if r.removed]
    return [*untagged, *deleted]


def error_text(errors: Sequence[Failure]) -> str:
    """The ``Error:`` text podman prints for these errors (empty for none).

    One error is ``Error: <err>``; several are go-multierror's list, trimmed
    (podman's ``JoinErrors``).

    >>> from libimage.pure.errors import wrap_unknown
    >>> print(error_text([wrap_unknown("a"), wrap_unknown("b")]), end="")
    Error: 2 errors occurred:
        * a: image not known
        * b: image not known
    """
    if not errors:
        return ""
    messages = [one_line(error.message) for error in errors]
    if len(messages) == 1:
        return f"Error: {messages[0]}\n"
    points = "\n\t".join(f"* {message}" for message in messages)
    return f"Error: {len(messages)} errors occurred:\n\t{points}\n"


def plan_json(
    plan: RemovalPlan,
    *,
    dry_run: bool,
    applied: bool,
    replanned: bool,
    warnings: Sequence[str],
) -> dict[str, Any]:
    """The ``--format json`` document: :func:`~libimage.pure.plan.plan_to_json` and the run.

    The plan's keys (``effects`` with rule and why, ``reports``, ``events``,
    ``errors``), then ``warnings`` (the store's and the plan's), ``dry_run``,
    ``applied`` (something was written), ``replanned`` (the store changed between the
    first read and the write locks, SF-K-5) and ``exit_code`` (decision 13).
    """
    document = plan_to_json(plan)
    document["warnings"] = list(warnings)
    document.update(
        dry_run=dry_run, applied=applied, replanned=replanned, exit_code=exit_code(plan.errors)
    )
    return document


def remove_options(args: argparse.Namespace) -> RemoveOptions:
    """The ``RemoveImagesOptions`` podman's CLI would pass (decision 15, RM-4).

    Raises :class:`CommandError` for podman's argument errors (POD-R-17, POD-R-18).
    """
    names: list[str] = args.names
    if names and args.all:
        raise CommandError(ALL_WITH_NAMES)
    if names and args.filter:
        raise CommandError(FILTER_WITH_NAMES)
    if not names and not args.all and not args.filter:
        raise CommandError(NO_NAMES)
    filters: list[str] = []
    if args.all:
        filters.append(READONLY_FALSE)
    filters.extend(args.filter)
    return RemoveOptions(
        force=args.force,
        lookup_manifest=args.lookup_manifest,
        filters=pvector(filters),
    )


def _warn(stream: TextIO, warnings: Sequence[str]) -> None:
    for warning in warnings:
        stream.write(f"WARNING: {one_line(warning)}\n")


# -- the command ---------------------------------------------------------------------------------


def run_rmi(invocation: Invocation) -> int:
    """Plan, apply (unless ``--dry-run``) and print as podman's ``rmi`` does."""
    from libimage.adapters.apply import remove_images

    args = invocation.args
    options = remove_options(args)
    try:
        runtime = invocation.runtime()
        outcome = remove_images(
            runtime.store_options,
            list(args.names),
            options,
            runtime.context(),
            dry_run=args.dry_run,
        )
    except LibimageError as error:
        raise CommandError(error.failure.message) from None
    _warn(invocation.stderr, outcome.warnings)
    plan = outcome.plan
    if args.format == "json":
        document = plan_json(
            plan,
            dry_run=outcome.dry_run,
            applied=outcome.applied,
            replanned=outcome.replanned,
            warnings=outcome.warnings,
        )
        invocation.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        for line in output_lines(plan.reports):
            invocation.stdout.write(line + "\n")
    invocation.stderr.write(error_text(plan.errors))
    return exit_code(plan.errors)
