"""Pure normalisation of GenAI span attributes across conventions.

Input is a plain dict of attribute values (already decoded from OTLP); output is a `Normalised`
tuple. The key tables below are the single source of truth for which attribute names each
convention uses (OTel GenAI current and deprecated, OpenInference, OpenLLMetry/Traceloop).
Earlier keys win.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import orjson

from collector import pricing

MODEL_KEYS = (
    "gen_ai.response.model",
    "llm.response.model_name",
    "llm.model_name",
    "gen_ai.request.model",
    "llm.request.model_name",
    "embedding.model_name",
)
REQUEST_MODEL_KEYS = ("gen_ai.request.model", "llm.request.model_name")
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
TOTAL_TOKEN_KEYS = ("llm.token_count.total", "gen_ai.usage.total_tokens", "llm.usage.total_tokens")
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.cache_read_input_tokens",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.cache_creation_input_tokens",
)
REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "llm.token_count.completion_details.reasoning",
    "gen_ai.usage.reasoning_tokens",
)
COST_KEYS = ("gen_ai.usage.cost", "llm.cost.total", "operation.cost")
AGENT_KEYS = ("gen_ai.agent.name", "agent.name")
SESSION_KEYS = ("gen_ai.conversation.id", "session.id", "traceloop.association.properties.session_id")
USER_KEYS = ("user.id", "traceloop.association.properties.user_id", "enduser.id")
TOOL_KEYS = ("gen_ai.tool.name", "tool.name")
TOOL_CALL_ID_KEYS = ("gen_ai.tool.call.id", "tool_call.id")
INPUT_KEYS = (
    "gen_ai.input.messages",
    "input.value",
    "traceloop.entity.input",
    "gen_ai.tool.call.arguments",
    "gen_ai.prompt",
)
OUTPUT_KEYS = (
    "gen_ai.output.messages",
    "output.value",
    "traceloop.entity.output",
    "gen_ai.tool.call.result",
    "gen_ai.completion",
)
INDEXED_INPUT_PREFIXES = ("gen_ai.prompt.", "llm.input_messages.")
INDEXED_OUTPUT_PREFIXES = ("gen_ai.completion.", "llm.output_messages.")

OTEL_OPERATION_TYPES = {
    "chat": "llm_call",
    "text_completion": "llm_call",
    "generate_content": "llm_call",
    "embeddings": "embedding",
    "retrieval": "retrieval",
    "execute_tool": "tool_call",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "chain",
}
OPENINFERENCE_KIND_TYPES = {
    "LLM": "llm_call",
    "EMBEDDING": "embedding",
    "CHAIN": "chain",
    "RETRIEVER": "retrieval",
    "RERANKER": "rerank",
    "TOOL": "tool_call",
    "AGENT": "agent",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
    "PROMPT": "chain",
}
TRACELOOP_KIND_TYPES = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool_call"}
LLM_REQUEST_TYPES = {
    "chat": "llm_call",
    "completion": "llm_call",
    "embedding": "embedding",
    "rerank": "rerank",
}

MAX_CONTENT_CHARS = 32_768


class Normalised(NamedTuple):
    convention: str
    event_type: str
    model: str | None
    request_model: str | None
    provider: str | None
    tokens_in: int | None
    tokens_out: int | None
    tokens_total: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost: float | None
    cost_source: str | None
    agent_name: str | None
    session_id: str | None
    user_id: str | None
    tool_name: str | None
    tool_call_id: str | None
    input: str | None
    output: str | None


def normalise(attrs: dict[str, Any], start_ns: int, span_events: list[dict] | None = None) -> Normalised:
    """Map one span's attributes to the normalised fields. Pure; `start_ns` dates the price."""
    (model, request_model, provider, tokens_in, tokens_out, tokens_total, cache_read, cache_write, reasoning,
     cost, agent, session, user, tool, tool_call_id, content_in, content_out) = _pick(attrs)
    event_type = detect_event_type(attrs)
    # OTel counts cached tokens inside input and reasoning inside output. Some providers report
    # them exclusively; when the parts exceed the whole, the whole was exclusive: make it inclusive.
    cached = (cache_read or 0) + (cache_write or 0)
    if cached and (tokens_in is None or cached > tokens_in):
        tokens_in = (tokens_in or 0) + cached
    if reasoning and (tokens_out is None or reasoning > tokens_out):
        tokens_out = (tokens_out or 0) + reasoning
    if tokens_total is None and (tokens_in is not None or tokens_out is not None):
        tokens_total = (tokens_in or 0) + (tokens_out or 0)

    if cost is None:
        cost = _cost_parts(attrs)
    cost_source = "client" if cost is not None else None
    if cost is None and model and (tokens_in or tokens_out):
        cost = pricing.price(model, provider, tokens_in or 0, tokens_out or 0, cache_read or 0, cache_write or 0, start_ns)
        if cost is not None:
            cost_source = "computed"

    kind = attrs.get("traceloop.span.kind")
    if kind is not None:
        entity = attrs.get("traceloop.entity.name")
        agent = agent or (entity if kind == "agent" else None)
        tool = tool or (entity if kind == "tool" else None)

    if (content_in is None or content_out is None) and span_events:
        ev_in, ev_out = _content_from_events(span_events)
        content_in = content_in or ev_in
        content_out = content_out or ev_out
    if content_in is None and event_type in ("llm_call", "embedding"):
        content_in = _indexed_content(attrs, INDEXED_INPUT_PREFIXES)
    if content_out is None and event_type == "llm_call":
        content_out = _indexed_content(attrs, INDEXED_OUTPUT_PREFIXES)

    return Normalised(
        detect_convention(attrs), event_type, model, request_model, provider,
        tokens_in, tokens_out, tokens_total, cache_read, cache_write, reasoning, cost, cost_source,
        agent, session, user, tool, tool_call_id, truncate(content_in), truncate(content_out),
    )


_STR, _INT, _FLOAT, _TEXT = range(4)
# Order matters: it is the order of the values `_pick` returns.
_PICKED = (
    (MODEL_KEYS, _STR), (REQUEST_MODEL_KEYS, _STR), (PROVIDER_KEYS, _STR),
    (INPUT_TOKEN_KEYS, _INT), (OUTPUT_TOKEN_KEYS, _INT), (TOTAL_TOKEN_KEYS, _INT),
    (CACHE_READ_KEYS, _INT), (CACHE_WRITE_KEYS, _INT), (REASONING_KEYS, _INT), (COST_KEYS, _FLOAT),
    (AGENT_KEYS, _STR), (SESSION_KEYS, _STR), (USER_KEYS, _STR), (TOOL_KEYS, _STR), (TOOL_CALL_ID_KEYS, _STR),
    (INPUT_KEYS, _TEXT), (OUTPUT_KEYS, _TEXT),
)
_KEY_SLOTS: dict[str, tuple[tuple[int, int, int], ...]] = {}
for _slot, (_keys, _kind) in enumerate(_PICKED):
    for _rank, _key in enumerate(_keys):
        _KEY_SLOTS[_key] = (*_KEY_SLOTS.get(_key, ()), (_slot, _rank, _kind))


def _pick(attrs: dict[str, Any]) -> list[Any]:
    """One pass over the span's attributes; for each field the highest-ranked key with a usable value wins."""
    values: list[Any] = [None] * len(_PICKED)
    ranks = [99] * len(_PICKED)
    converted: str | int | float | None
    for key, value in attrs.items():
        slots = _KEY_SLOTS.get(key)
        if slots is None or value is None or value == "":
            continue
        for slot, rank, kind in slots:
            if rank >= ranks[slot]:
                continue
            if kind == _STR:
                converted = value if isinstance(value, str) else str(value)
            elif kind == _INT:
                converted = to_int(value)
            elif kind == _FLOAT:
                converted = to_float(value)
            else:
                converted = _as_text(value)
            if converted is not None:
                values[slot] = converted
                ranks[slot] = rank
    return values


def detect_convention(attrs: dict[str, Any]) -> str:
    """OpenLLMetry also writes gen_ai.* keys, so its traceloop.* keys are looked for first."""
    if "openinference.span.kind" in attrs:
        return "openinference"
    gen_ai = llm = False
    for key in attrs:
        if key.startswith("traceloop.") or key == "llm.request.type":
            return "openllmetry"
        if key.startswith("gen_ai."):
            gen_ai = True
        elif key.startswith("llm."):
            llm = True
    if gen_ai:
        return "otel_genai"
    return "openinference" if llm else "none"


def detect_event_type(attrs: dict[str, Any]) -> str:
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in OPENINFERENCE_KIND_TYPES:
        return OPENINFERENCE_KIND_TYPES[kind.upper()]
    kind = attrs.get("traceloop.span.kind")
    if kind in TRACELOOP_KIND_TYPES:
        return TRACELOOP_KIND_TYPES[kind]
    op = attrs.get("gen_ai.operation.name")
    if op in OTEL_OPERATION_TYPES:
        return OTEL_OPERATION_TYPES[op]
    req = attrs.get("llm.request.type")
    if req in LLM_REQUEST_TYPES:
        return LLM_REQUEST_TYPES[req]
    if isinstance(op, str):
        return "span"
    return "span"


def truncate(text: str | None, limit: int = MAX_CONTENT_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def to_int(value: Any) -> int | None:
    """Token counts arrive as ints, floats or numeric strings depending on the client."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and abs(number) < 2**63 else None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _cost_parts(attrs: dict[str, Any]) -> float | None:
    prompt = to_float(attrs.get("llm.cost.prompt"))
    completion = to_float(attrs.get("llm.cost.completion"))
    if prompt is None and completion is None:
        return None
    return (prompt or 0.0) + (completion or 0.0)


def _as_text(value: Any) -> str:
    """Content may be a JSON string already or a structured AnyValue; store text either way."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _content_from_events(span_events: list[dict]) -> tuple[str | None, str | None]:
    """Content carried on span events: the current details event, or the older per-message events."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    for event in span_events:
        name = event.get("name")
        ev_attrs = event.get("attributes") or {}
        if name == "gen_ai.client.inference.operation.details":
            if "gen_ai.input.messages" in ev_attrs:
                inputs.append(ev_attrs["gen_ai.input.messages"])
            if "gen_ai.output.messages" in ev_attrs:
                outputs.append(ev_attrs["gen_ai.output.messages"])
        elif name in ("gen_ai.user.message", "gen_ai.system.message", "gen_ai.assistant.message", "gen_ai.tool.message"):
            inputs.append({"role": name.split(".")[1], **ev_attrs})
        elif name == "gen_ai.choice":
            outputs.append(ev_attrs)
    text_in = _as_text(inputs[0] if len(inputs) == 1 else inputs) if inputs else None
    text_out = _as_text(outputs[0] if len(outputs) == 1 else outputs) if outputs else None
    return text_in, text_out


def _indexed_content(attrs: dict[str, Any], prefixes: tuple[str, ...]) -> str | None:
    """Rebuild `gen_ai.prompt.0.content`-style flattened messages into a JSON list."""
    messages: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                index, _, rest = key[len(prefix):].partition(".")
                if index.isdigit() and rest:
                    messages.setdefault(int(index), {})[rest.removeprefix("message.")] = value
                break
    if not messages:
        return None
    return _as_text([messages[i] for i in sorted(messages)])
