"""Native gRPC ingest (`agentcollector.v1.EventService/Ingest`): GATI events without HTTP/JSON."""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from agentcollector.v1 import events_pb2, events_pb2_grpc
from collector.ingest import Ingestor
from collector.map_gati import map_events
from collector.receive_grpc import ingest_status


class EventReceiver(events_pb2_grpc.EventServiceServicer):
    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    def Ingest(self, request, context):  # name fixed by the proto
        payload = {"events": [_event_dict(event) for event in request.events]}
        with ingest_status(context, "events"):
            batch, future = self._ingestor.begin(map_events, payload)
            accepted = Ingestor.outcome(batch, future, timeout=context.time_remaining())
        stored = accepted.stored + accepted.duplicates
        return events_pb2.IngestResponse(
            status="success",
            message=f"Ingested {stored} events",
            count=stored,
            failed=accepted.rejected,
            errors=batch.errors,
        )


def _event_dict(event: events_pb2.Event) -> dict:
    """Proto3 has no null: empty strings mean 'not sent', as they would be absent in the JSON body."""
    out = {
        field: value
        for field in ("event_id", "run_id", "parent_event_id", "event_type", "agent_name", "timestamp")
        if (value := getattr(event, field))
    }
    if event.HasField("data"):
        out["data"] = json_format.MessageToDict(event.data)
    return out


def add_to_server(ingestor: Ingestor):
    def add(server: grpc.Server) -> None:
        events_pb2_grpc.add_EventServiceServicer_to_server(EventReceiver(ingestor), server)

    return add
