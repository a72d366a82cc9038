"""The sample third-party suites in examples/ pass (issue 8's "done when"): one through the pytest
plugin, one through the control API and plain HTTP only (curl and jq)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from mock_custodian import testing

EXAMPLES = ROOT / "examples"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOCK_CUSTODIAN_"))}
    env.update(extra)
    return env


def test_the_python_requests_example_suite_passes_against_the_plugin() -> None:
    folder = EXAMPLES / "python-requests"
    source = (folder / "pge_client.py").read_text()
    assert "mock_custodian" not in source, "the client under test must not know the simulator"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=folder,
                            capture_output=True, text=True, timeout=300, env=_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


@pytest.mark.skipif(not all(shutil.which(t) for t in ("bash", "curl", "jq")), reason="needs bash, curl and jq")
def test_the_curl_example_passes_through_the_control_api_alone(tmp_path: Path) -> None:
    server = testing.start(tmp_path / "mock")
    try:
        result = subprocess.run(["bash", str(EXAMPLES / "control-api-shell" / "run.sh")], capture_output=True,
                                text=True, timeout=300,
                                env=_env(MOCK_URL=server.portal_base_url, MOCK_CONTROL_TOKEN=server.control_token))
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("ALL PASSED")
    assert "== retry through an injected 503" in result.stdout
