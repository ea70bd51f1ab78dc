"""The room server's HTTP logging: malformed requests in one line, and an opt-in access log.

aiohttp answers a request it cannot parse (a 65,000-character header, a bad
request line) with a 400 itself, then logs ``Error handling request`` at ERROR
with a traceback. That is the client's mistake, not the server's: the server
logs through :data:`HTTP_LOG`, whose filter turns those records into one
WARNING line naming the client and the kind of problem (never the request's
content, which may carry a key). Errors of recfw's own handlers keep their
traceback.

The access log (``recfw run --access-log``) is one INFO line per request on the
``recfw.access`` logger: client, method, path without the query string (a host
link's ``?roomKey=`` is a secret), status, size and time.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

#: The logger the room server's aiohttp request handlers use.
HTTP_LOG = logging.getLogger("recfw.server.http")
#: The access log's logger (INFO; on with ``recfw run --access-log``).
ACCESS_LOG = logging.getLogger("recfw.access")


class _ClientErrorsInOneLine(logging.Filter):
    """aiohttp's "Error handling request" for a malformed request: one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "refused a malformed HTTP request from %s (%s; answered %d)"
            record.args = (remote, type(exc).__name__, exc.code)
            record.exc_info = None
            record.exc_text = None
        return True


HTTP_LOG.addFilter(_ClientErrorsInOneLine())


class AccessLogger(AbstractAccessLogger):
    """One line per request: ``127.0.0.1 "GET /standup" 200 1234 B 0.002 s``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d B %.3f s',
            request.remote,
            request.method,
            request.path,  # no query string: ?roomKey= is a secret
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def runner_options(access_log: bool) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner``: the loggers above."""
    options: dict[str, Any] = {"logger": HTTP_LOG, "access_log": None}
    if access_log:
        ACCESS_LOG.setLevel(logging.INFO)
        options.update(access_log=ACCESS_LOG, access_log_class=AccessLogger)
    return options
