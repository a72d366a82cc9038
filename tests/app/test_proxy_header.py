"""The proxy certificate header (issue 12.6): believed only from a named proxy address, and then alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from support.inprocess import InProcess, build, environ

from mock_custodian.pki import DevPKI

STATUS = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"
HEADER = "X-SSL-Client-Cert"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> InProcess:
    return build(tmp_path_factory.mktemp("proxy-header"), client_cert_header=HEADER,
                 client_cert_header_trusted_ips=["10.0.0.5"])


def _header(path: Path) -> dict[str, str]:
    return {HEADER: quote(path.read_text())}


def test_the_trusted_list_is_empty_by_default_and_a_header_alone_refuses_to_start(tmp_path: Path) -> None:
    from mock_custodian.settings import Settings

    assert Settings().client_cert_header_trusted_ips == []
    with pytest.raises(ValueError, match="client_cert_header_trusted_ips is empty"):
        build(tmp_path / "app", client_cert_header=HEADER)
    done = subprocess.run([sys.executable, "-m", "mock_custodian", "serve", "--data-dir", str(tmp_path / "cli"),
                           "--api-port", "0", "--portal-port", "0"],
                          env={"MOCK_CUSTODIAN_CLIENT_CERT_HEADER": HEADER, "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": ":".join(sys.path)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "trusted_ips is empty" in done.stderr


def test_from_the_trusted_proxy_the_header_is_authoritative(proxied: InProcess) -> None:
    client = proxied.client()
    registered = proxied.cert("00101")
    other = DevPKI(proxied.data_dir / "certs").issue("not registered").certificate
    # The proxy forwards the third party's certificate: the guard passes, the bearer check answers.
    response = client.get(STATUS, headers=_header(registered), environ_base=environ("api", None, "10.0.0.5"))
    assert response.status_code == 401
    # The proxy's own TLS certificate (here a registered one) is ignored: the header names who is calling.
    response = client.get(STATUS, headers=_header(other), environ_base=environ("api", registered, "10.0.0.5"))
    assert (response.status_code, response.text) == (400, "Invalid Certificate")
    # No header from the proxy: no certificate at all, even with a registered TLS certificate.
    response = client.get(STATUS, environ_base=environ("api", registered, "10.0.0.5"))
    assert (response.status_code, response.text) == (400, "Invalid Certificate")


def test_from_any_other_address_the_header_is_ignored(proxied: InProcess) -> None:
    client = proxied.client()
    registered = proxied.cert("00101")
    other = DevPKI(proxied.data_dir / "certs").issue("not registered either").certificate
    # A local process forwarding a registered certificate it only knows publicly gets nowhere.
    response = client.get(STATUS, headers=_header(registered), environ_base=environ("api", None, "127.0.0.1"))
    assert (response.status_code, response.text) == (400, "Invalid Certificate")
    # A real TLS certificate is not overridden by a header from an untrusted address.
    response = client.get(STATUS, headers=_header(other), environ_base=environ("api", registered, "127.0.0.1"))
    assert response.status_code == 401
