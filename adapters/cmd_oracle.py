"""``libimage oracle``: check another implementation against libimage (issue #6 item 4).

``libimage [--semantics S] oracle --against podman|FILE [--examples N] [--seed S]
[--max-seconds T] [--save-dir D] [--known FILE] [--max-images N] [--max-steps N]
[--semantics S]``

generates up to N workloads (a small store and a few ``lookup``/``exists``/``images``/
``rmi`` requests), runs each on libimage (profile S) and on the other implementation,
described by the command protocol (:mod:`libimage.spec.protocol`: ``podman`` is
built in, FILE is a description), and compares them
(:mod:`libimage.spec.oracle`). The first divergence that no known difference
explains is shrunk to a minimal store and request, printed, and saved as a scenario
case in D (default ``./oracle-divergences``). ``--replay FILE`` runs one case file
(a saved divergence, or any ``spec/cases`` case) on both sides instead.

Known differences: ``--known FILE`` (a list in the format of
``spec/known-podman-differences.json``); by default podman 4.3.1's list with
``--against podman`` and none otherwise.

Exit codes: 0 when every divergence found is a known difference (or there is none),
1 when one is not, 125 for a bad command line, a description or case file that does
not load, or a failure of the harness itself.

The run stops after about ``--max-seconds`` (default 180), shrinking included.
hypothesis is imported here only, so that no other command pays for it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from libimage.adapters.cli import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    CommandError,
    Invocation,
    add_semantics_option,
)

if TYPE_CHECKING:
    from libimage.spec.oracle import Divergence, Execution, KnownDifference, OracleRun

DEFAULT_EXAMPLES = 100
DEFAULT_MAX_SECONDS = 180.0
DEFAULT_SAVE_DIR = "oracle-divergences"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 4294967295")
    return value


def build(name: str, parser: argparse.ArgumentParser) -> Callable[[Invocation], int]:
    """Add the arguments of ``oracle`` to ``parser``."""
    if name != "oracle":
        raise ValueError(f"cmd_oracle does not implement {name!r}")
    parser.description = (
        "Check another implementation against libimage: generate stores and requests, "
        "run both, report each divergence shrunk to a minimal case."
    )
    parser.add_argument(
        "--against",
        required=True,
        metavar="podman|FILE",
        help="the other implementation: 'podman' (built in) or a protocol description file",
    )
    parser.add_argument(
        "--examples",
        type=_positive_int,
        default=DEFAULT_EXAMPLES,
        metavar="N",
        help=f"workloads to generate (default {DEFAULT_EXAMPLES})",
    )
    parser.add_argument("--seed", type=_seed, metavar="S", help="make the run repeatable")
    parser.add_argument(
        "--max-seconds",
        type=_seconds,
        default=DEFAULT_MAX_SECONDS,
        metavar="T",
        help=f"stop after about T seconds, shrinking included (default {DEFAULT_MAX_SECONDS:g})",
    )
    parser.add_argument(
        "--save-dir",
        default=DEFAULT_SAVE_DIR,
        metavar="D",
        help=f"where a divergence is saved as a case (default ./{DEFAULT_SAVE_DIR})",
    )
    parser.add_argument("--replay", metavar="FILE", help="run one saved case on both sides")
    parser.add_argument(
        "--known", metavar="FILE", help="the known differences (default: podman's, for podman)"
    )
    parser.add_argument(
        "--max-images", type=_positive_int, default=4, metavar="N", help="images per store"
    )
    parser.add_argument(
        "--max-steps", type=_positive_int, default=4, metavar="N", help="requests per workload"
    )
    add_semantics_option(parser, default=None)
    return run_oracle_command


def run_oracle_command(invocation: Invocation) -> int:
    """Load the description and the known list, then search or replay."""
    from libimage.spec import oracle
    from libimage.spec.cases import CaseError
    from libimage.spec.protocol import ProtocolError, protocol_named

    args = invocation.args
    semantics = invocation.globals.semantics
    try:
        theirs = protocol_named(args.against)
    except ProtocolError as error:
        raise CommandError(str(error)) from None
    known = _known(args.known, theirs.name)
    out = invocation.stdout
    save_dir = Path(args.save_dir)
    if not args.replay and save_dir.exists() and not save_dir.is_dir():
        raise CommandError(f"--save-dir {save_dir}: not a directory")
    if args.replay:
        try:
            execution = oracle.replay(Path(args.replay), theirs, semantics=semantics, known=known)
        except (CaseError, oracle.UnsupportedRequest) as error:
            # Both name the case file (and the step) already.
            raise CommandError(str(error)) from None
        return _report_replay(execution, args.replay, theirs.name, semantics, out)

    def progress(text: str) -> None:
        invocation.stderr.write(f"oracle: {text}\n")
        invocation.stderr.flush()

    run = oracle.run_oracle(
        theirs,
        semantics=semantics,
        examples=args.examples,
        seed=args.seed,
        max_seconds=args.max_seconds,
        known=known,
        save_dir=save_dir,
        max_images=args.max_images,
        max_steps=args.max_steps,
        progress=progress,
    )
    return _report_run(run, args, invocation.globals.semantics, out)


def _known(path: str | None, against: str) -> Sequence[KnownDifference]:
    from libimage.spec import oracle

    try:
        if path is not None:
            return oracle.load_known(path)
        if against == "podman":
            return oracle.load_known()
    except oracle.KnownListError as error:
        raise CommandError(str(error)) from None
    return ()


def _known_summary(found: dict[str, list[Divergence]], out: TextIO) -> None:
    for known_id, divergences in sorted(found.items()):
        entry = divergences[0].known
        title = entry.title if entry is not None else ""
        out.write(f"  known {known_id} ({len(divergences)}x): {title}\n")


def _report_run(run: OracleRun, args: argparse.Namespace, semantics: str, out: TextIO) -> int:
    from libimage.spec.oracle import describe

    stopped = " (stopped at the time limit)" if run.out_of_time else ""
    out.write(
        f"oracle: libimage ({semantics}) against {run.against}: {run.examples} examples, "
        f"{run.requests} requests in {run.elapsed:.1f} s{stopped}, seed {run.seed}\n"
    )
    _known_summary(run.known, out)
    if run.error:
        raise CommandError(f"the oracle failed: {run.error}")
    if run.failure is None:
        known = sum(len(found) for found in run.known.values())
        verdict = "every divergence is a known difference" if known else "no divergence"
        out.write(f"{verdict}\n")
        return EXIT_OK
    out.write(f"divergence not on the known list (shrunk over {run.shrink_runs} runs):\n")
    for line in describe(run.failure):
        out.write(f"  {line}\n")
    if run.saved is not None:
        out.write(f"saved: {run.saved}\n")
        command = ["libimage", "--semantics", semantics, "oracle", "--against", args.against]
        command += ["--replay", str(run.saved)]
        out.write(f"replay: {' '.join(command)}\n")
    if run.save_error:
        # The divergence is printed above; the case file is what is missing.
        raise CommandError(run.save_error)
    return EXIT_NOT_FOUND


def _report_replay(
    execution: Execution, path: str, against: str, semantics: str, out: TextIO
) -> int:
    from libimage.spec.oracle import describe, describe_request

    requests = sum(1 for step in execution.steps if step.index >= 0)
    out.write(
        f"oracle: replayed {path} on libimage ({semantics}) and {against}: "
        f"{requests} of {len(execution.workload.requests)} requests\n"
    )
    for step in execution.steps:
        if step.index >= 0 and step.ours is not None and step.theirs is not None:
            out.write(
                f"  {step.index + 1}. {describe_request(step.filled)}: "
                f"ours {step.ours.status}, theirs {step.theirs.status}\n"
            )
    for divergence in execution.divergences:
        verdict = "known difference" if divergence.known else "divergence not on the known list"
        out.write(f"{verdict}:\n")
        for line in describe(divergence):
            out.write(f"  {line}\n")
    if execution.unexplained is not None:
        return EXIT_NOT_FOUND
    if not execution.divergences:
        out.write("no divergence\n")
    return EXIT_OK
