"""The ``Runtime`` façade: a store, its configuration, and the lookups over its snapshot.

A thin shell around the pure core, shaped like containers/common's ``Runtime``
(``RuntimeFromStoreOptions``): it knows where the store is, reads the machine's
configuration once (host platform, registries.conf, the system context's defaults),
and answers ``exists``/``lookup_image``/``resolve_name`` by handing a snapshot and a
:class:`~libimage.pure.context.Context` to :mod:`libimage.pure.lookup`. It decides
nothing about images itself.

The snapshot is re-read only when the store changed: every call takes the store's
read locks, compares the last-writer tokens (SF-K-5) and ``layers.json``'s
modification time with those of the snapshot it holds, and reads the store again
only when one differs (or when a lock file is missing, so that nothing can be
compared). A long-lived runtime therefore sees a ``podman tag`` made meanwhile.

System context (seed ``RuntimeFromStore``): the registries.conf path is the one
given, else ``CONTAINERS_REGISTRIES_CONF`` if that variable exists (even empty),
else ``REGISTRIES_CONFIG_PATH`` (SN-3); the big-files temporary directory is
``TMPDIR`` or ``/var/tmp``. A registries configuration that does not load does not
stop the runtime: as in the seed, short-name resolution then fails and names that
need it are "image not known" (LK-7); the error is kept in the context.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from libimage.adapters.host import host_platform
from libimage.adapters.locks import (
    store_read_locks,
)
from libimage.adapters.registries_conf import (
    load_registries_config,
    registries_conf_path_from_env,
)
from libimage.adapters.storage_conf import StoreOptions, discover_store_options
from libimage.adapters.store import (
    ReadResult,
    StoreLayout,
    current_tokens,
    read_snapshot_held,
    resolve_layout,
    tokens_changed,
)
from libimage.pure.context import Context, Platform
from libimage.pure.errors import Failure, LibimageError
from libimage.pure.lookup import (
    ExistsResult,
    LookupOptions,
    LookupResult,
    check_exists,
    lookup_image,
    resolve_name,
)
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import SEED, Semantics
from libimage.pure.snapshot import Snapshot

if TYPE_CHECKING:  # removal is imported when it is used: lookups stay lean
    from pyrsistent.typing import PVector

    from libimage.adapters.apply import ContainerHook, EventChannel, RemovalOutcome
    from libimage.pure.filters import IsExternal
    from libimage.pure.listing import ListResult
    from libimage.pure.plan import RemoveImageReport, RemoveOptions

DEFAULT_BIG_FILES_TEMPORARY_DIR = "/var/tmp"


@dataclass(frozen=True, slots=True)
class SystemContext:
    """The parts of containers/image's ``SystemContext`` that the runtime sets or uses."""

    system_registries_conf_path: str = ""  # SN-3: "" = not set
    big_files_temporary_dir: str = ""
    os_choice: str = ""  # LK-5, ML-3
    architecture_choice: str = ""
    variant_choice: str = ""


def big_files_temporary_dir(environ: Mapping[str, str]) -> str:
    """libimage ``tmpdir``: ``TMPDIR`` when set and non-empty, else ``/var/tmp``."""
    return environ.get("TMPDIR", "") or DEFAULT_BIG_FILES_TEMPORARY_DIR


def _home(environ: Mapping[str, str], uid: int) -> str:
    home = environ.get("HOME", "")
    if home:
        return home
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return "/"


class Runtime:
    """A store and its configuration; lookups over its current snapshot.

    Build it with :meth:`from_options` (store options known) or :meth:`from_flags`
    (podman's global flags and the environment). Methods raise
    :class:`~libimage.pure.errors.LibimageError` for store errors (a missing store,
    a metadata file that does not parse: the message names the file).
    """

    def __init__(
        self,
        store_options: StoreOptions,
        system_context: SystemContext,
        registries: RegistriesConfig | Failure,
        semantics: Semantics,
        host: Platform,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._store_options = store_options
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._system_context = system_context
        self._registries = registries
        self._semantics = semantics
        self._host = host
        self._layout: StoreLayout | None = None
        self._read: ReadResult | None = None
        self._reads = 0
        self._closed = False
        self._events: EventChannel | None = None

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_options(
        cls,
        store_options: StoreOptions,
        *,
        registries_conf: str | None = None,
        semantics: Semantics = SEED,
        os_choice: str = "",
        architecture_choice: str = "",
        variant_choice: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> Runtime:
        """``RuntimeFromStoreOptions``: a runtime for the store ``store_options`` names.

        ``registries_conf`` is the ``SystemRegistriesConfPath`` (else the environment,
        SN-3); the choices are the system context's platform choices (LK-5, ML-3);
        ``environ`` defaults to the process environment. Nothing is read from the
        store yet.
        """
        env = os.environ if environ is None else environ
        uid = os.geteuid()
        system_context = SystemContext(
            system_registries_conf_path=registries_conf_path_from_env(registries_conf, env),
            big_files_temporary_dir=big_files_temporary_dir(env),
            os_choice=os_choice,
            architecture_choice=architecture_choice,
            variant_choice=variant_choice,
        )
        registries: RegistriesConfig | Failure
        try:
            registries = load_registries_config(
                system_context.system_registries_conf_path or None, env, _home(env, uid), uid
            )
        except LibimageError as error:
            registries = error.failure
        return cls(
            store_options, system_context, registries, semantics, host_platform(), environ=env
        )

    @classmethod
    def from_flags(
        cls,
        *,
        root: str | None = None,
        runroot: str | None = None,
        storage_driver: str | None = None,
        storage_opts: tuple[str, ...] = (),
        storage_conf: str | None = None,
        registries_conf: str | None = None,
        semantics: Semantics = SEED,
        environ: Mapping[str, str] | None = None,
    ) -> Runtime:
        """A runtime for podman's global storage flags and the environment (SF-CF-1..6)."""
        env = os.environ if environ is None else environ
        uid = os.geteuid()
        options = discover_store_options(
            root=root,
            runroot=runroot,
            driver=storage_driver,
            storage_opts=storage_opts,
            storage_conf=storage_conf,
            environ=env,
            uid=uid,
            home=_home(env, uid),
        )
        return cls.from_options(
            options, registries_conf=registries_conf, semantics=semantics, environ=env
        )

    # -- state -------------------------------------------------------------------------

    @property
    def store_options(self) -> StoreOptions:
        return self._store_options

    @property
    def semantics(self) -> Semantics:
        return self._semantics

    def system_context(self) -> SystemContext:
        """A copy of the runtime's system context (seed ``SystemContext()``)."""
        return replace(self._system_context)

    def _resolved_layout(self) -> StoreLayout:
        self._check_open()
        if self._layout is None:
            self._layout = resolve_layout(self._store_options)
        return self._layout

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the runtime has been shut down")

    def read(self) -> ReadResult:
        """The current read of the store: the held one unless the store changed (SF-K-5)."""
        layout = self._resolved_layout()
        with store_read_locks(layout.lock_paths) as held:
            if self._read is not None and not tokens_changed(
                self._read.tokens, current_tokens(layout, held)
            ):
                return self._read
            self._read = read_snapshot_held(layout, held)
            self._reads += 1
            return self._read

    def read_for_lookup(self, name: str, options: LookupOptions | None = None) -> ReadResult:
        """The read a lookup of ``name`` needs (issue #7 item 4).

        With the persistent index (:mod:`libimage.adapters.cache`, enabled unless the
        environment disables it) and an index valid for the store's current state: a
        snapshot of every record a lookup of ``name`` could examine, and the full
        read's warnings. Otherwise the full read (:meth:`read`). The pure lookup gives
        the same answer on either; only the lookups of ``name`` may use the result.
        """
        from libimage.adapters.cache import cache_directory, read_for_lookup

        if cache_directory(self._environ) is None:
            return self.read()
        layout = self._resolved_layout()
        read, full = read_for_lookup(layout, name, options, self.context(), self._environ)
        if full:
            self._read = read
            self._reads += 1
        return read

    def snapshot(self) -> Snapshot:
        """The store's snapshot, re-read only when its last-writer tokens changed."""
        return self.read().snapshot

    @property
    def reads(self) -> int:
        """How many times the store has been read (for tests of the re-read rule)."""
        return self._reads

    def context(self) -> Context:
        """The pure core's inputs: host, registries, profile, choices, store identity."""
        layout = self._resolved_layout()
        system = self._system_context
        registries = self._registries
        return Context(
            host=self._host,
            registries=registries
            if isinstance(registries, RegistriesConfig)
            else RegistriesConfig(),
            registries_error=registries if isinstance(registries, Failure) else None,
            semantics=self._semantics,
            os_choice=system.os_choice,
            architecture_choice=system.architecture_choice,
            variant_choice=system.variant_choice,
            store_graph_root=layout.graph_root,
            store_driver=layout.driver,
            store_run_root=layout.run_root,
        )

    # -- lookups -----------------------------------------------------------------------

    def lookup_image(self, name: str, options: LookupOptions | None = None) -> LookupResult:
        """``LookupImage`` (LK): the result carries the image or the failure, and the trace."""
        snapshot = self.snapshot()
        return lookup_image(snapshot, name, options, self.context())

    def check_exists(self, name: str) -> ExistsResult:
        """``Exists`` with its reasons (EX-1)."""
        snapshot = self.snapshot()
        return check_exists(snapshot, name, self.context())

    def exists(self, name: str) -> bool:
        """``Exists`` (EX-1); failures other than "image not known" are raised."""
        checked = self.check_exists(name)
        if checked.failure is not None:
            raise LibimageError(checked.failure)
        return checked.exists

    def resolve_name(self, name: str) -> str:
        """``ResolveName`` (RN-1); failures are raised."""
        snapshot = self.snapshot()
        resolved = resolve_name(snapshot, name, self.context())
        if isinstance(resolved, Failure):
            raise LibimageError(resolved)
        return resolved

    # -- listing -----------------------------------------------------------------------

    def list_images(
        self,
        names: Sequence[str] | None = None,
        filters: Sequence[str] = (),
        *,
        is_external_container: IsExternal | None = None,
        now_ns: int | None = None,
    ) -> ListResult:
        """``ListImages(names, {Filters, IsExternalContainerFunc})`` (LS-1..LS-6).

        ``filters`` are ``key=value`` strings as the seed takes them (FL-P1); no
        ``intermediate=false`` is added (that is podman's CLI, decision 14).
        ``until`` compares with ``now_ns`` (default: the clock) in the machine's local
        zone (decision 6). The result carries the images in order or the failure that
        aborted the listing (LS-2, FL-P*), and the per-image errors and warnings.
        """
        from libimage.pure.listing import list_images

        snapshot = self.snapshot()
        context = self.listing_context(now_ns)
        return list_images(snapshot, names or (), filters, context, is_external_container)

    def listing_context(self, now_ns: int | None = None) -> Context:
        """:meth:`context` with the clock ``until`` and the table read (decision 6).

        ``now_ns`` defaults to the clock; the UTC offset is the local zone's at that
        instant (Go's ``now.Zone()``).
        """
        import time

        when = time.time_ns() if now_ns is None else now_ns
        offset = time.localtime(when // 1_000_000_000).tm_gmtoff
        return replace(self.context(), now_ns=when, utc_offset_seconds=offset)

    # -- removal -----------------------------------------------------------------------

    def event_channel(self) -> EventChannel:
        """``EventChannel()`` (EV-1): the runtime's events, created on the first call.

        Without a channel no events are produced; once it exists, every removal sends
        its Remove and Untag events to it (EV-2..EV-4) after it has been carried out.
        """
        self._check_open()
        if self._events is None:
            from libimage.adapters.apply import EventChannel

            self._events = EventChannel()
        return self._events

    def remove_images(
        self,
        names: Sequence[str],
        options: RemoveOptions | None = None,
        *,
        container_hook: ContainerHook | None = None,
    ) -> tuple[PVector[RemoveImageReport], PVector[Failure]]:
        """``RemoveImages(names, options)`` (RM-1): the reports and the per-name errors.

        ``None`` options are all defaults (RM-1). ``container_hook`` is the seed's
        ``RemoveContainerFunc`` (set ``options.container_hook`` for the plan to call
        it, RM-C2). Store errors and refusals are raised
        (:class:`~libimage.pure.errors.LibimageError`); see
        :func:`libimage.adapters.apply.remove_images`, and :meth:`remove_images_outcome`
        for the plan, the warnings and a dry run.
        """
        outcome = self.remove_images_outcome(names, options, container_hook=container_hook)
        return outcome.reports, outcome.errors

    def remove_images_outcome(
        self,
        names: Sequence[str],
        options: RemoveOptions | None = None,
        *,
        dry_run: bool = False,
        container_hook: ContainerHook | None = None,
    ) -> RemovalOutcome:
        """:meth:`remove_images` with everything the removal noticed (plan, warnings)."""
        from libimage.adapters.apply import remove_images
        from libimage.pure.plan import RemoveOptions

        self._check_open()
        outcome = remove_images(
            self._store_options,
            names,
            options if options is not None else RemoveOptions(),
            self.context(),
            dry_run=dry_run,
            container_hook=container_hook,
            events=self._events,
        )
        if outcome.applied:
            self._read = None  # our own write: the next call reads the store again
        return outcome

    def shutdown(self) -> None:
        """Forget the snapshot; the runtime cannot be used afterwards (seed ``Shutdown``)."""
        self._read = None
        self._closed = True
