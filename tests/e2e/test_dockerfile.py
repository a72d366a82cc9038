"""The container without Docker (issue 18): the Dockerfile installs exactly requirements.lock, runs as an
unprivileged user owning /data, and its HEALTHCHECK command works against a real server; compose.yaml
reaches the mock by PG&E's host names, and its sample app works against a real server."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support import ROOT

from mock_custodian import testing

# What a python:3.12-slim image on Linux evaluates dependency markers with.
IMAGE_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
                 "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
                 "platform_python_implementation": "CPython", "extra": ""}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line.strip())
        assert match, f"requirements.lock: {line!r} is not NAME==VERSION"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_every_runtime_dependency_is_pinned_in_the_lock_within_its_range() -> None:
    pins = lock()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is a dependency but not in requirements.lock (.ci/refresh-lock)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {requirement}")


def test_authlib_is_a_test_dependency_only() -> None:
    names = {canonicalize_name(r.name) for r in runtime_requirements()}
    assert "authlib" not in names and "authlib" not in lock()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(canonicalize_name(Requirement(r).name) == "authlib" for r in extras["test"])
    users = [p for p in (ROOT / "mock_custodian").rglob("*.py") if "authlib" in p.read_text().replace(
        "authlib's", "")]
    assert users == [], f"the product imports authlib: {users}"


def test_the_lock_is_closed_under_dependencies() -> None:
    """Every locked package's own requirements are locked too (checked where this environment has the same
    version installed), so `pip install --no-deps -r requirements.lock` leaves nothing out."""
    pins = lock()
    checked = 0
    for name, version in pins.items():
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_MARKERS):
                continue
            assert canonicalize_name(requirement.name) in pins, f"{name} needs {requirement}, missing from the lock"
    assert checked >= 5, "too few locked versions installed here to check anything"


def test_dockerfile_installs_the_lock_and_runs_as_a_user_owning_data() -> None:
    steps = instructions()
    kinds = [kind for kind, _ in steps]
    runs = [(i, args) for i, (kind, args) in enumerate(steps) if kind == "RUN"]
    # an unprivileged user (no fixed uid 0) that owns /data
    [(user_step, create)] = [(i, a) for i, a in runs if "useradd" in a]
    [useradd] = [c for c in create.split("&&") if "useradd" in c]
    user = shlex.split(useradd)[-1]
    assert user not in ("root", "0") and "--uid 0" not in create
    assert f"chown {user}:{user} /data" in create or f"chown {user} /data" in create
    # the lock is copied, then installed exactly; the package after it without resolving again
    copy_lock = next(i for i, (kind, args) in enumerate(steps) if kind == "COPY" and "requirements.lock" in args)
    install_lock = next(i for i, a in runs if "-r requirements.lock" in a)
    assert copy_lock < install_lock and "--no-deps" in steps[install_lock][1]
    install_package = next(i for i, a in runs if re.search(r"pip install [^&]*\s\.(\s|$)", a))
    assert install_lock < install_package and "--no-deps" in steps[install_package][1]
    assert "pip check" in steps[install_package][1]
    for _, args in runs:
        for command in args.split("&&"):
            if "pip install" in command:
                assert "--no-deps" in command, f"an install that may resolve unpinned ranges: {command.strip()}"
    # the server runs as that user: USER after every RUN, before the entry point
    user_index = kinds.index("USER")
    assert steps[user_index][1] == user and user_step < user_index
    assert all(i < user_index for i, _ in runs), "a RUN after USER would run as the user; keep USER last"
    assert user_index < kinds.index("ENTRYPOINT")
    assert kinds.index("VOLUME") > user_step and "/data" in steps[kinds.index("VOLUME")][1]
    env = dict(re.findall(r"(\w+)=(\S+)", steps[kinds.index("ENV")][1]))
    assert env["MOCK_CUSTODIAN_DATA_DIR"] == "/data" and env["MOCK_CUSTODIAN_HOST"] == "0.0.0.0"


def healthcheck_command() -> str:
    [args] = [args for kind, args in instructions() if kind == "HEALTHCHECK"]
    return args.split(" CMD ", 1)[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = testing.start(tmp_path_factory.mktemp("container"), workers=1,
                            settings={"control_token": "ci-secret"})
    try:
        yield running
    finally:
        running.stop()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOCK_CUSTODIAN_", "PGE_"))}
    env.update(extra)
    return env


def test_healthcheck_command_works_against_a_real_server(server: testing.RunningServer, tmp_path: Path) -> None:
    command = healthcheck_command()
    healthy = subprocess.run(["sh", "-c", command], env=_env(MOCK_CUSTODIAN_DATA_DIR=str(server.data_dir)),
                             capture_output=True, text=True, timeout=60)
    assert healthy.returncode == 0, healthy.stderr
    # no server.json (a container still starting) or nothing listening: unhealthy
    missing = subprocess.run(["sh", "-c", command], env=_env(MOCK_CUSTODIAN_DATA_DIR=str(tmp_path)),
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0
    info = json.loads((server.data_dir / "server.json").read_text())
    (tmp_path / "server.json").write_text(json.dumps({**info, "portal_port": 9}))
    down = subprocess.run(["sh", "-c", command], env=_env(MOCK_CUSTODIAN_DATA_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert down.returncode != 0


def test_compose_example_reaches_the_mock_by_pge_host_names(server: testing.RunningServer) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    mock, app = compose["services"]["mock-pge"], compose["services"]["app"]
    aliases = set(mock["networks"]["pge"]["aliases"])
    assert aliases == {"api.pge.com", "sharemydata.pge.com"}
    command = mock["command"]
    sans = {command[i + 1] for i, word in enumerate(command) if word == "--san"}
    assert sans == aliases, "the server certificate must carry every name clients use"
    assert command[command.index("--api-base-url") + 1].startswith("https://api.pge.com")
    assert command[command.index("--portal-base-url") + 1].startswith("https://sharemydata.pge.com")
    assert app["depends_on"]["mock-pge"]["condition"] == "service_healthy"
    assert "pge" in app["networks"]
    assert app["environment"]["PGE_API"].startswith("https://api.pge.com")
    assert app["environment"]["MOCK_CONTROL_TOKEN"] == mock["environment"]["MOCK_CUSTODIAN_CONTROL_TOKEN"]
    [script] = [v.split(":")[0] for v in app["volumes"] if v.endswith("app.py:ro")]
    # The sample app itself, against a real server (here by 127.0.0.1 instead of the aliases).
    done = subprocess.run([sys.executable, str(ROOT / script.lstrip("./"))], capture_output=True, text=True,
                          timeout=120, env=_env(PGE_API=server.api_base_url, PGE_PORTAL=server.portal_base_url,
                                                PGE_CA=str(server.ca_bundle), MOCK_CONTROL_TOKEN="ci-secret"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "<currentStatus>1</currentStatus>" in done.stdout
