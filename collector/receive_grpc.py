"""OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

The service is registered to take the raw message bytes: a full queue is refused before the
request is parsed, so overload costs the collector no decoding, and a message that does not
parse answers INVALID_ARGUMENT with the parser's reason.
"""

from __future__ import annotations

import logging
from concurrent import futures
from contextlib import contextmanager

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collector.decode import DecodeError, decode_protobuf
from collector.ingest import Ingestor, Unstorable, retry_delay
from collector.map_gati import InvalidBatch
from collector.store import Overloaded, StoreClosed

log = logging.getLogger("agent_collector.grpc")


SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceReceiver:
    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    def Export(self, raw: bytes, context):  # name fixed by the proto
        with ingest_status(context, "spans"):
            self._ingestor.check_room()
            request = decode_protobuf(raw)
            accepted = self._ingestor.export_otlp(request, timeout=context.time_remaining())
        response = trace_service_pb2.ExportTraceServiceResponse()
        if accepted.rejected:
            response.partial_success.rejected_spans = accepted.rejected
            response.partial_success.error_message = accepted.error_message
        return response


@contextmanager
def ingest_status(context: grpc.ServicerContext, what: str):
    """The one translation of ingest outcomes to gRPC status codes, shared by every gRPC service."""
    try:
        yield
    except (DecodeError, InvalidBatch, Unstorable) as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except (Overloaded, StoreClosed) as exc:
        abort_retryable(context, str(exc))
    except futures.TimeoutError:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline passed before the {what} were committed")
    except Exception:  # a storage failure must reach the client as retryable
        log.exception("ingest of %s failed", what)
        abort_retryable(context, "storage error; retry later")


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def abort_retryable(context: grpc.ServicerContext, message: str) -> None:
    """UNAVAILABLE with RetryInfo carrying a jittered `retry_delay()`."""
    _abort_with_retry(context, grpc.StatusCode.UNAVAILABLE, message, retry_delay())


def abort_throttled(context: grpc.ServicerContext, message: str, wait_s: float) -> None:
    """RESOURCE_EXHAUSTED with RetryInfo: OTLP exporters retry it only when RetryInfo is present."""
    _abort_with_retry(context, grpc.StatusCode.RESOURCE_EXHAUSTED, message, wait_s)


def _abort_with_retry(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, delay_s: float) -> None:
    """RetryInfo both as rich status details and as the trailer the Python exporter reads."""
    delay = Duration()
    delay.FromNanoseconds(int(delay_s * 1e9))
    retry = error_details_pb2.RetryInfo(retry_delay=delay)
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(retry)
    context.abort_with_status(
        _Status(
            code,
            message,
            (
                ("grpc-status-details-bin", status.SerializeToString()),
                ("google.rpc.retryinfo-bin", retry.SerializeToString()),
            ),
        )
    )


def build_server(ingestor: Ingestor, host: str, port: int, *, max_message_bytes: int, workers: int,
                 extra_servicers=(), interceptors=(), tls: tuple[bytes, bytes] | None = None,
                 ) -> tuple[grpc.Server, int]:
    """`max_message_bytes` bounds each message on the wire and, in gRPC core, after inflating it.
    `tls` is (certificate chain PEM, private key PEM); without it the port is plaintext."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    export = grpc.unary_unary_rpc_method_handler(
        TraceReceiver(ingestor).Export,
        response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": export}),))
    for add in extra_servicers:
        add(server)
    address = f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC to {address} (in use?)")
    return server, bound
