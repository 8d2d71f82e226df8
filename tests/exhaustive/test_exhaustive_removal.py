"""Bounded exhaustive checking of removal (issue #6 item 3): every store, every request.

The scope is :mod:`libimage.spec.bounded`'s, stated there in full:

* stores: up to 3 images (IDs ``a1…``, ``a2…``, ``b…``: ``a`` is an ambiguous
  prefix), every parent relation (base image, or child of an earlier image through a
  new layer, LT-4, or on the same top layer, LT-5), every assignment of the names
  ``localhost/foo:latest`` and ``localhost/foo:v2`` to at most one image each, at
  most one storage container on any image, with and without a manifest list whose
  entry is the first image: **2,099 stores**;
* requests, per store: ``foo``, ``foo:v2``, ``localhost/foo:latest``,
  ``localhost/list:1``, ``nothere``, ``a``, each image's 12-character ID prefix and
  ``sha256:`` ID, ``[foo, foo]`` (RM-X5) and ``[foo:v2, foo]``, each without force
  (``seed``) and with force (``seed`` and ``podman-4.3``), plus ``rmi -a`` and
  ``--filter dangling=true``: 26 + 6 n requests for n images per store, **91,174
  requests** in all.

On every request every removal rule of :func:`libimage.spec.rules.check_removal`
must hold: the core's invariants ``INV-RM-1..8`` and agreement with the naive model
(``INV-MD-4``: reports, errors, events; ``INV-MD-5``: the store after). No randomness.

typeguard is off for the full enumeration: it runs in two fresh interpreters
(:func:`libimage.spec.bounded.run_in_processes`, ``python -m libimage.spec.bounded
--shard K/2``), which the typeguard pytest plugin does not instrument (it instruments
``libimage`` in the pytest process only), one per core; each prints its counts and
violations as one JSON line. A small sample of the
same scope also runs here, in the instrumented process, so that the enumeration's own
annotations stay checked.
"""

from __future__ import annotations

import pytest

from libimage.spec import bounded

pytestmark = pytest.mark.exhaustive

EXPECTED_STORES = 2099
EXPECTED_REQUESTS = 91174
PROCESSES = 2  # one per core of the CI machine
TIMEOUT = 600  # seconds; a run that hangs must fail, not stall CI


def test_every_removal_rule_on_every_store_in_scope(capsys: pytest.CaptureFixture[str]) -> None:
    """INV-RM-1..8, INV-MD-4, INV-MD-5 on all 91,174 requests of all 2,099 stores."""
    total = bounded.run_in_processes("removal", processes=PROCESSES, timeout=TIMEOUT)
    violations = total["violations"]
    line = (
        f"exhaustive removal: {total['stores']} stores, {total['requests']} requests, "
        f"{total['deleted_images']} images removed, {total['refusals']} refusals, "
        f"{len(violations)} violations"
    )
    with capsys.disabled():
        print(f"\n{line}")
    assert not violations, "\n".join(
        f"{v['rule']}: {v['explanation']}\n  store: {v['store']}\n  request: {v['request']}"
        for v in violations[:10]
    )
    assert total["stores"] == EXPECTED_STORES
    assert total["requests"] == EXPECTED_REQUESTS
    # The scope reaches both outcomes: images are deleted and requests are refused.
    assert total["deleted_images"] > 0
    assert total["refusals"] > 0


def test_sample_of_the_scope_under_typeguard() -> None:
    """The first stores of the same scope, in this (instrumented) process."""
    coverage = bounded.check_all(limit=8)
    assert coverage.stores == 8
    assert not coverage.violations, coverage.violations[:3]
