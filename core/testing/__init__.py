"""Testing kit for recfw and its plugin authors.

Modules (import them directly; nothing heavy is imported here):

``recfw.testing.s3server``
    :class:`~recfw.testing.s3server.S3Server`, a real S3 endpoint on loopback
    (moto in server mode) with enforced credentials, for storage tests.
"""
