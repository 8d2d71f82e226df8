"""The registries.conf v2 model and local short-name resolution (SN-*).

Reading the files is an adapter (``libimage.adapters.registries_conf``); the core
takes the merged configuration as a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap, PVector


@dataclass(frozen=True, slots=True)
class RegistriesConfig:
    """The merged registries configuration that local lookups need (SN-4..SN-6).

    ``aliases`` come from registries.conf and its drop-ins, merged (later files win,
    ``""`` masks an earlier alias). ``cached_aliases`` come from the user's
    short-name alias cache, which has priority whenever it has the key (SN-5).
    """

    unqualified_search_registries: PVector[str] = field(default_factory=pvector)
    aliases: PMap[str, str] = field(default_factory=pmap)
    cached_aliases: PMap[str, str] = field(default_factory=pmap)
    short_name_mode: str = "permissive"
