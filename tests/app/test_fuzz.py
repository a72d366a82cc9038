"""Hostile input over every route (API host, portal host, control API) never gets a 5xx (issue 12).

Property-based: hypothesis picks a route of the app's URL map and fills its path variables, query,
headers and body with hostile values (huge and negative numbers, unicode, path tricks, dates out of
range, duplicate parameters, malformed Basic headers, bodies of the wrong type). Each example starts from
the same world: the SQLite file is restored from a snapshot taken after setup, so a clock moved to the
edge of the calendar or an injected fault cannot poison the next example.

The default run is derandomized, in-process (Flask's test client, the peer certificate placed in the
WSGI environ as the TLS worker does) with about 2,000 examples; ``MOCK_CUSTODIAN_FUZZ_EXAMPLES`` asks for
more. A small slice runs over real TLS and asserts that no connection is dropped.
"""


from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzz import DELIBERATE_5XX, EXAMPLES, Crashes, World, make_world, request_spec, restore, send


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("fuzz"))


def test_no_request_gets_a_5xx_in_process(world: World) -> None:
    crashes = Crashes()
    logger = logging.getLogger("mock_custodian")
    logger.addHandler(crashes)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
    @given(st.data())
    def one_example(data: st.DataObject) -> None:
        restore(world)
        crashes.records.clear()
        deliberate = False
        for _ in range(data.draw(st.integers(1, 2))):
            spec = data.draw(request_spec(world))
            response = send(world, spec)
            status = response.status_code
            response.close()
            assert not crashes.records, (spec, crashes.records[0].getMessage(), crashes.records[0].exc_text)
            assert deliberate or status < 500, (spec, status, response.get_data()[:300])
            if spec["path"] in DELIBERATE_5XX and spec["method"] == "POST" and status < 300:
                deliberate = True
                break

    try:
        one_example()
    finally:
        logger.removeHandler(crashes)
        restore(world)
