"""The ``mock-custodian`` command: serve, credentials, certs, scenario, validate."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from mock_custodian.domain.world import load_world, loaded_scenario, third_party_credentials
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.parse import ScenarioError, load_scenario_file
from mock_custodian.settings import Settings, load_settings
from mock_custodian.store.at_rest import protect_data_dir
from mock_custodian.store.db import Database
from mock_custodian.tls import proxy_header_problem

RUNTIME_FILE = "server.json"

# Further command groups live in their own modules, each with
# ``register(subparsers, scenario_subparsers)`` adding parsers with ``set_defaults(handler=...)``.
COMMAND_MODULES: tuple[str, ...] = (
    "mock_custodian.cli.control",
    "mock_custodian.cli.third_party",
    "mock_custodian.cli.export",
    "mock_custodian.cli.import_data",
    "mock_custodian.cli.jobs",
    "mock_custodian.cli.report",
    "mock_custodian.cli.population",
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="state folder (default ./.mock-custodian; "
                        "env MOCK_CUSTODIAN_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default SQLite in the data dir; env DATABASE_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-custodian",
        description="A faithful local simulator of PG&E's Share My Data (Green Button Connect My Data).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="prepare the data dir and serve the API and portal over HTTPS")
    _common(serve)
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

    creds = sub.add_parser("credentials", help="print every third party's credentials and certificate paths")
    _common(creds)
    creds.add_argument("--json", action="store_true", help="machine-readable output")

    certs = sub.add_parser("certs", help="development PKI")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    issue = certs_sub.add_parser("issue", help="issue a client (default) or server certificate from the dev CA")
    _common(issue)
    issue.add_argument("name", help="certificate name (subject CN and folder name)")
    issue.add_argument("--server", action="append", metavar="HOST", help="issue a server certificate for HOST")
    issue.add_argument("--p12", action="store_true", help="also write a PKCS#12 bundle (Java/.NET)")
    issue.add_argument("--p12-password", help="PKCS#12 password (default: none; '-' prompts)")

    scenario = sub.add_parser("scenario", help="scenario files")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    validate = scenario_sub.add_parser("validate", help="check a scenario file; errors name file, line, field")
    validate.add_argument("file", type=Path)

    check = sub.add_parser("validate", help="validate Atom feeds and ESPI documents against the shipped ESPI schemas")
    check.add_argument("files", nargs="+", metavar="FILE", help="XML file to check ('-' reads standard input)")
    check.add_argument("--quiet", action="store_true", help="print only invalid files and the summary")

    serve.set_defaults(handler=cmd_serve)
    check.set_defaults(handler=cmd_validate)
    creds.set_defaults(handler=cmd_credentials)
    issue.set_defaults(handler=cmd_certs_issue)
    validate.set_defaults(handler=cmd_scenario_validate)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, scenario_sub)
    return parser


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {"data_dir": getattr(args, "data_dir", None), "database_url": getattr(args, "database_url", None)}
    overrides.update(extra)
    return load_settings(overrides)


def prepare(settings: Settings, reset: bool = False, scenario_given: bool = False) -> tuple[Database, DevPKI]:
    """Data dir, dev PKI, schema and scenario: everything ``serve`` needs, created once."""
    data_dir = settings.resolved_data_dir()
    protect_data_dir(data_dir)  # 0700, private files 0600, also for a directory an older version made
    pki = DevPKI(data_dir / "certs")
    pki.ensure(settings.san)
    database = Database(settings.resolved_database_url())
    database.create_schema()
    scenario = load_scenario_file(settings.scenario)
    current = loaded_scenario(database)
    if reset or current is None or (scenario_given and current["digest"] != scenario.digest):
        load_world(database, scenario, pki)
    return database, pki


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(
        args, host=args.host, api_port=args.api_port, portal_port=args.portal_port, workers=args.workers,
        threads=args.threads, san=args.san, scenario=args.scenario, api_base_url=args.api_base_url,
        portal_base_url=args.portal_base_url,
    )
    problem = proxy_header_problem(settings.client_cert_header, settings.client_cert_header_trusted_ips)
    if problem:
        raise ValueError(problem)
    started = time.monotonic()
    database, pki = prepare(settings, reset=args.reset, scenario_given=args.scenario is not None)
    database.engine.dispose()
    from mock_custodian.server import MockCustodianServer

    print(f"mock-custodian: data dir {settings.resolved_data_dir()} prepared in "
          f"{time.monotonic() - started:.2f}s", flush=True)
    MockCustodianServer(settings, pki, settings.resolved_data_dir() / RUNTIME_FILE).run()
    return 0


def server_info(settings: Settings) -> dict[str, Any]:
    runtime_file = settings.resolved_data_dir() / RUNTIME_FILE
    if runtime_file.exists():
        return json.loads(runtime_file.read_text())
    return {"api_base_url": settings.resolved_api_base_url(), "portal_base_url": settings.resolved_portal_base_url()}


def cmd_credentials(args: argparse.Namespace) -> int:
    settings = _settings(args)
    database, pki = prepare(settings)
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
    settings = _settings(args)
    pki = DevPKI(settings.resolved_data_dir() / "certs")
    pki.ensure(settings.san)
    password = args.p12_password
    if password == "-":
        password = getpass.getpass("PKCS#12 password: ")
    try:
        files = pki.issue(args.name, server_names=args.server, with_p12=args.p12,
                          pkcs12_password=password.encode() if password else None)
    except ValueError as exc:
        print(f"mock-custodian: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(files.as_dict() | {"ca_bundle": str(pki.ca_bundle)}, indent=2))
    return 0


def cmd_scenario_validate(args: argparse.Namespace) -> int:
    scenario = load_scenario_file(args.file)
    count = sum(len(a.service_agreements) for c in scenario.customers for a in c.accounts)
    print(f"{args.file}: valid: {len(scenario.third_parties)} third parties, {len(scenario.customers)} customers, "
          f"{count} service agreements, {len(scenario.authorizations)} authorizations"
          + (f", {scenario.population.count} generated customers" if scenario.population else ""))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Each file's verdict and its errors with line numbers; exit 1 when any file is invalid."""
    from mock_custodian.espi.validate import format_outcome, validate_path

    good = bad = 0
    for path in args.files:
        outcome = validate_path(path)
        good, bad = good + outcome.ok, bad + (not outcome.ok)
        if outcome.ok and args.quiet:
            continue
        print("\n".join(format_outcome("<stdin>" if path == "-" else path, outcome)))
    print(f"{good} valid, {bad} invalid")
    return 0 if bad == 0 else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ScenarioError as exc:
        print(f"mock-custodian: scenario error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"mock-custodian: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
