"""Start the real server (gunicorn, TLS, client certificates) on random local ports, for tests and demos.

``with running() as pge:`` gives a handle with the base URLs, the CA bundle and every third party's
credentials, exactly what a third party's own test suite needs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests  # the test extra; used only to poll readiness

READY_TIMEOUT_S = 30.0


@dataclass
class RunningServer:
    """A live mock-custodian process and what a client needs to talk to it."""

    process: subprocess.Popen
    data_dir: Path
    api_base_url: str
    portal_base_url: str
    ca_bundle: str
    credentials: dict[str, Any]
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def third_party(self, client_id: str) -> dict[str, Any]:
        for tp in self.credentials["third_parties"]:
            if tp["client_id"] == client_id:
                return tp
        raise KeyError(client_id)

    def cert(self, client_id: str) -> tuple[str, str]:
        """``requests``' ``cert=`` value: the chain file (leaf + intermediate) and the key."""
        tp = self.third_party(client_id)
        return tp["certificate_chain"], tp["key"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start(
    data_dir: Path | str,
    *,
    scenario: Path | str | None = None,
    workers: int = 1,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> RunningServer:
    """Start ``mock-custodian serve`` on random ports in ``data_dir`` and wait until it answers."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime_file = data_dir / "server.json"
    if runtime_file.exists():
        runtime_file.unlink()
    args = [sys.executable, "-m", "mock_custodian", "serve", "--data-dir", str(data_dir),
            "--api-port", "0", "--portal-port", "0", "--workers", str(workers)]
    if scenario is not None:
        args += ["--scenario", str(scenario)]
    args += list(extra_args or [])
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_CUSTODIAN_")}
    # Rate limits are on in `mock-custodian serve` but off in test servers unless a test asks for them.
    child_env["MOCK_CUSTODIAN_RATE_LIMITS_ENABLED"] = "false"
    child_env.update(env or {})
    log_path = data_dir / "server.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=child_env)
    log_file.close()
    deadline = time.monotonic() + READY_TIMEOUT_S
    info = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mock-custodian exited with {process.returncode}:\n{log_path.read_text()}")
        if runtime_file.exists():
            try:
                info = json.loads(runtime_file.read_text())
                if _healthy(info):
                    break
            except (ValueError, requests.RequestException):
                pass
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"mock-custodian did not become ready in {READY_TIMEOUT_S}s:\n{log_path.read_text()}")
    creds = subprocess.run(
        [sys.executable, "-m", "mock_custodian", "credentials", "--json", "--data-dir", str(data_dir)],
        check=True, capture_output=True, text=True, env=child_env,
    )
    return RunningServer(
        process=process,
        data_dir=data_dir,
        api_base_url=info["api_base_url"],
        portal_base_url=info["portal_base_url"],
        ca_bundle=info["ca_bundle"],
        credentials=json.loads(creds.stdout),
        log_path=log_path,
        args=args,
        env=child_env,
    )


def _healthy(info: dict[str, Any]) -> bool:
    response = requests.get(f"{info['portal_base_url']}/__sim/health", verify=info["ca_bundle"], timeout=2)
    return response.status_code == 200


@contextmanager
def running(
    scenario: Path | str | None = None,
    *,
    data_dir: Path | str | None = None,
    workers: int = 1,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """A server for the duration of a ``with`` block, in a temporary data dir unless one is given."""
    with tempfile.TemporaryDirectory(prefix="mock-custodian-") as tmp:
        server = start(data_dir or tmp, scenario=scenario, workers=workers, extra_args=extra_args, env=env)
        try:
            yield server
        finally:
            server.stop()
