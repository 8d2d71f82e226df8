"""The fast subset of the model checks that every mutant must fail (``test_mutants.py``).

Run in a fresh interpreter whose ``PYTHONPATH`` puts a (possibly mutated) copy of the
package first, so that ``libimage`` is that copy::

    PYTHONPATH=COPY python tests/mutants/checks.py

Cheapest first, stopping at the first failure:

1. ``cases``: every scenario case (``spec/cases``) in each of its profiles, replayed by
   the pure core against the references' expectations
   (:func:`libimage.spec.cases.replay_core`); and on the store as it stands before each
   step, every rule of :mod:`libimage.spec.rules` for the step's request
   (:func:`~libimage.spec.rules.check_lookup`, :func:`~libimage.spec.rules.check_listing`,
   :func:`~libimage.spec.rules.check_removal`: the core's invariants and agreement with
   the naive model, which compares what a case's expectation leaves out, such as the
   names history, SF-N-3); the agreement rules are left out only where the store or
   request is outside the model's scope (:class:`~libimage.spec.model.OutOfScope`);
2. ``bounded-lookup-listing``: every lookup and listing rule
   (:func:`~libimage.spec.rules.check_lookup`, :func:`~libimage.spec.rules.check_listing`)
   on the first :data:`BOUNDED_STORES` stores of the bounded scope, in both profiles;
3. ``bounded-removal``: every removal rule (:func:`~libimage.spec.rules.check_removal`)
   on every removal request of the same stores;
4. ``model-machine``: the core-against-model state machine
   (``tests/stateful/test_model_machine.py``) for :data:`MACHINE_EXAMPLES` examples,
   derandomised.

Prints one JSON line: ``{"caught": bool, "check": NAME, "detail": TEXT, "seconds": {...},
"package": DIR}`` (``DIR``: the ``pure`` folder that was imported, so that the caller
can tell the copy was checked, not the working tree)
and exits 0 whether or not a check failed (1 only if the checks could not start).
With ``--all`` every check runs and ``caught_by`` lists each one that failed (how the
table of ``docs/mutants.md`` was made; the test stops at the first).
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libimage.pure.context import Context
    from libimage.pure.semantics import Semantics
    from libimage.pure.snapshot import Snapshot
    from libimage.spec.cases import Case
    from libimage.spec.rules import Violation

TESTS = Path(__file__).resolve().parents[1]
BOUNDED_STORES = 179
"""The bounded scope's stores with at most two images (``spec/bounded.py``)."""
MACHINE_EXAMPLES = 150
MACHINE_STEPS = 20


class Caught(Exception):
    """A check failed: the mutant is caught."""


def cases() -> None:
    from libimage.pure.semantics import PROFILES
    from libimage.spec.cases import load_all, replay_core

    for case in load_all():
        for profile in case.profiles:
            problems = replay_core(case, PROFILES[profile])
            if problems:
                raise Caught(f"{case.id} ({profile}): {problems[0]}")
            found = _case_rules(case, PROFILES[profile])
            if found:
                raise Caught(f"{case.id} ({profile}): {found}")


def _case_rules(case: Case, semantics: Semantics) -> str:
    """The first rule of ``spec.rules`` a step of ``case`` breaks, on the store as it
    stands before that step ("" when every rule holds)."""
    from libimage.spec.cases import build_snapshot, run_step
    from libimage.spec.model import OutOfScope
    from libimage.spec.rules import RULES

    core_rules = {rule.id for rule in RULES if not rule.id.startswith("INV-MD-")}
    snap, values = build_snapshot(case)
    context = case.context(semantics)
    for number, step in enumerate(case.steps):
        request = values.fill_all(dict(step.request))
        try:
            found = _step_rules(snap, request, context, None)
        except OutOfScope:  # the model does not describe it: the core's invariants only
            found = _step_rules(snap, request, context, core_rules)
        if found:
            return f"step {number} {request}: {found[0]}"
        _, snap = run_step(snap, request, context, values)
    return ""


def _step_rules(
    snap: Snapshot, request: Mapping[str, Any], context: Context, only: Collection[str] | None
) -> list[Violation]:
    """Every rule (or those of ``only``, without the model) for one request of a case."""
    from libimage.spec.cases import request_options
    from libimage.spec.invariants_listing import ListingCase
    from libimage.spec.invariants_removal import RemovalRequest
    from libimage.spec.model import model_of
    from libimage.spec.rules import check_listing, check_lookup, check_removal

    naive = model_of(snap) if only is None else None
    op = request["op"]
    if op in ("lookup", "exists"):
        return check_lookup(snap, request["name"], context, naive=naive, only=only)
    names = tuple(request.get("names", []))
    if op == "images":
        filters = tuple(request.get("filters", []))
        listing = ListingCase(snap, filters, context, names, _odd_external)
        return check_listing(listing, naive=naive, only=only)
    removal = RemovalRequest(snap, names, request_options(request), context)
    return check_removal(removal, naive=naive, only=only)


def bounded_lookup_listing() -> None:
    from libimage.pure.context import Context
    from libimage.pure.semantics import PODMAN_4_3, SEED
    from libimage.spec import bounded
    from libimage.spec.invariants_listing import ListingCase
    from libimage.spec.model import model_of
    from libimage.spec.rules import check_listing, check_lookup

    for store in itertools.islice(bounded.stores(), BOUNDED_STORES):
        naive = model_of(store.snapshot)
        names = bounded.lookup_names(store) if not store.snapshot.containers else []
        for semantics in (SEED, PODMAN_4_3):
            context = Context(semantics=semantics)
            for name in names:
                found = check_lookup(store.snapshot, name, context, naive=naive)
                if found:
                    raise Caught(f"{store.description}: lookup {name!r}: {found[0]}")
            for filters in bounded.listing_filters(store):
                case = ListingCase(store.snapshot, filters, context, (), _odd_external)
                found = check_listing(case, naive=naive)
                if found:
                    raise Caught(f"{store.description}: images {list(filters)}: {found[0]}")


def _odd_external(container_id: str) -> bool:
    return container_id[-1] in "02468ace"


def bounded_removal() -> None:
    from libimage.spec import bounded
    from libimage.spec.model import model_of
    from libimage.spec.rules import check_removal

    for store in itertools.islice(bounded.stores(), BOUNDED_STORES):
        naive = model_of(store.snapshot)
        for request in bounded.removal_requests(store):
            found = check_removal(request, naive=naive)
            if found:
                names = list(request.names)
                what = f"rmi {names} force={request.options.force} {request.context.semantics.name}"
                raise Caught(f"{store.description}: {what}: {found[0]}")


def model_machine() -> None:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    sys.path.insert(0, str(TESTS / "stateful"))
    sys.path.insert(0, str(TESTS))
    test_model_machine = importlib.import_module("test_model_machine")

    try:
        run_state_machine_as_test(
            test_model_machine.CoreAgainstModel,
            settings=settings(
                max_examples=MACHINE_EXAMPLES,
                stateful_step_count=MACHINE_STEPS,
                derandomize=True,
                phases=(Phase.generate,),
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
                print_blob=False,
            ),
        )
    except AssertionError as error:
        raise Caught(
            str(error).strip().splitlines()[0] if str(error).strip() else "failed"
        ) from None


CHECKS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("cases", cases),
    ("bounded-lookup-listing", bounded_lookup_listing),
    ("bounded-removal", bounded_removal),
    ("model-machine", model_machine),
)


def main(argv: Sequence[str]) -> int:
    """Run the checks; with ``--all``, every check, listing all that fail (``caught_by``)."""
    every = "--all" in argv
    seconds: dict[str, float] = {}
    outcome: dict[str, object] = {"caught": False, "check": "", "detail": ""}
    caught_by: list[str] = []
    for name, check in CHECKS:
        started = time.monotonic()
        try:
            check()
        except Caught as caught:
            failed: dict[str, object] = {"caught": True, "check": name, "detail": str(caught)[:500]}
        except Exception as error:  # a crash of the mutated code fails the check too
            detail = f"{type(error).__name__}: {error}"[:500]
            failed = {"caught": True, "check": name, "detail": detail, "crashed": True}
        else:
            failed = {}
        seconds[name] = round(time.monotonic() - started, 2)
        if failed:
            caught_by.append(name)
            if not outcome["caught"]:
                outcome = failed
            if not every:
                break
    if every:
        outcome["caught_by"] = caught_by
    import libimage.pure

    # Which copy of the core was checked: the caller makes sure it is the mutated one.
    package = str(Path(libimage.pure.__file__).resolve().parent)
    sys.stdout.write(json.dumps({**outcome, "seconds": seconds, "package": package}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
