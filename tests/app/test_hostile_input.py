"""Overflowing and wrongly-typed input is a 4xx naming the field, and nothing invalid is stored (issue 12.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.inprocess import CONTROL_TOKEN, InProcess, build, environ

HUGE = "9223372036854775808"
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
CONTROL = {"X-Control-Token": CONTROL_TOKEN}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> InProcess:
    return build(tmp_path_factory.mktemp("hostile"))


def _control(app: InProcess, method: str, path: str, json: object = None):  # noqa: ANN202
    return app.client().open(f"/__sim{path}", method=method, json=json, headers=CONTROL,
                             environ_base=environ("portal"))


@pytest.fixture(scope="module")
def access_token(app: InProcess) -> str:
    created = _control(app, "POST", "/authorizations", {"customer": "rivera", "client_id": "00101"})
    assert created.status_code == 201, created.text
    return created.json["token"]["access_token"]


@pytest.mark.parametrize("path", [
    f"/Authorization/{HUGE}", f"/Subscription/{HUGE}", f"/Subscription/{HUGE}/UsagePoint",
    f"/Batch/RetailCustomer/{HUGE}", f"/Batch/RetailDRPrgInfo/{HUGE}", f"/Batch/Subscription/{HUGE}",
    "/Authorization/1" + "0" * 40, "/Authorization/%D9%A5",
])
def test_huge_ids_are_not_found_not_a_crash(app: InProcess, access_token: str, path: str) -> None:
    response = app.client().get(RESOURCE + path, headers={"Authorization": f"Bearer {access_token}"},
                                environ_base=environ("api", app.cert("00101")))
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_clock_refuses_to_leave_the_calendar_and_is_never_stuck(app: InProcess) -> None:
    before = _control(app, "GET", "/clock").json
    for body in ({"hours": 1e30}, {"seconds": "nan"}, {"by": "1e400"}, {"days": 10**20}):
        response = _control(app, "POST", "/clock/advance", body)
        assert response.status_code == 400, (body, response.text)
        assert next(iter(body)) in response.json["error_description"]
    response = _control(app, "POST", "/clock/set", {"to": "9999-12-31T00:00:00Z"})
    assert response.status_code == 400
    assert response.json["error_description"].startswith("to: ")
    assert "outside the simulated calendar" in response.json["error_description"]
    assert _control(app, "POST", "/clock/set", {"to": 1e300}).status_code == 400
    assert _control(app, "POST", "/clock/set", {"to": "2999-12-31T00:00:00Z"}).status_code == 200
    response = _control(app, "POST", "/clock/advance", {"days": 2})
    assert response.status_code == 400
    assert "calendar" in response.json["error_description"]
    assert _control(app, "GET", "/clock").status_code == 200  # the clock still reads
    assert _control(app, "POST", "/clock/set", {"to": before["epoch"]}).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": {}}, "kind"), ({"kind": ["http_error"]}, "kind"), ({"kind": "http_error", "times": 1e30}, "times"),
    ({"kind": "http_error", "times": 10**30}, "times"), ({"kind": "http_error", "params": []}, "params"),
    ({"kind": "http_error", "retry_after": 10**30}, "retry_after"), ({"kind": "drop", "seed": 10**40}, "seed"),
])
def test_bad_faults_name_the_field_and_store_nothing(app: InProcess, body: dict, field: str) -> None:
    response = _control(app, "POST", "/faults", body)
    assert response.status_code == 400, response.text
    assert field in response.json["error_description"]
    assert _control(app, "GET", "/faults").json["faults"] == []


def test_request_log_limits_are_checked(app: InProcess) -> None:
    response = _control(app, "GET", "/requests?limit=99999999999999999999")
    assert response.status_code == 400
    assert "limit" in response.json["error_description"]


def test_data_change_durations_read_like_the_scenario_file(app: InProcess) -> None:
    gap = {"kind": "gap", "sa": "rivera-electric", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    response = _control(app, "POST", "/data-changes", gap | {"estimate_after": "1d", "final_after": "3d"})
    assert response.status_code == 201, response.text
    assert response.json["params"]["estimate_after"] == 86400
    count = len(_control(app, "GET", "/data-changes").json["changes"])
    for field, value in (("estimate_after", "soon"), ("final_after", 1e30), ("meter", 10**30),
                         ("estimate_quality", "x"), ("start", "9999-01-01T00:00:00Z")):
        response = _control(app, "POST", "/data-changes", gap | {field: value})
        assert response.status_code == 400, (field, response.text)
        assert field in response.json["error_description"]
    correction = {"kind": "correction", "sa": "rivera-electric", "start": "2026-01-01T00:00:00Z",
                  "end": "2026-01-02T00:00:00Z"}
    for field, value in (("factor", "big"), ("quality", [7])):
        response = _control(app, "POST", "/data-changes", correction | {field: value})
        assert response.status_code == 400, (field, response.text)
        assert field in response.json["error_description"]
    assert len(_control(app, "GET", "/data-changes").json["changes"]) == count


def test_scenario_files_and_the_control_api_share_the_duration_reading(tmp_path: Path) -> None:
    from mock_custodian.scenario.parse import duration_seconds

    assert [duration_seconds(v) for v in (0, 90, "2d", "36h", "90m")] == [0, 90, 172800, 129600, 5400]
    assert [duration_seconds(v) for v in (-1, "1x", "", None, 10**30, True)] == [None] * 6


@pytest.mark.parametrize("body", [True, [], "token", 7])
def test_json_bodies_that_are_not_objects_are_client_mistakes(app: InProcess, body: object) -> None:
    """Found by the fuzz test: a JSON ``true`` sent to the portal's confirm call crashed it."""
    for path in ("/portal/api/confirm", "/__sim/scenario"):
        headers = CONTROL if path.startswith("/__sim") else {}
        response = app.client().post(path, json=body, headers=headers, environ_base=environ("portal"))
        assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
