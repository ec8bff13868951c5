"""Shared fixtures: a real `agent-collector serve` process on free loopback ports, and a real store."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collector.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CollectorProcess:
    """`agent-collector serve` as a user runs it, in a child process on free ports."""

    def __init__(self, db: Path, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.db = db
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.api_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 30.0) -> CollectorProcess:
        env = {**os.environ, **self.extra_env}
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--db", str(self.db),
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
             "--api-port", str(self.api_port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.log_text()}")
            try:
                if httpx.get(f"{self.api}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"collector not healthy after {timeout}s: {self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running(proc: CollectorProcess, timeout: float = 30.0):
    """Start `proc`, and make sure no collector outlives the test, even when starting it or the
    test fails (a test that stops it itself is left alone)."""
    try:
        yield proc.start(timeout)
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
            proc.log.close()


@pytest.fixture
def spawn():
    """`spawn(CollectorProcess(...))` starts it; whatever is still running at teardown is killed."""
    with contextlib.ExitStack() as stack:
        yield lambda proc: stack.enter_context(running(proc))


@pytest.fixture
def collector(tmp_path):
    proc = CollectorProcess(tmp_path / "collector.duckdb", tmp_path / "collector.log").start()
    yield proc
    if proc.proc and proc.proc.poll() is None:
        proc.stop()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.duckdb")
    s.start()
    yield s
    s.close()
