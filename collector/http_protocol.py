"""The HTTP/1.1 protocol every HTTP listener runs: uvicorn's h11 protocol plus a request deadline.

uvicorn bounds the request head (`h11_max_incomplete_event_size`, answered 400) but times out
only idle keep-alive connections: a client that trickles its headers or body a byte at a time
holds a connection and a task forever (slowloris). Here a connection that has not delivered a
whole request within `request_timeout` seconds of its start, or of the previous response, is
closed; a request the application is still working on is never cut.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    request_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.logger.info("closing a connection that sent no whole request in %gs", self.request_timeout)
            self.transport.close()


def protocol_with_deadline(request_timeout: float) -> type[DeadlineH11Protocol]:
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout": request_timeout})
