"""End to end: an agent run exported by the real OpenTelemetry SDK over each OTLP transport,
read back through the API of a real `agent-collector serve` process."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonHttpExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtoHttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector import pricing


def exporter_for(transport: str, collector):
    if transport == "grpc":
        return GrpcExporter(endpoint=collector.grpc_target, insecure=True)
    if transport == "grpc-gzip":
        from grpc import Compression as GrpcCompression

        return GrpcExporter(endpoint=collector.grpc_target, insecure=True, compression=GrpcCompression.Gzip)
    if transport == "http-protobuf":
        return ProtoHttpExporter(endpoint=f"{collector.otlp_http}/v1/traces")
    if transport == "http-protobuf-gzip":
        return ProtoHttpExporter(endpoint=f"{collector.otlp_http}/v1/traces", compression=Compression.Gzip)
    if transport == "http-json":
        return JsonHttpExporter(endpoint=f"{collector.otlp_http}/v1/traces")
    raise AssertionError(transport)


def run_agent(exporter, agent: str) -> dict:
    """A small agent run in the current OTel GenAI convention; returns the ids it produced."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"{agent}-service",
                                                        "deployment.environment.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e-test")
    ids = {}
    with tracer.start_as_current_span(f"invoke_agent {agent}", kind=SpanKind.INTERNAL) as root:
        root.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
                             "gen_ai.conversation.id": "conv-42", "user.id": "user-7"})
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as chat:
            chat.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cache_read.input_tokens": 200,
            })
            ids["chat"] = format(chat.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("execute_tool get_weather") as tool:
            tool.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                                 "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": '{"city":"Paris"}'})
            tool.set_status(Status(StatusCode.ERROR, "weather service down"))
            ids["tool"] = format(tool.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("chat claude") as paid:
            paid.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                                 "gen_ai.request.model": "claude-3-5-haiku-20241022",
                                 "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 10,
                                 "gen_ai.usage.cost": 0.5})
            ids["paid"] = format(paid.get_span_context().span_id, "016x")
        ids["root"] = format(root.get_span_context().span_id, "016x")
        ids["run"] = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return ids


def walk(nodes):
    for node in nodes:
        yield node
        yield from walk(node["children"])


TRANSPORTS = ["grpc", "grpc-gzip", "http-protobuf", "http-protobuf-gzip", "http-json"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_agent_run_over_each_transport(collector, transport):
    ids = run_agent(exporter_for(transport, collector), agent=f"weather-{transport}")
    run = httpx.get(f"{collector.api}/api/runs/{ids['run']}").json()
    assert run["run_id"] == ids["run"]
    assert run["agent_name"] == f"weather-{transport}"
    assert run["status"] == "completed"
    assert run["event_count"] == 4
    assert run["tokens_in"] == 1250 and run["tokens_out"] == 310
    chat_cost = pricing.price("gpt-4o-mini-2024-07-18", "openai", 1200, 300, 200, 0, 1_763_000_000 * 10**9)
    assert chat_cost is not None and chat_cost > 0
    assert run["total_cost"] == pytest.approx(0.5 + chat_cost, rel=1e-6)

    trace = httpx.get(f"{collector.api}/api/runs/{ids['run']}/trace").json()
    (root,) = trace["execution_tree"]
    assert root["event_id"] == ids["root"] and root["event_type"] == "agent" and root["depth"] == 1
    children = {child["event_id"]: child for child in root["children"]}
    assert set(children) == {ids["chat"], ids["tool"], ids["paid"]}
    chat = children[ids["chat"]]
    assert chat["event_type"] == "llm_call" and chat["parent_run_id"] == ids["root"] and chat["depth"] == 2
    assert chat["data"]["model"] == "gpt-4o-mini-2024-07-18"
    assert chat["data"]["provider"] == "openai"
    assert chat["data"]["tokens_in"] == 1200 and chat["data"]["tokens_out"] == 300
    assert chat["data"]["cost"] == pytest.approx(chat_cost)
    assert chat["data"]["gen_ai.usage.cache_read.input_tokens"] == 200
    tool = children[ids["tool"]]
    assert tool["event_type"] == "tool_call" and tool["data"]["tool_name"] == "get_weather"
    assert tool["data"]["status"] == "error"
    assert children[ids["paid"]]["data"]["cost"] == 0.5

    timeline = httpx.get(f"{collector.api}/api/runs/{ids['run']}/timeline").json()
    stamps = [event["timestamp"] for event in timeline["events"]]
    assert stamps == sorted(stamps) and len(stamps) == 4
    assert timeline["events"][0]["event_id"] == ids["root"]


def test_unknown_run_is_404_with_detail(collector):
    response = httpx.get(f"{collector.api}/api/runs/{'ab' * 16}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


def test_resent_spans_are_stored_and_counted_once(collector):
    exporter = exporter_for("http-protobuf", collector)
    provider = TracerProvider(resource=Resource.create({"service.name": "resender"}))
    tracer = provider.get_tracer("t")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10})
    spans = memory.get_finished_spans()
    for _ in range(3):
        assert exporter.export(spans).name == "SUCCESS"
    run_id = format(root.get_span_context().trace_id, "032x")
    run = httpx.get(f"{collector.api}/api/runs/{run_id}").json()
    assert run["event_count"] == 2
    assert run["tokens_in"] == 10
