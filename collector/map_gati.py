"""Pure mapping of a GATI SDK batch (`{"events": [...]}`) to event rows.

`map_events` is the one entry point. A payload that is not a batch raises `InvalidBatch` and
nothing is stored; inside a batch, an event that cannot be stored is rejected alone, named by its
index and field, and the others are kept. Run ids, event ids and event types are kept as sent.
Numeric fields that do not parse are left out of the normalised columns but kept in `attributes`,
as the GATI backend did.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from collector import pricing
from collector.normalise import to_float, to_int, truncate
from collector.rows import Batch, EventRow

MAX_EVENTS = 10_000
CLOSES_RUN = {"agent_end": "completed", "error": "failed"}
OK_STATUSES = frozenset(("ok", "success", "succeeded", "completed", "complete", "done"))
ERROR_STATUSES = frozenset(("error", "failed", "failure", "exception", "errored"))
NAME_KEYS = ("name", "tool_name", "node_name", "step_name", "chain_name")
INPUT_KEYS = ("input", "prompt")
OUTPUT_KEYS = ("output", "completion")
ERROR_KEYS = ("error", "error_message")
DURATION_KEYS = ("duration_ms", "latency_ms")
ENVELOPE_KEYS = frozenset(
    ("event_id", "run_id", "parent_event_id", "event_type", "agent_name", "timestamp", "data")
)

_BLANK = EventRow._make([None] * len(EventRow._fields))._replace(source="gati", convention="gati")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidBatch(ValueError):
    """The payload is not a GATI batch; nothing in it was stored."""


class _Invalid(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def map_events(payload: Any, received_ns: int) -> Batch:
    events = _events(payload)
    batch = Batch()
    for index, event in enumerate(events):
        try:
            batch.rows.append(_event_row(event, received_ns))
        except _Invalid as exc:
            where = f"events[{index}].{exc.field}" if exc.field else f"events[{index}]"
            batch.reject(f"{where}: {exc.reason}")
    return batch


def _events(payload: Any) -> list:
    if not isinstance(payload, dict):
        raise InvalidBatch('body must be a JSON object {"events": [...]}')
    events = payload.get("events")
    if not isinstance(events, list):
        raise InvalidBatch("events: required, a list of event objects")
    if not events:
        raise InvalidBatch("events: must not be empty")
    if len(events) > MAX_EVENTS:
        raise InvalidBatch(f"events: at most {MAX_EVENTS} events per request (got {len(events)})")
    return events


def _event_row(event: Any, received_ns: int) -> EventRow:
    if not isinstance(event, dict):
        raise _Invalid("", "must be an object")
    data = event.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise _Invalid("data", "must be an object")
    run_id = _id(event.get("run_id"), "run_id")
    if run_id is None:
        raise _Invalid("run_id", "required")
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise _Invalid("event_type", "required, a non-empty string")
    event_id = _id(event.get("event_id"), "event_id") or str(uuid.uuid4())
    parent = _id(event.get("parent_event_id"), "parent_event_id") or _id(
        data.get("parent_run_id"), "data.parent_run_id"
    )
    agent = _text(event.get("agent_name"), "agent_name") or _text(data.get("agent_name"), "data.agent_name")
    start = _time_ns(event["timestamp"]) if event.get("timestamp") is not None else received_ns

    duration_ms = _first(data, DURATION_KEYS, to_float)
    duration = round(duration_ms * 1_000_000) if duration_ms is not None and duration_ms >= 0 else None
    status, closes = _status(event_type, data)
    model = _first(data, ("model",), _as_text)
    provider = _first(data, ("provider",), _as_text)
    tokens_in = to_int(data.get("tokens_in"))
    tokens_out = to_int(data.get("tokens_out"))
    tokens_total = to_int(data.get("total_tokens"))
    if tokens_total is None and (tokens_in is not None or tokens_out is not None):
        tokens_total = (tokens_in or 0) + (tokens_out or 0)
    cost, cost_source = _cost(data, model, provider, tokens_in, tokens_out, start)

    extras = {key: value for key, value in event.items() if key not in ENVELOPE_KEYS and key not in data}
    return _BLANK._replace(
        run_id=run_id,
        event_id=event_id,
        parent_event_id=parent,
        event_type=event_type,
        name=_first(data, NAME_KEYS, _as_text) or event_type,
        agent_name=agent,
        start_ns=start,
        end_ns=start + duration if duration is not None else None,
        duration_ns=duration,
        status=status,
        status_message=truncate(_first(data, ERROR_KEYS, _as_text)),
        closes_run=closes,
        model=model,
        provider=provider,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_total=tokens_total,
        cost=cost,
        cost_source=cost_source,
        tool_name=_first(data, ("tool_name",), _as_text),
        tool_call_id=_first(data, ("tool_call_id",), _as_text),
        session_id=_first(data, ("session_id",), _as_text) or _text(extras.get("session_id"), "session_id"),
        user_id=_first(data, ("user_id",), _as_text) or _text(extras.get("user_id"), "user_id"),
        environment=_first(data, ("environment",), _as_text)
        or _text(extras.get("environment"), "environment"),
        input=truncate(_first(data, INPUT_KEYS, _as_text)),
        output=truncate(_first(data, OUTPUT_KEYS, _as_text)),
        attributes=_dumps({**extras, **data} if extras else data),
        received_ns=received_ns,
    )


def _status(event_type: str, data: dict[str, Any]) -> tuple[str, str | None]:
    """The event's status (ok | error | unset) and how it closes its run, if it does."""
    sent = data.get("status")
    sent = sent.lower() if isinstance(sent, str) else None
    if event_type == "error" or sent in ERROR_STATUSES:
        status = "error"
    elif sent in OK_STATUSES:
        status = "ok"
    else:
        status = "unset"
    closes = CLOSES_RUN.get(event_type)
    return status, "failed" if closes and status == "error" else closes


def _cost(data, model, provider, tokens_in, tokens_out, start_ns) -> tuple[float | None, str | None]:
    """A cost the client sent wins, even 0; otherwise priced from the model and tokens."""
    cost = to_float(data.get("cost"))
    if cost is not None:
        return cost, "client"
    if model and (tokens_in or tokens_out):
        cost = pricing.price(model, provider, tokens_in or 0, tokens_out or 0, 0, 0, start_ns)
        if cost is not None:
            return cost, "computed"
    return None, None


def _id(value: Any, field: str) -> str | None:
    """Ids are kept exactly as sent; a JSON number is kept as its decimal text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Invalid(field, f"must be a string, got {type(value).__name__}")


def _text(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise _Invalid(field, f"must be a string, got {type(value).__name__}")


def _time_ns(value: Any) -> int:
    """ISO 8601; a time without offset is UTC (the GATI SDK sends `datetime.utcnow().isoformat()`)."""
    if not isinstance(value, str):
        raise _Invalid("timestamp", f"must be an ISO 8601 string, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid("timestamp", f"not an ISO 8601 time: {value[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND * 1000


def _first(data: dict[str, Any], keys: tuple[str, ...], convert) -> Any:
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            converted = convert(value)
            if converted is not None:
                return converted
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _dumps(value)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
