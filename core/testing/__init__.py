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
``recfw.testing.netns``
    :class:`~recfw.testing.netns.Network`: several "machines" on one box as
    network namespaces on a private bridge (root only), processes run inside them.
``recfw.testing.janus``
    :class:`~recfw.testing.janus.JanusServer`: a real Janus (VideoRoom,
    WebSocket API) confined to loopback, configured in a temporary folder.
``recfw.testing.synthetic``
    :class:`~recfw.testing.synthetic.SyntheticParticipant` /
    :class:`~recfw.testing.synthetic.SyntheticCrowd`: cheap participants that
    join a room over its real signalling and send pre-encoded VP8 + Opus with
    checkable pictures (:func:`~recfw.testing.synthetic.identify`) and a tone
    on demand (``speak()``); they never decode what they receive.
``recfw.testing.pytest_plugin``
    the ``pytest11`` plugin (fixtures ``recfw_plugins``, ``register_plugin``,
    ``s3_endpoint``, ``temp_room``, ``postgres_server``, ``control_db``,
    ``janus_server``); loaded automatically where recfw is installed.

See docs/plugin-guide.md.
"""
