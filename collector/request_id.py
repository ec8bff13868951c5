"""Request ids: every HTTP response carries `X-Request-ID`, and every log line written while
handling the request names it, so a client's report can be matched to the log.

A client's own `X-Request-ID` is kept when it is a short token (letters, digits, `._-`, at
most 128); anything else is replaced, so a header cannot inject text into the log.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,128}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or uuid.uuid4().hex
        encoded = request_id.encode()
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, encoded)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode() if _TOKEN.fullmatch(value) else None
    return None


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request), for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True
