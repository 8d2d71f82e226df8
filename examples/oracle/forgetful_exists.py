#!/usr/bin/env python3
"""A deliberately broken implementation, for the oracle's worked example (docs/oracle.md).

It is libimage's command line with one planted bug: ``exists`` never looks an ID
prefix up (ST-2). Any argument made of hex digits (with or without ``sha256:``) that is
shorter than a full 64-character ID is answered "missing" (exit 1) without looking at
the store; every other command and argument goes to libimage unchanged.

    python forgetful_exists.py --root R --runroot RR --storage-driver vfs exists 0a1b
"""

from __future__ import annotations

import re
import sys

from libimage.adapters.cli import run, split_command_line

_SHORT_HEX = re.compile(r"(sha256:)?[0-9a-f]{1,63}")


def main(argv: list[str]) -> int:
    """Run ``argv`` as libimage would, except ``exists`` of an ID prefix."""
    command_line, arguments = split_command_line(argv)
    asks_exists = bool(command_line) and command_line[-1] == "exists"
    if asks_exists and arguments and _SHORT_HEX.fullmatch(arguments[-1]):
        return 1  # the bug: an ID prefix is never looked up
    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
