"""Built-in storage sinks: ``local`` (a folder), ``s3`` (via s3fs), ``fsspec`` (any URL).

Registered through the ``recfw`` entry-point group like any third-party sink.
Each fits :class:`recfw.storage.Sink`; see the modules for what each does.
"""

from __future__ import annotations

from recfw import hookimpl

from .fsspec_sink import FsspecSink
from .local import LocalSink
from .s3 import S3Sink, bucket_name_errors


@hookimpl
def recfw_register_sinks(register) -> None:
    """Register the ``local``, ``s3`` and ``fsspec`` sinks."""
    register(LocalSink())
    register(S3Sink())
    register(FsspecSink())


__all__ = ["FsspecSink", "LocalSink", "S3Sink", "bucket_name_errors", "recfw_register_sinks"]
