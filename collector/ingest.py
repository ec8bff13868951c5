"""The hand-off shared by every receiver: map a decoded batch and wait for its commit.

Receivers stay thin: they decode their protocol, call `Ingestor`, and translate its outcome
(`Accepted`, or the exceptions `Overloaded` / `StoreClosed` / a storage error) into a response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.map_otlp import map_request
from collector.rows import Batch
from collector.store import Store

RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Accepted:
    stored: int
    duplicates: int
    rejected: int
    error_message: str


class Ingestor:
    """Thread-safe. Mapping is pure Python and CPU-bound: receiver threads take turns at it (one
    lock) instead of contending for the GIL, which measured ~35% faster on 2 cores and leaves the
    writer thread the GIL slices it needs between DuckDB calls."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._mapping = threading.Lock()

    def begin_otlp(self, request: ExportTraceServiceRequest) -> tuple[Batch, Future]:
        """Map and enqueue; the future resolves after commit. Raises Overloaded / StoreClosed."""
        return self.begin(map_request, request)

    def begin(self, mapper: Callable[..., Batch], payload) -> tuple[Batch, Future]:
        with self._mapping:
            batch = mapper(payload, time.time_ns())
            return batch, self.store.submit(batch.rows)

    @staticmethod
    def outcome(batch: Batch, future: Future, timeout: float | None = None) -> Accepted:
        result = future.result(timeout)
        return Accepted(result.stored, result.duplicates, batch.rejected, batch.error_message())

    def export_otlp(self, request: ExportTraceServiceRequest, timeout: float | None = None) -> Accepted:
        batch, future = self.begin_otlp(request)
        return self.outcome(batch, future, timeout)
