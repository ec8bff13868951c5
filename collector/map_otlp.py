"""Pure mapping of an OTLP `ExportTraceServiceRequest` to event rows.

`map_request` is the one entry point. A span that cannot be stored (bad ids) is rejected alone
and counted, so the receiver can answer with OTLP partial success. Protobuf types stop here.

`Limits` bound what one span can make us store, and never refuse it: attributes past the count
are dropped and added to the span's (event's, link's) `dropped_attributes_count`, as OTel SDKs
do; longer keys and strings are cut and end in a visible `…[truncated N chars]`; arrays and maps
keep their first items plus a marker; values nested deeper than `max_depth` become a marker.
Strings are measured only when the JSON holding them is longer than the limit (no string is
longer than its JSON), so an ordinary span pays one len() per JSON document for them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.normalise import normalise
from collector.rows import Batch, EventRow

SCALAR_KINDS = frozenset(("string_value", "int_value", "double_value", "bool_value"))
SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)
MAX_TIME_NS = 2**63 - 1  # times are stored as signed 64-bit nanoseconds
TIME_PROBLEM = "start and end times must be before the year 2262 (signed 64-bit nanoseconds)"


@dataclass(frozen=True)
class Limits:
    max_attributes: int = 1024
    max_chars: int = 1024 * 1024
    max_depth: int = 32


LIMITS = Limits()


def map_request(request: ExportTraceServiceRequest, received_ns: int, limits: Limits = LIMITS) -> Batch:
    batch = Batch()
    rows = batch.rows
    for resource_spans in request.resource_spans:
        resource = resource_spans.resource
        res_attrs, res_json = _capped(attributes(resource.attributes, limits), limits.max_chars)
        service = res_attrs.get("service.name")
        service = service if isinstance(service, str) else None
        environment = res_attrs.get("deployment.environment.name") or res_attrs.get("deployment.environment")
        environment = environment if isinstance(environment, str) else None
        res_schema = resource_spans.schema_url or None
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name = scope.name or None
            scope_version = scope.version or None
            scope_json = None
            if len(scope.attributes):
                scope_json = _capped(attributes(scope.attributes, limits), limits.max_chars)[1]
            scope_schema = scope_spans.schema_url or None
            for span in scope_spans.spans:
                problem = _id_problem(span)
                row = None if problem else _span_row(
                    span, received_ns, service, environment, res_json, res_schema,
                    scope_name, scope_version, scope_json, scope_schema, limits,
                )
                if row is None:
                    batch.reject(f"span {span.name!r}: {problem or TIME_PROBLEM}")
                    continue
                rows.append(row)
    return batch


def _id_problem(span) -> str | None:
    trace_id = span.trace_id
    if len(trace_id) != 16 or trace_id == ZERO_TRACE_ID:
        return f"trace_id must be 16 bytes and not all zero (got {len(trace_id)} bytes)"
    span_id = span.span_id
    if len(span_id) != 8 or span_id == ZERO_SPAN_ID:
        return f"span_id must be 8 bytes and not all zero (got {len(span_id)} bytes)"
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        return f"parent_span_id must be empty or 8 bytes (got {len(parent)} bytes)"
    return None


def _span_row(span, received_ns, service, environment, res_json, res_schema,
              scope_name, scope_version, scope_json, scope_schema, limits) -> EventRow | None:
    """The span's row, or None when its times cannot be stored."""
    start = span.start_time_unix_nano or received_ns
    end = span.end_time_unix_nano or None
    if start > MAX_TIME_NS or (end is not None and end > MAX_TIME_NS):
        return None
    max_chars = limits.max_chars
    key_values = span.attributes
    attrs, attrs_json = _capped(attributes(key_values, limits), max_chars)
    dropped = span.dropped_attributes_count
    if len(key_values) > limits.max_attributes:
        dropped += len(key_values) - limits.max_attributes
    name = span.name
    if len(name) > max_chars:
        name = _clip(name, max_chars)
    message = span.status.message or None
    if message and len(message) > max_chars:
        message = _clip(message, max_chars)
    trace_state = span.trace_state or None
    if trace_state and len(trace_state) > max_chars:
        trace_state = _clip(trace_state, max_chars)
    duration = end - start if end is not None and end >= start else None
    span_events = [_span_event(e, limits) for e in span.events] if len(span.events) else None
    links = [_link(link, limits) for link in span.links] if len(span.links) else None
    span_events, events_json = _capped(span_events, max_chars) if span_events else (None, None)
    links, links_json = _capped(links, max_chars) if links else (None, None)
    status_code = span.status.code
    status = STATUS_CODES[status_code] if 0 <= status_code < 3 else "unset"
    parent = span.parent_span_id
    closes_run = None if parent else ("failed" if status == "error" else "completed")
    n = normalise(attrs, start, span_events)
    kind = span.kind
    return EventRow(
        span.trace_id.hex(),
        span.span_id.hex(),
        parent.hex() if parent and parent != ZERO_SPAN_ID else None,
        "otlp",
        n.convention,
        n.event_type,
        name,
        n.agent_name,
        service,
        start,
        end,
        duration,
        status,
        message,
        closes_run,
        SPAN_KINDS[kind] if 0 <= kind < 6 else "unspecified",
        n.model,
        n.request_model,
        n.provider,
        n.tokens_in,
        n.tokens_out,
        n.tokens_total,
        n.cache_read_tokens,
        n.cache_write_tokens,
        n.reasoning_tokens,
        n.cost,
        n.cost_source,
        n.tool_name,
        n.tool_call_id,
        n.session_id,
        n.user_id,
        environment,
        n.input,
        n.output,
        attrs_json,
        events_json,
        links_json,
        res_json,
        res_schema,
        scope_name,
        scope_version,
        scope_json,
        scope_schema,
        trace_state,
        span.flags,
        dropped,
        span.dropped_events_count,
        span.dropped_links_count,
        received_ns,
    )


def attributes(key_values, limits: Limits = LIMITS) -> dict[str, Any]:
    """OTLP KeyValue list to a dict; a repeated key keeps its last value, as the SDKs do. Keeps
    the first `max_attributes`; strings are left whole for `_capped`."""
    if len(key_values) > limits.max_attributes:
        key_values = key_values[:limits.max_attributes]
    out = {}
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in SCALAR_KINDS else any_value(value, limits)
    return out


def _capped(value: Any, max_chars: int) -> tuple[Any, str]:
    """`value` and its JSON, with every key and string in it cut to `max_chars`."""
    text = dumps(value)
    if len(text) > max_chars:
        value = _cut(value, max_chars)
        text = dumps(value)
    return value, text


def _cut(value: Any, max_chars: int) -> Any:
    if isinstance(value, str):
        return _clip(value, max_chars)
    if isinstance(value, list):
        return [_cut(item, max_chars) for item in value]
    if isinstance(value, dict):
        return {_clip(str(key), max_chars): _cut(item, max_chars) for key, item in value.items()}
    return value


def any_value(value, limits: Limits = LIMITS, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind in SCALAR_KINDS:
        return getattr(value, kind)
    if kind is None:
        return None
    if depth >= limits.max_depth:
        return "[nested too deep]"
    if kind == "array_value":
        values = value.array_value.values
        items = [any_value(v, limits, depth + 1) for v in values[:limits.max_attributes]]
        if len(values) > limits.max_attributes:
            items.append(f"…[truncated {len(values) - limits.max_attributes} items]")
        return items
    if kind == "kvlist_value":
        values = value.kvlist_value.values
        out = {kv.key: any_value(kv.value, limits, depth + 1) for kv in values[:limits.max_attributes]}
        if len(values) > limits.max_attributes:
            out["…"] = f"[truncated {len(values) - limits.max_attributes} entries]"
        return out
    return base64.b64encode(value.bytes_value).decode()


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def _over(key_values, limits: Limits) -> int:
    return max(0, len(key_values) - limits.max_attributes)


def dumps(value: Any) -> str:
    """JSON text of decoded attributes; invalid UTF-8 cannot occur (protobuf validates strings)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _span_event(event, limits: Limits) -> dict[str, Any]:
    return {
        "time_ns": event.time_unix_nano,
        "name": event.name,
        "attributes": attributes(event.attributes, limits),
        "dropped_attributes_count": event.dropped_attributes_count + _over(event.attributes, limits),
    }


def _link(link, limits: Limits) -> dict[str, Any]:
    return {
        "trace_id": link.trace_id.hex(),
        "span_id": link.span_id.hex(),
        "trace_state": link.trace_state,
        "attributes": attributes(link.attributes, limits),
        "dropped_attributes_count": link.dropped_attributes_count + _over(link.attributes, limits),
        "flags": link.flags,
    }
