"""The oracle harness without podman (issue #6 item 4).

The command protocol (:mod:`libimage.spec.protocol`): description files and their
errors, argument templates, exit-code classes and output parsers. The known-difference
list (:mod:`libimage.spec.oracle`): its format and its matching, which explains exactly
the divergences an entry names. :func:`~libimage.spec.oracle.compare` on each kind of
difference. End to end, two "other implementations" with differences known by
construction: libimage in the ``seed`` profile against ours in ``podman-4.3`` (decision
16: ``rmi -f`` of an unknown name; DIV-2: ``sha256:`` and a short ID), and the example
implementation ``examples/oracle/forgetful-exists.json`` that never looks an ID prefix
up (ST-2). A divergence is shrunk, saved as a case and replayed. The command's exit codes
(0, 1 and 125 with a one-line ``Error:`` naming the input).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from libimage.adapters import cli
from libimage.pure.semantics import PROFILES
from libimage.spec import oracle
from libimage.spec.cases import ImageSpec, build_snapshot, load
from libimage.spec.oracle import (
    Context,
    Difference,
    KnownDifference,
    KnownListError,
    Observation,
    StepResult,
    StoreView,
    Workload,
    compare,
    compare_stores,
    execute,
    load_known,
    parse_known,
)
from libimage.spec.protocol import (
    BUILT_IN,
    PODMAN,
    PODMAN_DOCUMENT,
    Completed,
    ProtocolError,
    Template,
    Variables,
    expand,
    libimage_document,
    libimage_protocol,
    load_protocol,
    parse_id,
    parse_images_json,
    parse_lines,
    parse_protocol,
    protocol_named,
    run_command,
)

CHECKOUT = Path(__file__).resolve().parents[2]
EXAMPLES = CHECKOUT / "examples" / "oracle"
FORGETFUL = EXAMPLES / "forgetful-exists.json"
SEED_SIDE = EXAMPLES / "libimage-seed.json"
ID_A = "a" * 64
ID_B = "b" * 64
SEARCH_SEED = 2
"""A fixed seed keeps the end-to-end searches repeatable (any seed finds a divergence)."""


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(PODMAN_DOCUMENT))
    document.update(changes)
    return document


def _commands(**changes: Any) -> dict[str, Any]:
    commands = dict(_document()["commands"])
    commands.update(changes)
    return commands


# --------------------------------------------------------------------------- protocol files


def test_builtin_and_example_descriptions_load() -> None:
    assert protocol_named("podman") is PODMAN
    assert set(BUILT_IN) == {"podman"}
    assert libimage_protocol().name == "libimage"
    forgetful = load_protocol(FORGETFUL)
    assert forgetful.name == "forgetful-exists"
    assert forgetful.here == str(EXAMPLES)  # {here} is the description's folder
    assert forgetful.timeout == 60.0
    assert load_protocol(SEED_SIDE).store == "containers-storage"


def _without(field: str) -> dict[str, Any]:
    document = _document()
    del document[field]
    return document


def _commands_without(operation: str) -> dict[str, Any]:
    commands = _commands()
    del commands[operation]
    return _document(commands=commands)


@pytest.mark.parametrize(
    ("document", "names"),
    [
        pytest.param([], "a description is a JSON object", id="not-an-object"),
        pytest.param(_without("name"), "'name'", id="no-name"),
        pytest.param(_document(name=""), "'name'", id="empty-name"),
        pytest.param(_document(colour="red"), "unknown fields ['colour']", id="unknown-field"),
        pytest.param(_document(store="sqlite"), "'store'", id="bad-store"),
        pytest.param(_without("commands"), "'commands'", id="no-commands"),
        pytest.param(_commands_without("read"), "lacks ['read']", id="missing-read"),
        pytest.param(
            _document(commands=_commands(tag=["tag"])), "unknown commands ['tag']", id="extra-op"
        ),
        pytest.param(
            _document(commands=_commands(exists={"args": []})), "commands.exists", id="no-argv"
        ),
        pytest.param(
            _document(commands=_commands(lookup={"argv": [], "output": "xml"})),
            "commands.lookup.output",
            id="bad-output",
        ),
        pytest.param(
            _document(commands=_commands(rmi={"argv": [], "exit_codes": {"one": "ok"}})),
            "commands.rmi.exit_codes",
            id="bad-exit-codes",
        ),
        pytest.param(
            _document(commands=_commands(rmi={"argv": "rmi"})),
            "commands.rmi.argv",
            id="argv-not-a-list",
        ),
        pytest.param(
            _document(commands=_commands(rmi=["rmi", {"if": "quiet", "args": ["-q"]}])),
            "commands.rmi.argv[1]: 'if'",
            id="unknown-flag",
        ),
        pytest.param(
            _document(commands=_commands(rmi=["rmi", {"for": "ids", "args": ["{item}"]}])),
            "commands.rmi.argv[1]: 'for'",
            id="unknown-list",
        ),
        pytest.param(
            _document(
                commands=_commands(
                    rmi=["rmi", {"for": "names", "args": [{"if": "force", "args": ["-f"]}]}]
                )
            ),
            "nested",
            id="nested-template",
        ),
        pytest.param(
            _document(commands=_commands(rmi=["rmi", {"if": "force"}])),
            "commands.rmi.argv[1]",
            id="if-without-args",
        ),
        pytest.param(_document(environment={"A": 1}), "'environment'", id="environment"),
        pytest.param(_document(timeout=0), "'timeout'", id="zero-timeout"),
        pytest.param(_document(timeout=True), "'timeout'", id="boolean-timeout"),
    ],
)
def test_invalid_description_names_the_field(document: Any, names: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_protocol(document, "my.json")
    message = str(raised.value)
    assert message.startswith("my.json: ")
    assert names in message


def test_description_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ProtocolError, match=r"missing\.json: cannot read"):
        load_protocol(missing)
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"name": ', encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"malformed\.json: not JSON"):
        load_protocol(malformed)
    with pytest.raises(ProtocolError, match=r"^docker: neither a built-in implementation"):
        protocol_named("docker")


def test_templates_expand_flags_lists_and_placeholders() -> None:
    templates: list[Template] = [
        "podman",
        "--root",
        "{root}",
        {"for": "image_stores", "args": ["--storage-opt", "vfs.imagestore={item}"]},
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        {"if": "force", "args": ["-f"]},
        {"for": "names", "args": ["{item}"]},
        "{unknown}",
    ]
    variables = Variables(
        {"root": "/r"}, {"image_stores": ["/ro1", "/ro2"], "names": ["x", "y"]}, {"force": False}
    )
    assert expand(templates, variables) == [
        "podman",
        "--root",
        "/r",
        "--storage-opt",
        "vfs.imagestore=/ro1",
        "--storage-opt",
        "vfs.imagestore=/ro2",
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "x",
        "y",
        "{unknown}",
    ]


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        # Decision 13: podman's rmi exit codes.
        ("rmi", 0, "ok"),
        ("rmi", 1, "unknown"),
        ("rmi", 2, "in-use"),
        ("rmi", 125, "error"),
        ("exists", 0, "exists"),
        ("exists", 1, "missing"),
        ("exists", 125, "error"),
        # podman image inspect exits 125 for an unknown image and for other errors.
        ("lookup", 0, "found"),
        ("lookup", 125, "not-found"),
        ("images", 0, "ok"),
        ("images", 125, "error"),
    ],
)
def test_default_exit_codes_follow_podman(operation: str, code: int, status: str) -> None:
    assert PODMAN.commands[operation].status(code) == status


def test_exit_codes_without_a_catch_all_name_the_code() -> None:
    document = _document(commands=_commands(exists={"argv": [], "exit_codes": {"0": "exists"}}))
    command = parse_protocol(document).commands["exists"]
    assert command.status(0) == "exists"
    assert command.status(3) == "exit-3"


def test_images_json_counts_an_image_once_and_drops_sha256() -> None:
    # podman 4.3.1 prints an image once per name (images --format json).
    stdout = json.dumps(
        [
            {"Id": ID_B, "Names": ["localhost/b:1"]},
            {"Id": f"sha256:{ID_A}", "Names": ["localhost/a:1", "localhost/a:2"]},
            {"Id": f"sha256:{ID_A}", "Names": ["localhost/a:1", "localhost/a:2"]},
            {"Id": "c" * 64, "Names": None},
        ]
    )
    assert parse_images_json(stdout) == (
        (ID_A, ("localhost/a:1", "localhost/a:2")),
        (ID_B, ("localhost/b:1",)),
        ("c" * 64, ()),
    )
    assert parse_images_json("null") == ()
    assert parse_images_json("") == ()
    for bad in ('{"Id": "a"}', "[1]", '[{"Names": []}]', '[{"Id": "a", "Names": "x"}]'):
        with pytest.raises(ValueError):  # noqa: PT011 - any parse error is a ValueError
            parse_images_json(bad)


def test_output_parsers() -> None:
    assert parse_id(f"warning\nsha256:{ID_A}\n\n") == ID_A
    assert parse_id("\n") is None
    stdout = f"Untagged: localhost/a:1\nnoise\nDeleted: sha256:{ID_A}\nDeleted: {ID_B}\n"
    assert parse_lines(stdout) == (
        "Untagged: localhost/a:1",
        f"Deleted: {ID_A}",
        f"Deleted: {ID_B}",
    )


def test_a_command_that_cannot_start_is_a_result() -> None:
    document = _document(prefix=["/nonexistent/implementation"])
    protocol = parse_protocol(document)
    done = run_command(protocol, "exists", Variables({"name": "foo"}))
    assert isinstance(done, Completed)
    assert done.exit_code == 127
    assert "/nonexistent/implementation" in done.stderr


# --------------------------------------------------------------------------- comparing


def _observation(op: str, status: str, code: int, **fields: Any) -> Observation:
    return Observation(op, status, code, **fields)


@pytest.mark.parametrize(
    ("ours", "theirs", "request_", "aspects"),
    [
        pytest.param(
            _observation("exists", "exists", 0),
            _observation("exists", "missing", 1),
            {"op": "exists", "name": "foo"},
            ["status"],
            id="status",
        ),
        pytest.param(
            _observation("lookup", "found", 0, found=ID_A),
            _observation("lookup", "found", 0, found=ID_B),
            {"op": "lookup", "name": "foo"},
            ["found"],
            id="found",
        ),
        pytest.param(
            _observation("lookup", "found", 0, found=ID_A),
            _observation("lookup", "not-found", 125),
            {"op": "lookup", "name": "foo"},
            ["status", "found"],
            id="found-and-status",
        ),
        pytest.param(
            _observation("images", "ok", 0, listed=((ID_A, ("localhost/a:1",)),)),
            _observation("images", "ok", 0, listed=((ID_A, ()),)),
            {"op": "images", "filters": []},
            ["listed"],
            id="listed-names",
        ),
        pytest.param(
            _observation("images", "ok", 0, listed=((ID_A, ()),)),
            _observation("images", "ok", 0, listed=((ID_A, ()), (ID_B, ()))),
            {"op": "images", "filters": []},
            ["listed"],
            id="listed-ids",
        ),
        pytest.param(
            _observation("images", "ok", 0, listed=((ID_A, ("localhost/a:1",)),)),
            _observation("images", "ok", 0, listed=((ID_A, None),)),
            {"op": "images", "filters": []},
            [],
            id="names-unknown-on-one-side",
        ),
        pytest.param(
            _observation("images", "ok", 0, problem="cannot parse the listing"),
            _observation("images", "ok", 0, listed=()),
            {"op": "images", "filters": []},
            ["output (ours)"],
            id="unparseable-output",
        ),
        pytest.param(
            _observation("rmi", "ok", 0, lines=(f"Deleted: {ID_A}", f"Deleted: {ID_B}")),
            _observation("rmi", "ok", 0, lines=(f"Deleted: {ID_B}", f"Deleted: {ID_A}")),
            {"op": "rmi", "names": ["a", "b"]},
            ["lines"],
            id="named-removal-order",
        ),
        pytest.param(
            # RM-4: rmi -a prints in its listing's order, compared as multisets.
            _observation("rmi", "ok", 0, lines=(f"Deleted: {ID_A}", f"Deleted: {ID_B}")),
            _observation("rmi", "ok", 0, lines=(f"Deleted: {ID_B}", f"Deleted: {ID_A}")),
            {"op": "rmi", "names": []},
            [],
            id="rmi-all-order",
        ),
        pytest.param(
            _observation("rmi", "in-use", 2, lines=()),
            _observation("rmi", "ok", 0, lines=(f"Deleted: {ID_A}",)),
            {"op": "rmi", "names": ["a"]},
            ["status", "lines"],
            id="rmi-status-and-lines",
        ),
    ],
)
def test_compare_finds_each_kind_of_difference(
    ours: Observation, theirs: Observation, request_: Mapping[str, Any], aspects: list[str]
) -> None:
    assert [d.aspect for d in compare(ours, theirs, request_)] == aspects


def test_compare_stores() -> None:
    one = StoreView(images=((ID_A, ("localhost/a:1",)),), history=((ID_A, ("localhost/a:1",)),))
    assert compare_stores(one, one) == []
    renamed = StoreView(images=((ID_A, ()),), history=((ID_A, ("localhost/a:1",)),))
    assert [d.aspect for d in compare_stores(one, renamed)] == ["store"]
    history = StoreView(images=one.images, history=((ID_A, ()),))
    assert [d.aspect for d in compare_stores(one, history)] == ["store history"]
    # What one side cannot say (not read from disk) is not compared.
    assert compare_stores(one, StoreView(images=one.images)) == []
    failed = StoreView(problem="read exited 125: boom")
    assert compare_stores(one, failed) == [Difference("store (read)", "", "read exited 125: boom")]


# --------------------------------------------------------------------------- known differences


def _context(
    differences: tuple[Difference, ...],
    request: Mapping[str, Any],
    *,
    names: tuple[str, ...] = ("localhost/a:1",),
    theirs_store: StoreView | None = None,
    ours_store: StoreView | None = None,
    rerun: Any = None,
) -> Context:
    workload = Workload((ImageSpec("A", names),), requests=(dict(request),))
    snapshot, values = build_snapshot(workload.case())
    filled = values.fill_all(dict(request))
    step = StepResult(
        -1 if request.get("op") == "read" else 0,
        dict(request),
        filled,
        _observation("lookup", "found", 0, found=ID_A),
        _observation("lookup", "found", 0, found=ID_B),
        ours_store,
        theirs_store,
        differences,
    )
    return Context(workload, values, snapshot, step, (), rerun or (lambda _profile: (None, None)))


SHA_LOOKUP = KnownDifference(
    id="T-1",
    title="t",
    reason="r",
    rules=(),
    semantics=("podman-4.3",),
    ops=("lookup",),
    aspects=("found",),
    request={"name": "sha256:.*"},
)


@pytest.mark.parametrize(
    ("differences", "request_", "semantics", "explained"),
    [
        pytest.param(
            (Difference("found", ID_A, ID_B),),
            {"op": "lookup", "name": "sha256:{A.id4}"},
            "podman-4.3",
            True,
            id="exactly-what-it-names",
        ),
        pytest.param(
            (Difference("found", ID_A, ID_B), Difference("status", "a", "b")),
            {"op": "lookup", "name": "sha256:{A.id4}"},
            "podman-4.3",
            False,
            id="one-more-aspect",
        ),
        pytest.param(
            (Difference("found", ID_A, ID_B),),
            {"op": "lookup", "name": "{A.id4}"},
            "podman-4.3",
            False,
            id="pattern-not-matched",
        ),
        pytest.param(
            (Difference("found", ID_A, ID_B),),
            {"op": "exists", "name": "sha256:{A.id4}"},
            "podman-4.3",
            False,
            id="other-operation",
        ),
        pytest.param(
            (Difference("found", ID_A, ID_B),),
            {"op": "lookup", "name": "sha256:{A.id4}"},
            "seed",
            False,
            id="other-profile",
        ),
    ],
)
def test_an_entry_explains_exactly_what_it_names(
    differences: tuple[Difference, ...],
    request_: Mapping[str, Any],
    semantics: str,
    explained: bool,
) -> None:
    assert SHA_LOOKUP.explains(_context(differences, request_), semantics) is explained


def test_request_patterns_match_some_element_of_a_list() -> None:
    entry = KnownDifference("T-2", "t", "r", (), (), ("rmi",), ("*",), {"names": "nothere"})
    differences = (Difference("status", "a", "b"),)
    assert entry.explains(_context(differences, {"op": "rmi", "names": ["x", "nothere"]}), "seed")
    assert not entry.explains(_context(differences, {"op": "rmi", "names": ["x"]}), "seed")
    forced = KnownDifference("T-3", "t", "r", (), (), ("rmi",), ("*",), {"force": "true"})
    assert forced.explains(_context(differences, {"op": "rmi", "names": [], "force": True}), "")
    assert not forced.explains(_context(differences, {"op": "rmi", "names": []}), "")


def _known_entry(known_id: str) -> KnownDifference:
    return next(entry for entry in load_known() if entry.id == known_id)


def test_kpd1_needs_an_unparseable_stored_name_and_only_their_read_failing() -> None:
    kpd1 = _known_entry("KPD-1")
    failed = StoreView(problem="read exited 125: invalid reference format")
    fine = StoreView(images=((ID_A, ()),))
    difference = (Difference("store (read)", "", failed.problem),)
    read = {"op": "read"}
    bad = ("localhost/Bad:1",)  # upper case: not a reference (decision 18)
    assert kpd1.explains(
        _context(difference, read, names=bad, theirs_store=failed, ours_store=fine), "podman-4.3"
    )
    assert not kpd1.explains(
        _context(difference, read, theirs_store=failed, ours_store=fine), "podman-4.3"
    ), "every stored name parses"
    assert not kpd1.explains(
        _context(difference, read, names=bad, theirs_store=failed, ours_store=failed), "seed"
    ), "our side failed as well"
    store = (Difference("store", [], []),)
    assert not kpd1.explains(
        _context(store, read, names=bad, theirs_store=failed, ours_store=fine), "podman-4.3"
    ), "another aspect"


def test_kpd2_holds_only_when_the_podman_profile_does_what_they_did() -> None:
    kpd2 = _known_entry("KPD-2")
    differences = (Difference("found", ID_A, ID_B),)
    request = {"op": "lookup", "name": "foo"}
    like_theirs = _observation("lookup", "found", 0, found=ID_B)
    unlike = _observation("lookup", "found", 0, found=ID_A)
    asked: list[str] = []

    def rerun(observation: Observation) -> Any:
        def again(profile: str) -> tuple[Observation, None]:
            asked.append(profile)
            return observation, None

        return again

    assert kpd2.explains(_context(differences, request, rerun=rerun(like_theirs)), "seed")
    assert asked == ["podman-4.3"]
    assert not kpd2.explains(_context(differences, request, rerun=rerun(unlike)), "seed")
    # Decision 1: in the podman-4.3 profile there is no profile left to blame.
    assert not kpd2.explains(_context(differences, request, rerun=rerun(like_theirs)), "podman-4.3")


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "X-1",
        "title": "t",
        "reason": "r",
        "match": {"ops": ["lookup"], "aspects": ["found"]},
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("document", "names"),
    [
        pytest.param({}, "'differences' list", id="no-list"),
        pytest.param({"differences": [1]}, "differences[0]: an entry is an object", id="entry"),
        pytest.param({"differences": [_entry(reason="")]}, "'reason'", id="no-reason"),
        pytest.param({"differences": [_entry(id=None)]}, "'id'", id="no-id"),
        pytest.param({"differences": [_entry(match=None)]}, "'match'", id="no-match"),
        pytest.param(
            {"differences": [_entry(match={"ops": ["lookup"], "aspects": []})]},
            "'ops' and 'aspects'",
            id="no-aspects",
        ),
        pytest.param(
            {"differences": [_entry(match={"ops": ["x"], "aspects": ["y"], "predicate": "p"})]},
            "unknown predicate 'p'",
            id="predicate",
        ),
        pytest.param(
            {
                "differences": [
                    _entry(match={"ops": ["x"], "aspects": ["y"], "request": {"n": "("}})
                ]
            },
            "bad pattern",
            id="pattern",
        ),
        pytest.param({"differences": [_entry(), _entry()]}, "not unique", id="duplicate-ids"),
    ],
)
def test_invalid_known_list_names_the_entry(document: Any, names: str) -> None:
    with pytest.raises(KnownListError) as raised:
        parse_known(document, "known.json")
    assert str(raised.value).startswith("known.json")
    assert names in str(raised.value)


def test_known_list_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(KnownListError, match=r"nothing\.json: cannot read"):
        load_known(tmp_path / "nothing.json")
    (tmp_path / "bad.json").write_text("[", encoding="utf-8")
    with pytest.raises(KnownListError, match=r"bad\.json: not JSON"):
        load_known(tmp_path / "bad.json")


# --------------------------------------------------------------------------- end to end


def test_the_forgetful_example_diverges_on_id_prefixes_only() -> None:
    # examples/oracle/forgetful_exists.py answers "missing" for any hex argument
    # shorter than a full ID (its planted bug, ST-2); a full ID still works.
    theirs = load_protocol(FORGETFUL)
    requests = (
        {"op": "exists", "name": "{A}"},
        {"op": "exists", "name": "localhost/foo:latest"},
        {"op": "exists", "name": "{A.id12}"},
    )
    workload = Workload((ImageSpec("A", ("localhost/foo:latest",)),), requests=requests)
    execution = execute(workload, libimage_protocol(), theirs, semantics="podman-4.3")
    divergence = execution.unexplained
    assert divergence is not None
    assert divergence.step.index == 2
    assert divergence.step.differences == (
        Difference("status", "exists (exit 0)", "missing (exit 1)"),
    )
    assert len(execution.divergences) == 1


@pytest.mark.parametrize(
    ("images", "request_", "ours", "theirs"),
    [
        # Decision 16: podman-4.3's rmi -f ignores an unknown name; the seed's exits 1.
        pytest.param((), {"op": "rmi", "names": ["nothere"], "force": True}, 0, 1, id="dec-16"),
        # DIV-2 / decision 17: sha256: and a short ID is an invalid format in podman-4.3.
        pytest.param(
            (ImageSpec("A", ("localhost/foo:latest",)),),
            {"op": "lookup", "name": "sha256:{A.id12}"},
            125,
            0,
            id="DIV-2",
        ),
    ],
)
def test_the_seed_profile_differs_where_the_references_say(
    images: tuple[ImageSpec, ...], request_: dict[str, Any], ours: int, theirs: int
) -> None:
    workload = Workload(images, requests=(request_,))
    their_side = load_protocol(SEED_SIDE)
    execution = execute(workload, libimage_protocol(), their_side, semantics="podman-4.3")
    divergence = execution.unexplained
    assert divergence is not None
    assert divergence.step.ours is not None
    assert divergence.step.theirs is not None
    assert (divergence.step.ours.exit_code, divergence.step.theirs.exit_code) == (ours, theirs)
    # The same request with the same profile on both sides agrees.
    same = execute(workload, libimage_protocol(), their_side, semantics="seed")
    assert same.divergences == ()


def test_a_divergence_is_shrunk_saved_and_replayed(tmp_path: Path) -> None:
    theirs = load_protocol(SEED_SIDE)
    run = oracle.run_oracle(
        theirs,
        semantics="podman-4.3",
        examples=60,
        seed=SEARCH_SEED,
        max_seconds=120,
        save_dir=tmp_path,
        max_images=2,
        max_steps=2,
    )
    assert run.error == ""
    failure = run.failure
    assert failure is not None, "the seed and podman-4.3 profiles differ (decision 1)"
    # Shrunk: one request is enough for every difference between the profiles.
    assert len(failure.workload.requests) == 1
    assert run.shrink_runs > 0
    # A profile switch, as KPD-2 judges it: our side in the seed profile does what they did.
    observation, _ = oracle.rerun_ours(failure.workload, libimage_protocol(), "seed", 0)
    assert observation is not None
    assert failure.step.theirs is not None
    assert compare(observation, failure.step.theirs, failure.step.filled) == []
    # Saved as a case, which loads and replays to the same divergence.
    assert run.saved is not None
    assert run.saved.parent == tmp_path
    case = load(run.saved)
    assert [dict(step.request) for step in case.steps] == [dict(failure.step.request)]
    assert case.profiles == ("podman-4.3",)
    replayed = oracle.replay(run.saved, theirs, semantics="podman-4.3")
    again = replayed.unexplained
    assert again is not None
    assert again.step.differences == failure.step.differences


def test_seed_against_podman_profile_is_known_through_kpd2() -> None:
    # Ours in the seed profile, theirs libimage in podman-4.3: every divergence is one
    # of the profile's switches, which KPD-2 explains (decision 1).
    document = libimage_document()
    assert document["prefix"][-2:] == ["--semantics", "{semantics}"]
    document["prefix"][-1] = "podman-4.3"
    their_side = parse_protocol(document)
    run = oracle.run_oracle(
        their_side,
        semantics="seed",
        examples=10,
        seed=SEARCH_SEED,
        max_seconds=120,
        known=load_known(),
        max_images=2,
        max_steps=2,
    )
    assert run.error == ""
    assert run.failure is None
    assert set(run.known) <= {"KPD-2"}


def test_the_time_bound_stops_the_search() -> None:
    run = oracle.run_oracle(
        load_protocol(SEED_SIDE), semantics="podman-4.3", examples=20, seed=1, max_seconds=1e-9
    )
    assert run.out_of_time
    assert run.examples == 0
    assert run.ok


# --------------------------------------------------------------------------- the command


def _command(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_command_exits_0_without_divergence(tmp_path: Path) -> None:
    code, out, err = _command(
        "--semantics", "seed", "oracle", "--against", str(SEED_SIDE), "--examples", "3",
        "--seed", "1", "--save-dir", str(tmp_path),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "no divergence"
    assert list(tmp_path.iterdir()) == []


def test_command_exits_1_saves_and_replays(tmp_path: Path) -> None:
    # --semantics after oracle, as the issue asks.
    code, out, _ = _command(
        "oracle", "--semantics", "podman-4.3", "--against", str(SEED_SIDE), "--examples", "60",
        "--seed", str(SEARCH_SEED), "--max-images", "2", "--max-steps", "2",
        "--save-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 1
    assert "divergence not on the known list" in out
    (saved,) = tmp_path.iterdir()
    assert f"saved: {saved}" in out
    replay_line = next(line for line in out.splitlines() if line.startswith("replay: "))
    assert replay_line.endswith(f"--replay {saved}")
    code, out, _ = _command(*replay_line.removeprefix("replay: libimage ").split())
    assert code == 1
    assert "divergence not on the known list" in out
    # The same case replayed on two equal sides is no divergence.
    code, out, _ = _command(
        "--semantics", "seed", "oracle", "--against", str(SEED_SIDE), "--replay", str(saved)
    )
    assert (code, out.splitlines()[-1]) == (0, "no divergence")


def _case_with_unsupported_step(path: Path) -> Path:
    case = {
        "id": "unsupported",
        "store": {"images": [{"key": "A", "names": ["localhost/a:1"]}]},
        "steps": [
            {
                "request": {"op": "rmi", "names": ["a"], "lookup_manifest": True},
                "expect": {"errors": []},
            }
        ],
    }
    path.write_text(json.dumps(case), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        pytest.param(["--against", "{tmp}/missing.json"], "missing.json", id="missing-file"),
        pytest.param(["--against", "{tmp}/malformed.json"], "malformed.json", id="not-json"),
        pytest.param(["--against", "dockerd"], "dockerd", id="unknown-against"),
        pytest.param(["--against", "{tmp}/invalid.json"], "invalid.json", id="invalid-desc"),
        pytest.param(
            ["--against", "podman", "--known", "{tmp}/malformed.json"],
            "malformed.json",
            id="known-not-json",
        ),
        pytest.param(
            ["--against", "podman", "--replay", "{tmp}/missing.json"],
            "missing.json",
            id="replay-missing",
        ),
        pytest.param(
            ["--against", "podman", "--replay", "{tmp}/unsupported.json"],
            "lookup-manifest",
            id="replay-unsupported",
        ),
        pytest.param(
            ["--against", "podman", "--save-dir", "{tmp}/malformed.json"],
            "malformed.json",
            id="save-dir-is-a-file",
        ),
        pytest.param(["--against", "podman", "--examples", "0"], "--examples", id="examples"),
        pytest.param(["--against", "podman", "--max-seconds", "-1"], "--max-seconds", id="time"),
    ],
)
def test_bad_input_exits_125_with_one_line(
    tmp_path: Path, arguments: list[str], names: str
) -> None:
    (tmp_path / "malformed.json").write_text('{"name": ', encoding="utf-8")
    (tmp_path / "invalid.json").write_text(json.dumps({"name": "x"}), encoding="utf-8")
    _case_with_unsupported_step(tmp_path / "unsupported.json")
    argv = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    code, out, err = _command("oracle", *argv)
    assert code == 125
    assert out == ""
    assert err.startswith("Error: ")
    assert err.count("\n") == 1
    assert names in err
    assert "Traceback" not in err


def test_every_profile_is_accepted() -> None:
    # The command's --semantics offers exactly the profiles (decision 1).
    code, _, err = _command("oracle", "--against", "podman", "--semantics", "nope")
    assert code == 125
    for profile in PROFILES:
        assert profile in err


_READ_JSON_STORE = (
    "import json, sys; d = json.load(open(sys.argv[1])); "
    "print(json.dumps([{'Id': i['id'], 'Names': i['names']} for i in d['images']]))"
)


def test_a_json_store_implementation_reads_the_document(tmp_path: Path) -> None:
    # A "json" store: the oracle writes {store_json}; this implementation only lists it.
    read = ["{python}", "-c", _READ_JSON_STORE, "{store_json}"]
    document = {
        "name": "json-lister",
        "store": "json",
        "commands": {
            "setup": ["{python}", "-c", "import sys; open(sys.argv[1], 'w').close()", "{state}/x"],
            "exists": read,
            "lookup": read,
            "images": read,
            "rmi": read,
            "read": {"argv": read, "output": "images-json"},
        },
    }
    theirs = parse_protocol(document)
    workload = Workload(
        (ImageSpec("A", ("localhost/a:1",)), ImageSpec("B", ("localhost/b:1", "localhost/b:2")))
    )
    execution = execute(workload, libimage_protocol(), theirs, semantics="podman-4.3")
    assert execution.divergences == ()
    (written,) = execution.steps
    assert written.theirs_store is not None
    assert sorted(names or () for _, names in written.theirs_store.images) == [
        ("localhost/a:1",),
        ("localhost/b:1", "localhost/b:2"),
    ]
