"""Table tests of the normaliser: payloads captured from real instrumentation, then the
conventions' other keys (deprecated, indexed, exclusive token counts) as attribute tables."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from collector import pricing
from collector.decode import decode_json, decode_protobuf
from collector.map_otlp import map_request
from collector.normalise import normalise

OTLP = Path(__file__).parent / "fixtures" / "otlp"
DAY = 1_763_000_000 * 10**9


def captured(scenario: str) -> dict[str, list]:
    rows: dict[str, list] = {}
    for path in sorted(OTLP.glob(f"{scenario}.*")):
        body = path.read_bytes()
        request = decode_protobuf(body) if path.suffix == ".binpb" else decode_json(body)
        for row in map_request(request, 1).rows:
            rows.setdefault(row.name, []).append(row)
    return rows


def cost(model, tin, tout, cache_read=0):
    return pricing.price(model, "openai", tin, tout, cache_read, 0, DAY)


# scenario, span name, occurrence, expected fields
CAPTURED = [
    ("otel_genai", "invoke_agent support-bot", 0,
     dict(convention="otel_genai", event_type="agent", agent_name="support-bot", session_id="sess-otel-1",
          user_id="user-otel-1", service_name="support-bot-otel", parent_event_id=None, closes_run="completed")),
    ("otel_genai", "chat gpt-4o-mini", 0,
     dict(event_type="llm_call", model="gpt-4o-mini-2024-07-18", request_model="gpt-4o-mini", provider="openai",
          tokens_in=50, tokens_out=22, tokens_total=72, cost_source="computed", closes_run=None)),
    ("otel_genai", "chat gpt-4o-mini", 1, dict(tokens_in=134, tokens_out=37, tokens_total=171)),
    ("otel_genai", "execute_tool get_order_status", 0,
     dict(event_type="tool_call", tool_name="get_order_status", model=None, tokens_in=None, cost=None)),
    ("otel_genai", "embeddings text-embedding-3-small", 0,
     dict(event_type="embedding", model="text-embedding-3-small", tokens_in=21, tokens_out=None)),
    ("otel_genai_protobuf", "chat gpt-4o-mini", 0,
     dict(event_type="llm_call", model="gpt-4o-mini-2024-07-18", tokens_in=50, tokens_out=22,
          service_name="support-bot-otel-protobuf")),
    ("openinference", "support-bot", 0,
     dict(convention="openinference", event_type="agent", agent_name="support-bot", session_id="sess-oi-1",
          user_id="user-oi-1", parent_event_id=None)),
    ("openinference", "ChatCompletion", 0,
     dict(event_type="llm_call", model="gpt-4o-mini-2024-07-18", provider="openai", tokens_in=50, tokens_out=22,
          tokens_total=72, cache_read_tokens=32, reasoning_tokens=16, session_id="sess-oi-1")),
    ("openinference", "ChatCompletion", 1, dict(tokens_in=134, tokens_out=37, cache_read_tokens=32)),
    ("openinference", "get_order_status", 0, dict(event_type="tool_call", tool_name="get_order_status")),
    ("openinference", "CreateEmbeddings", 0,
     dict(event_type="embedding", model="text-embedding-3-small", tokens_in=21)),
    ("openllmetry", "support_session.workflow", 0,
     dict(convention="openllmetry", event_type="chain", parent_event_id=None, session_id="sess-tl-1",
          user_id="user-tl-1")),
    ("openllmetry", "support-bot.agent", 0, dict(convention="openllmetry", event_type="agent", agent_name="support-bot")),
    ("openllmetry", "openai.chat", 0,
     dict(convention="openllmetry", event_type="llm_call", model="gpt-4o-mini-2024-07-18", request_model="gpt-4o-mini",
          provider="openai", tokens_in=50, tokens_out=22, tokens_total=72, cache_read_tokens=32, reasoning_tokens=16,
          session_id="sess-tl-1", user_id="user-tl-1")),
    ("openllmetry", "get_order_status.tool", 0, dict(event_type="tool_call", tool_name="get_order_status")),
    ("openllmetry", "openai.embeddings", 0, dict(event_type="embedding", tokens_in=21)),
]


@pytest.mark.parametrize(("scenario", "span", "nth", "expected"), CAPTURED,
                         ids=[f"{c[0]}:{c[1]}:{c[2]}" for c in CAPTURED])
def test_captured_payloads(scenario, span, nth, expected):
    row = captured(scenario)[span][nth]
    assert {field: getattr(row, field) for field in expected} == expected


@pytest.mark.parametrize("scenario", ["otel_genai", "openinference", "openllmetry"])
def test_captured_chat_cost_is_priced_once_for_cached_and_reasoning_tokens(scenario):
    row = captured(scenario)["openai.chat" if scenario == "openllmetry" else
                             "ChatCompletion" if scenario == "openinference" else "chat gpt-4o-mini"][0]
    expected = cost("gpt-4o-mini-2024-07-18", 50, 22, row.cache_read_tokens or 0)
    assert row.cost == pytest.approx(expected)
    full_price = cost("gpt-4o-mini-2024-07-18", 50, 22)
    assert (row.cost < full_price) == bool(row.cache_read_tokens)


@pytest.mark.parametrize("scenario", ["otel_genai", "openinference", "openllmetry"])
def test_captured_run_is_one_tree(scenario):
    rows = [row for group in captured(scenario).values() for row in group]
    assert len({row.run_id for row in rows}) == 1
    ids = {row.event_id for row in rows}
    roots = [row for row in rows if row.parent_event_id is None]
    assert len(roots) == 1
    assert all(row.parent_event_id in ids for row in rows if row.parent_event_id)
    assert all(orjson.loads(row.attributes) for row in rows)


def n(attrs, **kw):
    return normalise(attrs, DAY, kw.get("events"))


ATTRIBUTE_CASES = [
    ("deprecated otel token keys and gen_ai.system",
     {"gen_ai.operation.name": "text_completion", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
      "gen_ai.usage.prompt_tokens": 100, "gen_ai.usage.completion_tokens": 20},
     dict(event_type="llm_call", provider="openai", model="gpt-4o", tokens_in=100, tokens_out=20, tokens_total=120)),
    ("response model beats request model",
     {"gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06"},
     dict(model="gpt-4o-2024-08-06", request_model="gpt-4o")),
    ("token counts as strings and floats",
     {"gen_ai.usage.input_tokens": "300", "gen_ai.usage.output_tokens": 12.0}, dict(tokens_in=300, tokens_out=12)),
    ("garbage token values are ignored, not fatal",
     {"gen_ai.usage.input_tokens": "lots", "gen_ai.usage.output_tokens": True}, dict(tokens_in=None, tokens_out=None)),
    ("cache write, current and deprecated keys",
     {"gen_ai.usage.input_tokens": 500, "gen_ai.usage.cache_creation.input_tokens": 100},
     dict(tokens_in=500, cache_write_tokens=100)),
    ("exclusive (Anthropic-style) input counts become inclusive",
     {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read_input_tokens": 900,
      "gen_ai.usage.cache_creation_input_tokens": 90},
     dict(tokens_in=1000, cache_read_tokens=900, cache_write_tokens=90)),
    ("reasoning counted inside output",
     {"gen_ai.usage.output_tokens": 100, "gen_ai.usage.reasoning.output_tokens": 60},
     dict(tokens_out=100, reasoning_tokens=60)),
    ("client cost wins over price table",
     {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cost": 1.25},
     dict(cost=1.25, cost_source="client")),
    ("openinference cost parts", {"llm.cost.prompt": 0.25, "llm.cost.completion": "0.5"},
     dict(cost=0.75, cost_source="client")),
    ("operation.cost", {"operation.cost": 0.01}, dict(cost=0.01)),
    ("unknown model costs null, not 0",
     {"gen_ai.request.model": "my-private-llm-v9", "gen_ai.usage.input_tokens": 10}, dict(cost=None, cost_source=None)),
    ("no tokens, no cost", {"gen_ai.request.model": "gpt-4o"}, dict(cost=None)),
    ("openinference kinds", {"openinference.span.kind": "RERANKER"}, dict(event_type="rerank", convention="openinference")),
    ("openinference guardrail", {"openinference.span.kind": "GUARDRAIL"}, dict(event_type="guardrail")),
    ("openinference evaluator", {"openinference.span.kind": "EVALUATOR"}, dict(event_type="evaluator")),
    ("openinference retriever", {"openinference.span.kind": "RETRIEVER"}, dict(event_type="retrieval")),
    ("otel retrieval", {"gen_ai.operation.name": "retrieval"}, dict(event_type="retrieval")),
    ("otel workflow", {"gen_ai.operation.name": "invoke_workflow"}, dict(event_type="chain")),
    ("otel create_agent", {"gen_ai.operation.name": "create_agent", "gen_ai.agent.name": "a"},
     dict(event_type="agent", agent_name="a")),
    ("otel generate_content", {"gen_ai.operation.name": "generate_content"}, dict(event_type="llm_call")),
    ("unknown operation is a plain span", {"gen_ai.operation.name": "dance"}, dict(event_type="span")),
    ("no convention", {"http.method": "GET"}, dict(event_type="span", convention="none")),
    ("traceloop request type rerank", {"llm.request.type": "rerank"}, dict(event_type="rerank", convention="openllmetry")),
    ("traceloop llm.usage totals", {"llm.request.type": "chat", "llm.usage.total_tokens": 99},
     dict(event_type="llm_call", tokens_total=99)),
    ("traceloop tool and agent from entity name",
     {"traceloop.span.kind": "tool", "traceloop.entity.name": "search"}, dict(event_type="tool_call", tool_name="search")),
    ("traceloop agent entity", {"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"},
     dict(event_type="agent", agent_name="planner")),
    ("traceloop content", {"traceloop.entity.input": '{"q":1}', "traceloop.entity.output": '"ok"'},
     dict(input='{"q":1}', output='"ok"')),
    ("openinference agent and session", {"agent.name": "oi", "session.id": "s", "user.id": "u"},
     dict(agent_name="oi", session_id="s", user_id="u")),
    ("structured messages are kept as JSON text",
     {"gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]},
     dict(input='[{"role":"user","parts":[{"type":"text","content":"hi"}]}]')),
    ("indexed prompt attributes are rebuilt",
     {"gen_ai.operation.name": "chat", "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "be brief",
      "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "hi", "gen_ai.completion.0.content": "hello"},
     dict(input='[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]',
          output='[{"content":"hello"}]')),
    ("openinference indexed messages",
     {"openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
      "llm.input_messages.0.message.content": "hey"},
     dict(input='[{"role":"user","content":"hey"}]')),
    ("tool call fields", {"gen_ai.tool.name": "t", "gen_ai.tool.call.id": "c1", "gen_ai.tool.call.arguments": "{}",
                          "gen_ai.tool.call.result": "42"},
     dict(tool_name="t", tool_call_id="c1", input="{}", output="42")),
]


@pytest.mark.parametrize(("label", "attrs", "expected"), ATTRIBUTE_CASES, ids=[c[0] for c in ATTRIBUTE_CASES])
def test_attribute_table(label, attrs, expected):
    result = n(attrs)
    assert {field: getattr(result, field) for field in expected} == expected


def test_content_from_span_events():
    events = [{"name": "gen_ai.client.inference.operation.details",
               "attributes": {"gen_ai.input.messages": '[{"role":"user"}]', "gen_ai.output.messages": "[]"}}]
    result = n({"gen_ai.operation.name": "chat"}, events=events)
    assert (result.input, result.output) == ('[{"role":"user"}]', "[]")
    older = [{"name": "gen_ai.user.message", "attributes": {"content": "hi"}},
             {"name": "gen_ai.choice", "attributes": {"index": 0, "message": "yo"}}]
    result = n({"gen_ai.operation.name": "chat"}, events=older)
    assert result.input == '{"role":"user","content":"hi"}'
    assert result.output == '{"index":0,"message":"yo"}'


def test_long_content_is_truncated_and_marked():
    result = n({"input.value": "x" * 40_000})
    assert len(result.input) < 33_000 and result.input.endswith("[truncated 7232 chars]")
