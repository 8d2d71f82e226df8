"""``libimage oracle --against podman``: the installed podman 4.3.1 against our podman-4.3 profile.

The command runs as a user runs it (its own process, the ``libimage`` entry point) for
a bounded number of generated workloads with fixed seeds, and must exit 0: no
divergence, or only divergences on the list of known podman 4.3.1 differences
(``spec/known-podman-differences.json``). The list itself is checked here too: every
entry has an ID, a title, a reason and the behaviour or decision IDs it rests on, and
``docs/oracle.md`` names every entry with its reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.podman import requires_podman

from libimage.spec.oracle import KNOWN_PODMAN_DIFFERENCES, PREDICATES, load_known

CHECKOUT = Path(__file__).resolve().parents[2]
DOCS = CHECKOUT / "docs" / "oracle.md"
REFERENCE_ID = re.compile(r"decision \d+|[A-Z]+(-[A-Z0-9]+)+")
"""A decision of decisions.md, or a behaviour ID of the references (``LN-4``, ``DIV-1``)."""

VERDICTS = ("no divergence", "every divergence is a known difference")
EXAMPLES = 40
"""Workloads per seed: two seeds stay well under a minute on a 2-core machine."""


def _raw_entries() -> list[dict[str, Any]]:
    document = json.loads(KNOWN_PODMAN_DIFFERENCES.read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = document["differences"]
    return entries


@pytest.mark.differential
@requires_podman
@pytest.mark.parametrize("seed", [11, 12])
def test_oracle_against_podman_finds_only_known_differences(seed: int, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "libimage",
            "--semantics",
            "podman-4.3",
            "oracle",
            "--against",
            "podman",
            "--examples",
            str(EXAMPLES),
            "--seed",
            str(seed),
            "--max-seconds",
            "25",
            "--save-dir",
            str(tmp_path / "divergences"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("oracle: libimage (podman-4.3) against podman: ")
    assert f"seed {seed}" in lines[0]
    assert lines[-1] in VERDICTS
    known_ids = {entry.id for entry in load_known()}
    reported = [line.split()[1] for line in lines[1:-1] if line.startswith("  known ")]
    assert len(reported) == len(lines) - 2, "only known entries between header and verdict"
    assert set(reported) <= known_ids
    assert (lines[-1] == VERDICTS[0]) == (not reported)
    assert not (tmp_path / "divergences").exists(), "nothing unexplained was saved"


def test_every_known_difference_has_an_id_a_reason_and_references() -> None:
    entries = _raw_entries()
    assert entries, "the list is not empty"
    for entry in entries:
        assert re.fullmatch(r"KPD-\d+", entry["id"]), entry
        assert entry["title"].strip(), entry["id"]
        assert len(entry["reason"].split()) >= 10, f"{entry['id']}: a reason, not a label"
        rules = entry["rules"]
        assert rules, f"{entry['id']}: names the behaviour or decision it rests on"
        for rule in rules:
            assert REFERENCE_ID.fullmatch(rule), f"{entry['id']}: {rule!r}"
        assert entry["match"]["predicate"] in PREDICATES
    # The loader accepts the file as it is installed (package data of libimage.spec).
    assert [known.id for known in load_known()] == [entry["id"] for entry in entries]


def test_docs_list_every_known_difference_with_its_reason() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for entry in _raw_entries():
        row = next((line for line in text.splitlines() if f"| {entry['id']} |" in line), None)
        assert row is not None, f"docs/oracle.md has a table row for {entry['id']}"
        # The row cites the entry's references; its reason is written out there.
        for rule in entry["rules"][:1]:
            assert rule in row, f"{entry['id']}: {rule} in {row!r}"
