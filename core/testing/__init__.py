"""Testing kit for recfw and its plugin authors.

Modules (import them directly; nothing heavy is imported here):

``recfw.testing.s3server``
    :class:`~recfw.testing.s3server.S3Server`, a real S3 endpoint on loopback
    (moto in server mode) with enforced credentials, for storage tests.
``recfw.testing.strategies``
    hypothesis strategies: room events, room states, recording settings (valid
    and broken per field), hostile room names, raw media frames, encoder inputs.
``recfw.testing.contracts``
    ``TriggerContract``, ``EncoderContract``, ``SinkContract``,
    ``SourceContract``: test classes to subclass and point at a plugin.
``recfw.testing.media``
    encode an input through an encoder to a file; decode a file (or a truncated
    one) back to frame times with PyAV.
``recfw.testing.netcut``
    :func:`~recfw.testing.netcut.cut_incoming`: make a live aiortc connection drop
    its incoming media (ICE still answered) or everything (consent expires), for
    tests of media that stops (docs/rooms.md, "When media stops").
``recfw.testing.rooms``
    :class:`~recfw.testing.rooms.TempRoom`: drive a trigger by hand through ``step``.
``recfw.testing.pytest_plugin``
    the ``pytest11`` plugin (fixtures ``recfw_plugins``, ``register_plugin``,
    ``s3_endpoint``, ``temp_room``); loaded automatically where recfw is installed.

See docs/plugin-guide.md.
"""
