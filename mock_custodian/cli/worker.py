"""``mock-custodian worker``: the job worker on its own, for deployments that run several (or none in serve).

Point it at the same database and data directory as the server (packages are files under
``<data_dir>/packages``, which the server streams).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from mock_custodian.cli.common import RUNTIME_FILE, add_common_options, open_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``worker`` to the ``mock-custodian`` command."""
    worker = sub.add_parser("worker", help="build async packages and send notifications (also runs inside serve)")
    add_common_options(worker)
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
    runtime_file = data_dir / RUNTIME_FILE
    if runtime_file.exists():
        try:
            return json.loads(runtime_file.read_text()).get("api_base_url")
        except ValueError:
            return None
    return None


def cmd_worker(args: argparse.Namespace) -> int:
    # The worker's HTTP stack costs a tenth of a second: only this command loads it.
    from mock_custodian.jobs.worker import JobWorker, owed

    # The folder, the dev PKI (the data custodian's client certificate for notifications) and the schema;
    # never the world: the server loads it, and two processes loading it at once would race.
    settings, database, _pki = open_data_dir(args, create=True, load_scenario=False)
    data_dir = settings.resolved_data_dir()
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
