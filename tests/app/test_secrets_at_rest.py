"""Secrets at rest (issue 12.1) and redaction (12.2): private file modes, hashed bearer values and
passwords, an older data directory upgraded and scrubbed, and no live secret in the database's bytes."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from support.at_rest import assert_private, database_bytes, mode
from support.inprocess import CONTROL_TOKEN, build, environ

from mock_custodian.pki import DevPKI
from mock_custodian.store.hashed import is_password_hash, token_key

TOKEN = "/datacustodian/oauth/v2/token"
STATUS = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_an_older_data_dir_is_upgraded_hashed_and_scrubbed(tmp_path: Path) -> None:
    """A data dir as an older version left it: open modes, plain tokens, codes, sessions and passwords."""
    data_dir = tmp_path / "old"
    app = build(data_dir)
    client = app.client()
    creds = client.get("/__sim/credentials", headers={"X-Control-Token": CONTROL_TOKEN},
                       environ_base=environ("portal")).json
    tp = next(t for t in creds["third_parties"] if t["client_id"] == "00101")
    issued = client.post(f"{TOKEN}?grant_type=client_credentials", headers=_basic("00101", tp["client_secret"]),
                         environ_base=environ("api", app.cert("00101"))).json
    plain = issued["client_access_token"]
    app.app.extensions["mock_custodian"].database.dispose()
    # Turn the database into what the previous version wrote.
    db_file = data_dir / "mock-custodian.db"
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE tokens SET token = ?, prefix = NULL WHERE token = ?", (plain, token_key(plain)))
        conn.execute("ALTER TABLE tokens DROP COLUMN prefix")
        conn.execute("ALTER TABLE authorization_codes DROP COLUMN prefix")
        conn.execute("UPDATE customers SET password = 'demo'")
        conn.execute("UPDATE third_parties SET portal_password = 'old-portal-password'")
        conn.execute("INSERT INTO request_log (at, surface, method, path, query, status, headers, worker_pid) "
                     "VALUES (0, 'api', 'POST', ?, ?, 200, '{}', 1)", (TOKEN, f"code=x&refresh_token={plain}"))
        conn.execute("DELETE FROM sim_meta WHERE key = 'secrets_at_rest'")
    data_dir.chmod(0o755)
    for path in data_dir.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    assert plain.encode() in database_bytes(data_dir)

    upgraded = build(data_dir)
    assert_private(data_dir, ("mock-custodian.db", "mock-custodian.db-wal", "mock-custodian.db-shm",
                               "certs/ca-key.pem", "certs/intermediate-key.pem"))
    assert mode(data_dir / "certs" / "ca.pem") == 0o644  # public material may stay readable
    assert plain.encode() not in database_bytes(data_dir), "the plain token survived the upgrade"
    assert b"old-portal-password" not in database_bytes(data_dir)
    with sqlite3.connect(db_file) as conn:
        passwords = [row[0] for row in conn.execute("SELECT password FROM customers")]
        assert passwords and all(is_password_hash(p) for p in passwords)
        assert conn.execute("SELECT prefix FROM tokens WHERE token = ?", (token_key(plain),)).fetchone() == (
            plain[:8],)
    # The token issued before the upgrade still works; the customer still signs in with the same password.
    response = upgraded.client().get(STATUS, headers={"Authorization": f"Bearer {plain}"},
                                     environ_base=environ("api", upgraded.cert("00101")))
    assert response.status_code == 200, response.text
    portal = upgraded.client().get("/__sim/requests", headers={"X-Control-Token": CONTROL_TOKEN},
                                   environ_base=environ("portal")).json["requests"]
    assert all(plain not in (row["query"] or "") for row in portal)


def test_portal_sign_up_password_uses_the_strong_default(tmp_path: Path) -> None:
    from mock_custodian.store.hashed import ScenarioPasswords, check_password, hash_password

    strong = hash_password("a sign-up password")
    assert strong.startswith("scrypt:") and check_password(strong, "a sign-up password")
    assert not check_password(strong, "another password")
    scenario = ScenarioPasswords()
    assert scenario("demo") is scenario("demo")  # hashed once per distinct password per load
    assert check_password(scenario("demo"), "demo") and not check_password("demo", "demo")


@pytest.mark.parametrize("query", ["code=abcdefghijkl&redirect_uri=https%3A%2F%2Fx", "refresh_token=0123456789abc",
                                   "client_secret=s3cr3t-value-123&x=1", "Access_Token=abcdefghijkl"])
def test_query_strings_are_shortened(query: str) -> None:
    from mock_custodian.redaction import redacted_query

    shown = redacted_query(query)
    secret = query.split("&")[0].split("=")[1]
    assert secret not in shown and secret[:8] + "..." in shown
    assert shown.split("&")[1:] == query.split("&")[1:]


def test_the_dev_ca_key_is_written_private(tmp_path: Path) -> None:
    pki = DevPKI(tmp_path / "certs")
    pki.ensure(["localhost"])
    assert mode(tmp_path / "certs" / "ca-key.pem") == 0o600
