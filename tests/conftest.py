"""Test configuration shared by every suite.

* Hypothesis profiles: ``dev`` (default locally), ``ci`` (deterministic and
  bounded; chosen when ``CI`` is set) and ``deep`` (long local runs). Select one
  with ``HYPOTHESIS_PROFILE``.
* In CI (``CI`` set) a skipped test fails: nothing may be skipped there.
* typeguard (the pytest plugin, configured in pyproject.toml) cannot see inside
  pyrsistent collections; the lookup registered here checks them as the
  ``Sequence``/``Mapping``/``Set`` they are.

This module must not import ``libimage`` at import time: the typeguard plugin
instruments the package only if it is imported after the plugin is configured.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping, Sequence, Set
from typing import Any

import pluggy
import pyrsistent
import pyrsistent.typing as ptyping
import pytest
from hypothesis import HealthCheck, settings
from typeguard import TypeCheckError, TypeCheckMemo, check_type_internal, checker_lookup_functions

IN_CI = bool(os.environ.get("CI"))

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def _pyrsistent_checker(runtime_type: type, as_type: Any) -> Any:
    def check(value: Any, _origin: Any, args: tuple[Any, ...], memo: TypeCheckMemo) -> None:
        if not isinstance(value, runtime_type):
            raise TypeCheckError(f"is not a {runtime_type.__name__}")
        check_type_internal(value, as_type[args] if args else as_type, memo)

    return check


def _pyrsistent_lookup(origin_type: Any, _args: tuple[Any, ...], _extras: tuple[Any, ...]) -> Any:
    if origin_type is ptyping.PVector:
        return _pyrsistent_checker(pyrsistent.PVector, Sequence)
    if origin_type is ptyping.PMap:
        return _pyrsistent_checker(pyrsistent.PMap, Mapping)
    if origin_type is ptyping.PSet:
        return _pyrsistent_checker(pyrsistent.PSet, Set)
    return None


checker_lookup_functions.insert(0, _pyrsistent_lookup)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport() -> Generator[None, pluggy.Result[pytest.TestReport]]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"
