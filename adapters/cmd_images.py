"""``libimage images``: list images as ``podman images`` does (LS, FL, POD-I).

``libimage images [-a|--all] [-f|--filter K=V]... [--format json|table] [--no-trunc]
[-q|--quiet]``

* Without ``--all`` the filter ``intermediate=false`` is added after the user's
  filters, as podman's CLI does (decision 14, POD-I-2). So ``--filter
  intermediate=true`` without ``--all`` is the repeated-filter error in the
  ``seed`` profile, and lists nothing in ``podman-4.3`` (different values are an
  error there too).
* ``--filter`` values are split as podman's (pflag's string-slice flag): the value
  is read as one CSV record, so ``--filter a=1,b=2`` is two filters and
  ``--filter '"label=a,b"'`` one; an empty value adds none; a stray quote is an
  error.
* The default output is podman's table (POD-I-1): ``REPOSITORY TAG IMAGE ID
  CREATED SIZE``, one row per tagged name (``<none>`` for unnamed images), newest
  first, 12-character IDs (``sha256:<full ID>`` with ``--no-trunc``), podman's
  human sizes and ages, and the ``R/O`` column when podman would show it (POD-I-6).
  Control characters in names are escaped. ``--format table`` is the same table
  (podman would print the literal template text ``table``).
* ``-q`` prints each displayed ID once, newest first; ``--format json`` wins over
  ``-q``.
* ``--format json`` prints one object per image with podman's keys in podman's
  order (POD-I-4). compat: podman 4.3.1 repeats the object once per name; here
  each image appears once.

A bad filter, a bad flag, or a store that cannot be read exits 125 with
``Error: <message>``. Warnings noticed while reading the store or looking up images
go to stderr as ``WARNING: <text>``; errors podman would log and continue after
(a filter failing on a corrupted image, FL-P9; a fact of a corrupted image that
podman 4.3.1 would have aborted for) as ``ERROR: <text>``.

The current time and the local UTC offset are read here, once, and passed to the
pure core (decision 6). The import path stays lean: the runtime, the lookup and
listing cores, never hypothesis or typeguard.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TextIO

from libimage.adapters.cli import (
    EXIT_OK,
    CommandError,
    Invocation,
    escape_control,
    one_line,
)
from libimage.adapters.content import FactsCache, StoreContent
from libimage.adapters.store import ReadResult
from libimage.pure.errors import LibimageError
from libimage.pure.listing import (
    images_json,
    list_images,
    quiet_ids,
    summarize_all,
    table_rows,
    tabulate,
)
from libimage.pure.reference import go_quote
from libimage.pure.snapshot import Snapshot

HIDE_INTERMEDIATE = "intermediate=false"
"""What podman's CLI adds without ``--all`` (decision 14, POD-I-2)."""


def build(
    name: str,  # noqa: ARG001 - the dispatch protocol passes the command's name
    parser: argparse.ArgumentParser,
) -> Callable[[Invocation], int]:
    """Add the ``images`` options to ``parser``; return the handler."""
    parser.description = "List images in local storage, as podman images does."
    parser.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="show all images (default hides intermediate images)",
    )
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="K=V",
        help="filter output based on conditions provided (repeatable; comma-separated)",
    )
    parser.add_argument(
        "--format",
        choices=["json", "table"],
        default="table",
        help="json: podman's JSON objects; table (default): podman's table",
    )
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate image IDs")
    parser.add_argument("-q", "--quiet", action="store_true", help="display only image IDs")
    return run_images


# --------------------------------------------------------------------------- --filter values


class _CsvError(Exception):
    """A value that Go's ``encoding/csv`` refuses; the text is Go's."""


def _csv_lines(text: str) -> list[str]:
    """Go's ``csv.Reader`` lines: ``\n`` kept, ``\r\n`` as ``\n``, a final ``\r`` dropped."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    last = pieces[-1].removesuffix("\r")
    if last:
        lines.append(last)
    return [line[:-2] + "\n" if line.endswith("\r\n") else line for line in lines]


def _byte_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def first_csv_record(text: str) -> list[str]:
    """The first record of ``text`` as Go's ``csv.Reader.Read`` returns it.

    Fields are separated by ``,``; a field that starts with ``"`` is quoted (``""`` is
    a quote; it may span lines); empty lines before the record are skipped; later
    lines are ignored. Raises :class:`_CsvError` with Go's message (line and 1-based
    byte column).

    >>> first_csv_record('a=1,"b=2,3","c=""x"')
    ['a=1', 'b=2,3', 'c="x']
    """
    lines = _csv_lines(text)
    number = 0
    while number < len(lines) and lines[number] == "\n":
        number += 1
    if number == len(lines):
        raise _CsvError("EOF")
    start_line = number + 1
    full = lines[number]
    line = full
    fields: list[str] = []

    def error(line_number: int, column: int, message: str) -> _CsvError:
        where = f"parse error on line {line_number}, column {column}: {message}"
        if line_number != start_line:
            where = f"record on line {start_line}; {where}"
        return _CsvError(where)

    while True:
        if not line.startswith('"'):
            comma = line.find(",")
            field = line[:comma] if comma >= 0 else line.removesuffix("\n")
            quote = field.find('"')
            if quote >= 0:
                column = _byte_length(full[: len(full) - len(line) + quote]) + 1
                raise error(number + 1, column, 'bare " in non-quoted-field')
            fields.append(field)
            if comma < 0:
                return fields
            line = line[comma + 1 :]
            continue
        line = line[1:]
        value: list[str] = []
        while True:
            quote = line.find('"')
            if quote >= 0:
                value.append(line[:quote])
                line = line[quote + 1 :]
                if line.startswith('"'):
                    value.append('"')
                    line = line[1:]
                    continue
                if line.startswith(","):
                    line = line[1:]
                    fields.append("".join(value))
                    break
                if line in ("", "\n"):
                    fields.append("".join(value))
                    return fields
                column = _byte_length(full[: len(full) - len(line)])
                raise error(number + 1, column, 'extraneous or missing " in quoted-field')
            if line and number + 1 < len(lines):
                value.append(line)
                number += 1
                full = line = lines[number]
                continue
            column = _byte_length(full.removesuffix("\n")) + 1
            raise error(number + 1, column, 'extraneous or missing " in quoted-field')


def split_filter_flags(values: Sequence[str]) -> list[str]:
    """Every ``--filter`` value split as podman's string-slice flag splits it.

    >>> split_filter_flags(["label=a,reference=b", "", "id=x"])
    ['label=a', 'reference=b', 'id=x']
    """
    filters: list[str] = []
    for value in values:
        if not value:
            continue
        try:
            filters.extend(first_csv_record(value))
        except _CsvError as error:
            raise CommandError(
                f'invalid argument {go_quote(value)} for "-f, --filter" flag: {error}'
            ) from None
    return filters


# --------------------------------------------------------------------------- the command


def _log(stream: TextIO, level: str, messages: Sequence[str]) -> None:
    for message in messages:
        stream.write(f"{level}: {one_line(message)}\n")


def run_images(invocation: Invocation) -> int:
    """List the images; print the table, the IDs or the JSON document."""
    args = invocation.args
    filters = split_filter_flags(args.filter)
    if not args.all:
        filters.append(HIDE_INTERMEDIATE)  # decision 14
    try:
        runtime = invocation.runtime()
        read = runtime.read()
        now_ns = time.time_ns()
        context = runtime.listing_context(now_ns)
    except LibimageError as error:
        raise CommandError(error.failure.message) from None
    _log(invocation.stderr, "WARNING", read.warnings)
    snapshot, facts = _with_facts(read)
    listed = list_images(snapshot, [], filters, context)
    _log(invocation.stderr, "WARNING", listed.warnings)
    _log(invocation.stderr, "ERROR", [failure.message for failure in listed.errors])
    if listed.failure is not None:
        raise CommandError(listed.failure.message)
    summaries = summarize_all(snapshot, listed.images)
    _log(
        invocation.stderr,
        "ERROR",
        [problem.message for summary in summaries for problem in summary.problems],
    )
    out = invocation.stdout
    if args.format == "json":
        out.write(images_json(summaries) + "\n")
    elif args.quiet:
        for shown in quiet_ids(summaries, no_trunc=args.no_trunc):
            out.write(shown + "\n")
    else:
        rows = table_rows(summaries, now_ns, no_trunc=args.no_trunc)
        out.write(tabulate([tuple(escape_control(cell) for cell in row) for row in rows]))
    if facts is not None:
        from libimage.adapters.cache import save_facts

        save_facts(read.paths, os.environ, facts, snapshot)
    return EXIT_OK


def _with_facts(read: ReadResult) -> tuple[Snapshot, FactsCache | None]:
    """The snapshot reading big data through the store's persistent facts (issue #7).

    Values derived from a manifest or config file are reused while the file's identity
    is unchanged (adapters/cache.py); the listing is the same with or without them.
    Without a usable cache directory the snapshot is the read's own.
    """
    content = read.snapshot.content
    if not isinstance(content, StoreContent):
        return read.snapshot, None
    from libimage.adapters.cache import load_facts

    facts = load_facts(read.paths, os.environ)
    if facts is None:
        return read.snapshot, None
    return replace(read.snapshot, content=replace(content, facts=facts)), facts
