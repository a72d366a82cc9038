"""Control-API routes for the world changing over time (spec 1.4 data and customer actions, 4.15, 7.13).

A child of the control blueprint, so the control token protects them like every ``/__sim/`` route.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import or_, select

from mock_custodian.clock import parse_instant
from mock_custodian.domain import lifecycle
from mock_custodian.errors import BadRequest, NotFound
from mock_custodian.scenario.parse import duration_seconds
from mock_custodian.store.db import meta_set
from mock_custodian.store.models import Account, AccountEvent, DataChange, ServiceAgreement
from mock_custodian.web.context import runtime
from mock_custodian.web.http import json_object_body

blueprint = Blueprint("lifecycle", __name__)


def _instant(body: dict[str, Any], key: str, default: float | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return default
    try:
        return parse_instant(str(value))
    except ValueError as exc:
        raise BadRequest(f"{key}: {exc}") from None


def _integer(body: dict[str, Any], key: str, default: int | None = None, low: int = 0,
             high: int = 2**31 - 1) -> int | None:
    """An integer field of the body, or a 400 naming it (never an overflow or a TypeError)."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer from {low} to {high} (got {value!r})")
    return value


def _factor(body: dict[str, Any], default: float) -> float:
    value = body.get("factor", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100:
        raise BadRequest(f"factor must be a positive number below 100 (got {value!r})")
    return float(value)


def _duration(body: dict[str, Any], key: str) -> int | None:
    """Seconds, or ``2d`` / ``36h`` / ``90m`` as in a scenario file's timeline."""
    if body.get(key) is None:
        return None
    seconds = duration_seconds(body[key])
    if seconds is None:
        raise BadRequest(f"{key} must be seconds or a duration like 2d, 36h, 90m (got {body[key]!r})")
    return seconds


def _sa(db, ref: Any) -> ServiceAgreement:  # noqa: ANN001
    if ref is None:
        raise BadRequest("sa (key, SA number or usage point id) is required")
    sa = db.execute(select(ServiceAgreement).where(or_(
        ServiceAgreement.key == str(ref), ServiceAgreement.sa_number == str(ref),
        ServiceAgreement.usage_point_id == str(ref)))).scalar_one_or_none()
    if sa is None:
        raise NotFound()
    return sa


def _change_json(row: DataChange) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "service_agreement_id": row.service_agreement_id, "start": row.start,
            "end": row.end, "meter": row.meter, "flow_direction": row.flow_direction, "params": row.params,
            "declared_at": row.declared_at}


def _event_json(row: AccountEvent) -> dict[str, Any]:
    return {"id": row.id, "event": row.kind, "at": row.at, "service_agreement_id": row.service_agreement_id,
            "account_id": row.account_id, "params": row.params, "applied_at": row.applied_at,
            "outcome": row.outcome}


@blueprint.route("/data-changes", methods=["GET"])
def data_changes_list() -> ResponseReturnValue:
    with runtime().database.session() as db:
        return jsonify(changes=[_change_json(r) for r in db.execute(select(DataChange).order_by(DataChange.id))
                                .scalars()])


@blueprint.route("/data-changes", methods=["POST"])
def data_change_add() -> ResponseReturnValue:
    """Declare a gap, a correction or a bill revision; JSON: kind, sa, start, end (or within), ..."""
    body = json_object_body(empty_ok=False)
    rt = runtime()
    now = rt.clock.epoch()
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in lifecycle.DATA_CHANGE_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(lifecycle.DATA_CHANGE_KINDS)}")
    with rt.database.session() as db:
        sa = _sa(db, body.get("sa"))
        extra = {k: _integer(body, k) for k in ("meter", "flow_direction") if body.get(k) is not None}
        if kind == "bill_revision":
            row = lifecycle.declare_bill_revision(db, sa, _instant(body, "within", now), now,
                                                  at=_instant(body, "at"), factor=_factor(body, 1.05))
        else:
            start, end = _instant(body, "start"), _instant(body, "end")
            if start is None or end is None:
                raise BadRequest("start and end are required (ISO 8601 with zone, or epoch seconds)")
            if kind == "gap":
                options = {k: _duration(body, k) for k in ("estimate_after", "final_after") if body.get(k) is not None}
                if body.get("estimate_quality") is not None:
                    options["estimate_quality"] = _integer(body, "estimate_quality")
                row = lifecycle.declare_gap(db, sa, start, end, now, **options, **extra)
            else:
                row = lifecycle.declare_correction(db, sa, start, end, now, at=_instant(body, "at"),
                                                   factor=_factor(body, 1.1),
                                                   quality=_integer(body, "quality", 7), **extra)
        db.flush()
        return jsonify(_change_json(row)), 201


@blueprint.route("/events", methods=["GET"])
def events_list() -> ResponseReturnValue:
    with runtime().database.session() as db:
        return jsonify(events=[_event_json(r) for r in db.execute(select(AccountEvent).order_by(AccountEvent.id))
                               .scalars()])


@blueprint.route("/events", methods=["POST"])
def event_add() -> ResponseReturnValue:
    """Schedule an account/SA event (default: now, applied at once); JSON: event, sa or account, at, ..."""
    body = json_object_body(empty_ok=False)
    rt = runtime()
    now = rt.clock.epoch()
    params = {k: v for k, v in body.items() if k not in ("event", "sa", "account", "at")}
    with rt.database.session() as db:
        sa = _sa(db, body["sa"]) if body.get("sa") is not None else None
        account = None
        if body.get("account") is not None:
            account = db.execute(select(Account).where(Account.account_number == str(body["account"])))\
                .scalar_one_or_none()
            if account is None:
                raise NotFound()
        event = lifecycle.schedule_event(db, str(body.get("event")), _instant(body, "at", now), sa=sa,
                                         account=account, params=params)
        db.flush()
        lifecycle.apply_due_events(db, now, rt.resource_base_url())
        return jsonify(_event_json(event)), 201


@blueprint.route("/service-status", methods=["GET"])
def service_status_get() -> ResponseReturnValue:
    return jsonify(current_status=runtime().service_status())


@blueprint.route("/service-status", methods=["POST"])
def service_status_set() -> ResponseReturnValue:
    """Maintenance switch (spec 5.4): ``{"current_status": 0}`` makes data endpoints answer 503."""
    value = json_object_body(empty_ok=False).get("current_status")
    if value not in (0, 1):
        raise BadRequest("current_status must be 0 or 1")
    with runtime().database.session() as db:
        meta_set(db, "service_status", str(value))
    return jsonify(current_status=value)
