"""The request's arrival, noted once by the middleware, says what Flask's proxies would (issue 17)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, jsonify, request

from mock_custodian import tls
from mock_custodian.web import context


def _app() -> tuple[Flask, Any]:
    app = Flask("arrival")
    rt = SimpleNamespace(name="the runtime")
    app.extensions[context.EXTENSION] = rt

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def echo(path: str) -> Any:
        return jsonify(surface=context.surface(), sim=context.is_sim_request(),
                       proxied_sim=request.path.startswith(context.SIM_PREFIX),
                       runtime=context.runtime() is rt)

    app.wsgi_app = context.SurfaceMiddleware(app.wsgi_app, rt)  # type: ignore[method-assign]
    return app, rt


@pytest.mark.parametrize("path", ["/__sim/health", "//__sim/health", "/__sim", "/__simx/a", "/x/__sim/",
                                  "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus", "/"])
@pytest.mark.parametrize("surface", ["api", "portal"])
def test_the_noted_arrival_agrees_with_the_request(path: str, surface: str) -> None:
    app, _ = _app()
    sock = SimpleNamespace(surface=surface, peer_certificate=tls.NO_CERTIFICATE)
    body = app.test_client().get("/", environ_base={"gunicorn.socket": sock},
                                 environ_overrides={"PATH_INFO": path}).json
    assert body == {"surface": surface, "sim": body["proxied_sim"], "runtime": True, "proxied_sim": body["proxied_sim"]}
    assert body["sim"] == (path in ("/__sim/health", "//__sim/health"))


def test_outside_the_middleware_the_proxies_answer() -> None:
    """A streamed body's later chunks and a test's request context run after or without the middleware."""
    app, rt = _app()
    with app.test_request_context("/__sim/health", environ_base={tls.SURFACE_KEY: "portal"}):
        assert context.runtime() is rt
        assert context.surface() == "portal"
        assert context.is_sim_request()
