"""Deliberate bugs in the pure core, for the mutation check (issue #6, "what it must show").

Each :class:`Mutant` is a source patch to one file of ``pure/``: a piece of text that
must occur exactly once, and what replaces it. ``test_mutants.py`` applies each to a
temporary copy of the package (never to the working tree) and runs the fast subset
of the model checks (``checks.py``) against it: every mutant must be caught, and the
unmutated copy must pass. A patch that no longer applies (the code moved on) fails
the check with the mutant's name, so the list is kept up to date with the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Mutant:
    """One deliberate bug: where it goes, what it breaks, and the patch."""

    name: str
    rule: str  # the behaviour the bug breaks
    description: str
    path: str  # relative to the repository root
    old: str
    new: str

    def apply(self, source: str) -> str:
        """``source`` with the bug in; ValueError unless ``old`` occurs exactly once."""
        count = source.count(self.old)
        if count != 1:
            raise ValueError(
                f"mutant {self.name}: the patched text occurs {count} times in {self.path}"
            )
        return source.replace(self.old, self.new)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        name="bundling-forgets-to-dedupe",
        rule="RM-3",
        description="every name found gets a bundle of its own, even for an image already found",
        path="pure/remove.py",
        old="        entry = found.get(result.image.id)\n",
        new="        entry = None\n",
    ),
    Mutant(
        name="shared-layer-deleted",
        rule="SF-D-6",
        description="deleting an image deletes layers another image still uses",
        path="pure/storeops.py",
        old="if usage.used_by_container(layer) or usage.used_by_other_image(layer, image.id):",
        new="if usage.used_by_container(layer):",
    ),
    Mutant(
        name="containers-ignored",
        rule="RM-D5",
        description="an image a container uses is deleted without force",
        path="pure/remove.py",
        old="        users = self.state.live_containers_of(image.id)\n        if users:\n",
        new="        users = self.state.live_containers_of(image.id)[:0]\n        if users:\n",
    ),
    Mutant(
        name="short-name-candidates-reversed",
        rule="SN-2",
        description="short-name candidates are tried from the last search registry to the first",
        path="pure/lookup.py",
        old="candidates = [str(c) for c in resolve_locally(self.context.registries, name)]",
        new="candidates = [str(c) for c in resolve_locally(self.context.registries, name)][::-1]",
    ),
    Mutant(
        name="ambiguous-prefix-found",
        rule="ST-2",
        description="an ID prefix that several images share finds the first of them",
        path="pure/snapshot.py",
        old=(
            "    if start + 1 < len(sorted_ids) and sorted_ids[start + 1].startswith(prefix):\n"
            "        return None\n"
            "    return sorted_ids[start]\n"
        ),
        new="    return sorted_ids[start]\n",
    ),
    Mutant(
        name="untag-removes-first-name",
        rule="RM-T3",
        description="untagging a name removes the image's first name instead",
        path="pure/storeops.py",
        old="    return tuple(kept for kept in names if kept != name)\n",
        new="    return tuple(names[1:]) if name in names else tuple(names)\n",
    ),
    Mutant(
        name="names-history-order",
        rule="SF-N-3",
        description="SetNames moves the new names to the front of the history in reverse order",
        path="pure/storeops.py",
        old=(
            "    for name in wanted:\n"
            "        moved = [name, *(old for old in moved if old != name)]\n"
        ),
        new=(
            "    for name in reversed(wanted):\n"
            "        moved = [name, *(old for old in moved if old != name)]\n"
        ),
    ),
    Mutant(
        name="named-parent-pruned",
        rule="RM-D8",
        description="a parent left without children is pruned even though it has names",
        path="pure/remove.py",
        old=(
            '        """``IsDangling`` (IP-5): no names (as loaded) and no children now."""\n'
            "        if image.names:\n"
            "            return False\n"
        ),
        new='        """``IsDangling`` (IP-5): no names (as loaded) and no children now."""\n',
    ),
    Mutant(
        name="reference-star-crosses-slash",
        rule="FL-R4",
        description="a trailing * of a reference filter matches across '/'",
        path="pure/glob.py",
        old='            return b"/" not in name_bytes\n',
        new="            return True\n",
    ),
    Mutant(
        name="dangling-ignores-children",
        rule="IP-5",
        description="an image without names is dangling even when it has children",
        path="pure/filters.py",
        old=(
            '    """IP-5 with the memoised children answer: no names and no children."""\n'
            "    if image.names:\n"
            "        return False\n"
            "    found = has_children(snapshot, image)\n"
            "    return found if isinstance(found, Failure) else not found\n"
        ),
        new=(
            '    """IP-5 with the memoised children answer: no names and no children."""\n'
            "    return not image.names\n"
        ),
    ),
    Mutant(
        name="read-only-image-removed",
        rule="RM-D0",
        description="an image of a read-only additional store is not refused",
        path="pure/remove.py",
        old="            if current.record.read_only:\n",
        new="            if current.record.read_only and not current.record.read_only:\n",
    ),
    Mutant(
        name="digest-lookup-compares-repository",
        rule="LK-8",
        description="a name@digest lookup finds only an image stored under the same repository",
        path="pure/lookup.py",
        old=(
            "            image = self.snapshot.images[positions[0]]\n"
            "            # quirk (LK-8): the repository part of the name is ignored entirely.\n"
        ),
        new=(
            "            image = self.snapshot.images[positions[0]]\n"
            '            repository = name.partition("@")[0] + ":"\n'
            "            if not any(stored.startswith(repository) for stored in image.names):\n"
            '                raise self.unknown(name, "LK-8")\n'
        ),
    ),
    Mutant(
        name="manifest-list-returned-as-itself",
        rule="ML-4",
        description="a manifest list found by name is returned instead of its instance",
        path="pure/lookup.py",
        old="        if is_list:\n            instance = self.instance(candidate, image, wanted)\n",
        new=(
            "        if is_list and options.lookup_manifest:\n"
            "            instance = self.instance(candidate, image, wanted)\n"
        ),
    ),
    Mutant(
        name="force-not-needed-by-id",
        rule="RM-U3",
        description="an image with several names is deleted by ID without force",
        path="pure/remove.py",
        old="            if not self.options.force and count > 1:\n",
        new="            if not self.options.force and count > 1 and not by_id:\n",
    ),
    Mutant(
        name="removed-despite-children",
        rule="RM-D7",
        description="an image with children is reported removed",
        path="pure/remove.py",
        old="        if not has_children:\n            report.removed = True",
        new="        if True:\n            report.removed = True",
    ),
)
"""The deliberate bugs (at least 10), in the order the check reports them."""
