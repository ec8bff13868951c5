"""GATI SDK receiver: `POST /api/events`, answered only after its events are committed.

The GATI SDK retries 5xx and 429 and gives up on other 4xx, so overload and storage failures
answer 503 with Retry-After, and a batch that can never be stored answers 400 / 422. Events that
cannot be stored are counted in `failed` with reasons; the rest of their batch is stored.
The router expects `app.state.ingestor` and `app.state.max_request_bytes`.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from collector.ingest import Ingestor, Unstorable, retry_headers
from collector.map_gati import MAX_EVENTS, InvalidBatch, map_events
from collector.receive_http import HttpError, check_room, read_body
from collector.rows import Batch
from collector.store import Overloaded, StoreClosed

log = logging.getLogger("agent_collector.gati")

router = APIRouter(tags=["ingest"])

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["run_id", "event_type"],
    "properties": {
        "event_id": {"type": "string", "description": "Kept as sent; a UUID is assigned when missing."},
        "run_id": {"type": "string", "description": "Kept as sent; the run is created on first sight."},
        "parent_event_id": {"type": ["string", "null"]},
        "event_type": {"type": "string", "description": "Kept as sent; agent_end / error close the run."},
        "agent_name": {"type": "string"},
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601; no offset means UTC.",
        },
        "data": {
            "type": "object",
            "description": "Kept whole. Read: agent_name, parent_run_id, model, provider, tokens_in, "
            "tokens_out, cost, latency_ms / duration_ms, status, input / prompt, "
            "output / completion, tool_name, session_id, user_id, environment, error.",
        },
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": {"type": "array", "maxItems": MAX_EVENTS, "items": _EVENT_SCHEMA}
                    },
                }
            }
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Committed",
        "content": {
            "application/json": {
                "example": {
                    "status": "success",
                    "message": "Ingested 1 events",
                    "count": 1,
                    "failed": 0,
                    "events_received": 1,
                    "errors": [],
                }
            }
        },
    },
    400: {"description": "The body is not JSON"},
    413: {"description": "The body is larger than the configured limit"},
    415: {"description": "Content-Type is not application/json"},
    422: {"description": "Not a GATI batch, or no event in it can be stored"},
    503: {"description": "Queue full or storage error; retry after Retry-After seconds"},
}


@router.post(
    "/api/events", summary="Ingest a GATI SDK event batch", openapi_extra=_OPENAPI, responses=_RESPONSES
)
async def ingest_events(request: Request) -> JSONResponse:
    state = request.app.state
    try:
        media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise HttpError(415, f"unsupported Content-Type {media_type!r}; send application/json")
        check_room(state.ingestor)
        body = await read_body(request, state.max_request_bytes)
        batch, future = await asyncio.to_thread(_begin, state.ingestor, body)
        if not batch.rows:
            return JSONResponse(_refusal(batch), 422)
        try:
            await asyncio.wrap_future(future)
        except Exception:  # a failed commit is retryable for the client
            log.exception("commit of a GATI batch failed")
            raise HttpError(503, "storage error; retry later", retry_headers()) from None
    except HttpError as err:
        return JSONResponse({"detail": err.message}, err.status, headers=err.headers)
    count = len(batch.rows)
    message = f"Ingested {count} events" + (f"; {batch.rejected} failed" if batch.rejected else "")
    return JSONResponse(
        {
            "status": "success",
            "message": message,
            "count": count,
            "failed": batch.rejected,
            "events_received": count + batch.rejected,
            "errors": batch.errors,
        }
    )


def _begin(ingestor: Ingestor, body: bytes) -> tuple[Batch, Future]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}") from None
    try:
        return ingestor.begin(map_events, payload)
    except (InvalidBatch, Unstorable) as exc:
        raise HttpError(422, str(exc)) from None
    except (Overloaded, StoreClosed) as exc:
        raise HttpError(503, str(exc), retry_headers()) from None


def _refusal(batch: Batch) -> dict:
    return {"detail": batch.error_message(), "failed": batch.rejected, "errors": batch.errors}
