"""Writing and deleting inside a store: Go's JSON, atomic replacement, no escape (SF-A, SF-I).

Three things every write to a containers-storage store needs, and nothing else:

**Go's JSON.** :func:`encode_records` writes a metadata file exactly as
containers-storage's ``json.Marshal`` does, so that a file podman wrote and we
rewrote unchanged is byte-identical (SF-I, SF-Y, SF-C, checklist 15): compact (no
spaces, no trailing newline, ``[]`` when empty); each record's known keys in Go's
struct order, empty optional fields omitted (``omitempty``), ``image`` and ``layer``
of a container always written, a missing ``created`` written as Go's zero time;
map keys sorted; strings with Go's escapes (``<``, ``>``, ``&``, U+2028 and U+2029 as
``\\u003c`` …, control characters other than ``\\n``, ``\\r``, ``\\t`` as ``\\u00XX``
with lower-case hex, lone surrogates as U+FFFD); numbers inside ``flags`` (Go's
``interface{}``, decoded as float64) formatted as Go formats a float64. Two
deliberate differences from Go, both about not losing data (SF-I-24, SF-I-11):
unknown keys are kept, after the known ones, in their original order; ``created``
strings are kept exactly as stored. The opaque ``metadata`` string is a string like
any other and round-trips verbatim.

**Atomic replacement** (SF-A-1, SF-A-2): :func:`write_file_atomic` creates
``.tmp-<name><random digits>`` in the same directory (``O_EXCL``, ``O_NOFOLLOW``,
mode 0600), writes everything, ``fdatasync``\\ s, sets the final mode, closes and
renames it over the target. On any failure the temporary file is removed, so a
failed write (ENOSPC, EROFS, EACCES, EIO) leaves the directory as it was. Readers
only ever see the old file or the new one.

**No escape from the store** (decision 10, issue #8 item 5): everything is done
relative to directory descriptors. :class:`StoreDirs` opens the graph root and run
root once and reaches every directory below them one plain component at a time with
``O_NOFOLLOW | O_DIRECTORY``, so a symbolic link placed anywhere in the store is
never followed; a component must be a plain file name (no ``/``, not ``.``/``..``,
not empty, no NUL), and record IDs must be 64 lower-case hex before they become one
(:func:`checked_id`). :func:`remove_tree` deletes a directory tree through
descriptors, never following a link and never crossing into another file system (a
mount point is an error, not something to empty).

A test-only fault hook (:class:`FaultInjector`, from ``LIBIMAGE_FAULT_AFTER_STEP`` /
``LIBIMAGE_FAULT_IN_WRITE``) lets the crash tests kill the process with SIGKILL after
a given step or in the middle of a temporary file; when the variables are unset
nothing is read or checked beyond one ``None`` test per step.
"""

# Paths are plain str here: every file operation goes through a directory descriptor
# (dir_fd), which pathlib does not offer.
# ruff: noqa: PTH118

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import signal
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.snapshot import is_full_id

GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Go writes for an absent time.Time (SF-I-11)

FILE_MODE = 0o600  # SF-L-5: JSON and big-data files
DIR_MODE = 0o700  # SF-L-5: directories

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_CREATE_TEMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

FAULT_AFTER_STEP = "LIBIMAGE_FAULT_AFTER_STEP"
FAULT_IN_WRITE = "LIBIMAGE_FAULT_IN_WRITE"


# -- errors -------------------------------------------------------------------------------


class StoreWriteError(LibimageError):
    """Writing or deleting something in the store failed; the message names the path.

    Carries kind ``STORE_UNWRITABLE`` (exit 125 in the CLI), which tells a write
    failure apart from a read failure.
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(Failure(ErrorKind.STORE_UNWRITABLE, path, f"{path}: {detail}", "SF-A-1"))
        self.path = path


def os_detail(error: OSError) -> str:
    """The one-line reason of an OS error (``no space left on device``), Go-style lower case."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def checked_id(record_id: str, what: str, source: str) -> str:
    """``record_id`` if it is 64 lower-case hex, else refuse naming ``source`` (decision 10).

    Every ID passes here before it becomes part of a path.

    >>> checked_id("a" * 64, "image", "images.json") == "a" * 64
    True
    >>> checked_id("../x", "layer", "layers.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    libimage.pure.errors.LibimageError: layers.json: refusing ... invalid ID "../x" (decision 10)
    """
    if is_full_id(record_id):
        return record_id
    raise LibimageError(
        Failure(
            ErrorKind.INVALID_RECORD_ID,
            record_id,
            f"{source}: refusing to act on {what} with invalid ID {json.dumps(record_id)} "
            "(decision 10)",
            "decision 10",
        )
    )


def check_component(name: str) -> str:
    """``name`` if it is a single plain path component; ValueError otherwise (a caller bug)."""
    if not name or name in {".", ".."} or "/" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


# -- Go's JSON encoding ------------------------------------------------------------------


class _Kind:
    """How Go encodes one field (the Go type behind a JSON key)."""

    STRING = "string"  # string, omitempty
    STRING_ALWAYS = "string-always"  # string without omitempty
    STRINGS = "strings"  # []string, omitempty
    INT = "int"  # int64/int, omitempty
    INT_ALWAYS = "int-always"
    UINT32S = "uint32s"  # []uint32, omitempty
    INT_MAP = "int-map"  # map[string]int64, omitempty
    STRING_MAP = "string-map"  # map[string]string / digest, omitempty
    ANY_MAP = "any-map"  # map[string]interface{}, omitempty
    TIME = "time"  # time.Time: always written
    ID_MAPS = "id-maps"  # []idtools.IDMap, omitempty


# Go struct field order and types (containers/storage 1.43 images.go, layers.go,
# containers.go; identical at bf170b3): SF-I, SF-Y, SF-C.
IMAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", _Kind.STRING_ALWAYS),
    ("digest", _Kind.STRING),
    ("names", _Kind.STRINGS),
    ("names-history", _Kind.STRINGS),
    ("layer", _Kind.STRING),
    ("mapped-layers", _Kind.STRINGS),
    ("metadata", _Kind.STRING),
    ("big-data-names", _Kind.STRINGS),
    ("big-data-sizes", _Kind.INT_MAP),
    ("big-data-digests", _Kind.STRING_MAP),
    ("created", _Kind.TIME),
    ("flags", _Kind.ANY_MAP),
)
LAYER_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", _Kind.STRING_ALWAYS),
    ("names", _Kind.STRINGS),
    ("parent", _Kind.STRING),
    ("metadata", _Kind.STRING),
    ("mountlabel", _Kind.STRING),
    ("created", _Kind.TIME),
    ("compressed-diff-digest", _Kind.STRING),
    ("compressed-size", _Kind.INT),
    ("diff-digest", _Kind.STRING),
    ("diff-size", _Kind.INT),
    ("compression", _Kind.INT),
    ("uidset", _Kind.UINT32S),
    ("gidset", _Kind.UINT32S),
    ("flags", _Kind.ANY_MAP),
    ("uidmap", _Kind.ID_MAPS),
    ("gidmap", _Kind.ID_MAPS),
    ("big-data-names", _Kind.STRINGS),
)
CONTAINER_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", _Kind.STRING_ALWAYS),
    ("names", _Kind.STRINGS),
    ("image", _Kind.STRING_ALWAYS),
    ("layer", _Kind.STRING_ALWAYS),
    ("metadata", _Kind.STRING),
    ("big-data-names", _Kind.STRINGS),
    ("big-data-sizes", _Kind.INT_MAP),
    ("big-data-digests", _Kind.STRING_MAP),
    ("created", _Kind.TIME),
    ("uidmap", _Kind.ID_MAPS),
    ("gidmap", _Kind.ID_MAPS),
    ("flags", _Kind.ANY_MAP),
)
MOUNT_FIELDS: tuple[tuple[str, str], ...] = (  # layerMountPoint (SF-Y-13)
    ("id", _Kind.STRING_ALWAYS),
    ("path", _Kind.STRING_ALWAYS),
    ("count", _Kind.INT_ALWAYS),
)
_ID_MAP_FIELDS = ("container_id", "host_id", "size")

RECORD_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "images": IMAGE_FIELDS,
    "layers": LAYER_FIELDS,
    "containers": CONTAINER_FIELDS,
    "mountpoints": MOUNT_FIELDS,
}


def canonical_key(key: str, fields: Mapping[str, str]) -> str | None:
    """The Go field a JSON key decodes into: exact match, else case-insensitive; or None."""
    if key in fields:
        return key
    folded = key.casefold()
    for name in fields:
        if len(name) == len(key) and name == folded:
            return name
    return None


_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_SHORT_ESCAPE = re.compile(r"\\(.)")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_escape_fixups(text: str) -> str:
    r"""Turn Python's JSON text into Go's: HTML-safe escapes, no ``\b``/``\f`` short forms."""
    text = text.translate(_GO_ESCAPES)
    if "\\b" in text or "\\f" in text:
        # Matched pairwise from the left, so an escaped backslash before "b" stays.
        text = _SHORT_ESCAPE.sub(
            lambda m: {"b": "\\u0008", "f": "\\u000c"}.get(m.group(1), m.group(0)), text
        )
    return text


def go_float(value: float) -> str:
    """A float64 as Go's encoding/json writes it (shortest digits; ``e`` only if tiny or huge).

    >>> [go_float(v) for v in (5.0, 0.1, 1e-05, 1.5e-07, 1e21, 12345678901234567890.0, -0.0)]
    ['5', '0.1', '0.00001', '1.5e-7', '1e+21', '12345678901234567000', '-0']
    """
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exponent = repr(value).partition("e")
        if not exponent:  # repr chose positional notation; Go wants the exponent form
            mantissa, _, exponent = f"{Decimal(repr(value)).normalize():e}".partition("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    text = format(Decimal(repr(value)).normalize(), "f")
    if value == 0 and repr(value).startswith("-"):
        return "-0"
    return text


@dataclass
class _Encoder:
    """State of one encoding: numbers Go would format differently are swapped in at the end."""

    token: str = field(default_factory=lambda: secrets.token_hex(8))
    numbers: list[str] = field(default_factory=list)

    def number(self, value: float | int) -> Any:
        """A number of an ``interface{}`` (float64 in Go)."""
        if isinstance(value, int) and abs(value) <= 2**53:
            return value  # Python writes the digits Go would
        text = go_float(float(value))
        self.numbers.append(text)
        return f"\0{self.token}:{len(self.numbers) - 1}\0"

    def finish(self, text: str) -> str:
        if not self.numbers:
            return text
        for index, number in enumerate(self.numbers):
            text = text.replace(f'"\\u0000{self.token}:{index}\\u0000"', number, 1)
        return text


def _any_value(value: Any, encoder: _Encoder) -> Any:
    """An ``interface{}`` value as Go re-encodes what it decoded: sorted maps, float64s."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return encoder.number(value)
    if isinstance(value, list):
        return [_any_value(item, encoder) for item in value]
    if isinstance(value, dict):
        return {key: _any_value(value[key], encoder) for key in sorted(value)}
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _field_value(kind: str, value: Any, encoder: _Encoder) -> tuple[bool, Any]:
    """(written?, value) for one known field, following omitempty and Go's zero values."""
    if kind == _Kind.STRING_ALWAYS:
        return True, value if isinstance(value, str) else ""
    if kind == _Kind.STRING:
        return bool(value), value
    if kind == _Kind.TIME:
        return True, value if isinstance(value, str) and value else GO_ZERO_TIME
    if kind in (_Kind.STRINGS,):
        if not value:
            return False, None
        return True, [item if item is not None else "" for item in value]
    if kind == _Kind.INT:
        return bool(value), value
    if kind == _Kind.INT_ALWAYS:
        return True, value if isinstance(value, int) else 0
    if kind == _Kind.UINT32S:
        if not value:
            return False, None
        return True, [item if item is not None else 0 for item in value]
    if kind in (_Kind.INT_MAP, _Kind.STRING_MAP):
        if not value:
            return False, None
        zero: Any = 0 if kind == _Kind.INT_MAP else ""
        return True, {key: value[key] if value[key] is not None else zero for key in sorted(value)}
    if kind == _Kind.ANY_MAP:
        if not value:
            return False, None
        return True, _any_value(value, encoder)
    if kind == _Kind.ID_MAPS:
        if not value:
            return False, None
        return True, [_id_map(item) for item in value]
    raise AssertionError(f"unknown field kind {kind}")


def _id_map(item: Any) -> dict[str, int]:
    canonical: dict[str, int] = dict.fromkeys(_ID_MAP_FIELDS, 0)
    if isinstance(item, dict):
        fields = dict.fromkeys(_ID_MAP_FIELDS, "")
        for key, value in item.items():
            name = canonical_key(key, fields)
            if name is not None:
                canonical[name] = value if isinstance(value, int) else 0
    return canonical


_ALWAYS_WRITTEN = frozenset({_Kind.STRING_ALWAYS, _Kind.TIME, _Kind.INT_ALWAYS})
_KINDS_OF: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def go_record(record: Mapping[str, Any], fields: tuple[tuple[str, str], ...], encoder: Any) -> Any:
    """One record as an ordered dict in Go's field order; unknown keys kept after them."""
    kinds = _KINDS_OF.get(fields)
    if kinds is None:
        kinds = _KINDS_OF[fields] = dict(fields)
    known: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in record.items():
        name = key if key in kinds else canonical_key(key, kinds)
        if name is None:
            unknown[key] = value
        else:
            known[name] = value  # compat: Go's decoder lets a later spelling win
    out: dict[str, Any] = {}
    for name, kind in fields:
        value = known.get(name)
        if value is None and kind not in _ALWAYS_WRITTEN:
            continue  # omitempty: an absent or null field is not written
        written, value = _field_value(kind, value, encoder)
        if written:
            out[name] = value
    # SF-I-24: Go drops keys it does not know; we keep them (newer writers' data).
    for key, value in unknown.items():
        if key not in out:
            out[key] = value
    return out


def encode_records(kind: str, records: Iterable[Mapping[str, Any]]) -> bytes:
    """A metadata file's bytes as containers-storage writes them (``images``, ``layers``, …).

    >>> encode_records("images", [])
    b'[]'
    >>> encode_records("layers", [{"flags": {"incomplete": True}, "id": "x", "names": []}])
    b'[{"id":"x","created":"0001-01-01T00:00:00Z","flags":{"incomplete":true}}]'
    >>> encode_records("images", [{"id": "i", "metadata": "<&>", "created": "2026-01-02T03:04Z"}])
    b'[{"id":"i","metadata":"\\\\u003c\\\\u0026\\\\u003e","created":"2026-01-02T03:04Z"}]'
    """
    fields = RECORD_FIELDS[kind]
    encoder = _Encoder()
    document = [go_record(record, fields, encoder) for record in records]
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = encoder.finish(_go_escape_fixups(text))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # json.loads keeps lone surrogates from \\udXXX escapes; Go decodes them as U+FFFD.
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def encode_document(value: Any) -> bytes:
    """Any JSON value compactly, with Go's string escapes (for files of our own)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SURROGATE.sub("\ufffd", _go_escape_fixups(text)).encode("utf-8")


# -- fault injection (tests only) --------------------------------------------------------


@dataclass
class FaultInjector:
    """Kill this process with SIGKILL after step ``after_step`` or inside write ``in_write``.

    Steps are counted by :meth:`step` (each metadata save, each directory removal);
    writes by :meth:`writing` (each temporary file, after half of its bytes). Used by
    the crash tests through the environment; ``kill`` is replaceable for unit tests.
    """

    after_step: int | None = None
    in_write: int | None = None
    kill: Callable[[], None] = field(default=lambda: os.kill(os.getpid(), signal.SIGKILL))
    steps: int = 0
    writes: int = 0
    log: list[str] = field(default_factory=list)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> FaultInjector | None:
        """The injector the environment asks for, or None when neither variable is set."""
        env = os.environ if environ is None else environ
        after = env.get(FAULT_AFTER_STEP)
        inside = env.get(FAULT_IN_WRITE)
        if after is None and inside is None:
            return None
        return cls(
            after_step=int(after) if after else None, in_write=int(inside) if inside else None
        )

    def step(self, what: str) -> None:
        """One step of applying a plan is complete."""
        self.steps += 1
        self.log.append(what)
        if self.after_step is not None and self.steps >= self.after_step:
            self.kill()

    def writing(self) -> None:
        """Half of a temporary file is written."""
        self.writes += 1
        if self.in_write is not None and self.writes >= self.in_write:
            self.kill()


# -- directories inside the store -----------------------------------------------------------


class StoreDirs:
    """Descriptors of the graph root and run root; every path below is reached without links.

    ``dir(base, *components)`` opens (and caches) the directory ``components`` below
    ``base`` (``"root"`` or ``"run"``), one ``O_NOFOLLOW`` component at a time; None
    if it does not exist. :meth:`close` closes every descriptor.
    """

    def __init__(self, graph_root: str, run_root: str) -> None:
        self.paths = {"root": graph_root, "run": run_root}
        self._fds: dict[tuple[str, ...], int] = {}
        self._devices: dict[str, int] = {}
        for base, path in self.paths.items():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as error:
                self.close()
                raise StoreWriteError(path, os_detail(error)) from error
            self._fds[(base,)] = fd
            self._devices[base] = os.fstat(fd).st_dev

    def __enter__(self) -> StoreDirs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def path(self, base: str, *components: str) -> str:
        """The path text of ``components`` below ``base`` (for messages)."""
        return os.path.join(self.paths[base], *components)

    def device(self, base: str) -> int | None:
        return self._devices.get(base)

    def dir(self, base: str, *components: str) -> int | None:
        """A descriptor of the directory, or None if it (or a parent) does not exist.

        A component that is a symbolic link or not a directory is an error naming it.
        """
        key = (base, *components)
        fd = self._fds.get(key)
        if fd is not None:
            return fd
        if not components:
            return None
        parent = self.dir(base, *components[:-1])
        if parent is None:
            return None
        name = check_component(components[-1])
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StoreWriteError(
                    self.path(base, *components),
                    "not a directory (a symbolic link is not followed)",
                ) from error
            raise StoreWriteError(self.path(base, *components), os_detail(error)) from error
        self._fds[key] = fd
        return fd

    @contextmanager
    def transient(self, base: str, *components: str) -> Iterator[int | None]:
        """Like :meth:`dir`, for a directory of one record: its descriptor is not kept.

        The parent is reached (and kept) as :meth:`dir` does; the last component is
        opened for the ``with`` block only, so that walking 100,000 layers never holds
        100,000 descriptors.
        """
        key = (base, *components)
        cached = self._fds.get(key)
        if cached is not None or not components:
            yield cached
            return
        parent = self.dir(base, *components[:-1])
        if parent is None:
            yield None
            return
        name = check_component(components[-1])
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=parent)
        except FileNotFoundError:
            yield None
            return
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StoreWriteError(
                    self.path(*key), "not a directory (a symbolic link is not followed)"
                ) from error
            raise StoreWriteError(self.path(*key), os_detail(error)) from error
        try:
            yield fd
        finally:
            os.close(fd)

    def forget(self, base: str, *components: str) -> None:
        """Close a cached descriptor of a directory that was removed (and those below it)."""
        key = (base, *components)
        if len(self._fds) > len(self.paths) and any(k[: len(key)] == key for k in self._fds):
            for cached in [k for k in self._fds if k[: len(key)] == key and len(k) > 1]:
                os.close(self._fds.pop(cached))


def read_file_bytes(dir_fd: int, name: str, display: str) -> bytes | None:
    """A regular file's bytes, read without following a link; None if it does not exist."""
    try:
        fd = os.open(check_component(name), _OPEN_FILE, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StoreWriteError(display, "is a symbolic link; not followed") from error
        raise StoreWriteError(display, os_detail(error)) from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreWriteError(display, "not a regular file")
        chunks: list[bytes] = []
        while chunk := os.read(fd, max(info.st_size + 1, 1 << 16)):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise StoreWriteError(display, os_detail(error)) from error
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """``.tmp-<name><random decimal>``, as Go's ``os.CreateTemp`` names them (SF-A-1)."""
    return f".tmp-{name}{secrets.randbelow(2**32)}"


def is_temp_of(entry: str, name: str) -> bool:
    """True for a temporary file of ``name`` as :func:`temp_name` (and Go) make them."""
    prefix = f".tmp-{name}"
    return entry.startswith(prefix) and entry[len(prefix) :].isdigit()


def write_file_atomic(
    dir_fd: int,
    name: str,
    data: bytes,
    display: str,
    *,
    mode: int = FILE_MODE,
    fault: FaultInjector | None = None,
) -> None:
    """Replace ``name`` in ``dir_fd`` with ``data`` atomically (SF-A-1).

    Raises :class:`StoreWriteError` naming ``display`` on any failure; the temporary
    file is then gone and the target untouched.
    """
    check_component(name)
    temporary = temp_name(name)
    try:
        fd = os.open(temporary, _CREATE_TEMP, FILE_MODE, dir_fd=dir_fd)
    except OSError as error:
        raise StoreWriteError(display, f"writing: {os_detail(error)}") from error
    renamed = False
    try:
        try:
            view = memoryview(data)
            half = len(data) // 2
            written = 0
            if fault is not None:
                written = _write_all(fd, view[:half])
                fault.writing()
            while written < len(data):
                written += _write_all(fd, view[written:])
            os.fdatasync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        renamed = True
    except OSError as error:
        raise StoreWriteError(display, f"writing: {os_detail(error)}") from error
    finally:
        if not renamed:
            with suppress(OSError):  # nothing more to do; recovery removes stale temporaries
                os.unlink(temporary, dir_fd=dir_fd)


def _write_all(fd: int, data: memoryview) -> int:
    written = 0
    while written < len(data):
        count = os.write(fd, data[written:])
        if count == 0:
            raise OSError(errno.EIO, "short write")
        written += count
    return written


def unlink_if_present(dir_fd: int, name: str, display: str) -> bool:
    """Remove a file or symbolic link (never a directory); False if it was not there."""
    try:
        os.unlink(check_component(name), dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise StoreWriteError(display, f"removing: {os_detail(error)}") from error
    return True


def remove_tree(parent_fd: int, name: str, display: str, device: int | None) -> bool:
    """``rm -rf`` of ``name`` in ``parent_fd`` without following links or crossing mounts.

    A link or file named ``name`` is unlinked; a directory is emptied through
    descriptors (``O_NOFOLLOW``), depth first without recursion, and removed. A
    directory on another device than ``device`` (a mount point) is an error naming it,
    and nothing below it is touched. Permission problems on a directory are retried
    once after giving its owner full access (SF-D-12). False if nothing was there.
    """
    check_component(name)
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise StoreWriteError(display, f"removing: {os_detail(error)}") from error
    if not stat.S_ISDIR(info.st_mode):
        return unlink_if_present(parent_fd, name, display)
    # Each frame: (descriptor, its entries still to visit, name in parent, parent fd, path).
    stack: list[tuple[int, list[str], str, int, str]] = []
    opened: list[int] = []
    try:
        fd = _open_subdir(parent_fd, name, display, device)
        opened.append(fd)
        stack.append((fd, _entries(fd, display), name, parent_fd, display))
        while stack:
            fd, entries, dir_name, dir_parent, dir_display = stack[-1]
            if not entries:
                stack.pop()
                os.close(fd)
                opened.remove(fd)
                _rmdir(dir_parent, dir_name, dir_display)
                continue
            entry = entries.pop()
            entry_display = os.path.join(dir_display, entry)
            try:
                entry_info = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(entry_info.st_mode):
                child = _open_subdir(fd, entry, entry_display, device)
                opened.append(child)
                stack.append((child, _entries(child, entry_display), entry, fd, entry_display))
            else:
                _unlink_in(fd, entry, entry_display)
    except OSError as error:
        raise StoreWriteError(display, f"removing: {os_detail(error)}") from error
    finally:
        for fd in opened:
            os.close(fd)
    return True


def _open_subdir(parent_fd: int, name: str, display: str, device: int | None) -> int:
    try:
        fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
    except OSError as error:
        raise StoreWriteError(display, f"removing: {os_detail(error)}") from error
    if device is not None and os.fstat(fd).st_dev != device:
        os.close(fd)
        raise StoreWriteError(display, "is a mount point; not removed (unmount it first)")
    return fd


def _entries(fd: int, display: str) -> list[str]:
    try:
        with os.scandir(fd) as scan:
            return [entry.name for entry in scan]
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM):
            os.fchmod(fd, DIR_MODE)  # SF-D-12: rootless read-only directories
            with os.scandir(fd) as scan:
                return [entry.name for entry in scan]
        raise StoreWriteError(display, f"removing: {os_detail(error)}") from error


def _unlink_in(fd: int, name: str, display: str) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM):
            raise StoreWriteError(display, f"removing: {os_detail(error)}") from error
        os.fchmod(fd, DIR_MODE)  # SF-D-12
        try:
            os.unlink(name, dir_fd=fd)
        except OSError as again:
            raise StoreWriteError(display, f"removing: {os_detail(again)}") from again


def _rmdir(parent_fd: int, name: str, display: str) -> None:
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    except OSError as error:
        raise StoreWriteError(display, f"removing: {os_detail(error)}") from error


def listdir(dir_fd: int | None) -> list[str]:
    """The entry names of a directory descriptor (empty for None)."""
    if dir_fd is None:
        return []
    with os.scandir(dir_fd) as scan:
        return sorted(entry.name for entry in scan)
