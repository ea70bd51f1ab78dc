"""A string that never shows itself: secrets stay out of logs, errors and output."""

from __future__ import annotations

import hmac


class Secret:
    """Holds a secret value; ``str``/``repr``/f-strings show only a mask.

    Call :meth:`reveal` at the one place the value is really needed (handing it
    to a storage client). Two secrets compare equal when their values do.
    """

    __slots__ = ("_value",)
    MASK = "********"

    def __init__(self, value: str):
        if isinstance(value, Secret):
            value = value.reveal()
        object.__setattr__(self, "_value", str(value))

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.MASK!r})"

    def __str__(self) -> str:
        return self.MASK

    def __format__(self, spec: str) -> str:
        return self.MASK

    def __eq__(self, other: object) -> bool:
        # Constant-time: comparing secrets must not leak how much of them matched.
        return isinstance(other, Secret) and hmac.compare_digest(
            other._value.encode(), self._value.encode()
        )

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pickling keeps the value; only display is masked
        return (Secret, (self._value,))


def mask_key_id(key_id: str | None) -> str | None:
    """Show enough of an access key id to recognise it, never all of it."""
    if not key_id:
        return key_id
    if len(key_id) <= 8:
        return "****"
    return key_id[:4] + "****" + key_id[-2:]
