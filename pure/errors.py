"""Typed errors of the pure core.

Every refusal and error the behaviour references define is a value with a
``kind`` that tests compare (decision 5); the text follows podman's wording so that
the CLI prints what podman prints, but no test outside the CLI differential tests
compares a whole message.

Two shapes exist (style.md section 6):

* :class:`Failure` is a value: lookups return it, plans collect it.
* :class:`LibimageError` is the exception a caller who prefers exceptions gets; it
  carries a :class:`Failure`. Pure parsing helpers raise it (never a bare
  ``ValueError``) so that the input they reject is always named.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorKind(enum.Enum):
    """Error kinds; the value is the upstream sentinel's name where one exists."""

    # Reference grammar (REF-3, REF-4, REF-5, NORM-1).
    REFERENCE_INVALID_FORMAT = "ErrReferenceInvalidFormat"
    TAG_INVALID_FORMAT = "ErrTagInvalidFormat"
    DIGEST_INVALID_FORMAT = "ErrDigestInvalidFormat"
    NAME_CONTAINS_UPPERCASE = "ErrNameContainsUppercase"
    NAME_EMPTY = "ErrNameEmpty"
    NAME_TOO_LONG = "ErrNameTooLong"
    NAME_NOT_CANONICAL = "ErrNameNotCanonical"
    DIGEST_INVALID_LENGTH = "ErrDigestInvalidLength"
    DIGEST_UNSUPPORTED = "ErrDigestUnsupported"
    CHECKSUM_INVALID_FORMAT = "ErrChecksumInvalidFormat"
    NAME_IS_HEX_ID = "ErrNameIsHexID"  # NORM-1 rule 1: a 64-hex repository name

    # Lookup (LK, TR, ML, DIV-2).
    IMAGE_UNKNOWN = "ErrImageUnknown"
    NOT_A_MANIFEST_LIST = "ErrNotAManifestList"
    UNSUPPORTED_TRANSPORT = "ErrUnsupportedTransport"
    INVALID_STORAGE_REFERENCE = "ErrInvalidReference"
    PATH_NOT_ABSOLUTE = "ErrPathNotAbsolute"
    NAMES_ANOTHER_STORE = "ErrNamesAnotherStore"  # decision 8
    INVALID_ID_FORMAT = "ErrInvalidIDFormat"  # DIV-2: sha256: without 64 hex
    MANIFEST_LIST_LOAD = "ErrManifestListLoad"  # ML-2, ML-4 loading failures
    IMAGE_CORRUPTED = "ErrImageCorrupted"  # IP-12, EX-1
    REGISTRIES_CONF = "ErrRegistriesConf"  # SN-3..SN-5
    LAYER_UNKNOWN = "ErrLayerUnknown"  # IP-13: "layer not known" (RM-D1 sets Size -1)

    # Listing and filters (FL-P*, FL-T*, FL-U*).
    FILTER_INVALID_FORMAT = "ErrFilterInvalidFormat"
    FILTER_UNSUPPORTED = "ErrFilterUnsupported"
    FILTER_REPEATED = "ErrFilterRepeated"
    FILTER_INVALID_VALUE = "ErrFilterInvalidValue"
    FILTER_IMAGE_LOOKUP = "ErrFilterImageLookup"
    FILTER_TIME = "ErrFilterTime"
    FILTER_NEEDS_CALLBACK = "ErrFilterNeedsCallback"
    FILTER_RUNTIME = "ErrFilterRuntime"

    # Removal (RM-E2, decisions 10 and 19).
    IMAGE_IN_USE = "ErrImageUsedByContainer"
    READ_ONLY = "ErrReadOnlyImage"
    NEEDS_FORCE_BY_ID = "ErrNeedsForceByID"
    NEEDS_FORCE_BY_DIGEST = "ErrNeedsForceByDigest"
    TAG_NOT_KNOWN = "ErrTagNotKnown"
    UNTAG_BY_DIGEST = "ErrUntagByDigest"
    NOT_EXTERNAL_CONTAINER = "ErrNotExternalContainer"
    EXTERNAL_CALLBACK = "ErrExternalCallback"
    PODMAN_CONTAINER = "ErrPodmanContainer"
    INVALID_RECORD_ID = "ErrInvalidRecordID"
    ALL_WITH_NAMES = "ErrAllWithNames"
    NO_NAMES = "ErrNoNames"
    INTERNAL = "ErrInternal"

    # The store on disk (adapters; SF-I-20, SF-I-21, decision 9). The message names the file.
    STORE_MISSING = "ErrStoreMissing"  # the graph root or a required lock file is absent
    STORE_UNREADABLE = "ErrStoreUnreadable"  # a store file exists but cannot be read
    STORE_CORRUPT = "ErrStoreCorrupt"  # a non-empty metadata file that does not parse
    STORE_UNWRITABLE = "ErrStoreUnwritable"  # a write failed (ENOSPC, EROFS, EACCES, immutable)

    # Store configuration (SF-CF-1..6, SF-RO-1): a malformed storage.conf or driver option.
    STORE_CONFIG = "ErrStoreConfig"


@dataclass(frozen=True, slots=True)
class Failure:
    """One error as a value: what kind, which input it names, the text, the rule.

    ``subject`` is exactly what the caller passed (a name, a filter string, an ID).
    ``message`` is the full text podman would print after ``Error: ``.
    """

    kind: ErrorKind
    subject: str
    message: str
    rule: str = ""

    def __str__(self) -> str:
        return self.message


class LibimageError(Exception):
    """An error raised to callers who prefer exceptions; carries a :class:`Failure`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure

    @property
    def kind(self) -> ErrorKind:
        return self.failure.kind


def fail(kind: ErrorKind, subject: str, message: str, rule: str = "") -> LibimageError:
    """Build the exception for ``kind`` naming ``subject`` (to be raised by the caller)."""
    return LibimageError(Failure(kind, subject, message, rule))


def wrap_unknown(subject: str, rule: str = "") -> Failure:
    """``wrap(ErrImageUnknown, subject)``: the text ``<subject>: image not known``."""
    return Failure(ErrorKind.IMAGE_UNKNOWN, subject, f"{subject}: image not known", rule)
