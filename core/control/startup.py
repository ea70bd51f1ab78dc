"""What ``recfw run`` does with the database at start: open, migrate, seed."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .db import Database
from .org import OrgSettingsStore

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

EMBEDDED_SOURCE = "embedded default"


def open_control_plane(config: Config, environ: Mapping[str, str] | None = None) -> Database:
    """Open the configured database (migrated, secret key checked) and seed the
    organization defaults from the config file's ``[recording]``.

    The config file applies until the defaults are edited through the API or
    dashboard; from then on the database wins and a differing ``[recording]``
    is reported in the log.
    """
    environ = os.environ if environ is None else environ
    db = Database.open(config, environ)
    source = str(config.path) if config.path is not None else EMBEDDED_SOURCE
    wanted = config.recording.to_dict(reveal=True)
    store = OrgSettingsStore()
    with db.session() as s:
        if store.seed(s, wanted, source):
            log.info("organization recording defaults taken from %s", source)
        elif store.edited(store.row(s)) and store.recording(s) != wanted:
            log.warning(
                "the [recording] of %s differs from the organization defaults stored in the "
                "database, which were edited through the API: the database's apply",
                source,
            )
    return db


__all__ = ["open_control_plane"]
