"""The host platform as a value for the pure core (decision 6, PLAT-4 item 1).

The pure core never asks the machine what it is; the command line calls
:func:`host_platform` once and passes the result in a ``Context``. Nothing is cached
here: each call reads ``uname`` (and, on arm hosts only, ``/proc/cpuinfo``) again.
"""

from __future__ import annotations

import platform
from pathlib import Path

from libimage.pure.context import Platform
from libimage.pure.platform import cpu_variant, go_arch

CPUINFO = Path("/proc/cpuinfo")


def host_platform(cpuinfo: Path = CPUINFO) -> Platform:
    """``linux``, the Go name of ``uname -m``, and the CPU variant on arm hosts only.

    The variant follows containers/image ``getCPUVariant``: ``arm`` and ``arm64`` read
    the ``CPU architecture`` line of ``/proc/cpuinfo`` (:func:`cpu_variant`); other
    architectures have none, and an unreadable file means no variant, as upstream.
    """
    arch = go_arch(platform.machine())
    variant = ""
    if arch in ("arm", "arm64"):
        try:
            text = cpuinfo.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        variant = cpu_variant(arch, text)
    return Platform("linux", arch, variant)
