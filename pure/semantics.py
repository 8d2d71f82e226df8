"""The semantics profiles: where podman 4.3.1 differs from the seed (decision 1).

Every difference between the seed (containers/common b2d805ef) and podman 4.3.1
(containers/common v0.50.1, containers/storage 1.43) is one named field of the
immutable :class:`Semantics` value. Code asks the field, never the profile's name,
so there is one code path and a profile is nothing but a set of answers.

>>> PROFILES["seed"].short_names_before_id_prefix
False
>>> PROFILES["podman-4.3"].short_names_before_id_prefix
True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class PlatformPolicy(enum.Enum):
    """How a lookup treats an image whose platform does not match (LK-9 step 5, DIV-4)."""

    # Seed: compare each non-empty option verbatim with the image's config; a
    # mismatch discards the candidate unless the candidate is an ID prefix.
    SEED = "seed"
    # Podman 4.3.1: ID-prefix candidates skip the check; both sides are normalised
    # and empty values default to the host; a mismatch discards the image only when
    # the caller asked for a platform; corrupted images are never discarded.
    NORMALIZED_IF_REQUESTED = "normalized-if-requested"


@dataclass(frozen=True, slots=True)
class Semantics:
    """One answer per behaviour where the seed and podman 4.3.1 differ."""

    name: str

    # Lookup (behaviour-lookup.md section 11).
    short_names_before_id_prefix: bool  # DIV-1
    sha256_needs_full_id: bool  # DIV-2
    digest_match_runs_lookup_checks: bool  # DIV-3
    platform_policy: PlatformPolicy  # DIV-4
    normalize_platform_keeps_default_variant: bool  # DIV-5
    # LN-2: NormalizeName's parse error reads "normalizing name ..." instead of
    # "error normalizing name ..." (common c71a7835, "Fix stutters", in v0.50.0).
    normalize_name_error_drops_error_prefix: bool
    # TR-1: the transports registered besides containers-storage differ. The seed's
    # standard build registers "atomic" (openshift); the podman 4.3.1 build here does
    # not (`atomic:a/b:1` is an invalid reference there), and containers/image 5.23
    # added "sif". Observed with podman 4.3.1 (`image exists sif:x`, `atomic:a/b:1`).
    atomic_transport_registered: bool
    sif_transport_registered: bool
    # TR-3, decision 8: which store a ``containers-storage:[spec]`` names. containers/storage
    # 1.37 (seed) recognises its open store by graph root (and driver, if given); 1.43
    # also needs the same run root, and fills a missing root from the defaults
    # (so such a spec names another store). Observed with podman 4.3.1.
    store_spec_needs_run_root: bool

    # Listing (behaviour-list-remove.md FL-P6, POD-F-10, POD-F-12, POD-F-15).
    filter_negation: bool  # POD-F-15: `key!=value`
    repeated_filter_same_value_allowed: bool  # POD-F-10 vs FL-P6
    filter_format_message_mentions_negation: bool  # POD-F-12
    # FL-T8: containers/common v0.50.1 MatchLabelFilters also matches a label key
    # containing "*" as the glob "*<key>*" (observed: podman 4.3.1 `label=col*`).
    label_filter_key_wildcards: bool

    # Removal (RM-D5, EV-4, decision 16).
    in_use_message_has_hint: bool  # RM-D5
    # RM-D5: storage 1.43 words its in-use error "image used by <cid>: ..." where the
    # seed's storage (bf170b3) writes "Image used by <cid>: ..." (SF-D-3).
    in_use_message_lowercase: bool
    untag_events_on_delete: bool  # EV-4, POD-E-1
    force_ignores_unknown_names: bool  # decision 16

    def with_changes(self, **changes: object) -> Semantics:
        """A copy with some switches flipped (for tests that isolate one difference)."""
        return replace(self, **changes)  # type: ignore[arg-type]


SEED = Semantics(
    name="seed",
    short_names_before_id_prefix=False,
    sha256_needs_full_id=False,
    digest_match_runs_lookup_checks=False,
    platform_policy=PlatformPolicy.SEED,
    normalize_platform_keeps_default_variant=False,
    normalize_name_error_drops_error_prefix=False,
    atomic_transport_registered=True,
    sif_transport_registered=False,
    store_spec_needs_run_root=False,
    filter_negation=False,
    repeated_filter_same_value_allowed=False,
    filter_format_message_mentions_negation=False,
    label_filter_key_wildcards=False,
    in_use_message_has_hint=False,
    in_use_message_lowercase=False,
    untag_events_on_delete=False,
    force_ignores_unknown_names=False,
)

PODMAN_4_3 = Semantics(
    name="podman-4.3",
    short_names_before_id_prefix=True,
    sha256_needs_full_id=True,
    digest_match_runs_lookup_checks=True,
    platform_policy=PlatformPolicy.NORMALIZED_IF_REQUESTED,
    normalize_platform_keeps_default_variant=True,
    normalize_name_error_drops_error_prefix=True,
    atomic_transport_registered=False,
    sif_transport_registered=True,
    store_spec_needs_run_root=True,
    filter_negation=True,
    repeated_filter_same_value_allowed=True,
    filter_format_message_mentions_negation=True,
    label_filter_key_wildcards=True,
    in_use_message_has_hint=True,
    in_use_message_lowercase=True,
    untag_events_on_delete=True,
    force_ignores_unknown_names=True,
)

PROFILES: dict[str, Semantics] = {SEED.name: SEED, PODMAN_4_3.name: PODMAN_4_3}
