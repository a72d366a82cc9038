"""``mock-custodian third-party ...`` and ``mock-custodian outbox``: the Third Party Portal without a browser.

Registration, edits and certificate updates go through the same backend as the portal, so CI scripts
can register and reconfigure a third party; the administrative actions (accept, approve, hold, resume,
expire, terminate) are PG&E's side of the lifecycle. All of it works on the data directory directly,
with or without a running server (the server sees the change at once: state lives in the database).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

from mock_custodian import clock
from mock_custodian.cli.common import add_common_options, fail, open_data_dir, server_info
from mock_custodian.domain import portal_accounts, registration_certificates, registration_form
from mock_custodian.domain import registration as reg
from mock_custodian.domain.outbox import delivered_emails, email_as_dict
from mock_custodian.domain.rehearsal import rehearsal
from mock_custodian.errors import PGEError
from mock_custodian.pki import DevPKI
from mock_custodian.portal import registration_view
from mock_custodian.settings import Settings
from mock_custodian.web import policies

ADMIN_ACTIONS = {
    "accept": "accept a submitted or in-review registration (testing may begin)",
    "approve": "approve an accepted registration (the final review)",
    "hold": "put an accepted or approved registration on hold",
    "resume": "take a registration off hold",
    "expire": "expire a registration in testing (its credentials stop working)",
    "terminate": "terminate a registration: tokens and authorizations revoked",
}
FILE_FIELDS = ("certificate", "csr")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``third-party`` and ``outbox`` to the ``mock-custodian`` command."""
    tp = subparsers.add_parser("third-party", help="Third Party Portal: register, update, show, accept, approve, ...")
    tp_sub = tp.add_subparsers(dest="third_party_command", required=True)

    reg_p = tp_sub.add_parser("register", help="submit a registration (fields as flags or a JSON/YAML file)")
    add_common_options(reg_p)
    reg_p.add_argument("--from-file", type=Path, help="JSON or YAML mapping of registration fields")
    for name in registration_form.FIELD_LABELS:
        if name in FILE_FIELDS:
            continue
        if name in ("notify_daily", "visibility", "terms_accepted"):
            reg_p.add_argument(_flag(name), choices=("true", "false"), help=registration_form.FIELD_LABELS[name])
        else:
            reg_p.add_argument(_flag(name), help=registration_form.FIELD_LABELS[name])
    reg_p.add_argument("--certificate", type=Path, help="client certificate PEM file (leaf first)")
    reg_p.add_argument("--csr", type=Path, help="CSR PEM file: the dev CA issues and registers the certificate")
    reg_p.add_argument("--accept-terms", action="store_true", help="accept the Terms and Conditions")
    reg_p.add_argument("--confirm", action="store_true", help="also use the e-mail confirmation link at once")
    reg_p.add_argument("--json", action="store_true", help="machine-readable output")
    reg_p.set_defaults(handler=cmd_register)

    confirm_p = tp_sub.add_parser("confirm", help="use an e-mail confirmation link (or its token)")
    add_common_options(confirm_p)
    confirm_p.add_argument("link", help="the link from the outbox, or just its token")
    confirm_p.set_defaults(handler=cmd_confirm)

    update_p = tp_sub.add_parser("update", help="edit a registration (Manage Registration > Edit)")
    add_common_options(update_p)
    update_p.add_argument("registration", help="client_id or portal user name")
    for name in registration_form.EDITABLE:
        if name in ("notify_daily", "visibility"):
            update_p.add_argument(_flag(name), choices=("true", "false"), help=registration_form.FIELD_LABELS[name])
        else:
            update_p.add_argument(_flag(name), help=registration_form.FIELD_LABELS[name])
    update_p.add_argument("--certificate", type=Path, help="replace the SSL certificate (PEM file)")
    update_p.add_argument("--csr", type=Path, help="replace it with a dev-CA certificate for this CSR")
    update_p.add_argument("--json", action="store_true")
    update_p.set_defaults(handler=cmd_update)

    show_p = tp_sub.add_parser("show", help="Manage Registration: status, milestones, credentials")
    add_common_options(show_p)
    show_p.add_argument("registration", help="client_id or portal user name")
    show_p.add_argument("--json", action="store_true")
    show_p.set_defaults(handler=cmd_show)

    list_p = tp_sub.add_parser("list", help="every registration with its status")
    add_common_options(list_p)
    list_p.add_argument("--json", action="store_true")
    list_p.set_defaults(handler=cmd_list)

    tests_p = tp_sub.add_parser("tests", help="the registration-test rehearsal: each step and why it failed")
    add_common_options(tests_p)
    tests_p.add_argument("registration", help="client_id or portal user name")
    tests_p.add_argument("--json", action="store_true")
    tests_p.set_defaults(handler=cmd_tests)

    csr_p = tp_sub.add_parser("sign-csr", help="issue a dev-CA client certificate for a CSR (prints the chain)")
    add_common_options(csr_p)
    csr_p.add_argument("csr", type=Path)
    csr_p.set_defaults(handler=cmd_sign_csr)

    for action, text in ADMIN_ACTIONS.items():
        admin = tp_sub.add_parser(action, help=f"PG&E side: {text}")
        add_common_options(admin)
        admin.add_argument("registration", help="client_id or portal user name")
        admin.set_defaults(handler=cmd_admin, action=action)

    outbox = subparsers.add_parser("outbox", help="the e-mails PG&E would have sent, newest first")
    add_common_options(outbox)
    outbox.add_argument("--to", help="only e-mails to this address")
    outbox.add_argument("--limit", type=int, default=20)
    outbox.add_argument("--json", action="store_true")
    outbox.set_defaults(handler=cmd_outbox)


# --------------------------------------------------------------------------------------------- plumbing
def _policy(settings: Settings, pki: DevPKI) -> registration_form.PortalPolicy:
    portal_base_url = server_info(settings).get("portal_base_url") or settings.resolved_portal_base_url()
    return policies.portal_policy(settings, pki, portal_base_url)


def _refusal(exc: PGEError) -> str:
    """Why the portal refused: one line per offending field (as the form shows them), else PG&E's message."""
    fields = getattr(exc, "fields", None)
    if fields:
        return "refused:" + "".join(f"\n  {registration_form.FIELD_LABELS.get(name, name)}: {message}"
                                    for name, message in fields.items())
    return exc.description or exc.error


def _fields_from_args(args: argparse.Namespace, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name == "data_groups":
            value = [g.strip() for g in str(value).split(",") if g.strip()]
        values[name] = value
    for name in FILE_FIELDS:
        path = getattr(args, name, None)
        if path is not None:
            values[name] = Path(path).read_text()
    return values


def _print_view(view: dict[str, Any]) -> None:
    print(f"{view['display_name']}  [{view['user_type']}]  status: {view['status_label']}")
    for key in ("client_id", "client_secret", "registration_access_token", "application_information_id"):
        if view.get(key):
            print(f"  {key:28} {view[key]}")
    for name, when in view.get("deadlines", {}).items():
        print(f"  {name:28} {clock.local_time(when)}")
    print("  Registration Milestone")
    for row in view["milestones"]:
        print(f"    {row['milestone']:38} {row['completed_local'] or '-'}")
    for cert in view["certificates"]:
        print(f"  certificate {cert['fingerprint_sha256'][:24]}...  {cert['state']}")
        for warning in cert["warnings"]:
            print(f"    warning: {warning}")


# --------------------------------------------------------------------------------------------- commands
def cmd_register(args: argparse.Namespace) -> int:
    settings, database, pki = open_data_dir(args, create=True)
    raw: dict[str, Any] = {}
    if args.from_file:
        loaded = yaml.safe_load(args.from_file.read_text())
        if not isinstance(loaded, dict):
            return fail(f"{args.from_file}: expected a mapping of registration fields")
        raw.update(loaded)
    raw.update(_fields_from_args(args, [n for n in registration_form.FIELD_LABELS if n not in FILE_FIELDS]))
    if args.accept_terms:
        raw["terms_accepted"] = True
    now = database.clock().epoch()
    policy = _policy(settings, pki)
    try:
        with database.session() as db:
            submission = reg.register(db, raw, now, policy, pki)
            tp = submission.third_party
            if args.confirm:
                reg.confirm(db, tp.confirmation_token or "", now, policy)
            view = registration_view.registration_view(db, tp, now)
            if submission.issued_certificate_chain:
                view["issued_certificate_chain"] = submission.issued_certificate_chain
    except PGEError as exc:
        return fail(_refusal(exc))
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        _print_view(view)
        if view["status"] == "submitted":
            print(f"  The confirmation link went to {view['business_contact']['email']}: mock-custodian outbox")
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    settings, database, pki = open_data_dir(args, create=True)
    match = re.search(r"token=([A-Za-z0-9_\-]+)", args.link)
    token = match.group(1) if match else args.link.strip()
    try:
        with database.session() as db:
            tp = reg.confirm(db, token, database.clock().epoch(), _policy(settings, pki))
            print(f"{tp.display_name}: {registration_view.STATUS_LABELS[tp.status]}")
    except PGEError as exc:
        return fail(_refusal(exc))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    settings, database, pki = open_data_dir(args, create=True)
    fields = _fields_from_args(args, registration_form.EDITABLE)
    certificate = fields.pop("certificate", None)
    csr = fields.pop("csr", None)
    now = database.clock().epoch()
    try:
        with database.session() as db:
            tp = portal_accounts.find_registration(db, args.registration)
            reg.advance_lifecycle(db, tp, now)
            if fields:
                reg.update_registration(db, tp, fields, now)
            if csr and not certificate:
                certificate = registration_certificates.issue_certificate_for_csr(pki, csr)
                print(certificate, end="")
            if certificate:
                registration_certificates.replace_certificate(db, tp, certificate, now, _policy(settings, pki))
            view = registration_view.registration_view(db, tp, now)
    except PGEError as exc:
        return fail(_refusal(exc))
    return _emit(args, view)


def _emit(args: argparse.Namespace, view: dict) -> int:
    """A registration as JSON (``--json``) or the readable summary; the commands' common ending."""
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        _print_view(view)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=True).database
    now = database.clock().epoch()
    try:
        with database.session() as db:
            tp = portal_accounts.find_registration(db, args.registration)
            reg.advance_lifecycle(db, tp, now)
            view = registration_view.registration_view(db, tp, now)
    except PGEError as exc:
        return fail(_refusal(exc))
    return _emit(args, view)


def cmd_list(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=True).database
    now = database.clock().epoch()
    from sqlalchemy import select

    from mock_custodian.store.models import ThirdParty

    rows = []
    with database.session() as db:
        for tp in db.execute(select(ThirdParty).order_by(ThirdParty.id)).scalars():
            reg.advance_lifecycle(db, tp, now)
            rows.append({"client_id": tp.client_id if tp.accepted_at else None, "display_name": tp.display_name,
                         "user_type": registration_form.USER_TYPE_LABELS[tp.user_type], "status": tp.status,
                         "portal_username": tp.portal_username})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['client_id'] or '-':7} {row['status']:11} {row['user_type']:28} {row['display_name']}"
              f"  (user {row['portal_username']})")
    return 0


def cmd_tests(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=True).database
    now = database.clock().epoch()
    try:
        with database.session() as db:
            tp = portal_accounts.find_registration(db, args.registration)
            reg.advance_lifecycle(db, tp, now)
            report = rehearsal(db, tp, now)
    except PGEError as exc:
        return fail(_refusal(exc))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"client {report['client_id']}  status {report['status']}")
    for test in report["tests"]:
        if not test["required"]:
            print(f"\n{test['name']}: not required for this user type")
            continue
        print(f"\n{test['name']}: {test['status'].replace('_', ' ')}"
              + (f" ({test['completed_local']})" if test["completed_local"] else ""))
        for step in test["steps"]:
            print(f"  [{step['status']:9}] {step['title']}" + (" (optional)" if step["optional"] else ""))
            shown = step["last_failure"] if step["status"] != "passed" else None
            if shown:
                print(f"      {shown['request']} -> {shown['status']}")
                print(f"      why: {shown['reason']}")
    return 0


def cmd_sign_csr(args: argparse.Namespace) -> int:
    pki = open_data_dir(args, create=True).pki
    try:
        print(registration_certificates.issue_certificate_for_csr(pki, args.csr.read_text()), end="")
    except PGEError as exc:
        return fail(_refusal(exc))
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=True).database
    now = database.clock().epoch()
    actions = {"accept": reg.accept, "approve": reg.approve, "hold": reg.hold, "resume": reg.resume,
               "expire": reg.expire, "terminate": reg.terminate}
    try:
        with database.session() as db:
            tp = portal_accounts.find_registration(db, args.registration)
            reg.advance_lifecycle(db, tp, now)
            actions[args.action](db, tp, now)
            print(f"{tp.display_name} ({tp.client_id}): {registration_view.STATUS_LABELS[tp.status]}")
    except PGEError as exc:
        return fail(_refusal(exc))
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    database = open_data_dir(args, create=True).database
    with database.session() as db:
        emails = [email_as_dict(e) for e in delivered_emails(db, database.clock().epoch(), to=args.to,
                                                              limit=args.limit)]
    if args.json:
        print(json.dumps(emails, indent=2))
        return 0
    if not emails:
        print("(no e-mail)")
    for email in emails:
        print(f"--- {clock.local_time(email['sent_at'])}  to {email['to']}")
        print(f"Subject: {email['subject']}\n\n{email['body']}")
    return 0
