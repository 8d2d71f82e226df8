"""``libimage parse``: show how a string parses as an image reference.

``libimage parse [--mode plain|normalized|docker-ref|libimage] NAME`` prints one
JSON object on stdout with the reference's parts, as docker/reference's ``Parse``
(``plain``, the default, REF-3), ``ParseNormalizedNamed`` (``normalized``, NORM-1),
``ParseDockerRef`` (``docker-ref``, NORM-3) or libimage's ``NormalizeName``
(``libimage``, LN-2) gives them:

    {"name": ..., "domain": ..., "path": ..., "tag": ..., "digest": ...,
     "string": ..., "familiar": ...}

Absent parts are ``""``. ``familiar`` is ``FamiliarString`` of the parsed reference
itself (NORM-4): upstream familiarises whatever reference it is given, without
normalising it first, so in ``plain`` mode ``docker.io/library/busybox`` shows
``busybox`` while ``busybox`` stays ``busybox`` and ``index.docker.io/library/x``
stays as it is.

An invalid reference exits 125, printing ``{"error": KIND, "message": TEXT}`` on
stdout (KIND is the upstream sentinel's name, e.g. ``ErrReferenceInvalidFormat``)
and ``Error: TEXT`` on stderr. No store is read. With ``--mode libimage`` the
wording of the error follows the ``--semantics`` profile
(``Semantics.normalize_name_error_drops_error_prefix``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from libimage.adapters.cli import EXIT_ERROR, EXIT_OK, Invocation, one_line
from libimage.pure.errors import LibimageError
from libimage.pure.reference import (
    Reference,
    familiar_string,
    normalize_name,
    parse,
    parse_docker_ref,
    parse_normalized_named,
)
from libimage.pure.semantics import PROFILES

MODES = ("plain", "normalized", "docker-ref", "libimage")


def build(
    name: str,  # noqa: ARG001 - the dispatch protocol passes the command's name
    parser: argparse.ArgumentParser,
) -> Callable[[Invocation], int]:
    """Add ``--mode`` and ``NAME`` to ``parser``; return the handler.

    A NAME that starts with ``-`` goes after ``--`` following the command's options
    (``libimage parse --mode plain -- -foo``): the global parser consumes a ``--``
    that comes right after the command.
    """
    parser.description = "Parse NAME as an image reference and print its parts as JSON."
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="plain",
        help="plain Parse (default), ParseNormalizedNamed, ParseDockerRef or NormalizeName",
    )
    parser.add_argument("reference", metavar="NAME", help="the reference to parse")
    return run_parse


def parse_in_mode(text: str, mode: str, drop_error_prefix: bool) -> Reference:
    """The reference ``text`` gives in ``mode`` (REF-3, NORM-1, NORM-3, LN-2)."""
    if mode == "normalized":
        return parse_normalized_named(text)
    if mode == "docker-ref":
        return parse_docker_ref(text)
    if mode == "libimage":
        return normalize_name(text, drop_error_prefix=drop_error_prefix)
    return parse(text)


def reference_fields(ref: Reference) -> dict[str, str]:
    """The JSON object of one reference, keys in a fixed order."""
    return {
        "name": ref.name,
        "domain": ref.domain,
        "path": ref.path,
        "tag": ref.tag,
        "digest": ref.digest,
        "string": str(ref),
        "familiar": familiar_string(ref),
    }


def run_parse(invocation: Invocation) -> int:
    """Print the parts of the reference, or the error, as one JSON line."""
    semantics = PROFILES[invocation.globals.semantics]
    try:
        ref = parse_in_mode(
            invocation.args.reference,
            invocation.args.mode,
            drop_error_prefix=semantics.normalize_name_error_drops_error_prefix,
        )
    except LibimageError as error:
        failure = error.failure
        invocation.stdout.write(
            json.dumps({"error": failure.kind.value, "message": failure.message}) + "\n"
        )
        invocation.stderr.write(f"Error: {one_line(failure.message)}\n")
        return EXIT_ERROR
    invocation.stdout.write(json.dumps(reference_fields(ref)) + "\n")
    return EXIT_OK
