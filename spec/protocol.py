"""The command protocol: how the oracle drives another implementation of these semantics.

An implementation is described as data (a JSON file, or a :class:`Protocol` built in
Python): how its store is prepared, the command line of each operation, and how exit
codes and outputs become results. The oracle (:mod:`libimage.spec.oracle`) runs the
same requests through two descriptions, ours and theirs, and compares the results.
podman 4.3.1 ships as the built-in description :data:`PODMAN` (``--against podman``);
ours is :func:`libimage_protocol`.

A description file::

    {
      "name": "podman",
      "description": "podman 4.3.1 on a containers-storage store (vfs driver)",
      "store": "containers-storage",
      "environment": {"CONTAINERS_REGISTRIES_CONF": "{registries_conf}"},
      "prefix": ["podman", "--root", "{root}", "--runroot", "{runroot}",
                 "--storage-driver", "{driver}",
                 {"for": "image_stores", "args": ["--storage-opt", "vfs.imagestore={item}"]}],
      "commands": {
        "exists": {"argv": ["image", "exists", "{name}"]},
        "lookup": {"argv": ["image", "inspect", "--format", "{{.Id}}", "{name}"],
                   "output": "id"},
        "images": {"argv": ["images", "-a", "--format", "json",
                            {"for": "filters", "args": ["--filter", "{item}"]}],
                   "output": "images-json"},
        "rmi": {"argv": ["rmi", {"if": "force", "args": ["-f"]}, {"if": "all", "args": ["-a"]},
                         {"for": "names", "args": ["{item}"]}],
                "output": "lines"},
        "read": {"argv": ["images", "-a", "--format", "json"], "output": "images-json"}
      }
    }

**Store** (``"store"``): ``"containers-storage"`` means the implementation reads a
containers-storage store: the oracle writes the generated store to disk
(:func:`libimage.spec.materialise.materialise`) and fills ``{root}``, ``{runroot}``,
``{driver}`` and the list ``image_stores`` (read-only additional stores). ``"json"``
means the implementation keeps a store of its own: the oracle writes the store as a
JSON document (:func:`store_document`) to ``{store_json}``, gives it an empty
directory ``{state}``, and runs the optional ``"setup"`` command once before the
requests.

**Templates.** An argument is a string, where the placeholders ``{root}``,
``{runroot}``, ``{driver}``, ``{state}``, ``{store_json}``, ``{registries_conf}``,
``{name}``, ``{semantics}``, ``{python}`` (this interpreter), ``{here}`` (the folder of
the description file) and ``{item}`` are replaced and any other text (such as
``{{.Id}}``) is kept as written; or ``{"if": FLAG, "args": [...]}`` (the arguments
when the request sets ``force`` or ``all``); or ``{"for": LIST, "args": [...]}`` (the
arguments once per element of ``names``, ``filters`` or ``image_stores``, with
``{item}`` the element). ``"prefix"`` comes before every command's ``argv``.
``"environment"`` adds variables (templates too). A command whose first argument is
``libimage`` runs in the oracle's own interpreter (:func:`libimage.adapters.cli.run`).

**Results.** Each operation's exit code becomes a *status* through ``"exit_codes"``
(``"*"`` is every other code); the defaults follow podman: ``exists`` 0 ``exists``, 1
``missing``, else ``error``; ``lookup`` 0 ``found``, else ``not-found``; ``images`` 0
``ok``, else ``error``; ``rmi`` 0 ``ok``, 1 ``unknown``, 2 ``in-use``, else ``error``
(decision 13). ``"output"`` names the parser of stdout: ``id`` (the last line, an ID,
``sha256:`` dropped), ``images-json`` (a JSON array of objects with ``Id`` and
``Names``, as ``podman images --format json`` prints; an ID listed once per name
counts once), ``ids`` (one ID per line; names unknown), ``lines`` (the ``Untagged:``
and ``Deleted:`` lines) or ``none``. ``read`` lists every image of the store (its
``images -a``); the oracle reads the store back with it after every removal.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPERATIONS = ("exists", "lookup", "images", "rmi", "read")
"""The operations every description provides (``setup`` is optional)."""

STORE_KINDS = ("containers-storage", "json")
OUTPUTS = ("id", "images-json", "ids", "lines", "none")
FLAGS = ("force", "all")
LISTS = ("names", "filters", "image_stores")
PLACEHOLDERS = (
    "root",
    "runroot",
    "driver",
    "state",
    "store_json",
    "registries_conf",
    "name",
    "semantics",
    "python",
    "here",
    "item",
)
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

DEFAULT_EXIT_CODES: Mapping[str, Mapping[str, str]] = {
    "exists": {"0": "exists", "1": "missing", "*": "error"},
    "lookup": {"0": "found", "*": "not-found"},
    "images": {"0": "ok", "*": "error"},
    "rmi": {"0": "ok", "1": "unknown", "2": "in-use", "*": "error"},
    "read": {"0": "ok", "*": "error"},
    "setup": {"0": "ok", "*": "error"},
}
DEFAULT_OUTPUTS: Mapping[str, str] = {
    "exists": "none",
    "lookup": "id",
    "images": "images-json",
    "rmi": "lines",
    "read": "images-json",
    "setup": "none",
}

Template = str | Mapping[str, Any]
"""One argument template: a string, or an ``if``/``for`` object (module docstring)."""


class ProtocolError(ValueError):
    """A description that does not follow the format; the message names the field."""


@dataclass(frozen=True, slots=True)
class Command:
    """One operation: its argument templates, stdout parser and exit-code classes."""

    argv: tuple[Template, ...]
    output: str
    exit_codes: Mapping[str, str]

    def status(self, code: int) -> str:
        """The status class of an exit code (``"*"`` for every code not listed)."""
        return self.exit_codes.get(str(code), self.exit_codes.get("*", f"exit-{code}"))


@dataclass(frozen=True, slots=True)
class Protocol:
    """A description of an implementation: its store kind, commands and environment."""

    name: str
    description: str
    store: str
    prefix: tuple[Template, ...]
    commands: Mapping[str, Command]
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    here: str = ""

    def command(self, operation: str) -> Command | None:
        return self.commands.get(operation)


@dataclass(frozen=True, slots=True)
class Variables:
    """What fills the templates of one command."""

    values: Mapping[str, str]
    lists: Mapping[str, Sequence[str]] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)


# --------------------------------------------------------------------------- loading


def _templates(raw: Any, where: str) -> tuple[Template, ...]:
    if not isinstance(raw, list):
        raise ProtocolError(f"{where}: expected a list of arguments, not {raw!r}")
    checked: list[Template] = []
    for position, item in enumerate(raw):
        place = f"{where}[{position}]"
        if isinstance(item, str):
            checked.append(item)
            continue
        if not isinstance(item, dict) or set(item) not in ({"if", "args"}, {"for", "args"}):
            raise ProtocolError(f"{place}: a string, or an object with 'if'/'for' and 'args'")
        if "if" in item and item["if"] not in FLAGS:
            raise ProtocolError(f"{place}: 'if' must be one of {FLAGS}, not {item['if']!r}")
        if "for" in item and item["for"] not in LISTS:
            raise ProtocolError(f"{place}: 'for' must be one of {LISTS}, not {item['for']!r}")
        args = _templates(item["args"], f"{place}.args")
        if any(not isinstance(arg, str) for arg in args):
            raise ProtocolError(f"{place}.args: nested 'if'/'for' objects are not supported")
        checked.append({**item, "args": list(args)})
    return tuple(checked)


def _command(operation: str, raw: Any, where: str) -> Command:
    if isinstance(raw, list):
        raw = {"argv": raw}
    if not isinstance(raw, dict) or "argv" not in raw:
        raise ProtocolError(f"{where}: a command is an object with 'argv' (or a list)")
    unknown = set(raw) - {"argv", "output", "exit_codes"}
    if unknown:
        raise ProtocolError(f"{where}: unknown fields {sorted(unknown)}")
    output = raw.get("output", DEFAULT_OUTPUTS[operation])
    if output not in OUTPUTS:
        raise ProtocolError(f"{where}.output: {output!r} is not one of {OUTPUTS}")
    codes = raw.get("exit_codes", DEFAULT_EXIT_CODES[operation])
    if not isinstance(codes, dict) or not all(
        isinstance(k, str) and (k == "*" or k.lstrip("-").isdigit()) and isinstance(v, str)
        for k, v in codes.items()
    ):
        raise ProtocolError(f"{where}.exit_codes: an object of exit code (or '*') -> status")
    return Command(_templates(raw["argv"], f"{where}.argv"), output, dict(codes))


def parse_protocol(document: Any, source: str = "<protocol>", here: str = "") -> Protocol:
    """A :class:`Protocol` from a decoded JSON document; :class:`ProtocolError` if invalid."""
    if not isinstance(document, dict):
        raise ProtocolError(f"{source}: a description is a JSON object")
    allowed = {"name", "description", "store", "prefix", "commands", "environment", "timeout"}
    unknown = set(document) - allowed
    if unknown:
        raise ProtocolError(f"{source}: unknown fields {sorted(unknown)}")
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"{source}: 'name' must be a non-empty string")
    store = document.get("store", "containers-storage")
    if store not in STORE_KINDS:
        raise ProtocolError(f"{source}: 'store' must be one of {STORE_KINDS}, not {store!r}")
    raw_commands = document.get("commands")
    if not isinstance(raw_commands, dict):
        raise ProtocolError(f"{source}: 'commands' must be an object")
    missing = [op for op in OPERATIONS if op not in raw_commands]
    if missing:
        raise ProtocolError(f"{source}: 'commands' lacks {missing}")
    extra = set(raw_commands) - {*OPERATIONS, "setup"}
    if extra:
        raise ProtocolError(f"{source}: unknown commands {sorted(extra)}")
    commands = {
        op: _command(op, raw, f"{source}: commands.{op}") for op, raw in raw_commands.items()
    }
    environment = document.get("environment", {})
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
    ):
        raise ProtocolError(f"{source}: 'environment' must map names to strings")
    timeout = document.get("timeout", 120)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ProtocolError(f"{source}: 'timeout' must be a positive number of seconds")
    return Protocol(
        name=name,
        description=str(document.get("description", "")),
        store=store,
        prefix=_templates(document.get("prefix", []), f"{source}: prefix"),
        commands=commands,
        environment=dict(environment),
        timeout=float(timeout),
        here=here,
    )


def load_protocol(path: str | Path) -> Protocol:
    """The description in a JSON file (``{here}`` is the file's folder)."""
    location = Path(path)
    try:
        document = json.loads(location.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProtocolError(f"{location}: cannot read: {error.strerror}") from error
    except ValueError as error:
        raise ProtocolError(f"{location}: not JSON: {error}") from error
    return parse_protocol(document, str(location), str(location.resolve().parent))


_STORAGE_PREFIX: list[Any] = [
    "--root",
    "{root}",
    "--runroot",
    "{runroot}",
    "--storage-driver",
    "{driver}",
    {"for": "image_stores", "args": ["--storage-opt", "vfs.imagestore={item}"]},
]

PODMAN_DOCUMENT: Mapping[str, Any] = {
    "name": "podman",
    "description": "podman 4.3.1 on a containers-storage store (vfs driver, no daemon)",
    "store": "containers-storage",
    "environment": {"CONTAINERS_REGISTRIES_CONF": "{registries_conf}"},
    "prefix": [
        "podman",
        *_STORAGE_PREFIX,
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ],
    "commands": {
        "exists": {"argv": ["image", "exists", "{name}"]},
        "lookup": {"argv": ["image", "inspect", "--format", "{{.Id}}", "{name}"], "output": "id"},
        "images": {
            "argv": [
                "images",
                "-a",
                "--format",
                "json",
                {"for": "filters", "args": ["--filter", "{item}"]},
            ],
            "output": "images-json",
        },
        "rmi": {
            "argv": [
                "rmi",
                {"if": "force", "args": ["-f"]},
                {"if": "all", "args": ["-a"]},
                {"for": "names", "args": ["{item}"]},
            ],
            "output": "lines",
        },
        "read": {"argv": ["images", "-a", "--format", "json"], "output": "images-json"},
    },
}
"""The built-in description of podman 4.3.1 (``--against podman``)."""


def libimage_document() -> dict[str, Any]:
    """Our own description: the ``libimage`` command, run in the oracle's interpreter.

    ``lookup`` is ``libimage lookup`` (exit 1 for an unknown image, 125 for other
    errors: both are ``not-found``, as podman's ``image inspect`` exits 125 for both).
    """
    document = json.loads(json.dumps(PODMAN_DOCUMENT))
    document["name"] = "libimage"
    document["description"] = "libimage (this package) on a containers-storage store"
    document["environment"] = {}
    document["prefix"] = [
        "libimage",
        *_STORAGE_PREFIX,
        "--registries-conf",
        "{registries_conf}",
        "--semantics",
        "{semantics}",
    ]
    document["commands"]["exists"] = {"argv": ["exists", "{name}"]}
    document["commands"]["lookup"] = {"argv": ["lookup", "{name}"], "output": "id"}
    return dict(document)


PODMAN = parse_protocol(PODMAN_DOCUMENT, "<built-in podman>")
BUILT_IN: Mapping[str, Protocol] = {"podman": PODMAN}


def libimage_protocol() -> Protocol:
    """:func:`libimage_document` as a :class:`Protocol`."""
    return parse_protocol(libimage_document(), "<built-in libimage>")


def protocol_named(against: str) -> Protocol:
    """A built-in description by name (``podman``), else the description file ``against``."""
    if against in BUILT_IN:
        return BUILT_IN[against]
    if not Path(against).exists():
        built_in = ", ".join(sorted(BUILT_IN))
        raise ProtocolError(
            f"{against}: neither a built-in implementation ({built_in}) nor a description file"
        )
    return load_protocol(against)


# --------------------------------------------------------------------------- commands


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with the known placeholders replaced; anything else is kept as written.

    >>> fill("{{.Id}} {name} {unknown}", {"name": "foo"})
    '{{.Id}} foo {unknown}'
    """

    def value(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(value, text)


def expand(templates: Sequence[Template], variables: Variables) -> list[str]:
    """The argument list the templates give for ``variables`` (module docstring).

    >>> expand(["rmi", {"if": "force", "args": ["-f"]}, {"for": "names", "args": ["{item}"]}],
    ...        Variables({}, {"names": ["a", "b"]}, {"force": True}))
    ['rmi', '-f', 'a', 'b']
    """
    argv: list[str] = []
    for template in templates:
        if isinstance(template, str):
            argv.append(fill(template, variables.values))
        elif "if" in template:
            if variables.flags.get(template["if"], False):
                argv.extend(fill(arg, variables.values) for arg in template["args"])
        else:
            for item in variables.lists.get(template["for"], ()):
                values = {**variables.values, "item": item}
                argv.extend(fill(arg, values) for arg in template["args"])
    return argv


@dataclass(frozen=True, slots=True)
class Completed:
    """One command as it ran: its argument list, exit code and outputs."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(changes: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_command(protocol: Protocol, operation: str, variables: Variables) -> Completed:
    """Run one operation of ``protocol``; a command that cannot start or times out is
    exit code 127 or 124 with the reason on stderr (the harness reports, never raises)."""
    command = protocol.commands[operation]
    values = {**variables.values, "python": sys.executable, "here": protocol.here}
    filled = Variables(values, variables.lists, variables.flags)
    argv = expand([*protocol.prefix, *command.argv], filled)
    environment = {key: fill(value, values) for key, value in protocol.environment.items()}
    if argv and argv[0] == "libimage":
        return _run_in_process(argv, environment)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={**os.environ, **environment},
            timeout=protocol.timeout,
            check=False,
        )
    except FileNotFoundError as error:
        return Completed(tuple(argv), 127, "", f"cannot run {argv[0]!r}: {error.strerror}")
    except subprocess.TimeoutExpired:
        return Completed(tuple(argv), 124, "", f"timed out after {protocol.timeout} s")
    return Completed(tuple(argv), done.returncode, done.stdout, done.stderr)


def _run_in_process(argv: list[str], environment: Mapping[str, str]) -> Completed:
    from libimage.adapters import cli

    out, err = io.StringIO(), io.StringIO()
    with _environment(environment):
        try:
            code = cli.run(argv[1:], out, err)
        except Exception as error:  # a crash is a result the oracle reports
            code = 70
            err.write(f"crashed: {type(error).__name__}: {error}\n")
    return Completed(tuple(argv), code, out.getvalue(), err.getvalue())


# --------------------------------------------------------------------------- outputs

Listed = tuple[tuple[str, tuple[str, ...] | None], ...]
"""Listed images: (ID, names in stored order, or None when the output does not say)."""


def bare_id(text: str) -> str:
    """An image ID without ``sha256:``."""
    return text.strip().removeprefix("sha256:")


def parse_id(stdout: str) -> str | None:
    """The ID on the last non-empty line, or None."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return bare_id(lines[-1]) if lines else None


def parse_images_json(stdout: str) -> Listed:
    """``images --format json``: one entry per ID (podman 4.3.1 repeats an image once per
    name), sorted by ID; raises :class:`ValueError` if it is not such a document."""
    document = json.loads(stdout or "[]")
    if document is None:
        document = []
    if not isinstance(document, list):
        raise ValueError("not a JSON array")
    found: dict[str, tuple[str, ...]] = {}
    for entry in document:
        if not isinstance(entry, dict):
            raise ValueError("an entry is not an object")
        raw_id = entry.get("Id", entry.get("ID", entry.get("id")))
        if not isinstance(raw_id, str):
            raise ValueError(f"an entry has no string Id: {entry!r}")
        names = entry.get("Names", entry.get("names")) or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"Names of {raw_id} is not a list of strings")
        found[bare_id(raw_id)] = tuple(names)
    return tuple(sorted(found.items()))


def parse_ids(stdout: str) -> Listed:
    """One ID per line (names unknown), sorted."""
    ids = {bare_id(line) for line in stdout.split() if line.strip()}
    return tuple((image_id, None) for image_id in sorted(ids))


def parse_lines(stdout: str) -> tuple[str, ...]:
    """The ``Untagged:`` and ``Deleted:`` lines, in order (IDs without ``sha256:``)."""
    kept: list[str] = []
    for line in stdout.splitlines():
        text = line.strip()
        if text.startswith("Deleted: "):
            kept.append("Deleted: " + bare_id(text.removeprefix("Deleted: ")))
        elif text.startswith("Untagged: "):
            kept.append(text)
    return tuple(kept)


def parse_listing(output: str, stdout: str) -> Listed:
    """A listing by the named parser (``images-json`` or ``ids``)."""
    if output == "ids":
        return parse_ids(stdout)
    return parse_images_json(stdout)


# --------------------------------------------------------------------------- json stores


def store_document(
    images: Sequence[Mapping[str, Any]], containers: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``{store_json}`` document of a ``"json"`` store: ``{"images": [...],
    "containers": [...]}``, images in store order, each ``{"id", "names", "digests",
    "parent", "read_only", "labels", "manifest_list"}`` (``digests``: the image's
    digests, ST-3; ``parent``: an ID or null; ``manifest_list``: null, or a list of
    ``{"id", "os", "architecture"}`` for its instances), containers ``{"id", "image"}``."""
    return {
        "images": [dict(image) for image in images],
        "containers": [dict(c) for c in containers],
    }
