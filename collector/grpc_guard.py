"""gRPC server interceptor: API key, rate limit, then protobuf parsing, in that order.

What runs before what, honestly: gRPC core receives the whole message (and inflates it, if the
client compressed it) before any Python code sees the call, bounded by
`grpc.max_receive_message_length`, which applies to the inflated size too. The key is checked
from the call's metadata before the request is parsed: this interceptor hands gRPC handlers that
take raw bytes and parses them itself, after the key and rate checks, so an unauthenticated or
throttled call never reaches protobuf, and a message that does not parse answers
INVALID_ARGUMENT (gRPC's own deserialisation failure would answer INTERNAL).
"""

from __future__ import annotations

import functools

import grpc
from google.protobuf.message import DecodeError

from collector.auth import UNAUTHENTICATED_MESSAGE, ApiKeys, presented_key
from collector.rate_limit import RateLimiter
from collector.receive_grpc import abort_throttled


class GrpcGuard(grpc.ServerInterceptor):
    def __init__(self, keys: ApiKeys, limiter: RateLimiter | None = None) -> None:
        self.keys = keys
        self.limiter = limiter

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            # Every service here is unary; anything else is refused (UNIMPLEMENTED) rather than let
            # through unchecked.
            return None if self.keys.enabled or self.limiter else handler
        client = None
        if self.keys.enabled:
            metadata = dict(handler_call_details.invocation_metadata or ())
            client = self.keys.identify(
                presented_key(_bytes(metadata.get("authorization")), _bytes(metadata.get("x-api-key")))
            )
            if client is None:
                return grpc.unary_unary_rpc_method_handler(_unauthenticated)
        return grpc.unary_unary_rpc_method_handler(
            functools.partial(self._call, handler, client),
            response_serializer=handler.response_serializer,
        )

    def _call(self, handler, client: str | None, raw: bytes, context: grpc.ServicerContext):
        if self.limiter is not None:
            wait = self.limiter.acquire(client or _address(context.peer()))
            if wait:
                abort_throttled(context, f"rate limit of {self.limiter.rate:g} requests/s exceeded", wait)
        request = raw
        if handler.request_deserializer is not None:
            try:
                request = handler.request_deserializer(raw)
            except DecodeError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid protobuf message: {exc}")
        return handler.unary_unary(request, context)


def _unauthenticated(raw: bytes, context: grpc.ServicerContext):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


def _bytes(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("latin-1", "replace")


def _address(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` -> `ipv4:127.0.0.1`: one bucket per host, not per connection."""
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer
