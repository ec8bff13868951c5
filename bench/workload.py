"""Realistic GenAI span batches for benchmarks: agent runs of ~20 spans in the OTel GenAI convention.

Each run: one invoke_agent root, chat calls with tokens (some cached / reasoning), tool calls
and an embeddings call, with message content of a few hundred bytes, as real agents send.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "gemini-1.5-flash")
PROVIDERS = {"gpt-4o-mini": "openai", "gpt-4o": "openai", "claude-3-5-sonnet-20241022": "anthropic",
             "gemini-1.5-flash": "gcp.gemini"}
TOOLS = ("web_search", "get_weather", "sql_query", "read_file")
AGENTS = ("support-bot", "research-agent", "billing-agent", "triage")


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def make_request(n_spans: int, rng: random.Random, start_ns: int = 1_763_000_000_000_000_000,
                 spans_per_run: int = 20) -> ExportTraceServiceRequest:
    """Runs start within a minute after `start_ns`, as a live exporter's batch would."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    agent = rng.choice(AGENTS)
    rs.resource.attributes.extend([_kv("service.name", f"{agent}-svc"), _kv("deployment.environment.name", "prod"),
                                   _kv("telemetry.sdk.language", "python")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai_v2"
    ss.scope.version = "2.1b0"
    made = 0
    while made < n_spans:
        trace_id = rng.randbytes(16)
        root_id = rng.randbytes(8)
        t0 = start_ns + rng.randrange(0, 60 * 10**9)
        session = f"sess-{rng.randrange(10_000)}"
        count = min(spans_per_run, n_spans - made)
        for i in range(count):
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = root_id if i == 0 else rng.randbytes(8)
            span.start_time_unix_nano = t0 + i * 50_000_000
            span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(5, 3000) * 1_000_000
            span.kind = Span.SPAN_KIND_INTERNAL if i == 0 else Span.SPAN_KIND_CLIENT
            span.status.code = Status.STATUS_CODE_OK if rng.random() > 0.02 else Status.STATUS_CODE_ERROR
            if i == 0:
                span.name = f"invoke_agent {agent}"
                span.attributes.extend([_kv("gen_ai.operation.name", "invoke_agent"), _kv("gen_ai.agent.name", agent),
                                        _kv("gen_ai.conversation.id", session), _kv("user.id", f"user-{rng.randrange(500)}")])
                continue
            span.parent_span_id = root_id
            roll = rng.random()
            if roll < 0.6:
                model = rng.choice(MODELS)
                tin = rng.randrange(200, 8000)
                span.name = f"chat {model}"
                span.attributes.extend([
                    _kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", PROVIDERS[model]),
                    _kv("gen_ai.request.model", model), _kv("gen_ai.response.model", model),
                    _kv("gen_ai.request.temperature", 0.2), _kv("gen_ai.request.max_tokens", 1024),
                    _kv("gen_ai.usage.input_tokens", tin), _kv("gen_ai.usage.output_tokens", rng.randrange(20, 900)),
                    _kv("gen_ai.usage.cache_read.input_tokens", tin // 4),
                    _kv("gen_ai.response.id", f"chatcmpl-{rng.randrange(10**12)}"),
                    _kv("gen_ai.response.finish_reasons", "stop"),
                    _kv("gen_ai.input.messages", '[{"role":"user","parts":[{"type":"text","content":"'
                        + f"What is the status of order {rng.randrange(10**6)}? " * 4 + '"}]}]'),
                    _kv("gen_ai.output.messages", '[{"role":"assistant","parts":[{"type":"text","content":"'
                        + "The order has shipped and will arrive soon. " * 3 + '"}]}]'),
                ])
            elif roll < 0.9:
                tool = rng.choice(TOOLS)
                span.name = f"execute_tool {tool}"
                span.attributes.extend([
                    _kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", tool),
                    _kv("gen_ai.tool.call.id", f"call_{rng.randrange(10**9)}"),
                    _kv("gen_ai.tool.call.arguments", f'{{"query": "order status {rng.randrange(10**6)}"}}'),
                    _kv("gen_ai.tool.call.result", '{"status": "shipped", "eta_days": 2}'),
                ])
            else:
                span.name = "embeddings text-embedding-3-small"
                span.attributes.extend([
                    _kv("gen_ai.operation.name", "embeddings"), _kv("gen_ai.provider.name", "openai"),
                    _kv("gen_ai.request.model", "text-embedding-3-small"),
                    _kv("gen_ai.usage.input_tokens", rng.randrange(10, 500)),
                ])
        made += count
    return request
