"""Pure mapping of an OTLP `ExportTraceServiceRequest` to event rows.

`map_request` is the one entry point. A span that cannot be stored (bad ids) is rejected alone
and counted, so the receiver can answer with OTLP partial success. Protobuf types stop here.
"""

from __future__ import annotations

import base64
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
MAX_DEPTH = 32


def map_request(request: ExportTraceServiceRequest, received_ns: int) -> Batch:
    batch = Batch()
    rows = batch.rows
    for resource_spans in request.resource_spans:
        resource = resource_spans.resource
        res_attrs = attributes(resource.attributes)
        res_json = dumps(res_attrs)
        service = res_attrs.get("service.name")
        service = service if isinstance(service, str) else None
        environment = res_attrs.get("deployment.environment.name") or res_attrs.get("deployment.environment")
        environment = environment if isinstance(environment, str) else None
        res_schema = resource_spans.schema_url or None
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name = scope.name or None
            scope_version = scope.version or None
            scope_json = dumps(attributes(scope.attributes)) if len(scope.attributes) else None
            scope_schema = scope_spans.schema_url or None
            for span in scope_spans.spans:
                problem = _id_problem(span)
                if problem:
                    batch.reject(f"span {span.name!r}: {problem}")
                    continue
                rows.append(
                    _span_row(
                        span, received_ns, service, environment, res_json, res_schema,
                        scope_name, scope_version, scope_json, scope_schema,
                    )
                )
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
              scope_name, scope_version, scope_json, scope_schema) -> EventRow:
    attrs = attributes(span.attributes)
    start = span.start_time_unix_nano or received_ns
    end = span.end_time_unix_nano or None
    duration = end - start if end is not None and end >= start else None
    span_events = [_span_event(e) for e in span.events] if len(span.events) else None
    links = [_link(link) for link in span.links] if len(span.links) else None
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
        span.name,
        n.agent_name,
        service,
        start,
        end,
        duration,
        status,
        span.status.message or None,
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
        dumps(attrs),
        dumps(span_events) if span_events else None,
        dumps(links) if links else None,
        res_json,
        res_schema,
        scope_name,
        scope_version,
        scope_json,
        scope_schema,
        span.trace_state or None,
        span.flags,
        span.dropped_attributes_count,
        span.dropped_events_count,
        span.dropped_links_count,
        received_ns,
    )


def attributes(key_values) -> dict[str, Any]:
    """OTLP KeyValue list to a dict; a repeated key keeps its last value, as the SDKs do."""
    out = {}
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in SCALAR_KINDS else any_value(value)
    return out


def any_value(value, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind in SCALAR_KINDS:
        return getattr(value, kind)
    if kind is None:
        return None
    if depth >= MAX_DEPTH:
        return "[nested too deep]"
    if kind == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return base64.b64encode(value.bytes_value).decode()


def dumps(value: Any) -> str:
    """JSON text of decoded attributes; invalid UTF-8 cannot occur (protobuf validates strings)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _span_event(event) -> dict[str, Any]:
    return {
        "time_ns": event.time_unix_nano,
        "name": event.name,
        "attributes": attributes(event.attributes),
        "dropped_attributes_count": event.dropped_attributes_count,
    }


def _link(link) -> dict[str, Any]:
    return {
        "trace_id": link.trace_id.hex(),
        "span_id": link.span_id.hex(),
        "trace_state": link.trace_state,
        "attributes": attributes(link.attributes),
        "dropped_attributes_count": link.dropped_attributes_count,
        "flags": link.flags,
    }
