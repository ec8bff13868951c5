"""OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from collector.ingest import RETRY_AFTER_SECONDS, Ingestor
from collector.store import Overloaded, StoreClosed

log = logging.getLogger("agent_collector.grpc")


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    def Export(self, request, context):  # noqa: N802 - name fixed by the proto
        try:
            accepted = self._ingestor.export_otlp(request, timeout=context.time_remaining())
        except (Overloaded, StoreClosed) as exc:
            abort_retryable(context, str(exc))
        except futures.TimeoutError:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the spans were committed")
        except Exception as exc:  # noqa: BLE001 - a storage failure must reach the client as retryable
            log.exception("export failed")
            abort_retryable(context, f"storage error, retry: {exc}")
        response = trace_service_pb2.ExportTraceServiceResponse()
        if accepted.rejected:
            response.partial_success.rejected_spans = accepted.rejected
            response.partial_success.error_message = accepted.error_message
        return response


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def abort_retryable(context: grpc.ServicerContext, message: str) -> None:
    """UNAVAILABLE with RetryInfo, both as rich status details and as the trailer the Python exporter reads."""
    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_SECONDS))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(retry)
    context.abort_with_status(
        _Status(
            grpc.StatusCode.UNAVAILABLE,
            message,
            (
                ("grpc-status-details-bin", status.SerializeToString()),
                ("google.rpc.retryinfo-bin", retry.SerializeToString()),
            ),
        )
    )


def build_server(ingestor: Ingestor, host: str, port: int, *, max_message_bytes: int, workers: int,
                 extra_servicers=()) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceReceiver(ingestor), server)
    for add in extra_servicers:
        add(server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC to {host}:{port} (in use?)")
    return server, bound
