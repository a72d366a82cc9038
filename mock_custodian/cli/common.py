"""What every command group shares: the common options, settings from flags, opening the data dir, failing.

Command modules import only these public names (never each other's helpers), so a command group can
move or go without the others noticing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

from mock_custodian.domain.world import load_world, loaded_scenario
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.parse import load_scenario_file
from mock_custodian.settings import Settings, load_settings
from mock_custodian.store.at_rest import protect_data_dir
from mock_custodian.store.db import Database

#: A command refused its input (bad flag value, missing data dir, a refused change): the documented
#: exit status of every command (``report --fail-on`` and ``validate`` use 1 for findings).
EXIT_USAGE = 2
#: Written by ``serve`` into the data dir: the running server's public URLs.
RUNTIME_FILE = "server.json"


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--database-url``, on every command that opens the data dir."""
    parser.add_argument("--data-dir", type=Path, help="state folder (default ./.mock-custodian; "
                        "env MOCK_CUSTODIAN_DATA_DIR)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default SQLite in the data dir; env DATABASE_URL)")


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Defaults < environment < the common options (and ``extra`` flags; ``None`` means not given)."""
    overrides = {"data_dir": getattr(args, "data_dir", None), "database_url": getattr(args, "database_url", None)}
    overrides.update(extra)
    return load_settings(overrides)


class DataDir(NamedTuple):
    """An opened data dir: its settings, database (schema current) and dev PKI."""

    settings: Settings
    database: Database
    pki: DevPKI


def open_data_dir(source: argparse.Namespace | Settings, *, create: bool, load_scenario: bool = True,
                  reset: bool = False, scenario_given: bool = False) -> DataDir:
    """The one way a command opens the data dir, its database and its dev PKI.

    ``create=False``: the data must exist already (commands that inspect or steer a world never make
    one up behind the user's back: a wrong ``--data-dir`` is an error); the PKI is used as it is.
    ``create=True``: make whatever is missing, as ``serve`` does: the folder (0700, private files 0600),
    the dev PKI, the schema, and the world when no scenario is loaded yet, on ``reset``, or when
    ``scenario_given`` and it changed. ``load_scenario=False`` leaves the world alone (the job worker:
    the server loads it).
    """
    settings = source if isinstance(source, Settings) else settings_from_args(source)
    data_dir = settings.resolved_data_dir()
    pki = DevPKI(data_dir / "certs")
    if create:
        protect_data_dir(data_dir)  # also for a directory an older version made
        pki.ensure(settings.san)
    elif settings.database_url is None and not (data_dir / "mock-custodian.db").exists():
        raise ValueError(f"no mock-custodian data in {data_dir} (start `mock-custodian serve` or pass --data-dir)")
    database = Database(settings.resolved_database_url())
    database.create_schema()  # adds tables a newer version knows; keeps everything else
    if create and load_scenario:
        scenario = load_scenario_file(settings.scenario)
        current = loaded_scenario(database)
        if reset or current is None or (scenario_given and current["digest"] != scenario.digest):
            load_world(database, scenario, pki)
    return DataDir(settings, database, pki)


def server_info(settings: Settings) -> dict[str, Any]:
    """The running server's public URLs (from the data dir), else the configured ones."""
    runtime_file = settings.resolved_data_dir() / RUNTIME_FILE
    if runtime_file.exists():
        return json.loads(runtime_file.read_text())
    return {"api_base_url": settings.resolved_api_base_url(), "portal_base_url": settings.resolved_portal_base_url()}


def fail(message: str) -> int:
    """Say why on standard error, prefixed like every message of the command; the usage exit status."""
    print(f"mock-custodian: {message}", file=sys.stderr)
    return EXIT_USAGE
