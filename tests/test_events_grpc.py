"""Native gRPC ingest (agentcollector.v1.EventService) beside OTLP on the gRPC port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.struct_pb2 import Struct

from agentcollector.v1 import events_pb2, events_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


def event(event_id, event_type, parent="", **data):
    payload = Struct()
    payload.update(data)
    return events_pb2.Event(event_id=event_id, run_id="run-grpc-1", parent_event_id=parent, event_type=event_type,
                            agent_name="grpc-agent", timestamp="2024-11-04T10:30:00Z", data=payload)


def test_ingest_over_grpc_then_read_over_http(collector):
    request = events_pb2.IngestRequest(events=[
        event("e1", "agent_start"),
        event("e2", "llm_call", parent="e1", model="gpt-4", tokens_in=100, tokens_out=50, cost=0.005),
        event("e3", "agent_end", parent="e1"),
    ])
    with grpc.insecure_channel(collector.grpc_target) as channel:
        response = events_pb2_grpc.EventServiceStub(channel).Ingest(request, timeout=10)
    assert (response.status, response.count, response.failed) == ("success", 3, 0)
    run = httpx.get(f"{collector.api}/api/runs/run-grpc-1").json()
    assert run["agent_name"] == "grpc-agent" and run["status"] == "completed"
    assert run["tokens_in"] == 100 and run["total_cost"] == pytest.approx(0.005) and run["event_count"] == 3


def test_bad_event_is_refused_alone(collector):
    bad = events_pb2.Event(event_id="x", run_id="", event_type="llm_call")
    request = events_pb2.IngestRequest(events=[event("ok1", "llm_call"), bad])
    with grpc.insecure_channel(collector.grpc_target) as channel:
        response = events_pb2_grpc.EventServiceStub(channel).Ingest(request, timeout=10)
    assert (response.count, response.failed) == (1, 1)
    assert "events[1].run_id" in response.errors[0]


def test_empty_batch_is_invalid_argument(collector):
    with grpc.insecure_channel(collector.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as error:
            events_pb2_grpc.EventServiceStub(channel).Ingest(events_pb2.IngestRequest(), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_committed_stubs_match_the_proto(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
         f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", "agentcollector/v1/events.proto"],
        check=True, cwd=ROOT,
    )
    for name in ("events_pb2.py", "events_pb2_grpc.py", "events_pb2.pyi"):
        generated = (tmp_path / "agentcollector" / "v1" / name).read_text()
        assert generated == (ROOT / "agentcollector" / "v1" / name).read_text(), f"regenerate {name}"
