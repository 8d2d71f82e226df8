"""Local image lookup: ``LookupImage``, ``Exists`` and ``ResolveName`` (LK, EX, RN).

This module's types are the contract other parts of the core build on (listing
resolves ``since``/``before`` and names through :func:`lookup_image`; removal looks
up every requested name through it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.errors import Failure
from libimage.pure.snapshot import StoredImage


@dataclass(frozen=True, slots=True)
class LookupOptions:
    """``LookupImageOptions`` (LK-1), including the two internal flags of the seed."""

    architecture: str = ""
    os: str = ""
    variant: str = ""
    manifest_list: bool = False
    lookup_manifest: bool = False  # only manifest lists are acceptable (RemoveImages)
    return_manifest_if_no_instance: bool = False  # RemoveImages without LookupManifest


class StepOutcome(enum.Enum):
    """What happened to one candidate the lookup tried (the explain trace)."""

    NOT_IN_STORE = "not in store"
    AMBIGUOUS_PREFIX = "ambiguous ID prefix"
    PLATFORM_MISMATCH = "platform mismatch"
    MANIFEST_LIST_INSTANCE = "manifest list resolved to instance"
    MANIFEST_LIST_RETURNED = "manifest list returned"
    NO_INSTANCE = "no matching instance in manifest list"
    NOT_A_MANIFEST_LIST = "not a manifest list"
    CORRUPTED_TOLERATED = "corrupted image returned as is"
    SKIPPED = "skipped"
    ERROR = "error"
    CHOSEN = "chosen"


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a lookup: the candidate tried, the rule, and what came of it."""

    candidate: str
    rule: str
    outcome: StepOutcome
    detail: str = ""
    image_id: str = ""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The image found (or the failure) with the name it was found under, and the trace.

    Exactly one of ``image`` and ``failure`` is set. ``resolved_name`` is what the
    seed returns as its second value (empty for ``containers-storage:`` names).
    """

    image: StoredImage | None
    resolved_name: str = ""
    failure: Failure | None = None
    trace: PVector[TraceStep] = field(default_factory=pvector)

    @property
    def found(self) -> bool:
        return self.image is not None
