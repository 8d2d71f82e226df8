"""Everything the seed reads from the machine, as values (decision 6).

The host platform, the system context's platform choices, the registries
configuration, the semantics profile, the current time and the local UTC offset
arrive here as arguments; ``pure/`` never asks the machine for any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from libimage.pure.errors import Failure
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import SEED, Semantics


@dataclass(frozen=True, slots=True)
class Platform:
    """An OS/architecture/variant triple in Go's names (``linux``, ``amd64``, ``v8``)."""

    os: str
    architecture: str
    variant: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """The machine-dependent inputs of lookups, listings and removal plans.

    ``os_choice``/``architecture_choice``/``variant_choice`` are the runtime's system
    context choices (normally empty; LK-5, ML-3). ``now_ns`` and ``utc_offset_seconds``
    are only needed by the ``until`` filter (FL-U*); ``None`` there is a caller bug.
    ``store_graph_root``/``store_driver`` identify the runtime's store (TR-3, decision 8).
    """

    host: Platform = field(default_factory=lambda: Platform("linux", "amd64"))
    registries: RegistriesConfig = field(default_factory=RegistriesConfig)
    semantics: Semantics = SEED
    os_choice: str = ""
    architecture_choice: str = ""
    variant_choice: str = ""
    now_ns: int | None = None
    utc_offset_seconds: int = 0
    # The runtime's own store (decision 8): a ``containers-storage:[spec]`` name whose
    # spec names this store (graph root, driver, run root: TR-3) is resolved in the
    # snapshot; any other store is refused. Empty: no store is "ours".
    store_graph_root: str = ""
    store_driver: str = ""
    store_run_root: str = ""
    # SN-3..SN-5: why the registries configuration did not load (None: it did). Short-name
    # resolution then fails, which a lookup reports as "image not known" (LK-7).
    registries_error: Failure | None = None
