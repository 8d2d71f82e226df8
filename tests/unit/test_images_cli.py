"""``libimage images`` through the command line (POD-I-*, decision 14, LS-4, FL-P*).

Stores are written by the synthesiser (``bench.synth``), whose summary says what
every image is (names, parent, dangling, intermediate, size, labels): those are the
expected values. Messages are the ones the list/remove reference gives for podman.
"""

# Tables of cases read best one case per line.
# ruff: noqa: E501

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.synth import SynthSummary, synthesise
from libimage.adapters.cli import CommandError, run
from libimage.adapters.cmd_images import first_csv_record, split_filter_flags


@dataclass(frozen=True)
class Store:
    root: Path
    runroot: Path
    summary: SynthSummary

    def flags(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs"]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def libimage(store: Store, *args: str, semantics: str = "seed") -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    code = run([*store.flags(), "--semantics", semantics, "images", *args], stdout=out, stderr=err)
    return Outcome(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    base = tmp_path_factory.mktemp("synth")
    summary = synthesise(base / "root", 30, seed=5, runroot=base / "run")
    return Store(base / "root", base / "run", summary)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    base = tmp_path_factory.mktemp("empty")
    summary = synthesise(base / "root", 0, runroot=base / "run")
    return Store(base / "root", base / "run", summary)


def json_images(outcome: Outcome) -> list[dict[str, object]]:
    assert outcome.code == 0, outcome.stderr
    parsed = json.loads(outcome.stdout)
    assert isinstance(parsed, list)
    return parsed


# --------------------------------------------------------------------------- JSON


def test_json_reports_every_image_once(store: Store) -> None:
    """POD-I-4: with -a, one object per image with podman's facts (IP-2, IP-5, IP-13, LT-P2)."""
    listed = json_images(libimage(store, "-a", "--format", "json"))
    by_id = {str(entry["Id"]): entry for entry in listed}
    assert len(by_id) == len(listed) == len(store.summary.images)
    for made in store.summary.images:
        entry = by_id[made.id]
        assert entry.get("Names", []) == list(made.names)
        assert entry["ParentId"] == made.parent_id
        assert entry.get("Dangling", False) is made.dangling
        assert entry["Size"] == made.size
        assert entry["VirtualSize"] == made.size
        assert entry["SharedSize"] == 0
        assert entry["RepoTags"] is None
        assert entry.get("Digest") == made.digest
        labels = dict(made.labels)
        assert entry["Labels"] == (labels or entry["Labels"])


def test_json_container_counts(store: Store) -> None:
    """IP-9: Containers counts the storage containers using each image."""
    listed = json_images(libimage(store, "-a", "--format", "json"))
    counts = {str(entry["Id"]): entry["Containers"] for entry in listed}
    expected: dict[str, int] = {}
    for made in store.summary.containers:
        expected[made.image_id] = expected.get(made.image_id, 0) + 1
    for image_id, count in counts.items():
        assert count == expected.get(image_id, 0)


def test_json_is_newest_first(store: Store) -> None:
    """POD-I-1: sorted by the created second, newest first."""
    created = [entry["Created"] for entry in json_images(libimage(store, "-a", "--format", "json"))]
    assert created == sorted(created, reverse=True)  # type: ignore[type-var]


def test_json_wins_over_quiet(store: Store) -> None:
    """podman: --format json takes precedence over -q."""
    assert json_images(libimage(store, "-q", "--format", "json"))


def test_without_all_intermediate_images_are_hidden(store: Store) -> None:
    """Decision 14, POD-I-2: without -a the CLI adds intermediate=false; dangling ones stay."""
    shown = {str(e["Id"]) for e in json_images(libimage(store, "--format", "json"))}
    intermediate = {made.id for made in store.summary.images if made.intermediate}
    dangling = {made.id for made in store.summary.images if made.dangling}
    assert intermediate
    assert not shown & intermediate
    assert dangling <= shown
    assert len(shown) == len(store.summary.images) - len(intermediate)


# --------------------------------------------------------------------------- decision 14


@pytest.mark.parametrize(
    ("semantics", "message"),
    [
        ("seed", 'Error: specifying "intermediate" filter more then once is not supported\n'),
        (
            "podman-4.3",
            'Error: specifying "intermediate" filter more than once with different values '
            "is not supported\n",
        ),
    ],
)
def test_intermediate_true_needs_all(store: Store, semantics: str, message: str) -> None:
    """Decision 14: `images --filter intermediate=true` without -a is the repeated-filter error."""
    outcome = libimage(store, "--filter", "intermediate=true", semantics=semantics)
    assert outcome.code == 125
    assert outcome.stderr == message
    assert outcome.stdout == ""
    listed = json_images(
        libimage(
            store, "-a", "--filter", "intermediate=true", "--format", "json", semantics=semantics
        )
    )
    assert {str(e["Id"]) for e in listed} == {m.id for m in store.summary.images if m.intermediate}


def test_intermediate_false_twice_in_podman_profile(store: Store) -> None:
    """POD-F-10 with decision 14: repeating the CLI's own value is allowed in podman 4.3.1."""
    seed = libimage(store, "--filter", "intermediate=false")
    assert seed.code == 125
    podman = libimage(store, "--filter", "intermediate=false", "-q", semantics="podman-4.3")
    assert podman.code == 0


# --------------------------------------------------------------------------- filters


def test_filter_keeps_the_expected_images(store: Store) -> None:
    """FL-T5, FL-T11: dangling and reference filters through the CLI."""
    dangling = json_images(libimage(store, "--filter", "dangling=true", "--format", "json"))
    assert {str(e["Id"]) for e in dangling} == {m.id for m in store.summary.images if m.dangling}
    pattern = store.summary.reference_pattern
    matched = json_images(
        libimage(store, "-a", "--filter", f"reference={pattern}", "--format", "json")
    )
    assert {str(e["Id"]) for e in matched} == set(store.summary.reference_matches)


def test_comma_separated_filters_are_and(store: Store) -> None:
    """podman's --filter is a string slice: `a,b` is two filters (FL-P5: AND across keys)."""
    both = libimage(
        store, "-a", "-q", "--filter", f"reference={store.summary.reference_pattern},dangling=true"
    )
    assert both.code == 0
    assert both.stdout == ""  # a dangling image has no name to match


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["foo=bar"], 'Error: unsupported image filter "foo"\n'),
        (["label"], 'Error: invalid image filter "label": must be in the format "filter=value"\n'),
        (["since=nope"], 'Error: could not find local image for filter filter "since"="nope": nope: image not known\n'),
        (["until=notatime"], 'Error: failed to parse value as time or duration: "notatime"\n'),
        (['label=a"b'], 'Error: invalid argument "label=a\\"b" for "-f, --filter" flag: parse error on line 1, column 8: bare " in non-quoted-field\n'),
    ],
    ids=["unsupported", "format", "lookup", "until", "csv"],
)  # fmt: skip
def test_bad_filters_exit_125(store: Store, filters: list[str], message: str) -> None:
    """POD-F-12: a bad filter exits 125 with one line naming it."""
    args = [arg for value in filters for arg in ("--filter", value)]
    outcome = libimage(store, *args)
    assert (outcome.code, outcome.stderr, outcome.stdout) == (125, message, "")


def test_invalid_filter_on_an_empty_store(empty_store: Store) -> None:
    """LS-4, POD-F-16: any invalid filter on an empty store: no error, an empty table."""
    outcome = libimage(empty_store, "--filter", "foo=bar")
    assert outcome.code == 0
    assert outcome.stdout == "REPOSITORY  TAG         IMAGE ID    CREATED     SIZE\n"
    assert json_images(libimage(empty_store, "--format", "json", "--filter", "foo=bar")) == []


def test_missing_store_exits_125(tmp_path: Path) -> None:
    """Issue #2: an unreadable store is exit 125 with a message naming it, no traceback."""
    out, err = io.StringIO(), io.StringIO()
    missing = tmp_path / "nowhere"
    code = run(
        [
            "--root",
            str(missing),
            "--runroot",
            str(tmp_path / "run"),
            "--storage-driver",
            "vfs",
            "images",
        ],
        stdout=out,
        stderr=err,
    )
    assert code == 125
    assert str(missing) in err.getvalue()
    assert err.getvalue().startswith("Error: ")
    assert err.getvalue().count("\n") == 1


# --------------------------------------------------------------------------- table and -q


def test_table_rows_per_name(store: Store) -> None:
    """POD-I-1: header, one row per tagged name, <none> for unnamed images, 12-char IDs."""
    outcome = libimage(store, "-a")
    assert outcome.code == 0
    lines = outcome.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    expected_rows = 0
    for made in store.summary.images:
        tagged = [n for n in made.names if "@" not in n]
        expected_rows += len(tagged) or 1
    assert len(lines) - 1 == expected_rows
    ids = {line.split()[2] for line in lines[1:]}
    assert ids == {made.id[:12] for made in store.summary.images}


def test_quiet_dedupes_ids(store: Store) -> None:
    """podman writeID: each ID once; --no-trunc prints sha256:<ID>."""
    quiet = libimage(store, "-a", "-q").stdout.splitlines()
    assert sorted(quiet) == sorted(made.id[:12] for made in store.summary.images)
    full = libimage(store, "-a", "-q", "--no-trunc").stdout.splitlines()
    assert sorted(full) == sorted("sha256:" + made.id for made in store.summary.images)


def test_no_trunc_table(store: Store) -> None:
    """POD-I-1: --no-trunc shows sha256:<full ID> in the IMAGE ID column."""
    lines = libimage(store, "-a", "--no-trunc").stdout.splitlines()[1:]
    assert {line.split()[2] for line in lines} == {"sha256:" + m.id for m in store.summary.images}


def test_control_characters_never_reach_the_terminal(store: Store, tmp_path: Path) -> None:
    """POD-I-1, decision 18: a damaged name is skipped with an escaped warning; output is clean."""
    copy = tmp_path / "root"
    shutil.copytree(store.root, copy, symlinks=True)
    images_json = copy / "vfs-images" / "images.json"
    records = json.loads(images_json.read_text())
    records[0]["names"] = ["localhost/evil\x1b[31m:1", *records[0].get("names", [])]
    images_json.write_text(json.dumps(records))
    damaged = Store(copy, tmp_path / "run", store.summary)
    outcome = libimage(damaged, "-a")
    assert outcome.code == 0
    assert "\x1b" not in outcome.stdout
    assert "\x1b" not in outcome.stderr
    assert "localhost/evil" in outcome.stderr
    assert outcome.stderr.startswith("WARNING: ")


# --------------------------------------------------------------------------- --filter values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a=1", ["a=1"]),
        ("a=1,b=2", ["a=1", "b=2"]),
        ('"label=a,b"', ["label=a,b"]),
        ('"a""b"', ['a"b']),
        ("a=1,", ["a=1", ""]),
        (" a", [" a"]),
        ("label=x\nreference=y", ["label=x"]),
        ("\nlabel=x", ["label=x"]),
        ('"a\nb",c', ["a\nb", "c"]),
        ("a\r\n", ["a"]),
    ],
)
def test_first_csv_record(value: str, expected: list[str]) -> None:
    """pflag's string slice reads one CSV record (observed on podman 4.3.1)."""
    assert first_csv_record(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('label=a"b', 'parse error on line 1, column 8: bare " in non-quoted-field'),
        ('é"', 'parse error on line 1, column 3: bare " in non-quoted-field'),
        ('"ab"c', 'parse error on line 1, column 4: extraneous or missing " in quoted-field'),
        ('"abc', 'parse error on line 1, column 5: extraneous or missing " in quoted-field'),
        ('a,"b"x', 'parse error on line 1, column 5: extraneous or missing " in quoted-field'),
        ('"a\nb"x', 'record on line 1; parse error on line 2, column 2: extraneous or missing " in quoted-field'),
    ],
)  # fmt: skip
def test_csv_errors(value: str, message: str) -> None:
    """Go encoding/csv errors, with 1-based byte columns as podman 4.3.1 printed them."""
    with pytest.raises(CommandError) as raised:
        split_filter_flags([value])
    assert str(raised.value).endswith(message)


def test_csv_without_a_record() -> None:
    """Go encoding/csv: only empty lines is EOF (podman: `invalid argument "\\n" ...: EOF`)."""
    with pytest.raises(CommandError) as raised:
        split_filter_flags(["\n"])
    assert str(raised.value) == 'invalid argument "\\n" for "-f, --filter" flag: EOF'


def test_empty_filter_value_adds_nothing() -> None:
    """pflag: an empty --filter value adds no filter."""
    assert split_filter_flags(["", "id=x"]) == ["id=x"]
