"""OTLP/HTTP receiver: POST /v1/traces (protobuf or JSON, gzip), plus /v1/metrics and /v1/logs.

Answers in the request's content type, as the OTLP/HTTP spec asks: an `ExportTraceServiceResponse`
on success (with partial success when spans were rejected), a `google.rpc.Status` on failure,
including for unknown paths (404), wrong methods (405), a missing key (401) and throttling (429).
Cheap refusals come first: content type, API key and rate limit (in `HttpGuard`), then a full
queue, all before the body is read; then size while reading and while inflating; then parsing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collector.auth import NO_KEYS, ApiKeys
from collector.decode import DecodeError, TooLarge, decode_json, decode_protobuf, gunzip
from collector.http_guard import HttpGuard
from collector.ingest import Ingestor, Unstorable, retry_headers
from collector.rate_limit import RateLimiter
from collector.request_id import RequestIdMiddleware
from collector.store import Overloaded, StoreClosed

log = logging.getLogger("agent_collector.http")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def create_otlp_http_app(ingestor: Ingestor, max_request_bytes: int, *, keys: ApiKeys = NO_KEYS,
                         limiter: RateLimiter | None = None, max_header_bytes: int = 32 * 1024) -> Starlette:
    async def traces(request: Request) -> Response:
        return await _handle(request, ingestor, max_request_bytes, store=True)

    async def other_signal(request: Request) -> Response:
        return await _handle(request, ingestor, max_request_bytes, store=False)

    return Starlette(
        routes=[
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/v1/metrics", other_signal, methods=["POST"]),
            Route("/v1/logs", other_signal, methods=["POST"]),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(HttpGuard, keys=keys, limiter_for=lambda scope: limiter, reject=status_response,
                       max_head_bytes=max_header_bytes),
        ],
        # Starlette types every handler as taking `Exception`; this one is registered for HTTPException only.
        exception_handlers={HTTPException: _http_exception},  # type: ignore[dict-item]
    )


def status_response(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """A `google.rpc.Status` in the request's content type (JSON when it is neither OTLP type)."""
    content_type = _media_type(request)
    status_message = status_pb2.Status(code=_grpc_code(status), message=message)
    return _encode(status_message, content_type if content_type in (PROTOBUF, JSON) else JSON, status, headers)


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    message = {404: f"no such path {request.url.path!r}; OTLP/HTTP serves POST /v1/traces, /v1/metrics, /v1/logs",
               405: f"method {request.method} not allowed; use POST"}.get(exc.status_code, str(exc.detail))
    return status_response(request, exc.status_code, message, exc.headers)


async def _handle(request: Request, ingestor: Ingestor, limit: int, *, store: bool) -> Response:
    content_type = _media_type(request)
    try:
        if content_type not in (PROTOBUF, JSON):
            raise HttpError(415, f"unsupported Content-Type {content_type or '(none)'!r}; "
                                 f"use {PROTOBUF} or {JSON}")
        if store:
            check_room(ingestor)
        body = await read_body(request, limit)
        if not store:
            return _encode(trace_service_pb2.ExportTraceServiceResponse(), content_type, 200)
        decoder = decode_protobuf if content_type == PROTOBUF else decode_json
        try:
            otlp = await asyncio.to_thread(decoder, body)
            batch, future = await asyncio.to_thread(ingestor.begin_otlp, otlp)
        except (Overloaded, StoreClosed) as exc:
            raise HttpError(503, str(exc), retry_headers()) from None
        except (DecodeError, Unstorable) as exc:
            raise HttpError(400, str(exc)) from None
        try:
            await asyncio.wrap_future(future)
            accepted = Ingestor.outcome(batch, future)
        except Exception:  # a storage failure is retryable for the client
            log.exception("export failed")
            raise HttpError(503, "storage error; retry later", retry_headers()) from None
    except HttpError as err:
        return status_response(request, err.status, err.message, err.headers)
    response = trace_service_pb2.ExportTraceServiceResponse()
    if accepted.rejected:
        response.partial_success.rejected_spans = accepted.rejected
        response.partial_success.error_message = accepted.error_message
    return _encode(response, content_type, 200)


def check_room(ingestor: Ingestor) -> None:
    try:
        ingestor.check_room()
    except Overloaded as exc:
        raise HttpError(503, str(exc), retry_headers()) from None


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, compressed or chunked, refusing it as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, "invalid Content-Length")
        if int(declared) > limit:
            raise HttpError(413, f"request body of {declared} bytes exceeds the {limit} byte limit")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise HttpError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"request body exceeds the {limit} byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise HttpError(400, "the client disconnected before sending the whole body") from None
    body = b"".join(chunks)
    if encoding == "gzip":
        try:
            body = gunzip(body, limit)
        except TooLarge as exc:
            raise HttpError(413, str(exc)) from None
        except DecodeError as exc:
            raise HttpError(400, str(exc)) from None
    return body


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _encode(message, content_type: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    if content_type == PROTOBUF:
        body = message.SerializeToString()
    else:
        body = json_format.MessageToJson(message, indent=None).encode()
    return Response(body, status_code=status, media_type=content_type, headers=headers)


def _grpc_code(http_status: int) -> int:
    return {400: 3, 401: 16, 404: 12, 405: 12, 413: 8, 415: 3, 429: 8, 431: 8, 503: 14}.get(http_status, 13)
