"""API keys on every listener (checked before any body is read or parsed) and TLS from files."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import os
import subprocess
import sys

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.trace.export import SpanExportResult

from agentcollector.v1 import events_pb2, events_pb2_grpc
from collector.auth import ApiKeys, presented_key
from tests.conftest import CollectorProcess, running
from tests.test_backpressure import sdk_spans
from tests.test_receivers import request_with

KEYS = ("k-first-0123456789", "k-second-abcdefghij")
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


# --- the key check itself -------------------------------------------------------------------------


def test_identify_names_the_matching_key_and_nothing_else():
    keys = ApiKeys(KEYS)
    assert keys.enabled and not ApiKeys().enabled
    assert keys.identify(KEYS[0].encode()) == "key-0"
    assert keys.identify(KEYS[1].encode()) == "key-1"
    for wrong in (
        None,
        b"",
        KEYS[0][:-1].encode(),
        KEYS[0].encode() + b"x",
        KEYS[0].upper().encode(),
        b"\xff\x00",
    ):
        assert keys.identify(wrong) is None, wrong


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        (b"Bearer abc", None, b"abc"),
        (b"bearer   abc ", None, b"abc"),
        (b"Basic abc", None, None),
        (b"Bearer ", None, None),
        (None, b"abc", b"abc"),
        (b"Basic zzz", b"abc", b"abc"),
        (None, None, None),
    ],
)
def test_presented_key(authorization, x_api_key, expected):
    assert presented_key(authorization, x_api_key) == expected


# --- every listener -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    with running(
        CollectorProcess(
            tmp / "c.duckdb", tmp / "c.log", extra_env={"AGENT_COLLECTOR_API_KEYS": ",".join(KEYS)}
        )
    ) as proc:
        yield proc
        proc.stop()


def bearer(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def stored_count(proc) -> int:
    response = httpx.post(
        f"{proc.api}/api/sql", json={"sql": "SELECT count(*) FROM events"}, headers=bearer()
    )
    return response.json()["rows"][0][0]


def test_health_and_docs_stay_open(locked):
    assert httpx.get(f"{locked.api}/health").json()["status"] == "healthy"
    assert httpx.get(f"{locked.api}/docs").status_code == 200


@pytest.mark.parametrize("path", ["/", "/api/agents", "/api/runs", "/api/metrics/summary"])
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("nope"), {"Authorization": KEYS[0]}, {"X-API-Key": "nope"}],
    ids=["none", "wrong", "no-scheme", "wrong-x-api-key"],
)
def test_read_api_refuses_without_a_valid_key(locked, path, headers):
    response = httpx.get(f"{locked.api}{path}", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]


@pytest.mark.parametrize("headers", [bearer(KEYS[0]), bearer(KEYS[1]), {"X-API-Key": KEYS[1]}])
def test_read_api_accepts_any_configured_key(locked, headers):
    assert httpx.get(f"{locked.api}/api/agents", headers=headers).status_code == 200


def test_otlp_http_refuses_before_reading_or_inflating_the_body(locked):
    before = stored_count(locked)
    bomb = gzip.compress(b"\0" * (200 << 20))
    response = httpx.post(
        f"{locked.otlp_http}/v1/traces",
        content=bomb,
        timeout=30,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 401, "a body was inflated (413) before the key was checked"
    assert "API key" in status_pb2.Status.FromString(response.content).message
    assert stored_count(locked) == before


def test_shim_needs_a_key(locked):
    events = {"events": [{"run_id": "auth-run", "event_type": "agent_start"}]}
    assert httpx.post(f"{locked.api}/api/events", json=events).status_code == 401
    assert (
        httpx.post(f"{locked.api}/api/events", json=events, headers={"X-API-Key": KEYS[0]}).json()["count"]
        == 1
    )


def test_grpc_refuses_without_a_valid_key(locked):
    before = stored_count(locked)
    with grpc.insecure_channel(locked.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer nope"),), (("x-api-key", "nope"),)):
            with pytest.raises(grpc.RpcError) as raised:
                stub.Export(
                    request_with([(TRACE, bytes.fromhex("1111111111111111"))]), metadata=metadata, timeout=10
                )
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        events = events_pb2_grpc.EventServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            events.Ingest(
                events_pb2.IngestRequest(events=[events_pb2.Event(run_id="r", event_type="x")]), timeout=10
            )
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Not even parsed: garbage with no key is UNAUTHENTICATED, not INVALID_ARGUMENT.
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as raised:
            export(b"\xff\xff\xff", timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stored_count(locked) == before


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_real_exporters_with_a_key_get_in(locked, transport):
    (batch,) = sdk_spans(1, 5)
    if transport == "grpc":
        exporter = GrpcExporter(
            endpoint=locked.grpc_target, insecure=True, headers={"authorization": f"Bearer {KEYS[1]}"}
        )
    else:
        exporter = HttpExporter(endpoint=f"{locked.otlp_http}/v1/traces", headers=bearer(KEYS[1]))
    before = stored_count(locked)
    assert exporter.export(batch) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert stored_count(locked) == before + 5


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost, made here with `cryptography`."""
    tmp = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-collector test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class TlsCollector(CollectorProcess):
    @property
    def api(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def otlp_http(self) -> str:
        return f"https://127.0.0.1:{self.http_port}"


def test_tls_on_every_listener(tmp_path, certificate, monkeypatch):
    cert_path, key_path = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # trust the test certificate, as httpx reads it
    proc = TlsCollector(
        tmp_path / "c.duckdb",
        tmp_path / "c.log",
        extra_env={"AGENT_COLLECTOR_TLS_CERT": str(cert_path), "AGENT_COLLECTOR_TLS_KEY": str(key_path)},
    ).start()
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_path.read_bytes())
        with grpc.secure_channel(proc.grpc_target, credentials) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            stub.Export(request_with([(TRACE, bytes.fromhex("1111111111111111"))]), timeout=10)
        response = httpx.post(
            f"{proc.otlp_http}/v1/traces",
            timeout=10,
            content=request_with([(TRACE, bytes.fromhex("2222222222222222"))]).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200
        timeline = httpx.get(f"{proc.api}/api/runs/{TRACE.hex()}/timeline").json()
        assert sorted(e["event_id"] for e in timeline["events"]) == ["1111111111111111", "2222222222222222"]

        with grpc.insecure_channel(proc.grpc_target) as channel, pytest.raises(grpc.RpcError):
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                request_with([(TRACE, bytes.fromhex("3333333333333333"))]), timeout=5
            )
        for port in (proc.http_port, proc.api_port):
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"AGENT_COLLECTOR_TLS_CERT": "{cert}"}, "needs both --tls-cert and --tls-key"),
        (
            {"AGENT_COLLECTOR_TLS_CERT": "{cert}", "AGENT_COLLECTOR_TLS_KEY": "{missing}"},
            "cannot use TLS certificate",
        ),
        (
            {"AGENT_COLLECTOR_TLS_CERT": "{key}", "AGENT_COLLECTOR_TLS_KEY": "{key}"},
            "cannot use TLS certificate",
        ),
    ],
    ids=["no-key", "missing-key-file", "key-as-cert"],
)
def test_bad_tls_settings_fail_at_start(tmp_path, certificate, variables, message):
    cert_path, key_path = certificate
    env = {
        name: value.format(cert=cert_path, key=key_path, missing=tmp_path / "missing.pem")
        for name, value in variables.items()
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "serve",
            "--db",
            str(tmp_path / "c.duckdb"),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--api-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "c.duckdb").exists()
