"""The clients a process builds from its config: Kizen's waits as long as ``[kizen] timeout_seconds``."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from syncd.config import load
from syncd.wiring import kizen_client


def test_kizen_requests_time_out_after_the_configured_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:  # accepts connections (the kernel's backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        path = tmp_path / "config.toml"
        path.write_text(
            f'[kizen]\nbase_url = "http://127.0.0.1:{port}"\nbusiness_id = "b"\nuser_id = "u"\n'
            'api_key_env = "SYNCD_TEST_KEY"\ntimeout_seconds = 0.5\n'
            '[[sources]]\nname = "a"\ntype = "ics"\nowner = "a@example.com"\nurl = "a.ics"\n'
        )
        monkeypatch.setenv("SYNCD_TEST_KEY", "secret")
        client, close = kizen_client(load(path))
        try:
            assert client.http.timeout.read == 0.5
            began = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                client.http.get("/api/employees")
            assert time.monotonic() - began < 5  # the default would wait 30 s
        finally:
            close()
