"""libimage: find, list and remove container images in a containers-storage store.

A reimplementation of the ``Runtime`` of containers/common's libimage
(``Exists``, ``LookupImage``, ``ResolveName``, ``ListImages``, ``RemoveImages``) as a
pure functional core over immutable store snapshots (:mod:`libimage.pure`), a thin
I/O shell (:mod:`libimage.adapters`) and an executable specification
(:mod:`libimage.spec`).

Public names are imported lazily so that ``import libimage`` stays cheap for the
command line.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Runtime": "libimage.adapters.runtime",
    "LookupOptions": "libimage.pure.lookup",
    "RemoveOptions": "libimage.pure.plan",
    "Semantics": "libimage.pure.semantics",
    "PROFILES": "libimage.pure.semantics",
    "Snapshot": "libimage.pure.snapshot",
    "StoredImage": "libimage.pure.snapshot",
    "Layer": "libimage.pure.snapshot",
    "Container": "libimage.pure.snapshot",
    "Context": "libimage.pure.context",
    "Platform": "libimage.pure.context",
    "ErrorKind": "libimage.pure.errors",
    "Failure": "libimage.pure.errors",
    "LibimageError": "libimage.pure.errors",
}

__all__ = [
    "PROFILES",
    "Container",
    "Context",
    "ErrorKind",
    "Failure",
    "Layer",
    "LibimageError",
    "LookupOptions",
    "Platform",
    "RemoveOptions",
    "Runtime",
    "Semantics",
    "Snapshot",
    "StoredImage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'libimage' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
