"""The mutation check: the model checks catch every deliberate bug (issue #6).

Each mutant of :data:`mutants.MUTANTS` is applied to a temporary copy of the package
(``libimage``, ``pure``, ``adapters``, ``spec``; the working tree is never touched)
and the fast subset of the model checks (``checks.py``: scenario cases with every
rule of ``spec.rules`` on each of their requests, the first 179 stores of the
bounded scope, the core-against-model machine) runs against it in a fresh
interpreter, stopping at its first failure. Every mutant must be caught by a failing
check (a wrong answer, not a crash), and the unmutated copy must pass them all. A
patch that no longer applies to the current core fails the test as "does not apply",
naming the mutant; it never counts as caught. Two copies are checked at a time (the
CI machine has two cores); the whole check takes under a minute here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mutants import MUTANTS, REPOSITORY, Mutant

pytestmark = pytest.mark.slow

CHECKS = Path(__file__).resolve().parent / "checks.py"
PACKAGE_PARTS = ("libimage", "pure", "adapters", "spec")
PARALLEL = 2  # one per core of the CI machine
TIMEOUT = 600  # seconds for one copy; a hung check must fail, not stall CI
REQUIRED_KINDS = {
    # The kinds of bug the mutants must cover (the task of issue #6 names them).
    "name dedup": "RM-3",
    "shared layer deleted": "SF-D-6",
    "containers ignored": "RM-D5",
    "candidate order": "SN-2",
    "read-only": "RM-D0",
    "manifest lists": "ML-4",
    "ID prefix ambiguity": "ST-2",
    "filters": "FL-R4",
}


def copy_package(destination: Path) -> Path:
    """A copy of the package's folders (the ``libimage/*`` links stay relative)."""
    destination.mkdir(parents=True)
    for part in PACKAGE_PARTS:
        shutil.copytree(
            REPOSITORY / part,
            destination / part,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return destination


def run_checks(mutant: Mutant | None, directory: Path) -> dict[str, Any]:
    """Copy the package to ``directory``, apply ``mutant`` (if any), run ``checks.py``.

    The result is ``checks.py``'s outcome, or ``{"applies": False, ...}`` when the
    patch does not apply, or ``{"error": ...}`` when the checks could not run.
    """
    tree = copy_package(directory)
    if mutant is not None:
        target = tree / mutant.path
        try:
            target.write_text(mutant.apply(target.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as error:
            return {"caught": None, "applies": False, "detail": str(error)}
    environment = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, str(CHECKS)],
        capture_output=True,
        text=True,
        cwd=tree,
        env=environment,
        timeout=TIMEOUT,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"caught": None, "error": f"checks.py exited {done.returncode}: {done.stderr}"}
    result: dict[str, Any] = json.loads(lines[-1])
    if Path(result.get("package", "")) != (tree / "pure").resolve():
        return {"caught": None, "error": f"checked {result.get('package')}, not the copy"}
    return result


def verdict(result: dict[str, Any]) -> str:
    """One cell of the printed table."""
    if result.get("applies") is False:
        return "DOES NOT APPLY"
    if "error" in result:
        return "CHECKS DID NOT RUN"
    if result.get("crashed"):
        return f"crashed in {result.get('check')}"
    if result.get("caught"):
        return f"caught by {result.get('check')}"
    return "passed"


class TestPatches:
    """Every patch still applies to the current core, exactly once, and compiles."""

    @pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
    def test_patch_applies_once_and_compiles(self, mutant: Mutant) -> None:
        source = (REPOSITORY / mutant.path).read_text(encoding="utf-8")
        try:
            mutated = mutant.apply(source)
        except ValueError as error:
            pytest.fail(f"mutant does not apply: {error}")
        assert mutated != source
        compile(mutated, mutant.path, "exec")

    def test_at_least_ten_distinct_bugs_of_the_required_kinds(self) -> None:
        names = [mutant.name for mutant in MUTANTS]
        assert len(names) == len(set(names))
        assert len(MUTANTS) >= 10
        assert all(mutant.path.startswith("pure/") for mutant in MUTANTS)
        rules = {mutant.rule for mutant in MUTANTS}
        missing = {kind: rule for kind, rule in REQUIRED_KINDS.items() if rule not in rules}
        assert not missing, f"no mutant of these kinds: {missing}"

    def test_a_patch_that_does_not_apply_is_reported_not_caught(self, tmp_path: Path) -> None:
        gone = Mutant("gone", "-", "text no longer in the core", "pure/lookup.py", "\x00", "")
        result = run_checks(gone, tmp_path / "copy")
        assert result["applies"] is False
        assert "occurs 0 times" in result["detail"]
        assert verdict(result) == "DOES NOT APPLY"


def test_every_mutant_is_caught_and_the_unmutated_core_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #6: each deliberate bug fails a model check; the real core fails none."""
    subjects: list[Mutant | None] = [None, *MUTANTS]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [
            pool.submit(run_checks, subject, tmp_path / f"copy-{position}")
            for position, subject in enumerate(subjects)
        ]
        results = [future.result() for future in futures]
    lines = []
    for subject, result in zip(subjects, results, strict=True):
        name = subject.name if subject is not None else "(unmutated)"
        rule = subject.rule if subject is not None else ""
        seconds = sum(result.get("seconds", {}).values())
        lines.append(f"  {name:35} {rule:7} {verdict(result):30} {seconds:6.1f} s")
    with capsys.disabled():
        print("\nmutation check:\n" + "\n".join(lines))
    unmutated, *mutated = results
    pairs = list(zip(MUTANTS, mutated, strict=True))
    stale = {m.name: r["detail"] for m, r in pairs if r.get("applies") is False}
    assert not stale, f"mutants that do not apply to the current core: {stale}"
    broken = {m.name: r["error"] for m, r in pairs if "error" in r}
    if "error" in unmutated:
        broken["(unmutated)"] = unmutated["error"]
    assert not broken, f"the checks did not run: {broken}"
    assert unmutated["caught"] is False, f"the unmutated core fails a check: {unmutated}"
    survivors = [m.name for m, r in pairs if r.get("caught") is not True]
    assert not survivors, f"mutants not caught: {survivors}"
    crashed = {m.name: r["detail"] for m, r in pairs if r.get("crashed")}
    assert not crashed, f"mutants caught only by a crash, not by a check: {crashed}"
