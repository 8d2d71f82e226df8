"""ST-3: an image's digest list, and what it means for lookups when ``digest`` is unset.

containers-storage fills the digest list from the stored ``digest`` and the digests
of every ``manifest*`` big-data item; a record without ``digest`` (older writers)
takes the first of those as its ``Digest()``. Lookups by digest (LK-8) and the
``RepoDigests`` of a listing go through that list, so such an image must still be
found by its manifest's digest. Expected digests are computed here from the
manifest bytes, not read back from the record.
"""

from __future__ import annotations

import hashlib

from libimage.pure.context import Context
from libimage.pure.lookup import LookupOptions, lookup_image
from libimage.pure.snapshot import image_digest, image_digests
from libimage.spec.builders import BuiltImage, image, layer_chain, snapshot

NAME = "localhost/nodigest:1"


def _without_digest() -> tuple[BuiltImage, str]:
    built = image("st-3", [NAME], layers=layer_chain("st-3"), set_digest=False)
    manifest = "sha256:" + hashlib.sha256(built.blobs["manifest"]).hexdigest()
    return built, manifest


def test_an_unset_digest_falls_back_to_the_manifest_digest() -> None:
    built, manifest = _without_digest()
    record = built.record
    assert record.digest == ""
    assert image_digest(record) == manifest
    assert image_digests(record) == (manifest,)


def test_the_stored_digest_comes_first() -> None:
    built = image("st-3b", [NAME], layers=layer_chain("st-3b"))
    manifest = "sha256:" + hashlib.sha256(built.blobs["manifest"]).hexdigest()
    assert built.record.digest == manifest
    assert image_digests(built.record)[0] == manifest


def test_an_image_without_digest_is_found_by_its_manifest_digest() -> None:
    """LK-8 searches the digest list, so the fallback digest finds the image."""
    built, manifest = _without_digest()
    snap = snapshot([built])
    found = lookup_image(snap, f"localhost/nodigest@{manifest}", LookupOptions(), Context())
    assert found.image is not None
    assert found.image.id == built.record.id
