"""The fuzz slice over real TLS (issue 12): the hostile requests of tests/app/test_fuzz.py sent to a real server;
every one gets an HTTP answer below 500 and no connection is dropped (``MOCK_CUSTODIAN_FUZZ_TLS_EXAMPLES``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzz import TLS_EXAMPLES, World, make_world, request_spec

from mock_custodian import testing


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The in-process world only supplies the requests' shapes (routes, parameters)."""
    return make_world(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture
def tls_server(fresh_demo_server: testing.RunningServer) -> testing.RunningServer:
    """The session's demo server, reset afterwards (portal registrations and tokens the slice creates)."""
    return fresh_demo_server


def test_a_slice_over_real_tls_drops_no_connection(world: World, tls_server: testing.RunningServer) -> None:
    """The same kind of requests over real TLS: every one gets an HTTP answer below 500."""
    cert = tls_server.cert("00101")

    @settings(max_examples=TLS_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(st.data())
    def one_example(data: st.DataObject) -> None:
        spec = data.draw(request_spec(world))
        if spec["path"].startswith("/__sim/") and spec["method"] != "GET":
            return  # the shared server's world is not reset between examples: no control writes here
        base = tls_server.portal_base_url if spec["surface"] == "portal" else tls_server.api_base_url
        headers = dict(spec["headers"])
        if headers.get("X-Control-Token"):
            headers["X-Control-Token"] = tls_server.control_token
        headers = {k: v for k, v in headers.items() if "Bearer" not in v}  # the in-process world's tokens
        body: Any = None
        if "json" in spec:
            body = json.dumps(spec["json"]).encode()
            headers["Content-Type"] = "application/json"
        elif "data" in spec:
            body = spec["data"]
        elif "raw" in spec:
            body = spec["raw"]
        try:
            response = requests.request(spec["method"], base + spec["path"], params=spec["query"], data=body,
                                        headers={k: v.encode("latin-1", "replace").decode("latin-1")
                                                 for k, v in headers.items()},
                                        cert=cert if spec["cert"] else None, verify=tls_server.ca_bundle,
                                        timeout=30, allow_redirects=False)
        except requests.exceptions.InvalidHeader:
            return  # requests refuses to send it at all
        assert response.status_code < 500, (spec, response.status_code, response.text[:300])

    one_example()
    assert "Traceback" not in tls_server.log(), tls_server.log()[-3000:]
