"""Token-bucket rate limiting per client (an API key, or a client address when keys are off)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`rate` requests per second per client, in bursts of up to one second's worth (at least 1).

    Thread-safe: gRPC worker threads and the HTTP event loop share one limiter per kind of
    traffic. At most `max_clients` buckets are kept; the least recently seen is forgotten first,
    so a flood of client addresses cannot grow memory without bound.
    """

    def __init__(
        self, rate: float, *, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, rate)
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Take one token: 0.0 if the request may go ahead, else the seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            if not wait:
                tokens -= 1
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self._max_clients:
                del self._buckets[next(iter(self._buckets))]
        return wait


def retry_after(wait: float) -> str:
    """Whole seconds for a Retry-After header, never 0."""
    return str(max(1, math.ceil(wait)))
