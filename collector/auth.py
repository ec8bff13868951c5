"""Optional API keys, shared by the gRPC and HTTP listeners.

A client presents a key as `Authorization: Bearer <key>` or `X-API-Key: <key>` (HTTP headers or
gRPC metadata). Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every
configured key whatever matched, so the time taken tells neither which key nor how much of one
was right, nor its length. Keys are never logged; a client is named by the key's position.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

UNAUTHENTICATED_MESSAGE = "missing or invalid API key; send 'Authorization: Bearer <key>'"


class ApiKeys:
    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._digests = tuple(_digest(key.encode()) for key in sorted(set(keys)))

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: bytes | None) -> str | None:
        """The client's name (`key-N`) if `presented` is a configured key, else None."""
        candidate = _digest(presented or b"")
        found = None
        for index, digest in enumerate(self._digests):
            if hmac.compare_digest(digest, candidate) and found is None:
                found = f"key-{index}"
        return found if presented else None


NO_KEYS = ApiKeys()


def presented_key(authorization: bytes | None, x_api_key: bytes | None) -> bytes | None:
    """The key from `Authorization: Bearer <key>`, else from `X-API-Key`."""
    if authorization:
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()
    return x_api_key.strip() if x_api_key else None


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()
