"""OTLP/HTTP receiver: POST /v1/traces (protobuf or JSON, gzip), plus /v1/metrics and /v1/logs.

Answers in the request's content type, as the OTLP/HTTP spec asks: an `ExportTraceServiceResponse`
on success (with partial success when spans were rejected), a `google.rpc.Status` on failure.
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.decode import DecodeError, TooLarge, decode_json, decode_protobuf, gunzip
from collector.ingest import RETRY_AFTER_SECONDS, Ingestor
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


def create_otlp_http_app(ingestor: Ingestor, max_request_bytes: int) -> Starlette:
    async def traces(request: Request) -> Response:
        return await _handle(request, ingestor, max_request_bytes, store=True)

    async def other_signal(request: Request) -> Response:
        return await _handle(request, ingestor, max_request_bytes, store=False)

    return Starlette(
        routes=[
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/v1/metrics", other_signal, methods=["POST"]),
            Route("/v1/logs", other_signal, methods=["POST"]),
        ]
    )


async def _handle(request: Request, ingestor: Ingestor, limit: int, *, store: bool) -> Response:
    content_type = _media_type(request)
    try:
        if content_type not in (PROTOBUF, JSON):
            raise HttpError(415, f"unsupported Content-Type {content_type or '(none)'!r}; "
                                 f"use {PROTOBUF} or {JSON}")
        body = await read_body(request, limit)
        if not store:
            return _encode(trace_service_pb2.ExportTraceServiceResponse(), content_type, 200)
        decoder = decode_protobuf if content_type == PROTOBUF else decode_json
        try:
            otlp = await asyncio.to_thread(decoder, body)
            batch, future = await asyncio.to_thread(ingestor.begin_otlp, otlp)
        except (Overloaded, StoreClosed) as exc:
            raise HttpError(503, str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
        except DecodeError as exc:
            raise HttpError(400, str(exc)) from None
        try:
            await asyncio.wrap_future(future)
            accepted = Ingestor.outcome(batch, future)
        except Exception as exc:  # noqa: BLE001 - storage failure is retryable for the client
            log.exception("export failed")
            raise HttpError(503, f"storage error, retry: {exc}", {"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    except HttpError as err:
        status = status_pb2.Status(code=_grpc_code(err.status), message=err.message)
        return _encode(status, content_type if content_type in (PROTOBUF, JSON) else JSON, err.status, err.headers)
    response = trace_service_pb2.ExportTraceServiceResponse()
    if accepted.rejected:
        response.partial_success.rejected_spans = accepted.rejected
        response.partial_success.error_message = accepted.error_message
    return _encode(response, content_type, 200)


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
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"request body exceeds the {limit} byte limit")
        chunks.append(chunk)
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


def _encode(message, content_type: str, status: int, headers: dict[str, str] | None = None) -> Response:
    if content_type == PROTOBUF:
        body = message.SerializeToString()
    else:
        body = json_format.MessageToJson(message, indent=None).encode()
    return Response(body, status_code=status, media_type=content_type, headers=headers)


def _grpc_code(http_status: int) -> int:
    return {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 503: 14}.get(http_status, 13)
