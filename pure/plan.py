"""The plan of effects that a removal produces, and what it reports.

A plan is data: the effects in the order the seed would carry them out, the reports
``RemoveImages`` returns (``RemoveImageReport``), the events it emits and the
per-name errors it aggregates. It says what *would* happen; carrying it out is the
adapter's job (``libimage.adapters.apply``), and ``libimage.pure.interpret`` applies
it to a snapshot in memory so that tests can compare the two.

Every effect is one storage call and carries the rule that put it there and why, so
``libimage rmi --dry-run --format json`` can explain itself. Every effect is
idempotent: applying it to a store where it already happened changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.errors import Failure
from libimage.pure.snapshot import ContainerID, ImageID, LayerID


@dataclass(frozen=True, slots=True)
class Untag:
    """Remove one name from an image (SetNames without it; SF-N-3, SF-N-5, RM-T3)."""

    image: ImageID
    name: str
    rule: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class RemoveContainer:
    """Delete a storage container: its read-write layer, record and directories (SF-D-C)."""

    container: ContainerID
    image: ImageID
    rule: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class DeleteImage:
    """Delete an image record and its big-data directory (SF-D-5)."""

    image: ImageID
    rule: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class DeleteLayer:
    """Delete a layer no longer used: flag incomplete, data, then the record (SF-D-11)."""

    layer: LayerID
    rule: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class RunContainerHook:
    """Call the caller's container-removal hook for an image (RM-C2), before locking."""

    image: ImageID
    rule: str = "RM-C2"
    why: str = ""


Effect = Untag | RemoveContainer | DeleteImage | DeleteLayer | RunContainerHook


class EventType(enum.Enum):
    """The event types removal emits (EV-1)."""

    REMOVE = "remove"
    UNTAG = "untag"


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the seed sends it on the runtime's event channel (EV-1..EV-4)."""

    id: ImageID
    name: str
    type: EventType


@dataclass(frozen=True, slots=True)
class RemoveImageReport:
    """``RemoveImageReport`` (RM-R1..RM-R4)."""

    id: ImageID
    untagged: PVector[str] = field(default_factory=pvector)
    removed: bool = False
    size: int = 0


@dataclass(frozen=True, slots=True)
class RemoveOptions:
    """``RemoveImagesOptions`` of the seed (RM-1..RM-4), as values.

    ``is_external_container`` is the seed's ``IsExternalContainerFunc``; it takes no
    part in equality. ``container_hook`` says whether the caller supplied a
    ``RemoveContainerFunc``: the plan then carries :class:`RunContainerHook` effects,
    which the adapter runs.
    """

    force: bool = False
    lookup_manifest: bool = False
    external_containers: bool = False
    is_external_container: Callable[[str], bool] | None = field(default=None, compare=False)
    container_hook: bool = False
    filters: PVector[str] = field(default_factory=pvector)
    with_size: bool = False


@dataclass(frozen=True, slots=True)
class RemovalPlan:
    """What ``RemoveImages`` would do: effects in order, reports, events, errors."""

    effects: PVector[Effect] = field(default_factory=pvector)
    reports: PVector[RemoveImageReport] = field(default_factory=pvector)
    events: PVector[Event] = field(default_factory=pvector)
    errors: PVector[Failure] = field(default_factory=pvector)
    warnings: PVector[str] = field(default_factory=pvector)


_EFFECT_NAMES: dict[type, str] = {
    Untag: "untag",
    RemoveContainer: "remove-container",
    DeleteImage: "delete-image",
    DeleteLayer: "delete-layer",
    RunContainerHook: "run-container-hook",
}


def effect_to_json(effect: Effect) -> dict[str, str]:
    """One effect as a JSON object: ``effect``, its subject fields, ``rule``, ``why``.

    >>> effect_to_json(Untag(ImageID("a" * 64), "localhost/foo:v2", "RM-U5", "requested"))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'effect': 'untag', 'image': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
     'name': 'localhost/foo:v2', 'rule': 'RM-U5', 'why': 'requested'}
    """
    document: dict[str, str] = {"effect": _EFFECT_NAMES[type(effect)]}
    match effect:
        case Untag(image=image_id, name=name):
            document.update(image=image_id, name=name)
        case RemoveContainer(container=container_id, image=image_id):
            document.update(container=container_id, image=image_id)
        case DeleteImage(image=image_id) | RunContainerHook(image=image_id):
            document.update(image=image_id)
        case DeleteLayer(layer=layer_id):
            document.update(layer=layer_id)
    document.update(rule=effect.rule, why=effect.why)
    return document


def plan_to_json(plan: RemovalPlan) -> dict[str, Any]:
    """The plan as a JSON-ready document (``libimage rmi --format json``, docs/removal.md).

    Keys, in order: ``effects`` (:func:`effect_to_json`), ``reports`` (``id``,
    ``untagged``, ``removed``, ``size``), ``events`` (``type``, ``id``, ``name``),
    ``errors`` (``kind`` as the upstream sentinel's name, ``subject``, ``message``,
    ``rule``) and ``warnings``.
    """
    return {
        "effects": [effect_to_json(effect) for effect in plan.effects],
        "reports": [
            {
                "id": report.id,
                "untagged": list(report.untagged),
                "removed": report.removed,
                "size": report.size,
            }
            for report in plan.reports
        ],
        "events": [
            {"type": event.type.value, "id": event.id, "name": event.name} for event in plan.events
        ],
        "errors": [
            {
                "kind": error.kind.value,
                "subject": error.subject,
                "message": error.message,
                "rule": error.rule,
            }
            for error in plan.errors
        ],
        "warnings": list(plan.warnings),
    }
