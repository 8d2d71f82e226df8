"""The ``libimage`` command line: global options, dispatch, and podman's exit codes.

Global options come before the command, as podman's do. Each command lives in its
own module (``cmd_<name>.py``) that is imported only when that command runs, so
``libimage exists`` does not pay for the code of ``libimage rmi`` or the oracle.

A command module provides ``build(name, parser)``: it adds the command's arguments
to ``parser`` and returns the handler, ``handler(invocation) -> exit code``.

Every usage error, bad option or failure exits 125 with a one-line message on
stderr and no traceback: argparse's own exit code 2 would collide with podman's
"image in use" code.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_IN_USE = 2
EXIT_ERROR = 125

if TYPE_CHECKING:  # the runtime is imported by the commands that use it
    from libimage.adapters.runtime import Runtime

# Command name -> module that implements it (imported on demand).
COMMANDS: dict[str, str] = {
    "parse": "libimage.adapters.cmd_parse",
    "images": "libimage.adapters.cmd_images",
    "exists": "libimage.adapters.cmd_lookup",
    "lookup": "libimage.adapters.cmd_lookup",
    "resolve": "libimage.adapters.cmd_lookup",
    "rmi": "libimage.adapters.cmd_rmi",
    "oracle": "libimage.adapters.cmd_oracle",
}


class UsageError(Exception):
    """A bad command line; printed as one line, exit 125."""


class CommandError(Exception):
    """A failure a command reports as ``Error: <message>`` with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` without importing shutil (and bz2, lzma)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        stream = sys.__stdout__
        try:
            columns = os.get_terminal_size(stream.fileno()).columns if stream else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized as argparse sizes it. argparse builds one for every
    ``add_argument``, and its own way of asking for the width imports shutil."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting with status 2 (and starts faster)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """Options that select the store and the behaviour profile (podman's globals)."""

    root: str | None
    runroot: str | None
    storage_driver: str | None
    storage_opts: tuple[str, ...]
    storage_conf: str | None
    registries_conf: str | None
    semantics: str


@dataclass(frozen=True, slots=True)
class Invocation:
    """One parsed command line: the globals, the command's arguments, the streams."""

    globals: GlobalOptions
    args: argparse.Namespace
    stdout: TextIO
    stderr: TextIO

    def runtime(self) -> Runtime:
        """The runtime the global options name (podman's flags, then the environment)."""
        from libimage.adapters.runtime import Runtime
        from libimage.pure.semantics import PROFILES

        flags = self.globals
        return Runtime.from_flags(
            root=flags.root,
            runroot=flags.runroot,
            storage_driver=flags.storage_driver,
            storage_opts=flags.storage_opts,
            storage_conf=flags.storage_conf,
            registries_conf=flags.registries_conf,
            semantics=PROFILES[flags.semantics],
        )


def add_semantics_option(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--semantics seed|podman-4.3`` (decision 1); also accepted after ``oracle``."""
    parser.add_argument(
        "--semantics",
        choices=["seed", "podman-4.3"],
        default=default,
        help="behaviour profile: the seed (default) or podman 4.3.1",
    )


def global_parser() -> Parser:
    parser = Parser(
        prog="libimage",
        description="Find, list and remove images in a containers-storage store.",
    )
    parser.add_argument("--root", help="storage graph root (as podman --root)")
    parser.add_argument("--runroot", help="storage run root (as podman --runroot)")
    parser.add_argument("--storage-driver", help="storage driver: vfs or overlay")
    parser.add_argument(
        "--storage-opt",
        action="append",
        default=[],
        metavar="K=V",
        help="storage driver option, e.g. vfs.imagestore=DIR (repeatable)",
    )
    parser.add_argument("--storage-conf", help="storage.conf to read instead of the defaults")
    parser.add_argument("--registries-conf", help="registries.conf to read")
    add_semantics_option(parser, default="seed")
    parser.add_argument("command", choices=sorted(COMMANDS), help="the command to run")
    return parser


# Global options that take a value, so that their value is never mistaken for the command.
GLOBAL_OPTIONS_WITH_VALUE = frozenset(
    {
        "--root",
        "--runroot",
        "--storage-driver",
        "--storage-opt",
        "--storage-conf",
        "--registries-conf",
        "--semantics",
    }
)


def split_command_line(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split at the command: global options before it, the command's own arguments after.

    The command's arguments are passed on verbatim (including any ``--``), which
    argparse's REMAINDER would not do.

    >>> split_command_line(["--root", "/r", "parse", "--", "-x"])
    (['--root', '/r', 'parse'], ['--', '-x'])
    """
    position = 0
    while position < len(argv):
        token = argv[position]
        if token in GLOBAL_OPTIONS_WITH_VALUE:
            position += 2
            continue
        if token.startswith("-"):
            position += 1
            continue
        return list(argv[: position + 1]), list(argv[position + 1 :])
    return list(argv), []


def run(argv: Sequence[str], stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one command line; return the exit code (never raises for user errors)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        global_arguments, command_arguments = split_command_line(argv)
        top = global_parser().parse_args(global_arguments)
        module = importlib.import_module(COMMANDS[top.command])
        command_parser = Parser(prog=f"libimage {top.command}")
        handler: Callable[[Invocation], int] = module.build(top.command, command_parser)
        args = command_parser.parse_args(command_arguments)
        semantics = getattr(args, "semantics", None) or top.semantics
        options = GlobalOptions(
            root=top.root,
            runroot=top.runroot,
            storage_driver=top.storage_driver,
            storage_opts=tuple(top.storage_opt),
            storage_conf=top.storage_conf,
            registries_conf=top.registries_conf,
            semantics=semantics,
        )
        with collector_paused():
            return handler(Invocation(options, args, out, err))
    except UsageError as error:
        err.write(f"Error: {one_line(str(error))}\n")
        return EXIT_ERROR
    except CommandError as error:
        err.write(f"Error: {one_line(str(error))}\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write("Error: interrupted\n")
        return EXIT_ERROR
    except SystemExit as exit_request:
        # --help and --version exit 0 through argparse.
        code = exit_request.code
        return code if isinstance(code, int) else EXIT_ERROR


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run a command without the cyclic garbage collector (restored afterwards).

    A command reads one large snapshot (millions of objects at 100,000 images) and
    derives facts from it, none of which form cycles; the collector would scan that
    heap again and again as the facts are built (a third of a listing's time at
    10,000 images) and find nothing to free. Reference counting still frees
    everything that is dropped.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def one_line(text: str) -> str:
    """A message as one terminal-safe line: control characters escaped."""
    return escape_control(text.strip()).replace("\n", "\\n")


def escape_control(text: str) -> str:
    r"""Escape control characters (C0, DEL, C1) so that a name cannot drive the terminal.

    >>> escape_control("a\x1b[31mb\tc")
    'a\\x1b[31mb\\tc'
    """
    if text.isprintable():
        return text
    pieces: list[str] = []
    for char in text:
        code = ord(char)
        if char == "\t":
            pieces.append("\\t")
        elif char == "\n":
            pieces.append("\\n")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            pieces.append(f"\\x{code:02x}")
        elif not char.isprintable() and char != " ":
            pieces.append(f"\\u{code:04x}")
        else:
            pieces.append(char)
    return "".join(pieces)
