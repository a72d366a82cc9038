"""The certificate guard of spec section 3 (checklist 11-16, 19) on the app in-process: the client certificate
is checked by the server's own verifier as the TLS layer hands it over. What only a real handshake shows
(chainless, foreign and expired certificates, no certificate, the listeners, SNI): tests/e2e/test_mtls.py."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from support import RESOURCE, inprocess
from support.mtls import assert_invalid_certificate, client_credentials, dev_pki, service_status, write_certificate

from mock_custodian import pki as pkimod
from mock_custodian import testing


def test_registered_certificate_with_chain_reaches_the_api(demo_app: testing.RunningServer) -> None:
    response = client_credentials(demo_app, "00101")
    assert response.status_code == 200, response.text
    token = response.json()["client_access_token"]
    status = service_status(demo_app, token, demo_app.cert("00101"))
    assert status.status_code == 200
    assert "<currentStatus>1</currentStatus>" in status.text


def test_certificate_check_runs_before_method_path_and_credential_checks(demo_app: testing.RunningServer) -> None:
    for method, path in (("GET", "/datacustodian/oauth/v2/token"), ("GET", "/no/such/path"),
                         ("PUT", f"{RESOURCE}/ReadServiceStatus")):
        response = requests.request(method, f"{demo_app.api_base_url}{path}", verify=demo_app.ca_bundle,
                                    timeout=10)
        assert_invalid_certificate(response)


def test_same_subject_from_the_dev_ca_but_not_registered_is_refused(
    demo_app: testing.RunningServer, tmp_path: Path
) -> None:
    dev = dev_pki(demo_app)
    registered = x509.load_pem_x509_certificate(Path(demo_app.third_party("00101")["certificate"]).read_bytes())
    issuer_cert, issuer_key = dev._issuer()
    key = pkimod.new_key()
    twin = pkimod.build_certificate(registered.subject, key.public_key(), issuer_cert, issuer_key, client_auth=True)
    assert twin.subject == registered.subject
    assert pkimod.fingerprint_sha256(twin) != pkimod.fingerprint_sha256(registered)
    files = write_certificate(tmp_path, "twin", twin, key, [issuer_cert])
    assert_invalid_certificate(client_credentials(demo_app, "00101", cert=files))


def test_another_third_partys_certificate(demo_app: testing.RunningServer) -> None:
    # Client A's Basic credentials over client B's certificate: 401 invalid_client (spec 3.4).
    response = client_credentials(demo_app, "00101", cert=demo_app.cert("00102"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    # Client A's token over client B's certificate: 403.
    token = client_credentials(demo_app, "00101").json()["client_access_token"]
    response = service_status(demo_app, token, demo_app.cert("00102"))
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/json")


def test_a_portal_page_on_the_api_listener_is_no_listener_but_only_after_the_certificate_check(
        demo_app: testing.RunningServer) -> None:
    """Each host serves its own paths (spec 2.3): the API host checks the certificate before anything else."""
    page = f"{demo_app.api_base_url}/myAuthorization"
    assert_invalid_certificate(requests.get(page, verify=demo_app.ca_bundle, timeout=10))
    assert_invalid_certificate(requests.get(f"{demo_app.api_base_url}/GreenButtonConnect/espi/1_1/nothing",
                                            verify=demo_app.ca_bundle, timeout=10))
    response = requests.get(page, cert=demo_app.cert("00101"), verify=demo_app.ca_bundle, timeout=10)
    assert response.status_code == 404
    assert response.text == "No listener for endpoint: /myAuthorization"
    on_portal = requests.get(f"{demo_app.portal_base_url}/myAuthorization", params={"client_id": "00101"},
                             verify=demo_app.ca_bundle, timeout=10)
    assert on_portal.status_code != 404, "the same path is a page on its own host"


def test_unknown_path_and_wrong_method_get_pge_bodies(demo_app: testing.RunningServer) -> None:
    cert = demo_app.cert("00101")
    response = requests.get(f"{demo_app.api_base_url}/GreenButtonConnect/espi/1_1/nothing", cert=cert,
                            verify=demo_app.ca_bundle, timeout=10)
    assert response.status_code == 404
    assert response.text == "No listener for endpoint: /GreenButtonConnect/espi/1_1/nothing"
    response = requests.get(f"{demo_app.api_base_url}/datacustodian/oauth/v2/authorize", cert=cert,
                            verify=demo_app.ca_bundle, timeout=10)
    assert response.status_code == 404  # retired with Click-Through Phase 2
    response = requests.get(f"{demo_app.api_base_url}/datacustodian/oauth/v2/token", cert=cert,
                            verify=demo_app.ca_bundle,
                            timeout=10)
    assert response.status_code == 405
    assert response.json() == {"error": "invalid_request", "error_description": "GET not permitted"}


def test_missing_bearer_is_401_after_a_good_certificate(demo_app: testing.RunningServer) -> None:
    response = service_status(demo_app, None, demo_app.cert("00101"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_trusted_proxy_header_is_off_by_default(demo_app: testing.RunningServer) -> None:
    pem = Path(demo_app.third_party("00101")["certificate"]).read_text()
    response = requests.get(f"{demo_app.api_base_url}{RESOURCE}/ReadServiceStatus",
                            headers={"X-SSL-Client-Cert": quote(pem)}, verify=demo_app.ca_bundle, timeout=10)
    assert_invalid_certificate(response)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    server = inprocess.start(
        tmp_path_factory.mktemp("proxied"),
        settings={"client_cert_header": "X-SSL-Client-Cert", "client_cert_header_trusted_ips": ["127.0.0.1"]},
    )
    yield server
    server.stop()


def test_trusted_proxy_header_when_enabled(proxied: testing.RunningServer) -> None:
    pem = Path(proxied.third_party("00101")["certificate"]).read_text()
    url = f"{proxied.api_base_url}{RESOURCE}/ReadServiceStatus"
    # Certificate forwarded by the (trusted, loopback) proxy: the guard passes, the bearer check answers.
    response = requests.get(url, headers={"X-SSL-Client-Cert": quote(pem)}, verify=proxied.ca_bundle, timeout=10)
    assert response.status_code == 401
    # A forwarded certificate not registered to anyone is still refused.
    dev = pkimod.DevPKI(proxied.data_dir / "certs")
    other = dev.issue("unregistered via proxy")
    response = requests.get(url, headers={"X-SSL-Client-Cert": quote(other.certificate.read_text())},
                            verify=proxied.ca_bundle, timeout=10)
    assert_invalid_certificate(response)
