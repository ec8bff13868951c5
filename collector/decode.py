"""Decoding of request bodies: gzip with a size cap, OTLP protobuf and OTLP/JSON.

Every failure raises `DecodeError` with a message fit to show the client; the receivers turn it
into 400 / INVALID_ARGUMENT (or 413 / RESOURCE_EXHAUSTED for `TooLarge`).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class DecodeError(ValueError):
    pass


class TooLarge(DecodeError):
    pass


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate at most `limit` bytes: a gzip bomb is refused before it is expanded in full."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"invalid gzip body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed body exceeds the {limit} byte limit")
    if not inflater.eof:
        raise DecodeError("invalid gzip body: truncated stream")
    return out


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"invalid OTLP protobuf: {exc}") from None
    return request


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/JSON: ids are hex (not base64 as in proto3 JSON), enums may be ints, unknown fields ignored."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DecodeError("invalid OTLP/JSON: the body must be a JSON object")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"invalid OTLP/JSON: {exc}") from None


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(scope_spans, "spans"):
                _convert_ids(span)
                for link in _list(span, "links"):
                    _convert_ids(link)


def _list(parent: Any, *names: str) -> list[Any]:
    if not isinstance(parent, dict):
        raise TypeError(f"expected an object, got {type(parent).__name__}")
    for name in names:
        value = parent.get(name)
        if value is not None:
            if not isinstance(value, list):
                raise TypeError(f"{name} must be an array")
            return value
    return []


def _convert_ids(item: Any) -> None:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object, got {type(item).__name__}")
    for name in _ID_FIELDS:
        value = item.get(name)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = _maybe_base64(value)
            item[name] = base64.b64encode(raw).decode()


def _maybe_base64(value: str) -> bytes:
    """Some clients send proto3-JSON base64 ids; accept them. Anything else becomes empty (rejected later)."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""
