"""A decrypted credential that hides itself from `repr`, `str`, f-strings, logs and pickles."""

from __future__ import annotations

import hmac
from typing import NoReturn


class Secret:
    """Hold a secret string; only `reveal()` returns it.

    Not a `str` subclass on purpose: a subclass leaks through f-strings, `+`, `json.dumps` and
    every C API that reads the characters directly. Here the one way out is explicit.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """Return the secret; call it where the credential is used, nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        # Equal secrets must hash alike; a hash of the value would be a guessing oracle.
        return hash(Secret)

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        # Pickles end up in caches and task queues in the clear.
        raise TypeError("a Secret cannot be pickled; store it encrypted with a KeyRing")
