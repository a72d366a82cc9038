"""``mock-custodian worker``: the job worker on its own, for deployments that run several (or none in serve).

Registered through ``cli.COMMAND_MODULES``. Point it at the same database and data directory as the
server (packages are files under ``<data_dir>/packages``, which the server streams).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from mock_custodian.settings import load_settings
from mock_custodian.store.db import Database


def register(sub: argparse._SubParsersAction, scenario_sub: argparse._SubParsersAction) -> None:
    from mock_custodian.cli.main import _common

    worker = sub.add_parser("worker", help="build async packages and send notifications (also runs inside serve)")
    _common(worker)
    worker.add_argument("--api-base-url", help="public base URL of the API host, for daily packages (default: "
                        "the running server's, from server.json in the data dir)")
    worker.add_argument("--once", action="store_true", help="do what is due now, print what is left, and exit")
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # set by serve: exit when it is gone
    worker.set_defaults(handler=cmd_worker)


def _api_base_url(args: argparse.Namespace, data_dir: Path) -> str | None:
    if args.api_base_url:
        return args.api_base_url
    if os.environ.get("MOCK_CUSTODIAN_API_BASE_URL"):
        return None  # the settings have it
    runtime_file = data_dir / "server.json"
    if runtime_file.exists():
        try:
            return json.loads(runtime_file.read_text()).get("api_base_url")
        except ValueError:
            return None
    return None


def cmd_worker(args: argparse.Namespace) -> int:
    from mock_custodian.jobs.worker import JobWorker, owed
    from mock_custodian.pki import DevPKI

    settings = load_settings({"data_dir": args.data_dir, "database_url": args.database_url})
    data_dir = settings.resolved_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    DevPKI(data_dir / "certs").ensure(settings.san)  # the data custodian's client certificate
    database = Database(settings.resolved_database_url())
    database.create_schema()
    logging.basicConfig(level=os.environ.get("MOCK_CUSTODIAN_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s [jobs %(process)d] %(levelname)s %(message)s")
    worker = JobWorker(settings, database=database, api_base_url=_api_base_url(args, data_dir),
                       parent_pid=args.parent_pid)
    if args.once:
        worker.tick()  # a first look may only start a third party's daily schedule
        while worker.tick() or worker.drain():
            pass
        print(json.dumps(owed(database)))
        return 0
    worker.run()
    return 0
