"""``libimage rmi``'s presentation: line grouping, error forms, exit codes, arguments.

Expected values come from behaviour-list-remove.md section 8.1 (podman 4.3.1's
``rmi``: POD-R-*) and decision 13; nothing here needs a store except the last
table, which runs the command on a store written by hand and checks that a dry run
writes nothing.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pyrsistent import pvector

from libimage.adapters import cli
from libimage.adapters.atomic import encode_records
from libimage.adapters.cmd_rmi import error_text, exit_code, output_lines
from libimage.pure.errors import ErrorKind, Failure, wrap_unknown
from libimage.pure.plan import RemoveImageReport
from libimage.pure.snapshot import ImageID

A, B, C, D = (ImageID(c * 64) for c in "abcd")


def in_use(container: str) -> Failure:
    return Failure(
        ErrorKind.IMAGE_IN_USE,
        "bb:1",
        f"image used by {container}: image is in use by a container: "
        "consider listing external containers and force-removing image",
    )


def refusal() -> Failure:
    return Failure(
        ErrorKind.NEEDS_FORCE_BY_ID,
        A[:12],
        f'unable to delete image "{A}" by ID with more than one tag '
        "([localhost/foo:latest localhost/bar:latest]): please force removal",
    )


# -- POD-R-11: all Untagged lines first, then all Deleted lines ----------------------------


class TestOutputGrouping:
    """POD-R-11: podman 4.3.1 prints every ``Untagged:`` line of every report, then the
    ``Deleted:`` lines; a report that was not removed prints no ``Deleted:`` line."""

    def test_rmi_all_example(self) -> None:
        # The reports of POD-R-11's `rmi -a`: aa (2 names), child, a dangling image.
        reports = [
            RemoveImageReport(A, pvector(["localhost/aa:1", "localhost/aa:2"]), removed=True),
            RemoveImageReport(B, pvector(["localhost/child:latest"]), removed=True),
            RemoveImageReport(C, pvector(), removed=True),
        ]
        assert output_lines(reports) == [
            "Untagged: localhost/aa:1",
            "Untagged: localhost/aa:2",
            "Untagged: localhost/child:latest",
            f"Deleted: {A}",
            f"Deleted: {B}",
            f"Deleted: {C}",
        ]

    def test_parent_with_child_is_only_untagged(self) -> None:
        # POD-R-10: `rmi base` with a child prints only the Untagged line.
        reports = [RemoveImageReport(A, pvector(["localhost/base:latest"]), removed=False)]
        assert output_lines(reports) == ["Untagged: localhost/base:latest"]

    def test_pruned_parent_follows_the_child(self) -> None:
        # POD-R-9: `rmi child` pruning its untagged parent.
        reports = [
            RemoveImageReport(B, pvector(["localhost/child:latest"]), removed=True),
            RemoveImageReport(A, pvector(), removed=True),
        ]
        assert output_lines(reports) == [
            "Untagged: localhost/child:latest",
            f"Deleted: {B}",
            f"Deleted: {A}",
        ]

    def test_control_characters_in_names_are_escaped(self) -> None:
        reports = [RemoveImageReport(A, pvector(["localhost/a\x1b[31m:1"]), removed=False)]
        assert output_lines(reports) == ["Untagged: localhost/a\\x1b[31m:1"]


# -- the error forms (8.1, podman's JoinErrors) --------------------------------------------

ERROR_FORMS = {
    "none": ([], ""),
    "one (POD-R-4)": ([wrap_unknown("nonexistent")], "Error: nonexistent: image not known\n"),
    # POD-R-8b, byte for byte as podman 4.3.1 printed it (a tab before each "*").
    "two (POD-R-8b)": (
        [wrap_unknown("aa:2"), wrap_unknown("aa:2")],
        "Error: 2 errors occurred:\n\t* aa:2: image not known\n\t* aa:2: image not known\n",
    ),
    "a newline in a message stays on one line": (
        [wrap_unknown("a\nb")],
        "Error: a\\nb: image not known\n",
    ),
}


@pytest.mark.parametrize(("errors", "text"), ERROR_FORMS.values(), ids=ERROR_FORMS.keys())
def test_error_text(errors: list[Failure], text: str) -> None:
    assert error_text(errors) == text


# -- decision 13: exit codes ------------------------------------------------------------------

EXIT_CODES = {
    "no errors": ([], 0),
    "unknown (POD-R-4)": ([wrap_unknown("x")], 1),
    "two unknown (POD-R-8b)": ([wrap_unknown("x"), wrap_unknown("x")], 1),
    "layer unknown counts as not known": (
        [Failure(ErrorKind.LAYER_UNKNOWN, "x", "layer not known")],
        1,
    ),
    "in use (POD-R-12)": ([in_use("c" * 64)], 2),
    "unknown and refusal (POD-R-13)": ([wrap_unknown("x"), refusal()], 125),
    "in use and refusal (POD-R-13b)": ([in_use("c" * 64), refusal()], 2),
    "unknown, in use, refusal (POD-R-13c)": ([wrap_unknown("x"), in_use("c"), refusal()], 2),
    "refusal (POD-R-2)": ([refusal()], 125),
    "read-only (POD-R-16)": (
        [Failure(ErrorKind.READ_ONLY, "ro:1", f'cannot remove read-only image "{A}"')],
        125,
    ),
    "tag not known (POD-R-7)": (
        [Failure(ErrorKind.TAG_NOT_KNOWN, "x", "localhost/foo@sha256:0: tag not known")],
        125,
    ),
}


@pytest.mark.parametrize(("errors", "code"), EXIT_CODES.values(), ids=EXIT_CODES.keys())
def test_exit_code(errors: list[Failure], code: int) -> None:
    assert exit_code(errors) == code


# -- argument errors (POD-R-17, POD-R-18) -------------------------------------------------------


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


ARGUMENT_ERRORS = {
    "no names (POD-R-17)": (["rmi"], "Error: image name or ID must be specified\n"),
    "all with names (POD-R-18)": (
        ["rmi", "-a", "-f", "nonexistent"],
        "Error: when using the --all switch, you may not pass any images names or IDs\n",
    ),
    "filter with names": (
        ["rmi", "--filter", "dangling=true", "x"],
        "Error: when using --filter, you may not pass any images names or IDs\n",
    ),
}


@pytest.mark.parametrize(("argv", "stderr"), ARGUMENT_ERRORS.values(), ids=ARGUMENT_ERRORS.keys())
def test_argument_errors(tmp_path: Path, argv: list[str], stderr: str) -> None:
    # The store does not exist: argument errors come before the store is opened.
    code, out, err = run("--root", str(tmp_path / "none"), *argv)
    assert (code, out, err) == (125, "", stderr)


def test_unknown_option_is_exit_125_without_traceback(tmp_path: Path) -> None:
    code, out, err = run("--root", str(tmp_path), "rmi", "--no-such-option", "x")
    assert code == 125
    assert out == ""
    assert err.startswith("Error: ")
    assert "Traceback" not in err


def test_missing_store_is_one_error_line(tmp_path: Path) -> None:
    code, out, err = run("--root", str(tmp_path / "none"), "--runroot", str(tmp_path), "rmi", "x")
    assert code == 125
    assert out == ""
    assert err.count("\n") == 1
    assert str(tmp_path / "none") in err


# -- a store written by hand: the dry run changes nothing --------------------------------------


def _hand_made_store(tmp_path: Path) -> tuple[Path, Path, str]:
    """One image ``localhost/one:1`` (ID ``A``) on one vfs layer, with lock files."""
    root, run_root = tmp_path / "root", tmp_path / "run"
    layer = "e" * 64
    files: dict[str, list[dict[str, Any]]] = {
        "images": [
            {
                "id": A,
                "names": ["localhost/one:1"],
                "names-history": ["localhost/one:1"],
                "layer": layer,
                "created": "2026-01-02T03:04:05.5Z",
            }
        ],
        "layers": [{"id": layer, "created": "2026-01-02T03:04:05Z"}],
        "containers": [],
    }
    for kind, records in files.items():
        directory = root / f"vfs-{kind}"
        directory.mkdir(parents=True)
        (directory / f"{kind}.json").write_bytes(encode_records(kind, records))
        (directory / f"{kind}.lock").write_bytes(b"")
    (root / "vfs" / "dir" / layer).mkdir(parents=True)
    (root / "vfs" / "dir" / layer / "file").write_bytes(b"x")
    (run_root / "vfs-layers").mkdir(parents=True)
    return root, run_root, layer


def _tree(*roots: Path) -> dict[str, bytes | None]:
    state: dict[str, bytes | None] = {}
    for top in roots:
        for walked, _dirs, files in os.walk(top):
            state[walked] = None
            for name in files:
                state[os.path.join(walked, name)] = Path(walked, name).read_bytes()  # noqa: PTH118
    return state


def only_warnings(stderr: str) -> bool:
    """The image has no manifest: the seed warns about parents (RM-D3, RM-D4), no error."""
    return all(line.startswith("WARNING: ") for line in stderr.splitlines())


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    root, run_root, layer = _hand_made_store(tmp_path)
    before = _tree(root, run_root)
    flags = ["--root", str(root), "--runroot", str(run_root), "--storage-driver", "vfs"]
    code, out, err = run(*flags, "rmi", "--dry-run", "one:1")
    assert (code, out) == (0, f"Untagged: localhost/one:1\nDeleted: {A}\n")
    assert only_warnings(err)
    assert _tree(root, run_root) == before
    code, out, err = run(*flags, "rmi", "--dry-run", "--format", "json", "one:1")
    document = json.loads(out)
    assert code == 0
    assert only_warnings(err)
    assert document["dry_run"] is True
    assert document["applied"] is False
    assert [e["effect"] for e in document["effects"]] == ["untag", "delete-image", "delete-layer"]
    assert document["effects"][2]["layer"] == layer
    assert all(e["rule"] and e["why"] for e in document["effects"])
    assert document["reports"] == [
        {"id": A, "untagged": ["localhost/one:1"], "removed": True, "size": 0}
    ]
    assert _tree(root, run_root) == before
    # The real run prints the same lines and removes the image, its layer and its data.
    code, out, err = run(*flags, "rmi", "one:1")
    assert (code, out) == (0, f"Untagged: localhost/one:1\nDeleted: {A}\n")
    assert only_warnings(err)
    assert (root / "vfs-images" / "images.json").read_bytes() == b"[]"
    assert (root / "vfs-layers" / "layers.json").read_bytes() == b"[]"
    assert not (root / "vfs" / "dir" / layer).exists()


def test_json_lists_errors_with_their_kind(tmp_path: Path) -> None:
    root, run_root, _layer = _hand_made_store(tmp_path)
    flags = ["--root", str(root), "--runroot", str(run_root), "--storage-driver", "vfs"]
    code, out, err = run(*flags, "rmi", "--format", "json", "nonexistent")
    document = json.loads(out)
    assert code == 1
    assert err.endswith("Error: nonexistent: image not known\n")
    assert document["errors"] == [
        {
            "kind": "ErrImageUnknown",
            "subject": "nonexistent",
            "message": "nonexistent: image not known",
            "rule": document["errors"][0]["rule"],
        }
    ]
    assert document["exit_code"] == 1
    assert document["effects"] == []
