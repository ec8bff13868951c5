"""ASGI middleware in front of every HTTP listener: head size, API key, then rate limit, from the
request head alone. It runs before the application reads, decompresses or parses any byte of the
body.

The head size is checked here as well as in h11 because h11 bounds only a head still arriving
(`h11_max_incomplete_event_size`, answered 400): one that arrives whole in a single read passes it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.auth import UNAUTHENTICATED_MESSAGE, ApiKeys, presented_key
from collector.rate_limit import RateLimiter, retry_after

Reject = Callable[[Request, int, str, dict[str, str]], Response]


class HttpGuard:
    """`limiter_for(scope)` picks the limiter for a request (ingest or query), or None for no limit.
    `reject` builds the refusal in the listener's own error format (OTLP Status or JSON detail)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: ApiKeys,
        limiter_for: Callable[[Scope], RateLimiter | None],
        reject: Reject,
        open_paths: Collection[str] = (),
        max_head_bytes: int = 32 * 1024,
    ) -> None:
        self.app = app
        self.keys = keys
        self.limiter_for = limiter_for
        self.reject = reject
        self.open_paths = frozenset(open_paths)
        self.max_head_bytes = max_head_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = (
            len(scope["raw_path"])
            + len(scope["query_string"])
            + sum(len(n) + len(v) for n, v in scope["headers"])
        )
        if head > self.max_head_bytes:
            message = f"request head of ~{head} bytes exceeds the {self.max_head_bytes} byte limit"
            await self.reject(Request(scope), 431, message, {})(scope, receive, send)
            return
        if scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        client = None
        if self.keys.enabled:
            headers = dict(scope["headers"])
            client = self.keys.identify(
                presented_key(headers.get(b"authorization"), headers.get(b"x-api-key"))
            )
            if client is None:
                response = self.reject(
                    Request(scope), 401, UNAUTHENTICATED_MESSAGE, {"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        limiter = self.limiter_for(scope)
        if limiter is not None:
            wait = limiter.acquire(client or _address(scope))
            if wait:
                message = f"rate limit of {limiter.rate:g} requests/s exceeded; retry later"
                response = self.reject(Request(scope), 429, message, {"Retry-After": retry_after(wait)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"
