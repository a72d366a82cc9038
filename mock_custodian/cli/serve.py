"""``mock-custodian serve``, ``credentials`` and ``certs issue``: run the simulator and reach it.

``serve`` prepares the data dir (dev PKI, schema, scenario) and runs the HTTPS listeners;
``credentials`` prints what a third party needs to call it; ``certs issue`` adds certificates from the dev CA.
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from pathlib import Path

from mock_custodian.cli.common import (
    RUNTIME_FILE,
    add_common_options,
    fail,
    open_data_dir,
    server_info,
    settings_from_args,
)
from mock_custodian.domain.world import third_party_credentials
from mock_custodian.pki import DevPKI
from mock_custodian.tls import proxy_header_problem


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve``, ``credentials`` and ``certs`` to the ``mock-custodian`` command."""
    serve = sub.add_parser("serve", help="prepare the data dir and serve the API and portal over HTTPS")
    add_common_options(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--api-port", type=int, help="API listener (api.pge.com role; default 8443; 0 = random)")
    serve.add_argument("--portal-port", type=int, help="portal listener (sharemydata.pge.com role; default 8444)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (default 2)")
    serve.add_argument("--threads", type=int, help="threads per worker (default 8)")
    serve.add_argument("--san", action="append", help="extra server-certificate name (repeatable)")
    serve.add_argument("--scenario", type=Path, help="scenario YAML to load (default: built-in demo)")
    serve.add_argument("--reset", action="store_true", help="reload the scenario, discarding all state")
    serve.add_argument("--api-base-url", help="public base URL of the API host (e.g. https://api.pge.com)")
    serve.add_argument("--portal-base-url", help="public base URL of the portal host")
    serve.set_defaults(handler=cmd_serve)

    creds = sub.add_parser("credentials", help="print every third party's credentials and certificate paths")
    add_common_options(creds)
    creds.add_argument("--json", action="store_true", help="machine-readable output")
    creds.set_defaults(handler=cmd_credentials)

    certs = sub.add_parser("certs", help="development PKI")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    issue = certs_sub.add_parser("issue", help="issue a client (default) or server certificate from the dev CA")
    add_common_options(issue)
    issue.add_argument("name", help="certificate name (subject CN and folder name)")
    issue.add_argument("--server", action="append", metavar="HOST", help="issue a server certificate for HOST")
    issue.add_argument("--p12", action="store_true", help="also write a PKCS#12 bundle (Java/.NET)")
    issue.add_argument("--p12-password", help="PKCS#12 password (default: none; '-' prompts)")
    issue.set_defaults(handler=cmd_certs_issue)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(
        args, host=args.host, api_port=args.api_port, portal_port=args.portal_port, workers=args.workers,
        threads=args.threads, san=args.san, scenario=args.scenario, api_base_url=args.api_base_url,
        portal_base_url=args.portal_base_url,
    )
    problem = proxy_header_problem(settings.client_cert_header, settings.client_cert_header_trusted_ips)
    if problem:
        raise ValueError(problem)
    started = time.monotonic()
    data = open_data_dir(settings, create=True, reset=args.reset, scenario_given=args.scenario is not None)
    data.database.dispose()
    from mock_custodian.server import MockCustodianServer  # gunicorn: only the command that serves loads it

    print(f"mock-custodian: data dir {settings.resolved_data_dir()} prepared in "
          f"{time.monotonic() - started:.2f}s", flush=True)
    MockCustodianServer(settings, data.pki, settings.resolved_data_dir() / RUNTIME_FILE).run()
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    settings, database, pki = open_data_dir(args, create=True)
    creds = third_party_credentials(database, pki, server_info(settings))
    if args.json:
        print(json.dumps(creds, indent=2))
        return 0
    print(f"API base URL:    {creds['api_base_url']}")
    print(f"Portal base URL: {creds['portal_base_url']}")
    print(f"CA bundle:       {creds['ca_bundle']}")
    for tp in creds["third_parties"]:
        print()
        print(f"{tp['display_name']}  [{tp['user_type']}, {tp['registration_status']}]")
        for key in ("client_id", "client_secret", "registration_access_token", "bulk_id",
                    "application_information_id", "redirect_uri", "third_party_portal_uri", "notification_uri",
                    "certificate_chain", "key"):
            print(f"  {key:28} {tp[key]}")
    return 0


def cmd_certs_issue(args: argparse.Namespace) -> int:
    """Only the PKI: issuing a certificate needs no database or world."""
    settings = settings_from_args(args)
    pki = DevPKI(settings.resolved_data_dir() / "certs")
    pki.ensure(settings.san)
    password = args.p12_password
    if password == "-":
        password = getpass.getpass("PKCS#12 password: ")
    try:
        files = pki.issue(args.name, server_names=args.server, with_p12=args.p12,
                          pkcs12_password=password.encode() if password else None)
    except ValueError as exc:
        return fail(str(exc))
    print(json.dumps(files.as_dict() | {"ca_bundle": str(pki.ca_bundle)}, indent=2))
    return 0
