"""Simulator scaffolding under ``/__sim/`` (spec 1.4): never on PG&E's paths."""

from __future__ import annotations

import os

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ..app import runtime
from ..store.world import loaded_scenario

blueprint = Blueprint("sim", __name__, url_prefix="/__sim")


@blueprint.route("/health", methods=["GET"])
def health() -> ResponseReturnValue:
    """Liveness for containers and test fixtures: answers on both listeners, no certificate needed."""
    rt = runtime()
    scenario = loaded_scenario(rt.database)
    return jsonify(
        status="ok",
        worker_pid=os.getpid(),
        scenario=scenario["name"] if scenario else None,
        clock=rt.clock.now().isoformat().replace("+00:00", "Z"),
    )
