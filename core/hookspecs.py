"""Hook specifications: the only contract between the recfw core and any plugin.

A plugin is a module (or object) with functions named after these specs and
decorated with ``@recfw.hookimpl``. It reaches recfw through the ``recfw``
entry-point group of its distribution::

    [project.entry-points.recfw]
    my_plugin = "my_package.recfw_plugin"

Every ``register`` callback below takes one object and raises ``TypeError`` if
the object does not fit its contract. Hook implementations are called one at a
time: an exception in one plugin is reported with the plugin's name and never
stops the others. Argument names matter (pluggy passes them by name); a hook
implementation may accept fewer arguments than the spec offers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .config import Config
    from .encoding import Encoder
    from .events import Event
    from .sources import Source
    from .storage import Sink
    from .triggers import Trigger

# Private: plugin authors only ever need ``recfw.hookimpl``.
_hookspec = pluggy.HookspecMarker("recfw")


@_hookspec
def recfw_register_triggers(register: Callable[[Trigger], None]) -> None:
    """Register start triggers: call ``register(trigger)`` once per trigger.

    Called once, when plugins are loaded. ``trigger`` fits
    :class:`recfw.triggers.Trigger`: a ``name`` (its ``startTrigger`` value), a
    ``label`` and a pure ``decide(state, event) -> Decision``. Returns nothing.
    """


@_hookspec
def recfw_register_encoders(register: Callable[[Encoder], None]) -> None:
    """Register file formats: call ``register(encoder)`` once per format.

    Called once, when plugins are loaded. ``encoder`` fits
    :class:`recfw.encoding.Encoder`: ``name`` (its ``fileFormat`` value),
    ``extension``, ``content_type`` (handed to the sink) and
    ``open(output, fmt, options)``, which returns a stream taking video and
    audio frames; ``validate_options(options)`` reports bad ``[encoder]``
    options before recording (required by the encoder contract). Returns nothing.
    """


@_hookspec
def recfw_register_sinks(register: Callable[[Sink], None]) -> None:
    """Register storage providers: call ``register(sink)`` once per provider.

    Called once, when plugins are loaded. ``sink`` fits
    :class:`recfw.storage.Sink`: ``name`` (its ``destination.provider``
    value), ``needs_credentials``, ``writes_locally`` (stores on this machine:
    a meeting may then not choose the place), ``validate(destination)`` and
    ``store(path, key, destination, progress, *, content_type=None)``. Returns
    nothing.
    """


@_hookspec
def recfw_register_sources(register: Callable[[Source], None]) -> None:
    """Register kinds of participant media: call ``register(source)`` once per kind.

    Called once, when plugins are loaded. ``source`` fits
    :class:`recfw.sources.Source`: a ``name`` and ``create(participant,
    options)`` returning the participant's aiortc tracks. Returns nothing.
    """


@_hookspec
def recfw_on_event(event: Event, config: Config) -> None:
    """React to a room or recording event (webhooks, logs, metrics, ...).

    Called for every event the engine emits, in the order they happen:
    ``room.client.joined`` / ``room.client.left`` (also for the recorder, with
    ``roleName: "recorder"``), ``recording.started``, ``recording.finished``
    (the file is stored; ``data`` has its location and size) and
    ``recording.failed``. ``event`` is the webhook envelope
    (:class:`recfw.events.Event`); ``config`` the running configuration.
    Should return quickly; slow work (HTTP) belongs in a thread or task. A
    raised exception is logged with the plugin's name and otherwise ignored:
    it never stops a recording. Returns nothing.
    """


@_hookspec
def recfw_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``recfw`` command: ``cli.add_command(...)``.

    Called once, when the command line starts. Returns nothing.
    """
