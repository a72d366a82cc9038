"""CLI commands of the test-double controls: clock, reset, requests, notifications, faults, customers,
consent, export-credentials.

They work on the data dir's database directly (no server or control token needed, the same state
the running server reads), so ``docker exec mock-pge mock-custodian clock advance 2h`` works too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mock_custodian.cli.common import RUNTIME_FILE, add_common_options, fail, open_data_dir, server_info
from mock_custodian.domain import client_credentials, control, customer_add, faults, observations
from mock_custodian.domain.world import loaded_scenario, third_party_credentials
from mock_custodian.errors import ControlError

TAIL_POLL_S = 0.5


def register(sub: argparse._SubParsersAction) -> None:
    """Add the test-double controls to the ``mock-custodian`` command."""
    clock = sub.add_parser("clock", help="show or move the simulated clock (shared by every worker)")
    add_common_options(clock)
    clock_sub = clock.add_subparsers(dest="clock_command")
    for name, help_text in (("show", "print simulated now"), ("thaw", "let a frozen clock run again")):
        p = clock_sub.add_parser(name, help=help_text)
        add_common_options(p)
    advance = clock_sub.add_parser("advance", help="move simulated time: 90m, 2h, 3d, 1w, PT2H or seconds")
    add_common_options(advance)
    advance.add_argument("duration")
    set_ = clock_sub.add_parser("set", help="make now an instant (ISO 8601 with Z or an offset, or epoch)")
    add_common_options(set_)
    set_.add_argument("instant")
    freeze = clock_sub.add_parser("freeze", help="stop simulated time (at now, or at INSTANT)")
    add_common_options(freeze)
    freeze.add_argument("instant", nargs="?")
    clock.set_defaults(handler=cmd_clock)

    reset = sub.add_parser("reset", help="back to the loaded scenario: world, tokens, clock, logs, faults, sink")
    add_common_options(reset)
    reset.set_defaults(handler=cmd_reset)

    log = sub.add_parser("requests", help="the request log: what clients sent and what they got")
    add_common_options(log)
    log.add_argument("--tail", action="store_true", help="keep printing new requests until interrupted")
    log.add_argument("--client-id")
    log.add_argument("--method")
    log.add_argument("--path", help="path, or a glob with * and ?")
    log.add_argument("--status", type=int)
    log.add_argument("--limit", type=int, default=50, help="the last N (default 50)")
    log.add_argument("--headers", action="store_true", help="also print each request's headers")
    shape = log.add_mutually_exclusive_group()
    shape.add_argument("--jsonl", action="store_true",
                       help="JSON Lines: one JSON object per request, one per line (works with --tail)")
    shape.add_argument("--json", action="store_true", help="one JSON array of the requests (not with --tail)")
    log.set_defaults(handler=cmd_requests)

    notes = sub.add_parser("notifications", help="notifications owed or sent, and what the sink received")
    add_common_options(notes)
    notes.add_argument("--client-id")
    notes.add_argument("--json", action="store_true")
    notes.set_defaults(handler=cmd_notifications)

    fault = sub.add_parser("faults", help="list, add or clear injected faults")
    add_common_options(fault)
    fault_sub = fault.add_subparsers(dest="faults_command")
    p = fault_sub.add_parser("list", help="configured faults and how often each fired")
    add_common_options(p)
    add = fault_sub.add_parser("add", help="add a fault, e.g. `faults add maintenance --path '*/ReadServiceStatus' "
                                           "--times 1`")
    add_common_options(add)
    add.add_argument("kind", choices=list(faults.KINDS))
    add.add_argument("--path", help="glob over the request path (or the notification URI)")
    add.add_argument("--method")
    add.add_argument("--client-id")
    add.add_argument("--surface", choices=["api", "portal"])
    add.add_argument("--times", type=int, help="fire on the first N matches (default: every match)")
    add.add_argument("--probability", type=float, default=1.0)
    add.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="kind parameter: status=502, body_format=html, retry_after=30, delay_ms=2000, ...")
    p = fault_sub.add_parser("clear", help="remove every fault")
    add_common_options(p)
    fault.set_defaults(handler=cmd_faults)

    people = sub.add_parser("customers", help="the world's customers, accounts and service agreements; "
                                              "`customers add FILE` adds some without replacing the world")
    add_common_options(people)
    people.add_argument("--json", action="store_true", help="machine-readable output (as GET /__sim/customers)")
    people_sub = people.add_subparsers(dest="customers_command")
    p = people_sub.add_parser("add", help="add the customers of a scenario fragment (`customers: [...]`, the "
                                          "scenario file's format; '-' reads standard input)")
    add_common_options(p)
    p.add_argument("file", help="YAML file with a customers: list ('-' for standard input)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    people.set_defaults(handler=cmd_customers)

    consent = sub.add_parser("consent", help="a customer authorizes a third party without the consent pages "
                                             "(as POST /__sim/authorizations); prints PG&E's token response")
    add_common_options(consent)
    consent.add_argument("customer", help="customer key or user name (see `mock-custodian customers`)")
    consent.add_argument("client_id", help="the third party's client_id")
    consent.add_argument("--groups", nargs="+", metavar="GROUP",
                         help="data groups (Basic, Account, Billing, Usage, ProgramEnrollment; default: all the "
                              "third party registered)")
    consent.add_argument("--sa", nargs="+", metavar="SA", dest="service_agreements",
                         help="service agreements: keys, SA numbers or usage point ids (default: every active one)")
    consent.add_argument("--end-date", help="YYYY-MM-DD (default: Indefinite)")
    consent.add_argument("--no-exchange", action="store_true", help="stop at the authorization code")
    consent.add_argument("--full", action="store_true",
                         help="print the whole result (authorization id, SAs, scope, code) instead of the token "
                              "response alone")
    consent.set_defaults(handler=cmd_consent)

    export = sub.add_parser("export-credentials", help="write every third party's credentials, PEM files and "
                                                       "optionally PKCS#12 bundles to a folder (for CI)")
    add_common_options(export)
    export.add_argument("out", type=Path)
    export.add_argument("--p12", action="store_true", help="also write bundle.p12 per third party")
    export.add_argument("--p12-password", help="PKCS#12 password (default: none)")
    export.set_defaults(handler=cmd_export_credentials)


# --- plumbing -------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain aligned text table: ``columns`` are (key, heading)."""
    if not rows:
        return "(none)"
    cells = [[("" if r.get(k) is None else str(r.get(k))) for k, _ in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


# --- commands -------------------------------------------------------------------------------------


def cmd_clock(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=False).database
    clock = database.clock()
    command = args.clock_command or "show"
    try:
        with database.session() as db:
            if command == "advance":
                control.advance_clock(db, control.parse_duration(args.duration, "duration"), clock.real_epoch())
            elif command == "set":
                control.set_clock(db, control.parse_instant_value(args.instant), clock.real_epoch())
            elif command == "freeze":
                at = control.parse_instant_value(args.instant) if args.instant else None
                control.freeze_clock(db, clock.real_epoch(), at)
            elif command == "thaw":
                control.thaw_clock(db, clock.real_epoch())
    except ControlError as exc:
        return fail(exc.description)
    view = control.clock_view(database.read_clock_state(), clock.real_epoch())
    state = "frozen" if view["frozen"] else f"running, {_offset(view['offset_s'])} from real time"
    print(f"{view['now']}  ({view['local']} Pacific; {state})")
    return 0


def _offset(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    seconds = abs(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}h{minutes:02d}m{secs:02d}s"
    return f"{sign}{days}d{clock}" if days else f"{sign}{clock}"


def cmd_reset(args: argparse.Namespace) -> int:
    settings, database, pki = open_data_dir(args, create=False)
    control.reload_world(database, pki, control.current_scenario(database, settings.scenario))
    loaded = loaded_scenario(database) or {}
    print(f"reset to scenario {loaded.get('name')!r} ({loaded.get('path')})")
    return 0


REQUEST_COLUMNS = [("id", "ID"), ("at", "AT (simulated)"), ("method", "METHOD"), ("target", "PATH"),
                   ("status", "STATUS"), ("who", "CLIENT"), ("cert", "CERTIFICATE"), ("why", "ERROR / REASON")]


CLAIMED_LEGEND = ("CLIENT: 00101 = authenticated (its certificate, Basic credentials or token checked); "
                  "00101? = only claimed (Basic user name or client_id parameter): the request was answered "
                  "before its credentials were checked, e.g. by an injected fault, a rate limit or a certificate "
                  "or credential error")


def _claimed_only(r: dict[str, Any]) -> bool:
    return not r["client_id"] and bool(r["claimed_client_id"])


def _request_row(r: dict[str, Any]) -> dict[str, Any]:
    cert = r["certificate"]
    return {
        "id": r["id"], "at": r["at"], "method": r["method"],
        "target": r["path"] + (f"?{r['query']}" if r["query"] else ""),
        "status": r["status"] or "dropped",
        "who": r["client_id"] or (f"{r['claimed_client_id']}?" if r["claimed_client_id"] else ""),  # see legend
        "cert": ("none" if cert is None else cert["registered_to"] or f"unregistered {cert['sha256'][:12]}"),
        "why": " / ".join(x for x in (r["error"], r["reason"]) if x),
    }


def cmd_requests(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=False).database
    if args.json and args.tail:
        return fail("--json prints one array and cannot --tail; use --jsonl (one object per line)")
    filters = {"client_id": args.client_id, "method": args.method, "path": args.path, "status": args.status}
    with database.session() as db:
        everything = observations.request_log(db, limit=observations.MAX_LIST, **filters)
    rows = everything[-args.limit:] if args.limit else everything
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_requests(rows, args, header=True)
    if not args.jsonl and any(_claimed_only(r) for r in rows):
        print(CLAIMED_LEGEND)
    last = everything[-1]["id"] if everything else 0
    if not args.tail:
        return 0
    try:
        while True:
            time.sleep(TAIL_POLL_S)
            with database.session() as db:
                rows = observations.request_log(db, since_id=last, **filters)
            if rows:
                _print_requests(rows, args, header=False)
                last = rows[-1]["id"]
    except KeyboardInterrupt:
        return 0


def _print_requests(rows: list[dict[str, Any]], args: argparse.Namespace, header: bool) -> None:
    if args.jsonl:
        for r in rows:
            print(json.dumps(r))
    else:
        text = table([_request_row(r) for r in rows], REQUEST_COLUMNS) if rows or header else ""
        if not header and text:
            text = "\n".join(text.splitlines()[2:])  # no heading again while tailing
        if text:
            print(text)
        if args.headers:
            for r in rows:
                print(f"  #{r['id']} " + "; ".join(f"{k}: {v}" for k, v in r["headers"].items()))
    sys.stdout.flush()


def cmd_notifications(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=False).database
    with database.session() as db:
        notes = observations.list_notifications(db, args.client_id)
        posts = observations.sink_posts(db)
    if args.json:
        print(json.dumps({"notifications": notes, "sink": posts}, indent=2))
        return 0
    print("Notifications (what the data custodian POSTs to notification URIs)")
    print(table([
        {"id": n["id"], "client": n["client_id"], "uri": n["uri"], "status": n["status"],
         "attempts": len(n["attempts"]),
         "last": (n["attempts"][-1].get("status") or n["attempts"][-1].get("error")) if n["attempts"] else "",
         "next": n["next_attempt_at"] if n["status"] == "pending" else ""}
        for n in notes
    ], [("id", "ID"), ("client", "CLIENT"), ("uri", "URI"), ("status", "STATUS"), ("attempts", "ATTEMPTS"),
        ("last", "LAST OUTCOME"), ("next", "NEXT ATTEMPT")]))
    print()
    print("Sink (/__sim/sink/<name>: POSTs received)")
    print(table([
        {"id": p["id"], "sink": p["sink"], "at": p["received_at"], "type": p["content_type"],
         "body": p["body"][:80].replace("\n", " ")}
        for p in posts
    ], [("id", "ID"), ("sink", "SINK"), ("at", "RECEIVED (simulated)"), ("type", "CONTENT TYPE"), ("body", "BODY")]))
    return 0


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_faults(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=False).database
    command = args.faults_command or "list"
    try:
        with database.session() as db:
            if command == "add":
                params = {}
                for item in args.param:
                    name, sep, value = item.partition("=")
                    if not sep:
                        raise ControlError(f"--param {item!r} is not NAME=VALUE")
                    params[name.strip()] = _param_value(value)
                spec = {"kind": args.kind, "path": args.path, "method": args.method, "client_id": args.client_id,
                        "surface": args.surface, "times": args.times, "probability": args.probability,
                        "params": params}
                fault = faults.add_fault(db, {k: v for k, v in spec.items() if v is not None},
                                         database.clock().epoch())
                print(f"fault #{fault.id} added")
            elif command == "clear":
                print(f"{faults.clear_faults(db)} fault(s) removed")
                return 0
            rows = [faults.describe(f) for f in faults.list_faults(db)]
    except ControlError as exc:
        return fail(exc.description)
    print(table([
        {**r, "scope": " ".join(x for x in (r["method"], r["path"] or "*",
                                            r["client_id"] and f"client={r['client_id']}", r["surface"]) if x),
         "how_often": ("every match" if r["times"] is None else f"first {r['times']}")
         + (f" at p={r['probability']}" if r["probability"] < 1 else ""),
         "params": json.dumps({k: v for k, v in r["params"].items() if v}, separators=(",", ":")),
         "state": "active" if r["active"] else "spent"}
        for r in rows
    ], [("id", "ID"), ("kind", "KIND"), ("scope", "SCOPE"), ("how_often", "HOW OFTEN"), ("params", "PARAMS"),
        ("fired", "FIRED"), ("state", "STATE")]))
    return 0


def cmd_export_credentials(args: argparse.Namespace) -> int:
    """Copy what a client in any language needs into one folder: credentials.json with paths in it."""
    settings, database, pki = open_data_dir(args, create=False)
    creds = third_party_credentials(database, pki, server_info(settings))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pki.ca_bundle, out / "ca.pem")
    creds["ca_bundle"] = str(out / "ca.pem")
    for tp in creds["third_parties"]:
        folder = out / tp["client_id"]
        folder.mkdir(exist_ok=True)
        source = pki.client_folder(tp["client_id"])
        for key, name in (("certificate", "cert.pem"), ("certificate_chain", "chain.pem"), ("key", "key.pem")):
            shutil.copyfile(source / name, folder / name)
            tp[key] = str(folder / name)
        (folder / "key.pem").chmod(0o600)
        if args.p12:
            blob = client_credentials.pkcs12_bundle(source, pki.intermediate_cert_path, tp["client_id"],
                                                    args.p12_password)
            (folder / "bundle.p12").write_bytes(blob)
            (folder / "bundle.p12").chmod(0o600)
            tp["pkcs12"] = str(folder / "bundle.p12")
    creds.pop("data_custodian_certificate_chain", None)
    (out / "credentials.json").write_text(json.dumps(creds, indent=2))
    print(f"wrote {len(creds['third_parties'])} third parties' credentials to {out} (credentials.json, ca.pem, "
          f"<client_id>/chain.pem, key.pem{', bundle.p12' if args.p12 else ''})")
    return 0


def cmd_customers(args: argparse.Namespace) -> int:
    """List the world's customers, or add a fragment's customers to it."""
    database = open_data_dir(args, create=False).database
    added: set[str] | None = None
    if args.customers_command == "add":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        specs = customer_add.parse_customers(text, "<stdin>" if args.file == "-" else args.file)
        try:
            with database.session() as db:
                added = {c.key for c in customer_add.add_customers(db, specs, database.clock().epoch())}
        except ControlError as exc:
            return fail(exc.description)
    with database.session() as db:
        rows = [r for r in control.customers(db) if added is None or r["key"] in added]
    if args.json:
        print(json.dumps({"customers": rows}, indent=2))
        return 0
    if added is not None:
        print(f"added {len(rows)} customer(s); `mock-custodian reset` returns to the loaded scenario without them")
    lines = []
    for r in rows:
        sas = [(a, sa) for a in r["accounts"] for sa in a["service_agreements"]] or [(None, None)]
        for index, (a, sa) in enumerate(sas):
            # The catalog's situation (what happens to this customer) is said once, on its first row.
            lines.append({
                "customer": r["key"], "username": r["username"], "name": r["name"], "class": r["class"],
                "account": (a["account_number"] + ("" if a["linked"] else " (unlinked)")) if a else "",
                "sa": sa["key"] if sa else "", "sa_number": sa["sa_number"] if sa else "",
                "usage_point": sa["usage_point_id"] if sa else "", "commodity": sa["commodity"] if sa else "",
                "status": sa["status"] if sa else "", "rate": sa["rate_schedule"] if sa else "",
                "situation": (r.get("situation") or "") if index == 0 else ""})
    print(table(lines, [("customer", "CUSTOMER"), ("username", "USERNAME"), ("name", "NAME"), ("class", "CLASS"),
                        ("account", "ACCOUNT"), ("sa", "SA KEY"), ("sa_number", "SA NUMBER"),
                        ("usage_point", "USAGE POINT"), ("commodity", "COMMODITY"), ("status", "STATUS"),
                        ("rate", "RATE"), ("situation", "SITUATION")]))
    return 0


def cmd_consent(args: argparse.Namespace) -> int:
    """POST /__sim/authorizations from the command line: consent, code exchange, PG&E's token response."""
    # The web app (Flask, every blueprint) costs a tenth of a second: only this command loads it.
    from flask import Flask

    from mock_custodian.api.control import authorization_created_view
    from mock_custodian.web.context import Runtime

    settings, database, pki = open_data_dir(args, create=False)
    runtime_file = settings.resolved_data_dir() / RUNTIME_FILE
    if runtime_file.exists():  # the running server's public URLs, as the control API would use them
        settings = replace(settings, api_base_url=json.loads(runtime_file.read_text()).get("api_base_url"))
    # The token response is rendered by the token endpoint's own code, which reads the app's runtime.
    app = Flask(__name__)
    app.extensions["mock_custodian"] = Runtime.build(settings, database, pki)
    try:
        with app.app_context(), database.session() as db:
            created, issued = control.create_authorization(
                db, customer=args.customer, client_id=args.client_id, service_agreements=args.service_agreements,
                data_groups=args.groups, end_date=args.end_date, now=database.clock().epoch(),
                resource_base=app.extensions["mock_custodian"].resource_base_url(),
                exchange=not args.no_exchange,
                lifetimes=app.extensions["mock_custodian"].token_lifetimes)
            out = authorization_created_view(created, issued, args.customer, args.client_id, settings)
    except ControlError as exc:
        return fail(exc.description)
    print(json.dumps(out if args.full or out["token"] is None else out["token"], indent=2))
    return 0
