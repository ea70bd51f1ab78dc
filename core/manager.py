"""The plugin manager: loads plugins one at a time and keeps what they register.

The built-in plugins are registered by import (:data:`BUILTINS`), so broken
or missing package metadata can never leave recfw without its triggers,
encoders and sinks; third-party plugins come in through the ``recfw``
entry-point group (or :meth:`Plugins.register` in tests and embedding
programs). Both take the same path, :meth:`Plugins.register`: each plugin is
registered and asked for its triggers, encoders, sinks and sources inside its
own ``try``; a plugin that fails is recorded in :attr:`Plugins.failures` with
its name, distribution and error, and the rest keep working.

Environment variables:

``RECFW_STRICT_PLUGINS=1``
    A plugin failure raises :class:`~recfw.errors.PluginError` instead (for CI).
``RECFW_PLUGINS=a,b``
    Allow-list: load only entry points (or distributions) with these names.
``RECFW_DISABLE_PLUGINS=a,b``
    Block-list: never load these entry points (or distributions).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import pluggy

from . import __version__, hookspecs
from .encoding import Encoder
from .errors import PluginError, describe
from .sources import Source
from .storage import Sink
from .triggers import Trigger

if TYPE_CHECKING:
    import click

    from .config import Config
    from .events import Event

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "recfw"
BUILTIN_DISTRIBUTION = "recfw"

#: The built-in plugins: name -> module, registered by import in this order.
#: (recfw's own entry points list the same names; they are skipped.)
BUILTINS = {
    "triggers": "recfw.plugins.triggers",
    "encoders": "recfw.plugins.encoders",
    "sinks": "recfw.plugins.sinks",
    "sources": "recfw.plugins.sources",
    "webhooks": "recfw.plugins.webhooks",
}

Kind = Literal["triggers", "encoders", "sinks", "sources"]
_T = TypeVar("_T")

#: kind -> (hook name, protocol the registered objects must fit)
KINDS: dict[str, tuple[str, type]] = {
    "triggers": ("recfw_register_triggers", Trigger),
    "encoders": ("recfw_register_encoders", Encoder),
    "sinks": ("recfw_register_sinks", Sink),
    "sources": ("recfw_register_sources", Source),
}


@dataclass
class PluginInfo:
    """A loaded plugin and what it provides, for ``recfw plugins``."""

    name: str
    distribution: str | None
    version: str | None
    provides: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION


@dataclass
class PluginFailure:
    """A plugin that failed to load, register or run, and why."""

    name: str
    distribution: str | None
    stage: str
    error: str

    def __str__(self) -> str:
        dist = f" (from {self.distribution})" if self.distribution else ""
        return f"plugin {self.name!r}{dist} failed to {self.stage}: {self.error}"


def _canonical(name: str) -> str:
    """``Recfw_Foo`` and ``recfw-foo`` are the same distribution (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(env_value: str | None) -> set[str] | None:
    if env_value is None or not env_value.strip():
        return None
    return {_canonical(n.strip()) for n in env_value.split(",") if n.strip()}


class Plugins:
    """A typed facade over pluggy's manager: registered triggers, encoders, sinks, sources.

    One typed getter per kind (:meth:`trigger`, :meth:`encoder`, :meth:`sink`,
    :meth:`source`, each raising :class:`PluginError` naming what is
    installed), their names (:meth:`trigger_names`, ...), and one method per
    hook the core calls (:meth:`emit`, :meth:`register_commands`). Fits
    :class:`recfw.registry.PluginRegistry`.
    """

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.strict = environ.get("RECFW_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")
        self.allow = _names(environ.get("RECFW_PLUGINS"))
        self.block = _names(environ.get("RECFW_DISABLE_PLUGINS")) or set()
        self.pm = pluggy.PluginManager("recfw")
        self.pm.add_hookspecs(hookspecs)
        self.triggers: dict[str, Trigger] = {}
        self.encoders: dict[str, Encoder] = {}
        self.sinks: dict[str, Sink] = {}
        self.sources: dict[str, Source] = {}
        self.info: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        # plugin name -> kind -> item name -> object, in registration order
        self._provided: dict[str, dict[str, dict[str, Any]]] = {}

    # --- loading ------------------------------------------------------------

    def load_builtins(self) -> None:
        """Register the built-in plugins by import (unless disabled by name)."""
        for name, module_name in BUILTINS.items():
            if name in self.info:
                continue
            if not self._allowed(name, BUILTIN_DISTRIBUTION):
                log.info("built-in plugin %r is disabled by configuration", name)
                continue
            try:
                module = import_module(module_name)
            except Exception as exc:  # any import error is reported, not raised
                self._fail(name, BUILTIN_DISTRIBUTION, "import", exc)
                continue
            self.register(module, name=name, distribution=BUILTIN_DISTRIBUTION, version=__version__)

    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Load the built-ins, then every allowed entry point of the ``recfw`` group.

        Given ``eps``, load only those (tests). recfw's own entry points name the
        built-ins, which are registered by import instead.
        """
        if eps is None:
            self.load_builtins()
            eps = entry_points(group=ENTRY_POINT_GROUP)
        eps = sorted(eps, key=lambda ep: (_dist_name(ep) != BUILTIN_DISTRIBUTION, ep.name))
        for ep in eps:
            dist = _dist_name(ep)
            if dist == BUILTIN_DISTRIBUTION and ep.name in BUILTINS and ep.name in self.info:
                continue  # already registered by import
            if not self._allowed(ep.name, dist):
                log.info("plugin %r (from %s) is disabled by configuration", ep.name, dist)
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # any import error is the plugin's
                self._fail(ep.name, dist, "import", exc)
                continue
            self.register(obj, name=ep.name, distribution=dist, version=_dist_version(ep))

    def _allowed(self, name: str, dist: str | None) -> bool:
        names = {_canonical(name)} | ({_canonical(dist)} if dist else set())
        if names & self.block:
            return False
        if self.allow is None or dist == BUILTIN_DISTRIBUTION:
            return True
        return bool(names & self.allow)

    def register(
        self,
        plugin: Any,
        name: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo | None:
        """Register one plugin (module or object) and collect what it provides.

        Returns its :class:`PluginInfo`, or ``None`` if it failed (see ``failures``).
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self._fail(name, distribution, "register", exc)
            return None
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self._fail(name, distribution, "register", exc)
            return None
        info = PluginInfo(name, distribution, version)
        info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        staged: dict[str, dict[str, Any]] = {}
        for kind, (hook_name, protocol) in KINDS.items():
            impl = _impl_of(self.pm, hook_name, plugin)
            if impl is None:
                continue
            found: dict[str, Any] = {}
            # pluggy passes arguments by name and an impl may take fewer of them.
            args = {"register": _registrar(kind, protocol, found)}
            try:
                impl.function(**{k: v for k, v in args.items() if k in impl.argnames})
            except Exception as exc:
                self.pm.unregister(name=name)
                self._fail(name, distribution, f"register its {kind}", exc)
                return None
            staged[kind] = found
        for kind, found in staged.items():
            registry: dict[str, Any] = getattr(self, kind)
            for item_name, item in found.items():
                if item_name in registry:
                    log.warning("plugin %r replaces the %s %r", name, kind[:-1], item_name)
                registry[item_name] = item
            info.provides[kind] = sorted(found)
        self.info[name] = info
        self._provided[name] = staged
        return info

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it registered (used by test fixtures).

        A name the plugin had taken over from an earlier plugin goes back to that
        plugin's object (the most recently registered one still present).
        """
        self.info.pop(name, None)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        staged = self._provided.pop(name, {})
        for kind, found in staged.items():
            registry: dict[str, Any] = getattr(self, kind)
            for item_name, item in found.items():
                if registry.get(item_name) is not item:
                    continue  # a later plugin replaced it; that one stays
                del registry[item_name]
                for other in reversed(self._provided.values()):
                    if item_name in other.get(kind, {}):
                        registry[item_name] = other[kind][item_name]
                        break

    def _fail(self, name: str, dist: str | None, stage: str, exc: BaseException) -> None:
        failure = PluginFailure(name, dist, stage, f"{type(exc).__name__}: {exc}")
        self.failures.append(failure)
        log.error("%s", failure)
        if self.strict:
            raise PluginError(f"{failure} (RECFW_STRICT_PLUGINS is set)") from exc

    # --- calling --------------------------------------------------------------

    def _call_each(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of ``hook_name``, isolating failures per plugin.

        Implementations run in pluggy's order (last registered first, ``tryfirst``
        before, ``trylast`` after the others). Returns their results in that order.
        """
        results = []
        # get_hookimpls() lists them in the reverse of the order pluggy calls them.
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue  # wrappers only make sense inside pluggy's own call loop
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            try:
                results.append(impl.function(**args))
            except Exception as exc:
                failure = PluginFailure(
                    impl.plugin_name, None, f"handle {hook_name}", describe(exc)
                )
                log.error("%s", failure)
                if self.strict:
                    raise PluginError(str(failure)) from exc
        return results

    def emit(self, event: Event, config: Config | None) -> None:
        """Send an event to every ``recfw_on_event`` listener; a failing one is logged."""
        self._call_each("recfw_on_event", event=event, config=config)

    def register_commands(self, cli: click.Group) -> None:
        """Let every ``recfw_register_commands`` implementation add its subcommands."""
        self._call_each("recfw_register_commands", cli=cli)

    # --- typed getters --------------------------------------------------------

    def trigger(self, name: str) -> Trigger:
        """The start trigger called ``name`` (a ``startTrigger`` value)."""
        return _lookup(self.triggers, "trigger", name)

    def encoder(self, name: str) -> Encoder:
        """The encoder of file format ``name`` (a ``fileFormat`` value)."""
        return _lookup(self.encoders, "encoder", name)

    def sink(self, name: str) -> Sink:
        """The sink called ``name`` (a ``destination.provider`` value)."""
        return _lookup(self.sinks, "sink", name)

    def source(self, name: str) -> Source:
        """The source (kind of participant media) called ``name``."""
        return _lookup(self.sources, "source", name)

    def trigger_names(self) -> list[str]:
        """The installed ``startTrigger`` values, sorted."""
        return sorted(self.triggers)

    def encoder_names(self) -> list[str]:
        """The installed ``fileFormat`` values, sorted."""
        return sorted(self.encoders)

    def sink_names(self) -> list[str]:
        """The installed ``destination.provider`` values, sorted."""
        return sorted(self.sinks)

    def source_names(self) -> list[str]:
        """The installed sources, sorted."""
        return sorted(self.sources)

    def provided_by(self, kind: str, name: str) -> str | None:
        """The plugin whose ``kind`` ``name`` is in use (the last to register it)."""
        owner = None
        for plugin_name, info in self.info.items():
            if name in info.provides.get(kind, ()):
                owner = plugin_name
        return owner

    @overload
    def get(self, kind: Literal["triggers"], name: str) -> Trigger: ...
    @overload
    def get(self, kind: Literal["encoders"], name: str) -> Encoder: ...
    @overload
    def get(self, kind: Literal["sinks"], name: str) -> Sink: ...
    @overload
    def get(self, kind: Literal["sources"], name: str) -> Source: ...

    def get(self, kind: Kind, name: str) -> Trigger | Encoder | Sink | Source:
        """The registered ``kind`` called ``name``: the typed getters by kind name."""
        getters: dict[str, Callable[[str], Trigger | Encoder | Sink | Source]] = {
            "triggers": self.trigger,
            "encoders": self.encoder,
            "sinks": self.sink,
            "sources": self.source,
        }
        if kind not in getters:
            raise PluginError(f"no kind of plugin called {kind!r} (known: {', '.join(KINDS)})")
        return getters[kind](name)


def _lookup(registry: Mapping[str, _T], what: str, name: str) -> _T:
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none"
        raise PluginError(f"no {what} named {name!r} is installed (installed: {known})") from None


def _registrar(kind: str, protocol: type, found: dict[str, Any]) -> Callable[[Any], None]:
    def register(obj: Any) -> None:
        if not isinstance(obj, protocol):
            raise TypeError(f"{obj!r} does not fit the {protocol.__name__} contract")
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{obj!r} has no name")
        found[name] = obj

    register.__doc__ = f"Register one of the plugin's {kind}."
    return register


def _impl_of(pm: pluggy.PluginManager, hook_name: str, plugin: Any) -> Any:
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.plugin is plugin:
            return impl
    return None


def _dist_name(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _dist_version(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


_loaded: Plugins | None = None


def load_plugins() -> Plugins:
    """The process-wide plugins, loaded once (idempotent)."""
    global _loaded
    if _loaded is None:
        plugins = Plugins()
        plugins.load_entry_points()  # the built-ins (by import), then third parties
        _loaded = plugins
    return _loaded


def reset_plugins() -> None:
    """Forget the process-wide plugins; the next :func:`load_plugins` loads anew."""
    global _loaded
    _loaded = None
